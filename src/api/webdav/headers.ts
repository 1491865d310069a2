// Parsing of the WebDAV and HTTP request headers the door acts on: Depth, Overwrite, Destination,
// Range, If-Match / If-None-Match; Source and Destination URLs; and the quoting of entity tags.
import { SluiceError } from '../../errors.js';
import type { Entry } from '../../storage/types.js';

export type Depth = '0' | '1' | 'infinity';

/** The Depth header, or `fallback` when absent; values outside `allowed` are a bad request. */
export function parseDepth(header: string | undefined, fallback: Depth, allowed: readonly Depth[]): Depth {
  if (header === undefined) return fallback;
  const value = header.trim().toLowerCase();
  if (!(allowed as readonly string[]).includes(value)) {
    throw new SluiceError('BAD_REQUEST', `Depth must be one of ${allowed.join(', ')} here, got ${JSON.stringify(header)}`);
  }
  return value as Depth;
}

/** Overwrite: T (the default) or F. */
export function parseOverwrite(header: string | undefined): boolean {
  if (header === undefined) return true;
  const value = header.trim().toUpperCase();
  if (value === 'T') return true;
  if (value === 'F') return false;
  throw new SluiceError('BAD_REQUEST', `Overwrite must be T or F, got ${JSON.stringify(header)}`);
}

const hostOf = (authority: string): string => new URL(`http://${authority}`).host.toLowerCase();

/** Where a Destination header points: a path on this server, or another server (third-party copy). */
export type Destination = { kind: 'local'; path: string } | { kind: 'remote'; url: URL };

/**
 * Resolves a Destination header. A path, or an absolute http(s) URL naming this server (the
 * request's Host, or the configured public URL), is local: its raw (still percent-encoded) path is
 * returned. An http(s) URL naming any other host is remote. Other schemes are a bad request.
 */
export function parseDestination(header: string | undefined, requestHost: string | undefined, publicUrl: string | undefined): Destination {
  if (!header) throw new SluiceError('BAD_REQUEST', 'Destination header is required');
  const value = header.trim();
  if (value.startsWith('/')) return { kind: 'local', path: value.split(/[?#]/)[0]! };
  const url = parseHttpUrl('Destination', value);
  const ours = new Set<string>();
  if (requestHost) ours.add(hostOf(requestHost));
  if (publicUrl) ours.add(new URL(publicUrl).host.toLowerCase());
  if (!ours.has(url.host.toLowerCase())) return { kind: 'remote', url };
  // URL.pathname keeps percent-encoding but resolves dot segments; take the raw text instead so
  // "..", "%2e%2e" and friends reach the path validation and are refused, never resolved.
  const afterAuthority = value.slice(value.indexOf('//') + 2);
  const slash = afterAuthority.indexOf('/');
  return { kind: 'local', path: slash < 0 ? '/' : afterAuthority.slice(slash).split(/[?#]/)[0]! };
}

/** The raw path of a Destination on this server; another server is REMOTE_DESTINATION (MOVE). */
export function destinationPath(header: string | undefined, requestHost: string | undefined, publicUrl: string | undefined): string {
  const dest = parseDestination(header, requestHost, publicUrl);
  if (dest.kind === 'remote') {
    throw new SluiceError('REMOTE_DESTINATION', `Destination ${dest.url.origin} is not this server; only COPY can send to another server`);
  }
  return dest.path;
}

/**
 * An absolute http or https URL from a header (Source, Destination), or BAD_REQUEST naming the
 * header. Credentials in the URL are refused: they belong in TransferHeaderAuthorization.
 */
export function parseHttpUrl(headerName: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new SluiceError('BAD_REQUEST', `${headerName} is not an absolute URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new SluiceError('BAD_REQUEST', `${headerName} must be an http or https URL, got ${url.protocol.slice(0, -1)}`);
  }
  if (url.username || url.password) {
    throw new SluiceError('BAD_REQUEST', `${headerName} must not carry credentials; send them as TransferHeaderAuthorization`);
  }
  return url;
}

export interface ByteRange {
  start: number;
  end: number;
}

/**
 * A single "bytes=" range resolved against the size. Undefined means "send everything": no header,
 * a multi-range or a syntax the server may ignore (RFC 9110 §14.2). Unsatisfiable ranges throw 416.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return undefined;
  let start: number;
  let end: number;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) throw unsatisfiable(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(first);
    end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== '' && Number(last) < start) return undefined;
  }
  if (start >= size) throw unsatisfiable(size);
  return { start, end };
}

const unsatisfiable = (size: number): SluiceError =>
  new SluiceError('RANGE_NOT_SATISFIABLE', `range not satisfiable for ${size} bytes`, { size });

export const quoteEtag = (e: Entry): string => `"${e.etag}"`;

/** An If-Match / If-None-Match header: '*' or the list of entity tags (unquoted, weakness dropped). */
export function parseEtagList(header: string | undefined): '*' | string[] | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '*') return '*';
  const tags: string[] = [];
  for (const m of value.matchAll(/(?:W\/)?"([^"]*)"/g)) tags.push(m[1]!);
  return tags;
}

/** True when the request carries a body (RFC 9112 §6.3). */
export function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}

/** The declared body length, when it is a plain Content-Length (not chunked). */
export function declaredLength(headers: Record<string, string | string[] | undefined>): number | undefined {
  if (headers['transfer-encoding'] !== undefined) return undefined;
  const length = headers['content-length'];
  if (typeof length !== 'string') return undefined;
  const n = Number(length);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** A request header as one string (Node only gives arrays for a few headers sent repeatedly). */
export const headerValue = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value.join(', ') : value);
