// The live properties of RFC 4918 §15 as the door computes them from a namespace entry. All of
// them are protected: PROPPATCH may not set or remove them.
import type { Entry } from '../../storage/types.js';
import { quoteEtag } from './headers.js';
import { DAV_NS, escapeText, type PropName } from './xml.js';

type LiveValue = (e: Entry) => string | undefined;

/** Value (inner markup) of each live property; undefined when it does not apply to the entry. */
const LIVE: Record<string, LiveValue> = {
  creationdate: (e) => new Date(e.ctime).toISOString(),
  displayname: (e) => escapeText(e.name),
  getcontentlength: (e) => (e.type === 'DIR' ? undefined : String(e.size)),
  getcontenttype: (e) => (e.type === 'DIR' ? undefined : escapeText(contentTypeOf(e))),
  getetag: (e) => escapeText(quoteEtag(e)),
  getlastmodified: (e) => new Date(e.mtime).toUTCString(),
  resourcetype: (e) => (e.type === 'DIR' ? '<D:collection/>' : ''),
  supportedlock: () => '',
  lockdiscovery: () => '',
};

export const LIVE_PROPERTY_NAMES: readonly PropName[] = Object.keys(LIVE).map((name) => ({ ns: DAV_NS, name }));

export const isLiveProperty = (p: PropName): boolean => p.ns === DAV_NS && Object.hasOwn(LIVE, p.name);

/** The live property's value for this entry, or undefined if the entry does not have it. */
export function liveValue(p: PropName, e: Entry): string | undefined {
  if (p.ns !== DAV_NS || !Object.hasOwn(LIVE, p.name)) return undefined;
  return LIVE[p.name]!(e);
}

export const contentTypeOf = (e: Entry): string => e.contentType ?? 'application/octet-stream';
