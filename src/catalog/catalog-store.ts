// The catalogue's state port: records keyed by id and, while their file exists, by path; metadata
// under namespace keys; derivations linking a record's current content to the records it was made
// from. Every write is one atomic operation, so concurrent renames and annotations never interleave.
// Adapters: backends/sqlite (embedded), postgres (scale-out); both keep the contract in
// test/contract/catalog-store.contract.ts.
import type { CatalogQuery } from './query.js';
import type { CatalogRecord, Checksum, DatasetFile, MetadataSource, RecordId, RecordType } from './types.js';

export interface NewFile {
  path: string;
  type: RecordType;
  owner: string;
  size: number;
  /** Normalized (types.ts normalizeChecksums). */
  checksums: Checksum[];
  /** Milliseconds since the epoch; default now. An existing record keeps the earlier of its own and this. */
  created?: number;
}

/**
 * What to create when an operation needs the record of a path that has none: the file's facts as
 * the namespace knows them, or a stub (owner '', size 0, no checksums) when nothing is known.
 * `gone`: the namespace does not have the file (any more); the record is created deleted, or the
 * last deleted record at that path is used.
 */
export interface Placeholder extends NewFile {
  gone: boolean;
}
export type PlaceholderFor = (path: string) => Placeholder;

export interface Annotation {
  path: string;
  key: string;
  metadata: Record<string, unknown>;
  /** Replace the key's object instead of merging into it (RFC 7396 merge patch). */
  replace: boolean;
  source: Omit<MetadataSource, 'updated'>;
  /** Largest serialized metadata of the record after the change (PAYLOAD_TOO_LARGE beyond). */
  maxBytes: number;
}

export interface Derivation {
  path: string;
  /** Checksums as TYPE:VALUE; where absent, the input record's strongest checksum is remembered. */
  inputs: { path: string; checksum?: string }[];
  function: string;
  version: string;
  activation: string;
  parameters: unknown;
}

export interface NewDataset {
  /** The directory (SciCat sourceFolder). */
  path: string;
  type: RecordType;
  owner: string;
  /** Scientific metadata per namespace key, written with `source`. */
  metadata: Record<string, Record<string, unknown>>;
  source: Omit<MetadataSource, 'updated'>;
  maxBytes: number;
}

/** Which records a caller may see: all, or those at or below one of the prefixes. */
export type PathFilter = { kind: 'all' } | { kind: 'under'; prefixes: string[] };

/** One input → output edge of a derivation. */
export interface EdgeRow {
  from: RecordId;
  to: RecordId;
  function: string;
  version: string;
  activation: string;
  inputPath: string;
  inputChecksum?: string;
}

export interface CatalogStore {
  get(id: RecordId): Promise<CatalogRecord | undefined>;
  /** Records by id, in no particular order; unknown ids are left out. */
  getMany(ids: readonly RecordId[]): Promise<CatalogRecord[]>;
  /** The current record at path, or else the one most recently deleted there. */
  atPath(path: string): Promise<CatalogRecord | undefined>;
  /**
   * Creates the current record of a file or updates its size, checksums, owner and type; metadata
   * stays, and `created` only moves earlier (a record made early from a stub learns the file's time). When the content changed (size or a checksum differs) and the update says `raw`, the
   * record's derivation no longer describes it and is dropped; a record with a derivation otherwise
   * stays `derived`.
   */
  upsertFile(f: NewFile, now: number): Promise<CatalogRecord>;
  /**
   * Writes metadata under a key of the current record at `a.path`. Without `placeholder`, a path
   * without a current record is NOT_FOUND; with it, the record is created.
   */
  annotate(a: Annotation, placeholder: PlaceholderFor | undefined, now: number): Promise<CatalogRecord>;
  /**
   * Records (or replaces) the derivation of the current record at `d.path`, which becomes `derived`.
   * Records missing for the output or the inputs are created from `placeholder`. Idempotent.
   */
  recordDerivation(d: Derivation, placeholder: PlaceholderFor, now: number): Promise<CatalogRecord>;
  /** A rename: the current records at `from` and below it move to `to`; one current at `to` is marked deleted. Returns how many moved. */
  moved(from: string, to: string, now: number): Promise<number>;
  /** Marks the current records at `path` and below it deleted. Returns how many. */
  removed(path: string, now: number): Promise<number>;
  /** Creates the record of a dataset at a directory; CONFLICT when the path has a current record. */
  createDataset(d: NewDataset, now: number): Promise<CatalogRecord>;
  /** The current files below `path` that the filter lets through, by path. */
  filesBelow(path: string, filter: PathFilter): Promise<DatasetFile[]>;
  /** Marks the current dataset record at `path` deleted (never the files); false when there is none. */
  removeDataset(path: string, now: number): Promise<boolean>;
  /** Records matching every term, newest first (created, then insertion order). */
  search(query: CatalogQuery, filter: PathFilter, page: { limit: number; offset: number }): Promise<CatalogRecord[]>;
  /** Edges from the records `ids` towards their inputs (up) or towards records derived from them (down). */
  edges(ids: readonly RecordId[], direction: 'up' | 'down'): Promise<EdgeRow[]>;
}
