// PROPFIND (RFC 4918 §9.1): which properties a request asks for, and the <D:response> of one
// resource with live and dead properties; unknown properties are reported with 404.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../app.js';
import { SluiceError } from '../../errors.js';
import type { DeadProperty, Entry } from '../../storage/types.js';
import { principalOf } from '../authenticate.js';
import { headerValue, parseDepth } from './headers.js';
import { errorBody, hrefOf, multistatus, responseElement } from './multistatus.js';
import { readPathOf, readTextBody } from './request.js';
import { LIVE_PROPERTY_NAMES, isLiveProperty, liveValue } from './properties.js';
import { childElements, isDav, nameOfElement, parseXml, propElement, propKey, type PropName } from './xml.js';

export type PropfindRequest = { kind: 'allprop'; include: PropName[] } | { kind: 'propname' } | { kind: 'prop'; props: PropName[] };

/** An empty body means allprop (RFC 4918 §9.1). Unknown elements are ignored (extensibility). */
export function parsePropfind(body: string): PropfindRequest {
  if (body.trim() === '') return { kind: 'allprop', include: [] };
  const root = parseXml(body).documentElement!;
  if (!isDav(root, 'propfind')) throw new SluiceError('BAD_XML', 'PROPFIND body must be a DAV:propfind element');
  const children = childElements(root);
  const prop = children.find((c) => isDav(c, 'prop'));
  if (prop) return { kind: 'prop', props: childElements(prop).map(nameOfElement) };
  if (children.some((c) => isDav(c, 'propname'))) return { kind: 'propname' };
  if (children.some((c) => isDav(c, 'allprop'))) {
    const include = children.find((c) => isDav(c, 'include'));
    return { kind: 'allprop', include: include ? childElements(include).map(nameOfElement) : [] };
  }
  throw new SluiceError('BAD_XML', 'DAV:propfind needs one of prop, propname or allprop');
}

/** True when answering needs the entry's dead properties. */
export const needsDeadProperties = (r: PropfindRequest): boolean => r.kind !== 'prop' || r.props.some((p) => !isLiveProperty(p));

export function propfindResponse(entry: Entry, dead: readonly DeadProperty[], request: PropfindRequest): string {
  const found: string[] = [];
  const missing: string[] = [];
  const deadByKey = new Map(dead.map((d) => [propKey(d), d]));
  const valueOf = (p: PropName): string | undefined => (isLiveProperty(p) ? liveValue(p, entry) : deadByKey.get(propKey(p))?.xml);

  if (request.kind === 'propname') {
    for (const p of [...LIVE_PROPERTY_NAMES, ...dead]) if (valueOf(p) !== undefined) found.push(propElement(p, undefined));
  } else {
    const asked = request.kind === 'prop' ? request.props : [...LIVE_PROPERTY_NAMES, ...dead, ...request.include];
    const seen = new Set<string>();
    for (const p of asked) {
      const key = propKey(p);
      if (seen.has(key)) continue;
      seen.add(key);
      const value = valueOf(p);
      if (value !== undefined) found.push(propElement(p, value));
      else if (request.kind === 'prop' || request.include.some((i) => propKey(i) === key)) missing.push(propElement(p, undefined));
    }
  }
  return responseElement(
    hrefOf(entry),
    new Map([
      [200, found],
      [404, missing],
    ]),
  );
}

const XML_TYPE = 'application/xml; charset=utf-8';

/**
 * Depth 0 or 1. Depth infinity (also the default) is refused on collections with
 * DAV:propfind-finite-depth; on a file it means the same as 0 and is answered.
 */
export async function propfind(core: Core, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = principalOf(req, core.tokens);
  const path = readPathOf(req);
  const depth = parseDepth(headerValue(req.headers.depth), 'infinity', ['0', '1', 'infinity']);
  const request = parsePropfind(await readTextBody(req));
  const entry = await core.namespace.stat(p, path);
  if (depth === 'infinity' && entry.type === 'DIR') {
    return reply.code(403).type(XML_TYPE).send(errorBody('propfind-finite-depth'));
  }
  const entries = depth === '1' && entry.type === 'DIR' ? [entry, ...(await core.namespace.list(p, path)).children] : [entry];
  const withDead = needsDeadProperties(request);
  const responses: string[] = [];
  for (const e of entries) {
    const dead = withDead ? await core.namespace.deadProperties(p, e.path) : [];
    responses.push(propfindResponse(e, dead, request));
  }
  return reply.code(207).type(XML_TYPE).send(multistatus(responses));
}
