// Namespace paths: one canonical form ("/a/b/c", no trailing slash, "/" for the root) and the
// validation every door applies before a path reaches the core.
import { SluiceError } from '../errors.js';

export type NsPath = string & { readonly __brand: 'NsPath' };

const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;

/** Paths under these prefixes belong to sluice itself and cannot be namespace entries. */
export const RESERVED_PREFIXES = ['/api'] as const;

/**
 * Turns a decoded path into its canonical form or throws BAD_PATH. Rejects NUL and control
 * characters, "." and ".." segments (never resolved: a client that sends them is confused or hostile),
 * backslashes and over-long names.
 */
export function normalizePath(raw: string): NsPath {
  if (typeof raw !== 'string' || raw.length === 0) throw new SluiceError('BAD_PATH', 'path is empty');
  if (!raw.startsWith('/')) throw new SluiceError('BAD_PATH', `path must be absolute: ${JSON.stringify(raw)}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw new SluiceError('BAD_PATH', 'path contains a control character');
  if (raw.includes('\\')) throw new SluiceError('BAD_PATH', 'path contains a backslash');
  if (Buffer.byteLength(raw) > MAX_PATH_BYTES) throw new SluiceError('BAD_PATH', `path longer than ${MAX_PATH_BYTES} bytes`);
  const segments = raw.split('/').filter((s) => s.length > 0);
  for (const s of segments) {
    if (s === '.' || s === '..') throw new SluiceError('BAD_PATH', `path segment "${s}" is not allowed`);
    if (Buffer.byteLength(s) > MAX_NAME_BYTES) throw new SluiceError('BAD_PATH', `name longer than ${MAX_NAME_BYTES} bytes`);
  }
  return ('/' + segments.join('/')) as NsPath;
}

/** Decodes a URL path (percent-encoding) exactly once, then normalizes it. */
export function pathFromUrl(urlPath: string): NsPath {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    throw new SluiceError('BAD_PATH', 'path has malformed percent-encoding');
  }
  return normalizePath(decoded);
}

/** Like normalizePath, and also refuses reserved prefixes (for paths that will be written). */
export function userPath(raw: string): NsPath {
  const p = normalizePath(raw);
  for (const prefix of RESERVED_PREFIXES) {
    if (p === prefix || p.startsWith(prefix + '/')) {
      throw new SluiceError('RESERVED_PATH', `${prefix} is reserved for the sluice API`);
    }
  }
  return p;
}

export function parentOf(p: NsPath): NsPath {
  if (p === '/') return p;
  const i = p.lastIndexOf('/');
  return (i === 0 ? '/' : p.slice(0, i)) as NsPath;
}

export function nameOf(p: NsPath): string {
  return p === '/' ? '' : p.slice(p.lastIndexOf('/') + 1);
}

export function join(dir: NsPath, name: string): NsPath {
  return (dir === '/' ? '/' + name : dir + '/' + name) as NsPath;
}

/** True if p is root or lies below root (a path is within itself). */
export function isWithin(p: string, root: string): boolean {
  if (root === '/') return true;
  return p === root || p.startsWith(root + '/');
}

/** Path of p relative to dir, for a p strictly below dir. */
export function relativeTo(p: string, dir: string): string {
  return dir === '/' ? p.slice(1) : p.slice(dir.length + 1);
}

/** Encodes a namespace path for use in a URL, segment by segment. */
export function encodePath(p: string): string {
  return p
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}
