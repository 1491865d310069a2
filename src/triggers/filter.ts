// Compiles a trigger's filter into a predicate over storage events. Pure: the facts a filter needs
// beyond the event (labels, xattrs, the size of a file a placement event names) are asked for only
// when the filter names them.
import picomatch from 'picomatch';
import { isWithin, normalizePath } from '../storage/paths.js';
import { isPlacementType, type StorageEvent } from '../events/types.js';
import type { TriggerFilter } from './types.js';
import { SluiceError } from '../errors.js';

/** What the filter may need to know of the file an event is about, as it is now. */
export interface FileAttributes {
  labels: string[];
  xattrs: Record<string, string>;
  size?: number;
}

export interface CompiledFilter {
  /** Whether the event itself passes (type, place, name, and size when the event carries it). */
  matches(e: StorageEvent): boolean;
  /** Whether the filter names labels/xattrs (every event then needs the file's attributes). */
  needsAttributes: boolean;
  /** Whether this event can be decided only with the file's attributes (see `attributesMatch`). */
  needsAttributesOf(e: StorageEvent): boolean;
  /** Labels and xattrs; with `e`, also the file's size when the event does not carry one. */
  attributesMatch(attrs: FileAttributes, e?: StorageEvent): boolean;
}

/**
 * A placement event names a file's replica or QoS and (but for REPLICA_AVAILABLE) no size: a size
 * bound is then checked against the file. RULE_STATE is about a rule, which has no size.
 */
const sizeFromFile = (e: StorageEvent): boolean => isPlacementType(e.type) && e.type !== 'RULE_STATE' && typeof e.data?.size !== 'number';

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
  const sized = f.minSize !== undefined || f.maxSize !== undefined;
  const sizeFits = (size: number | undefined) =>
    !(f.minSize !== undefined && (size === undefined || size < f.minSize)) &&
    !(f.maxSize !== undefined && (size === undefined || size > f.maxSize));
  return {
    needsAttributes,
    matches(e) {
      if (!types.has(e.type)) return false;
      const rule = e.type === 'RULE_STATE';
      // `directories` is about namespace entries; a rule's scope is a directory by nature.
      if (e.isDir && !f.directories && !rule) return false;
      // A rule scoped at `path` itself is within it (a file or directory event at `path` is not below it).
      if (!isWithin(e.path, base) || (e.path === base && !rule)) return false;
      const rel = e.path === base ? '' : base === '/' ? e.path.slice(1) : e.path.slice(base.length + 1);
      if (!f.recursive && rel.includes('/')) return false;
      if (glob && !glob(rel)) return false;
      if (sized && !sizeFromFile(e) && !sizeFits(typeof e.data?.size === 'number' ? e.data.size : undefined)) return false;
      return true;
    },
    needsAttributesOf(e) {
      return needsAttributes || (sized && sizeFromFile(e));
    },
    attributesMatch({ labels, xattrs, size }, e) {
      if (f.labels && !f.labels.every((l) => labels.includes(l))) return false;
      if (!Object.entries(f.xattrs ?? {}).every(([k, v]) => xattrs[k] === v)) return false;
      if (sized && e !== undefined && sizeFromFile(e) && !sizeFits(size)) return false;
      return true;
    },
  };
}
