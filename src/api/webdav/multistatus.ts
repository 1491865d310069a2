// Writing 207 Multi-Status bodies (RFC 4918 §13): one <D:response> per resource, properties
// grouped into <D:propstat> by status, hrefs percent-encoded.
import { STATUS_CODES } from 'node:http';
import { encodePath } from '../../storage/paths.js';
import type { Entry } from '../../storage/types.js';
import { escapeXml, XML_DECLARATION } from './xml.js';

/** The URL path of an entry; collections end in a slash. */
export function hrefOf(e: Pick<Entry, 'path' | 'type'>): string {
  if (e.path === '/') return '/';
  return encodePath(e.path) + (e.type === 'DIR' ? '/' : '');
}

export const statusLine = (status: number): string => `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`;

/** One response element; `groups` maps a status to the property elements it applies to. */
export function responseElement(href: string, groups: ReadonlyMap<number, string[]>): string {
  let out = `<D:response><D:href>${escapeXml(href)}</D:href>`;
  const nonEmpty = [...groups].filter(([, props]) => props.length > 0);
  for (const [status, props] of nonEmpty.length > 0 ? nonEmpty : [[200, []] as const]) {
    out += `<D:propstat><D:prop>${props.join('')}</D:prop><D:status>${statusLine(status)}</D:status></D:propstat>`;
  }
  return out + '</D:response>';
}

export function multistatus(responses: readonly string[]): string {
  return `${XML_DECLARATION}<D:multistatus xmlns:D="DAV:">${responses.join('\n')}</D:multistatus>\n`;
}

/** The body of a DAV:error response naming one precondition (RFC 4918 §16). */
export function errorBody(condition: string): string {
  return `${XML_DECLARATION}<D:error xmlns:D="DAV:"><D:${condition}/></D:error>\n`;
}
