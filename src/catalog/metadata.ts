// Scientific metadata as the catalogue stores and searches it: JSON merge patches (RFC 7396) for
// annotations, and the flattening of a record's metadata into (dotted path, value) pairs that back
// field search with indexes instead of a walk over every record's JSON at query time.

/** One leaf of a record's metadata: `nexus.entry.title` → "scan 1". Array indexes are not in the path. */
export interface MetadataValue {
  /** Dotted path from the namespace key: `nexus.entry.sample.temperature`. */
  path: string;
  /** Its last segment, for the suffix shorthand (`sample.temperature`). */
  leaf: string;
  kind: 'text' | 'number' | 'boolean' | 'null';
  /** For numbers. */
  num?: number;
  /** The value as text: strings as they are, numbers and booleans in JSON form. */
  text: string;
}

/** Deeper structures are stored but not indexed below this depth. */
export const MAX_INDEXED_DEPTH = 32;

export const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7396: objects merge recursively, null removes a member, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Every scalar under every key of a record's metadata, arrays flattened into their parent's path. */
export function flattenMetadata(metadata: Record<string, unknown>): MetadataValue[] {
  const out: MetadataValue[] = [];
  const walk = (value: unknown, path: string, leaf: string, depth: number): void => {
    if (depth > MAX_INDEXED_DEPTH) return;
    if (Array.isArray(value)) {
      for (const item of value) walk(item, path, leaf, depth + 1);
      return;
    }
    if (isPlainObject(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`, k, depth + 1);
      return;
    }
    if (typeof value === 'string') out.push({ path, leaf, kind: 'text', text: value });
    else if (typeof value === 'number') out.push({ path, leaf, kind: 'number', num: value, text: String(value) });
    else if (typeof value === 'boolean') out.push({ path, leaf, kind: 'boolean', text: String(value) });
    else if (value === null) out.push({ path, leaf, kind: 'null', text: 'null' });
  };
  for (const [key, value] of Object.entries(metadata)) walk(value, key, key, 0);
  return out;
}

/** The words full-text search sees for a record's metadata: its string and number values. */
export function fullText(values: readonly MetadataValue[]): string {
  return values
    .filter((v) => v.kind === 'text' || v.kind === 'number')
    .map((v) => v.text)
    .join('\n');
}
