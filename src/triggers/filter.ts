// Compiles a trigger's filter into a predicate over storage events. Pure: the facts a filter needs
// beyond the event (labels, xattrs) are asked for only when the filter names them.
import picomatch from 'picomatch';
import { isWithin, normalizePath } from '../storage/paths.js';
import type { StorageEvent } from '../events/types.js';
import type { TriggerFilter } from './types.js';
import { SluiceError } from '../errors.js';

export interface CompiledFilter {
  /** Whether the event itself passes (type, place, name, size). */
  matches(e: StorageEvent): boolean;
  /** Whether the filter also needs the file's labels/xattrs. */
  needsAttributes: boolean;
  attributesMatch(attrs: { labels: string[]; xattrs: Record<string, string> }): boolean;
}

export function compileFilter(f: TriggerFilter): CompiledFilter {
  const base = normalizePath(f.path);
  const types = new Set<string>(f.events);
  let glob: ((p: string) => boolean) | undefined;
  if (f.glob !== undefined) {
    try {
      glob = picomatch(f.glob, { dot: true });
    } catch (e) {
      throw new SluiceError('BAD_REQUEST', `filter.glob "${f.glob}" is not a valid pattern: ${(e as Error).message}`);
    }
  }
  if (f.minSize !== undefined && f.maxSize !== undefined && f.minSize > f.maxSize) {
    throw new SluiceError('BAD_REQUEST', 'filter.minSize is larger than filter.maxSize');
  }
  const needsAttributes = (f.labels?.length ?? 0) > 0 || Object.keys(f.xattrs ?? {}).length > 0;
  return {
    needsAttributes,
    matches(e) {
      if (!types.has(e.type)) return false;
      if (e.isDir && !f.directories) return false;
      if (e.path === base || !isWithin(e.path, base)) return false;
      const rel = base === '/' ? e.path.slice(1) : e.path.slice(base.length + 1);
      if (!f.recursive && rel.includes('/')) return false;
      if (glob && !glob(rel)) return false;
      const size = typeof e.data?.size === 'number' ? e.data.size : undefined;
      if (f.minSize !== undefined && (size === undefined || size < f.minSize)) return false;
      if (f.maxSize !== undefined && (size === undefined || size > f.maxSize)) return false;
      return true;
    },
    attributesMatch({ labels, xattrs }) {
      if (f.labels && !f.labels.every((l) => labels.includes(l))) return false;
      return Object.entries(f.xattrs ?? {}).every(([k, v]) => xattrs[k] === v);
    },
  };
}
