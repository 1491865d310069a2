// The catalogue service: what the trigger dispatcher tells it (files written, annotated, derived,
// moved, removed: trusted calls without a principal) and what callers ask of it (records, search,
// lineage), filtered by what each caller may read. A record is readable by whoever may read its path.
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import { isAdmin, mayStorage, requireStorage, type Principal } from '../auth/scopes.js';
import { normalizePath } from '../storage/paths.js';
import type { Entry } from '../storage/types.js';
import type { CatalogStore, PathFilter, Placeholder } from './catalog-store.js';
import { isPlainObject } from './metadata.js';
import { parseQuery } from './query.js';
import {
  isRecordId,
  METADATA_KEY_RE,
  normalizeChecksums,
  type CatalogRecord,
  type Dataset,
  type LineageDirection,
  type LineageEdge,
  type LineageGraph,
  type LineageNode,
  type Producer,
  type RecordId,
  type RecordType,
} from './types.js';

/** A file as the namespace knows it, to create complete records for files the catalogue has not seen yet. */
export interface FileFacts {
  path: string;
  size: number;
  checksums: { type: string; value: string }[];
  owner: string;
  /** ISO date-time or ms since the epoch. */
  created?: string | number;
}

export interface CatalogServiceOptions {
  store: CatalogStore;
  /** Looks a path up in the namespace (trusted); undefined when there is no such file. */
  lookupFile?: (path: string) => Promise<FileFacts | undefined>;
  /** Whether a path is a directory in the namespace (trusted), for datasets; see createDataset. */
  lookupDir?: (path: string) => Promise<boolean>;
  /** Largest serialized metadata of one record (default 1 MiB). */
  maxMetadataBytes?: number;
  /** Most nodes one lineage answer carries (default 1000). */
  maxLineageNodes?: number;
  log?: Logger;
  /** The clock, for tests. */
  now?: () => number;
}

export const DEFAULT_SEARCH_LIMIT = 100;
export const MAX_SEARCH_LIMIT = 1000;
export const DEFAULT_LINEAGE_DEPTH = 5;
export const MAX_LINEAGE_DEPTH = 50;

/** The facts of a namespace entry, for CatalogServiceOptions.lookupFile; undefined for a directory or nothing. */
export function fileFactsOf(entry: Entry | undefined): FileFacts | undefined {
  if (!entry || entry.type !== 'REGULAR') return undefined;
  return {
    path: entry.path,
    size: entry.size,
    owner: entry.owner,
    created: entry.ctime,
    checksums: Object.entries(entry.checksums).map(([type, value]) => ({ type, value: value as string })),
  };
}

/** The paths a principal may read, as the store filters by them: everything, or these prefixes. */
export function readableFilter(p: Principal): PathFilter {
  if (isAdmin(p)) return { kind: 'all' };
  const roots = [...new Set(p.scopes.flatMap((s) => (s.kind === 'storage.read' ? [s.path] : [])))];
  if (roots.includes('/')) return { kind: 'all' };
  // A prefix below another adds nothing.
  const prefixes = roots.filter((r) => !roots.some((o) => o !== r && r.startsWith(o + '/'))).sort();
  return { kind: 'under', prefixes };
}

export class CatalogService {
  private readonly store: CatalogStore;
  private readonly lookupFile: CatalogServiceOptions['lookupFile'];
  private readonly lookupDir: CatalogServiceOptions['lookupDir'];
  private readonly maxMetadataBytes: number;
  private readonly maxLineageNodes: number;
  private readonly log: Logger | undefined;
  private readonly now: () => number;

  constructor(opts: CatalogServiceOptions) {
    this.store = opts.store;
    this.lookupFile = opts.lookupFile;
    this.lookupDir = opts.lookupDir;
    this.maxMetadataBytes = opts.maxMetadataBytes ?? 1024 * 1024;
    this.maxLineageNodes = opts.maxLineageNodes ?? 1000;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
  }

  // ---- what the dispatcher tells the catalogue (trusted) ------------------------------------

  /** Creates or updates the record of a file: size, checksums, owner, type; keeps existing metadata. */
  async upsertFile(f: {
    path: string;
    size: number;
    checksums: { type: string; value: string }[];
    owner: string;
    type: RecordType;
    created?: string;
  }): Promise<CatalogRecord> {
    const path = normalizePath(f.path);
    if (!Number.isSafeInteger(f.size) || f.size < 0) throw new SluiceError('BAD_REQUEST', `size of ${path} must be a byte count`);
    return this.store.upsertFile(
      {
        path,
        type: f.type,
        owner: f.owner,
        size: f.size,
        checksums: normalizeChecksums(f.checksums),
        ...(f.created !== undefined ? { created: toMs(f.created, 'created') } : {}),
      },
      this.now(),
    );
  }

  /**
   * Merges scientific metadata into a file's record under a namespace key (e.g. 'nexus'), noting who
   * produced it. Merging follows RFC 7396 (objects merge, null removes); `replace` sets the key's
   * object as given. A file without a record gets one (from the namespace when it can be looked up).
   */
  async annotate(
    path: string,
    key: string,
    metadata: unknown,
    producedBy?: Producer,
    opts: { replace?: boolean } = {},
  ): Promise<CatalogRecord> {
    const p = normalizePath(path);
    const at = await this.placeholders([p], 'raw');
    return this.store.annotate(
      {
        path: p,
        key: checkKey(key),
        metadata: checkMetadata(metadata),
        replace: opts.replace ?? false,
        source: producedBy ? { producedBy } : {},
        maxBytes: this.maxMetadataBytes,
      },
      at,
      this.now(),
    );
  }

  /** Records that `path` was derived from `inputs` by an activation (replacing an earlier derivation of it). */
  async recordDerivation(d: {
    path: string;
    inputs: { path: string; checksum?: string }[];
    function: string;
    version: string;
    activation: string;
    parameters: unknown;
  }): Promise<CatalogRecord> {
    const path = normalizePath(d.path);
    const inputs = d.inputs.map((i) => ({ path: normalizePath(i.path), ...(i.checksum !== undefined ? { checksum: i.checksum } : {}) }));
    for (const field of ['function', 'version', 'activation'] as const) {
      if (typeof d[field] !== 'string' || d[field] === '') throw new SluiceError('BAD_REQUEST', `a derivation needs its ${field}`);
    }
    const inputPlaceholders = await this.placeholders(
      inputs.map((i) => i.path),
      'raw',
    );
    const outputPlaceholder = await this.placeholders([path], 'derived');
    return this.store.recordDerivation(
      { path, inputs, function: d.function, version: d.version, activation: d.activation, parameters: d.parameters },
      (p) => (p === path ? outputPlaceholder(p) : inputPlaceholders(p)),
      this.now(),
    );
  }

  /** A rename in the namespace: records at `from` and below follow it; lineage is by id and stays. */
  async moved(from: string, to: string): Promise<void> {
    const n = await this.store.moved(normalizePath(from), normalizePath(to), this.now());
    this.log?.debug({ from, to, records: n }, 'catalogue records moved');
  }

  /** A removal: records at `path` and below are kept, marked deleted, so lineage through them stays whole. */
  async removed(path: string): Promise<void> {
    const n = await this.store.removed(normalizePath(path), this.now());
    this.log?.debug({ path, records: n }, 'catalogue records marked deleted');
  }

  // ---- what callers ask ---------------------------------------------------------------------

  /** A record by id, or by path (the current record there, else the one deleted last). */
  async get(idOrPath: string, principal: Principal): Promise<CatalogRecord> {
    if (isRecordId(idOrPath)) {
      const record = await this.store.get(idOrPath);
      if (!record) throw new SluiceError('NOT_FOUND', `no catalogue record ${idOrPath}`);
      if (!mayStorage(principal, 'read', record.path)) throw new SluiceError('FORBIDDEN', `token may not read record ${idOrPath}`);
      return this.redact(record, principal);
    }
    if (!idOrPath.startsWith('/'))
      throw new SluiceError('BAD_REQUEST', `"${idOrPath}" is neither a record id (rec_…) nor an absolute path`);
    const path = normalizePath(idOrPath);
    requireStorage(principal, 'read', path);
    const record = await this.store.atPath(path);
    if (!record) throw new SluiceError('NOT_FOUND', `no catalogue record for ${path}`);
    return this.redact(record, principal);
  }

  /** Records matching a query (docs/catalog.md), newest first, among those the principal may read. */
  async search(query: string, principal: Principal, opts: { limit?: number; offset?: number } = {}): Promise<CatalogRecord[]> {
    const parsed = parseQuery(query);
    const limit = opts.limit ?? DEFAULT_SEARCH_LIMIT;
    const offset = opts.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_LIMIT)
      throw new SluiceError('BAD_REQUEST', `limit must be 1…${MAX_SEARCH_LIMIT}`);
    if (!Number.isInteger(offset) || offset < 0) throw new SluiceError('BAD_REQUEST', 'offset must be 0 or more');
    const filter = readableFilter(principal);
    if (filter.kind === 'under' && filter.prefixes.length === 0) return [];
    const records = await this.store.search(parsed, filter, { limit, offset });
    return records.map((r) => this.redact(r, principal));
  }

  /** Annotation through the API: needs storage.modify on the path; the record must exist or the file be in the namespace. */
  async annotateAs(
    principal: Principal,
    path: string,
    key: string,
    metadata: unknown,
    opts: { replace?: boolean } = {},
  ): Promise<CatalogRecord> {
    const p = normalizePath(path);
    requireStorage(principal, 'modify', p);
    const facts = this.lookupFile ? await this.lookupFile(p) : undefined;
    const at = facts ? () => placeholderOf(facts, 'raw', false) : undefined;
    const record = await this.store.annotate(
      {
        path: p,
        key: checkKey(key),
        metadata: checkMetadata(metadata),
        replace: opts.replace ?? false,
        source: { by: principal.subject },
        maxBytes: this.maxMetadataBytes,
      },
      at,
      this.now(),
    );
    return this.redact(record, principal);
  }

  // ---- datasets -----------------------------------------------------------------------------

  /**
   * Creates the dataset of a namespace directory (its SciCat sourceFolder): needs storage.modify on
   * the path; NOT_FOUND when the directory is not in the namespace (checked with `opts.lookupDir`,
   * else the service's), CONFLICT when a dataset is there already.
   */
  async createDataset(
    principal: Principal,
    path: string,
    opts: { type?: RecordType; metadata?: unknown; lookupDir?: (path: string) => Promise<boolean> } = {},
  ): Promise<CatalogRecord> {
    const p = normalizePath(path);
    requireStorage(principal, 'modify', p);
    const type = opts.type ?? 'raw';
    if (type !== 'raw' && type !== 'derived') throw new SluiceError('BAD_REQUEST', 'type is raw or derived');
    const metadata: Record<string, Record<string, unknown>> = {};
    if (opts.metadata !== undefined) {
      for (const [key, value] of Object.entries(checkMetadata(opts.metadata))) metadata[checkKey(key)] = checkMetadata(value);
    }
    const isDir = opts.lookupDir ?? this.lookupDir;
    if (isDir && !(await isDir(p))) throw new SluiceError('NOT_FOUND', `${p} is not a directory in the namespace`);
    const record = await this.store.createDataset(
      { path: p, type, owner: principal.subject, metadata, source: { by: principal.subject }, maxBytes: this.maxMetadataBytes },
      this.now(),
    );
    this.log?.debug({ path: p, id: record.id }, 'dataset created');
    return record;
  }

  /**
   * The dataset at a directory with the current files below it, counted and summed when read, of
   * those the principal may read. Visible to whoever may read the path or a part of it.
   */
  async getDataset(path: string, principal: Principal): Promise<Dataset> {
    const p = normalizePath(path);
    const filter = readableFilter(principal);
    const seesPart =
      filter.kind === 'all' || mayStorage(principal, 'read', p) || filter.prefixes.some((r) => r.startsWith(p === '/' ? '/' : p + '/'));
    if (!seesPart) throw new SluiceError('FORBIDDEN', `token has no scope allowing read of ${p} or below it`);
    const record = await this.store.atPath(p);
    if (!record || record.kind !== 'dataset' || record.deleted) throw new SluiceError('NOT_FOUND', `no dataset at ${p}`);
    const files = await this.store.filesBelow(p, mayStorage(principal, 'read', p) ? { kind: 'all' } : filter);
    return { ...record, fileCount: files.length, totalSize: files.reduce((n, f) => n + f.size, 0), files };
  }

  /** Annotation of a dataset: like annotateAs, for the current dataset record at the path. */
  async annotateDatasetAs(
    principal: Principal,
    path: string,
    key: string,
    metadata: unknown,
    opts: { replace?: boolean } = {},
  ): Promise<CatalogRecord> {
    const p = normalizePath(path);
    requireStorage(principal, 'modify', p);
    const record = await this.store.atPath(p);
    if (!record || record.kind !== 'dataset' || record.deleted) throw new SluiceError('NOT_FOUND', `no dataset at ${p}`);
    return this.annotateAs(principal, p, key, metadata, opts);
  }

  /** Removes the dataset record at a directory (never its files): needs storage.modify on the path. */
  async removeDataset(principal: Principal, path: string): Promise<void> {
    const p = normalizePath(path);
    requireStorage(principal, 'modify', p);
    if (!(await this.store.removeDataset(p, this.now()))) throw new SluiceError('NOT_FOUND', `no dataset at ${p}`);
  }

  /**
   * The derivation graph around a file: its inputs (up), what was derived from it (down) or both, to
   * `depth` edges away. An edge belongs to its output and shows only where the output is readable;
   * an input the principal may not read shows as a hidden node (id only) and is not followed.
   */
  async lineage(path: string, principal: Principal, opts: { direction?: LineageDirection; depth?: number } = {}): Promise<LineageGraph> {
    const direction = opts.direction ?? 'up';
    const depth = opts.depth ?? DEFAULT_LINEAGE_DEPTH;
    if (!Number.isInteger(depth) || depth < 1 || depth > MAX_LINEAGE_DEPTH)
      throw new SluiceError('BAD_REQUEST', `depth must be 1…${MAX_LINEAGE_DEPTH}`);
    const root = await this.get(path, principal);
    const nodes = new Map<string, LineageNode>([[root.id, nodeOf(root, 0)]]);
    const edges = new Map<string, LineageEdge>();
    let truncated = false;
    for (const dir of direction === 'both' ? (['up', 'down'] as const) : [direction]) {
      let frontier: RecordId[] = [root.id];
      for (let level = 1; level <= depth && frontier.length > 0 && !truncated; level++) {
        const rows = await this.store.edges(frontier, dir);
        const far = rows.map((e) => (dir === 'up' ? e.from : e.to)).filter((id) => !nodes.has(id));
        const records = new Map((await this.store.getMany([...new Set(far)])).map((r) => [r.id, r]));
        const next: RecordId[] = [];
        for (const e of rows) {
          const farId = dir === 'up' ? e.from : e.to;
          if (!nodes.has(farId)) {
            const record = records.get(farId);
            const readable = record !== undefined && mayStorage(principal, 'read', record.path);
            // Downstream, an unreadable output hides its derivation entirely.
            if (!readable && dir === 'down') continue;
            if (nodes.size >= this.maxLineageNodes) {
              truncated = true;
              break;
            }
            const distance = dir === 'up' ? -level : level;
            nodes.set(farId, readable ? nodeOf(record, distance) : { id: farId, hidden: true, distance });
            if (readable) next.push(farId);
          }
          const key = `${e.from}>${e.to}`;
          if (edges.has(key)) continue;
          const inputHidden = nodes.get(e.from)?.hidden === true;
          edges.set(key, {
            from: e.from,
            to: e.to,
            function: e.function,
            version: e.version,
            activation: e.activation,
            ...(inputHidden
              ? {}
              : { inputPath: e.inputPath, ...(e.inputChecksum !== undefined ? { inputChecksum: e.inputChecksum } : {}) }),
          });
        }
        frontier = next;
      }
    }
    return { root: root.id, direction, depth, nodes: [...nodes.values()], edges: [...edges.values()], truncated };
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** Placeholders for paths that may lack a record: the namespace's facts where it has the file. */
  private async placeholders(paths: readonly string[], type: RecordType): Promise<(path: string) => Placeholder> {
    const known = new Map<string, Placeholder>();
    if (this.lookupFile) {
      for (const path of new Set(paths)) {
        if (await this.store.atPath(path).then((r) => r !== undefined && !r.deleted)) continue;
        const facts = await this.lookupFile(path).catch((err: unknown) => {
          this.log?.warn({ err, path }, 'namespace lookup for a catalogue record failed; recording a stub');
          return null;
        });
        if (facts !== null) known.set(path, facts ? placeholderOf(facts, type, false) : stub(path, type, true));
      }
    }
    return (path) => known.get(path) ?? stub(path, type, false);
  }

  /** Inputs the principal may not read keep only their id. */
  private redact(record: CatalogRecord, principal: Principal): CatalogRecord {
    if (!record.provenance) return record;
    const inputs = record.provenance.inputs.map((i) =>
      i.path !== undefined && mayStorage(principal, 'read', i.path) ? i : { id: i.id, hidden: true },
    );
    return { ...record, provenance: { ...record.provenance, inputs } };
  }
}

function nodeOf(r: CatalogRecord, distance: number): LineageNode {
  return { id: r.id, path: r.path, type: r.type, size: r.size, deleted: r.deleted, distance };
}

function placeholderOf(f: FileFacts, type: RecordType, gone: boolean): Placeholder {
  return {
    path: f.path,
    type,
    owner: f.owner,
    size: f.size,
    checksums: normalizeChecksums(f.checksums),
    ...(f.created !== undefined ? { created: toMs(f.created, 'created') } : {}),
    gone,
  };
}

const stub = (path: string, type: RecordType, gone: boolean): Placeholder => ({ path, type, owner: '', size: 0, checksums: [], gone });

function checkKey(key: string): string {
  if (typeof key !== 'string' || !METADATA_KEY_RE.test(key)) {
    throw new SluiceError('BAD_REQUEST', `metadata key "${key}" must be a letter or _ then up to 63 letters, digits, _ or - (no dots)`);
  }
  return key;
}

function checkMetadata(metadata: unknown): Record<string, unknown> {
  if (!isPlainObject(metadata)) throw new SluiceError('BAD_REQUEST', 'metadata must be a JSON object');
  return metadata;
}

function toMs(t: string | number, what: string): number {
  const ms = typeof t === 'number' ? t : Date.parse(t);
  if (!Number.isFinite(ms)) throw new SluiceError('BAD_REQUEST', `${what} must be an ISO date-time, not ${JSON.stringify(t)}`);
  return ms;
}
