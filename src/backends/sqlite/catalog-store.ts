// The catalogue store on the embedded SQLite database (tables in catalog/tables.ts). Each write is one
// transaction; with group commit, WalSync makes it durable before the caller is answered.
//
// Search compiles the parsed query to one SELECT with every user value bound as a parameter: record
// fields are columns, metadata fields are one uncorrelated subquery over catalog_values (metadata flattened at write time,
// indexed by path and by last segment), bare words are an FTS5 MATCH of one quoted phrase, and lists
// (ids, checksums) go through JSON1's json_each. The caller's readable prefixes become index-friendly
// range conditions on the path.
import type { Db } from './database.js';
import type { WalSync } from './wal-sync.js';
import { SluiceError } from '../../errors.js';
import type {
  Annotation,
  CatalogStore,
  Derivation,
  EdgeRow,
  NewDataset,
  NewFile,
  PathFilter,
  Placeholder,
  PlaceholderFor,
} from '../../catalog/catalog-store.js';
import type { CatalogQuery, CompareOp, QueryTerm, QueryValue, RecordField } from '../../catalog/query.js';
import { flattenMetadata, fullText, mergePatch } from '../../catalog/metadata.js';
import {
  newRecordId,
  strongestChecksum,
  type CatalogRecord,
  type Checksum,
  type DatasetFile,
  type RecordKind,
  type MetadataSource,
  type Provenance,
  type RecordId,
  type RecordType,
} from '../../catalog/types.js';

interface RecordRow {
  seq: number;
  id: string;
  path: string;
  kind: RecordKind;
  type: RecordType;
  owner: string;
  size: number;
  checksums: string;
  metadata: string;
  sources: string;
  created: number;
  updated: number;
  deleted: number | null;
}

interface DerivationRow {
  output: number;
  function: string;
  version: string;
  activation: string;
  parameters: string;
  recorded: number;
}

interface InputRow {
  output: number;
  id: string;
  path: string;
  checksum: string | null;
}

/** Case folding for `~`, the same in SQL as in JavaScript (SQLite's lower() folds ASCII only). */
const FOLD = 'catalog_fold';
const fold = (s: string): string => s.toLowerCase();

/** Text that SQLite's date functions should see: starts like an ISO date (a bare number would be a Julian day). */
const ISO_GLOB = `'[0-9][0-9][0-9][0-9]-[0-9][0-9]*'`;

const RECORD_COLUMNS = 'seq, id, path, kind, type, owner, size, checksums, metadata, sources, created, updated, deleted';
const CURRENT = 'deleted IS NULL';
/** Rows at `path` or below it: parameters path, path + '/', path + '0' ('0' follows '/' in byte order). */
const AT_OR_BELOW = '(path = ? OR (path >= ? AND path < ?))';
const atOrBelow = (path: string): string[] => (path === '/' ? ['/', '/', '0'] : [path, path + '/', path + '0']);

export class SqliteCatalogStore implements CatalogStore {
  constructor(
    private readonly db: Db,
    private readonly wal?: WalSync,
  ) {
    db.function(FOLD, { deterministic: true }, (s: unknown) => (typeof s === 'string' ? fold(s) : s));
  }

  async get(id: RecordId): Promise<CatalogRecord | undefined> {
    const row = this.db.prepare(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE id = ?`).get(id) as RecordRow | undefined;
    return row ? this.toRecords([row])[0] : undefined;
  }

  async getMany(ids: readonly RecordId[]): Promise<CatalogRecord[]> {
    if (ids.length === 0) return [];
    const rows = this.db
      .prepare(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE id IN (SELECT value FROM json_each(?))`)
      .all(JSON.stringify(ids)) as RecordRow[];
    return this.toRecords(rows);
  }

  async atPath(path: string): Promise<CatalogRecord | undefined> {
    const row = this.db
      .prepare(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE path = ? ORDER BY deleted IS NOT NULL, deleted DESC, seq DESC LIMIT 1`)
      .get(path) as RecordRow | undefined;
    return row ? this.toRecords([row])[0] : undefined;
  }

  async upsertFile(f: NewFile, now: number): Promise<CatalogRecord> {
    const seq = this.db.transaction((): number => {
      const row = this.current(f.path);
      if (!row) return this.insert(f, now, null);
      const hasDerivation = this.db.prepare('SELECT 1 FROM catalog_derivations WHERE output = ?').get(row.seq) !== undefined;
      const stale = hasDerivation && f.type === 'raw' && contentChanged(row, f);
      if (stale) this.dropDerivation(row.seq);
      const type: RecordType = hasDerivation && !stale ? 'derived' : f.type;
      this.db
        .prepare('UPDATE catalog_records SET type = ?, owner = ?, size = ?, checksums = ?, created = ?, updated = ? WHERE seq = ?')
        .run(type, f.owner, f.size, JSON.stringify(f.checksums), Math.min(f.created ?? row.created, row.created), now, row.seq);
      return row.seq;
    })();
    await this.wal?.durable();
    return this.bySeq(seq);
  }

  async annotate(a: Annotation, placeholder: PlaceholderFor | undefined, now: number): Promise<CatalogRecord> {
    const seq = this.db.transaction((): number => {
      let row = this.current(a.path);
      if (!row) {
        if (!placeholder) throw new SluiceError('NOT_FOUND', `no catalogue record for ${a.path}`);
        row = this.ensure(a.path, placeholder, now);
      }
      const metadata = JSON.parse(row.metadata) as Record<string, unknown>;
      metadata[a.key] = a.replace ? a.metadata : mergePatch(metadata[a.key], a.metadata);
      const text = JSON.stringify(metadata);
      if (Buffer.byteLength(text) > a.maxBytes) {
        throw new SluiceError('PAYLOAD_TOO_LARGE', `metadata of ${a.path} would be larger than ${a.maxBytes} bytes`);
      }
      const sources = JSON.parse(row.sources) as Record<string, MetadataSource>;
      sources[a.key] = { updated: new Date(now).toISOString(), ...a.source };
      this.db
        .prepare('UPDATE catalog_records SET metadata = ?, sources = ?, updated = ? WHERE seq = ?')
        .run(text, JSON.stringify(sources), now, row.seq);
      this.index(row.seq, row.path, metadata);
      return row.seq;
    })();
    await this.wal?.durable();
    return this.bySeq(seq);
  }

  async recordDerivation(d: Derivation, placeholder: PlaceholderFor, now: number): Promise<CatalogRecord> {
    const seq = this.db.transaction((): number => {
      const output = this.ensure(d.path, placeholder, now);
      const inputs = d.inputs.map((i) => ({ given: i, row: this.ensure(i.path, placeholder, now) }));
      this.dropDerivation(output.seq);
      this.db
        .prepare('INSERT INTO catalog_derivations (output, function, version, activation, parameters, recorded) VALUES (?, ?, ?, ?, ?, ?)')
        .run(output.seq, d.function, d.version, d.activation, JSON.stringify(d.parameters ?? null), now);
      const insertInput = this.db.prepare('INSERT INTO catalog_inputs (output, position, input, path, checksum) VALUES (?, ?, ?, ?, ?)');
      inputs.forEach(({ given, row }, position) => {
        const checksum = given.checksum ?? strongestChecksum(JSON.parse(row.checksums) as Checksum[]) ?? null;
        insertInput.run(output.seq, position, row.seq, given.path, checksum);
      });
      this.db.prepare(`UPDATE catalog_records SET type = 'derived', updated = ? WHERE seq = ?`).run(now, output.seq);
      return output.seq;
    })();
    await this.wal?.durable();
    return this.bySeq(seq);
  }

  async moved(from: string, to: string, now: number): Promise<number> {
    if (from === to) return 0;
    const count = this.db.transaction((): number => {
      // What the rename replaced at the destination is gone (but never the records being moved).
      this.db
        .prepare(
          `UPDATE catalog_records SET deleted = ?, updated = ?
           WHERE ${CURRENT} AND ${AT_OR_BELOW} AND NOT ${AT_OR_BELOW}`,
        )
        .run(now, now, ...atOrBelow(to), ...atOrBelow(from));
      const moving = this.db
        .prepare(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE ${CURRENT} AND ${AT_OR_BELOW}`)
        .all(...atOrBelow(from)) as RecordRow[];
      const rename = this.db.prepare('UPDATE catalog_records SET path = ?, updated = ? WHERE seq = ?');
      for (const row of moving) {
        const path = to + row.path.slice(from.length);
        rename.run(path, now, row.seq);
        this.index(row.seq, path, JSON.parse(row.metadata) as Record<string, unknown>);
      }
      return moving.length;
    })();
    if (count > 0) await this.wal?.durable();
    return count;
  }

  async removed(path: string, now: number): Promise<number> {
    const { changes } = this.db
      .prepare(`UPDATE catalog_records SET deleted = ?, updated = ? WHERE ${CURRENT} AND ${AT_OR_BELOW}`)
      .run(now, now, ...atOrBelow(path));
    if (changes > 0) await this.wal?.durable();
    return changes;
  }

  async createDataset(d: NewDataset, now: number): Promise<CatalogRecord> {
    const seq = this.db.transaction((): number => {
      const row = this.current(d.path);
      if (row) {
        throw new SluiceError('CONFLICT', row.kind === 'dataset' ? `a dataset exists at ${d.path}` : `${d.path} has a file record`);
      }
      const metadata: Record<string, unknown> = { ...d.metadata };
      const text = JSON.stringify(metadata);
      if (Buffer.byteLength(text) > d.maxBytes) {
        throw new SluiceError('PAYLOAD_TOO_LARGE', `metadata of ${d.path} would be larger than ${d.maxBytes} bytes`);
      }
      const updated = new Date(now).toISOString();
      const sources = Object.fromEntries(Object.keys(metadata).map((k) => [k, { updated, ...d.source }]));
      const { lastInsertRowid } = this.db
        .prepare(
          `INSERT INTO catalog_records (id, path, kind, type, owner, size, checksums, metadata, sources, created, updated)
           VALUES (?, ?, 'dataset', ?, ?, 0, '[]', ?, ?, ?, ?)`,
        )
        .run(newRecordId(), d.path, d.type, d.owner, text, JSON.stringify(sources), now, now);
      const seq = Number(lastInsertRowid);
      this.index(seq, d.path, metadata);
      return seq;
    })();
    await this.wal?.durable();
    return this.bySeq(seq);
  }

  async filesBelow(path: string, filter: PathFilter): Promise<DatasetFile[]> {
    if (filter.kind === 'under' && filter.prefixes.length === 0) return [];
    const where = [`kind = 'file'`, CURRENT, '(path >= ? AND path < ?)'];
    const params: unknown[] = atOrBelow(path).slice(1);
    if (filter.kind === 'under') {
      where.push('(' + filter.prefixes.map(() => AT_OR_BELOW).join(' OR ') + ')');
      for (const p of filter.prefixes) params.push(...atOrBelow(p));
    }
    const rows = this.db
      .prepare(`SELECT id, path, type, size, checksums FROM catalog_records WHERE ${where.join(' AND ')} ORDER BY path`)
      .all(...params) as { id: string; path: string; type: RecordType; size: number; checksums: string }[];
    return rows.map((r) => ({
      id: r.id as RecordId,
      path: r.path,
      type: r.type,
      size: r.size,
      checksums: JSON.parse(r.checksums) as Checksum[],
    }));
  }

  async removeDataset(path: string, now: number): Promise<boolean> {
    const { changes } = this.db
      .prepare(`UPDATE catalog_records SET deleted = ?, updated = ? WHERE ${CURRENT} AND kind = 'dataset' AND path = ?`)
      .run(now, now, path);
    if (changes > 0) await this.wal?.durable();
    return changes > 0;
  }

  async search(query: CatalogQuery, filter: PathFilter, page: { limit: number; offset: number }): Promise<CatalogRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.deleted === 'exclude') where.push('r.deleted IS NULL');
    if (query.deleted === 'only') where.push('r.deleted IS NOT NULL');
    if (filter.kind === 'under') {
      if (filter.prefixes.length === 0) return [];
      where.push('(' + filter.prefixes.map(() => AT_OR_BELOW.replace(/path/g, 'r.path')).join(' OR ') + ')');
      for (const p of filter.prefixes) params.push(...atOrBelow(p));
    }
    for (const term of query.terms) {
      const c = compileTerm(term);
      where.push(term.negate ? `NOT (${c.sql})` : `(${c.sql})`);
      params.push(...c.params);
    }
    const sql =
      `SELECT ${RECORD_COLUMNS.replace(/(\w+)/g, 'r.$1')} FROM catalog_records r` +
      (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
      ' ORDER BY r.created DESC, r.seq DESC LIMIT ? OFFSET ?';
    const rows = this.db.prepare(sql).all(...params, page.limit, page.offset) as RecordRow[];
    return this.toRecords(rows);
  }

  async edges(ids: readonly RecordId[], direction: 'up' | 'down'): Promise<EdgeRow[]> {
    if (ids.length === 0) return [];
    const side = direction === 'up' ? 'ro' : 'ri';
    const rows = this.db
      .prepare(
        `SELECT ri.id AS "from", ro.id AS "to", d.function, d.version, d.activation, i.path AS inputPath, i.checksum AS inputChecksum
         FROM catalog_derivations d
         JOIN catalog_records ro ON ro.seq = d.output
         JOIN catalog_inputs i ON i.output = d.output
         JOIN catalog_records ri ON ri.seq = i.input
         WHERE ${side}.id IN (SELECT value FROM json_each(?))
         ORDER BY ro.seq, i.position`,
      )
      .all(JSON.stringify(ids)) as (Omit<EdgeRow, 'inputChecksum'> & { inputChecksum: string | null })[];
    return rows.map(({ inputChecksum, ...e }) => ({ ...e, ...(inputChecksum !== null ? { inputChecksum } : {}) }));
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private current(path: string): RecordRow | undefined {
    return this.db.prepare(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE path = ? AND ${CURRENT}`).get(path) as
      RecordRow | undefined;
  }

  /** The current record at path, else one made from the placeholder (or the last deleted one, for a file that is gone). */
  private ensure(path: string, placeholder: PlaceholderFor, now: number): RecordRow {
    const row = this.current(path);
    if (row) return row;
    const p: Placeholder = placeholder(path);
    if (p.gone) {
      const last = this.db
        .prepare(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE path = ? ORDER BY deleted DESC, seq DESC LIMIT 1`)
        .get(path) as RecordRow | undefined;
      if (last) return last;
    }
    const seq = this.insert(p, now, p.gone ? now : null);
    return this.db.prepare(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE seq = ?`).get(seq) as RecordRow;
  }

  private insert(f: NewFile, now: number, deleted: number | null): number {
    const { lastInsertRowid } = this.db
      .prepare(
        `INSERT INTO catalog_records (id, path, type, owner, size, checksums, created, updated, deleted)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(newRecordId(), f.path, f.type, f.owner, f.size, JSON.stringify(f.checksums), f.created ?? now, now, deleted);
    const seq = Number(lastInsertRowid);
    this.index(seq, f.path, {});
    return seq;
  }

  private dropDerivation(seq: number): void {
    this.db.prepare('DELETE FROM catalog_inputs WHERE output = ?').run(seq);
    this.db.prepare('DELETE FROM catalog_derivations WHERE output = ?').run(seq);
  }

  /** Rebuilds the flattened values and the full-text row of one record. */
  private index(seq: number, path: string, metadata: Record<string, unknown>): void {
    const values = flattenMetadata(metadata);
    this.db.prepare('DELETE FROM catalog_values WHERE record = ?').run(seq);
    const insert = this.db.prepare('INSERT INTO catalog_values (record, path, leaf, kind, num, text) VALUES (?, ?, ?, ?, ?, ?)');
    for (const v of values) insert.run(seq, v.path, v.leaf, v.kind, v.num ?? null, v.text);
    this.db.prepare('DELETE FROM catalog_fts WHERE rowid = ?').run(seq);
    this.db.prepare('INSERT INTO catalog_fts (rowid, path, body) VALUES (?, ?, ?)').run(seq, path, fullText(values));
  }

  private bySeq(seq: number): CatalogRecord {
    const row = this.db.prepare(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE seq = ?`).get(seq) as RecordRow;
    return this.toRecords([row])[0]!;
  }

  /** Rows to records, with the derivations of those that have one (two queries for any number of rows). */
  private toRecords(rows: readonly RecordRow[]): CatalogRecord[] {
    if (rows.length === 0) return [];
    const seqs = JSON.stringify(rows.map((r) => r.seq));
    const derivations = new Map<number, DerivationRow>();
    for (const d of this.db
      .prepare(
        'SELECT output, function, version, activation, parameters, recorded FROM catalog_derivations WHERE output IN (SELECT value FROM json_each(?))',
      )
      .all(seqs) as DerivationRow[]) {
      derivations.set(d.output, d);
    }
    const inputs = new Map<number, InputRow[]>();
    if (derivations.size > 0) {
      for (const i of this.db
        .prepare(
          `SELECT i.output, r.id, i.path, i.checksum FROM catalog_inputs i JOIN catalog_records r ON r.seq = i.input
           WHERE i.output IN (SELECT value FROM json_each(?)) ORDER BY i.output, i.position`,
        )
        .all(JSON.stringify([...derivations.keys()])) as InputRow[]) {
        inputs.set(i.output, [...(inputs.get(i.output) ?? []), i]);
      }
    }
    return rows.map((r) => toRecord(r, derivations.get(r.seq), inputs.get(r.seq) ?? []));
  }
}

function toRecord(r: RecordRow, d: DerivationRow | undefined, inputs: readonly InputRow[]): CatalogRecord {
  const record: CatalogRecord = {
    id: r.id as RecordId,
    path: r.path,
    kind: r.kind,
    type: r.type,
    owner: r.owner,
    size: r.size,
    checksums: JSON.parse(r.checksums) as Checksum[],
    created: new Date(r.created).toISOString(),
    updated: new Date(r.updated).toISOString(),
    deleted: r.deleted !== null,
    ...(r.deleted !== null ? { deletedAt: new Date(r.deleted).toISOString() } : {}),
    metadata: JSON.parse(r.metadata) as Record<string, unknown>,
    metadataSources: JSON.parse(r.sources) as Record<string, MetadataSource>,
  };
  if (d) {
    const provenance: Provenance = {
      function: d.function,
      version: d.version,
      activation: d.activation,
      parameters: JSON.parse(d.parameters) as unknown,
      recorded: new Date(d.recorded).toISOString(),
      inputs: inputs.map((i) => ({ id: i.id, path: i.path, ...(i.checksum !== null ? { checksum: i.checksum } : {}) })),
    };
    record.provenance = provenance;
  }
  return record;
}

/** Size or a checksum of a type both know differs; a record without checksums (a stub) has no content to differ from. */
function contentChanged(row: RecordRow, f: NewFile): boolean {
  const before = JSON.parse(row.checksums) as Checksum[];
  if (before.length === 0) return false;
  if (row.size !== f.size) return true;
  return f.checksums.some((c) => before.some((b) => b.type === c.type && b.value !== c.value));
}

// ---- query compilation ---------------------------------------------------------------------------

interface Sql {
  sql: string;
  params: unknown[];
}

const SQL_OP: Record<Exclude<CompareOp, '~'>, string> = { ':': '=', '>': '>', '>=': '>=', '<': '<', '<=': '<=' };

function compileTerm(term: QueryTerm): Sql {
  if (term.kind === 'text') {
    // One FTS5 string: its words are a phrase, and nothing the user typed is FTS5 syntax.
    const match = `"${term.text.replace(/"/g, '""')}"` + (term.prefix ? '*' : '');
    return { sql: 'r.seq IN (SELECT rowid FROM catalog_fts WHERE catalog_fts MATCH ?)', params: [match] };
  }
  const { field, op, value } = term;
  if (field.kind === 'record') return compileRecordField(field.name, op, value);
  const key: Sql =
    field.kind === 'metadata'
      ? { sql: 'v.path = ?', params: [field.path] }
      : {
          sql: 'v.leaf = ? AND (v.path = ? OR substr(v.path, -length(?)) = ?)',
          params: [field.leaf, field.path, '.' + field.path, '.' + field.path],
        };
  const cond = valueCondition(op, value);
  return {
    sql: `r.seq IN (SELECT v.record FROM catalog_values v WHERE ${key.sql} AND (${cond.sql}))`,
    params: [...key.params, ...cond.params],
  };
}

function compileRecordField(name: RecordField, op: CompareOp, value: QueryValue): Sql {
  switch (name) {
    case 'id':
    case 'kind':
    case 'type':
      return { sql: `r.${name} = ?`, params: [value.text] };
    case 'path':
    case 'owner':
      return textCondition(`r.${name}`, op, value.text);
    case 'size':
      return { sql: `r.size ${SQL_OP[op as Exclude<CompareOp, '~'>]} ?`, params: [value.number] };
    case 'created':
    case 'updated':
      return intervalCondition(`r.${name}`, op, value.interval!);
    case 'checksums': {
      const c = textCondition(`(c.value ->> '$.type') || ':' || (c.value ->> '$.value')`, op, value.text.toLowerCase());
      const bare = textCondition(`c.value ->> '$.value'`, op, value.text.toLowerCase());
      return {
        sql: `EXISTS (SELECT 1 FROM json_each(r.checksums) c WHERE ${c.sql} OR ${bare.sql})`,
        params: [...c.params, ...bare.params],
      };
    }
    case 'provenance.function':
    case 'provenance.version':
    case 'provenance.activation': {
      const c = textCondition(`d.${name.slice('provenance.'.length)}`, op, value.text);
      return { sql: `r.seq IN (SELECT d.output FROM catalog_derivations d WHERE ${c.sql})`, params: c.params };
    }
    case 'provenance.inputs.path': {
      const c = textCondition('i.path', op, value.text);
      return { sql: `r.seq IN (SELECT i.output FROM catalog_inputs i WHERE ${c.sql})`, params: c.params };
    }
    case 'provenance.inputs.id':
      return {
        sql: 'r.seq IN (SELECT i.output FROM catalog_inputs i JOIN catalog_records ir ON ir.seq = i.input WHERE ir.id = ?)',
        params: [value.text],
      };
  }
}

/** `:` exact, `~` contains, case-insensitive. */
function textCondition(column: string, op: CompareOp, text: string): Sql {
  return op === '~' ? { sql: `instr(${FOLD}(${column}), ?) > 0`, params: [fold(text)] } : { sql: `${column} = ?`, params: [text] };
}

/** A comparison with the interval a date names: `:` within it, `>` after it, `>=` from its start, … */
function intervalCondition(column: string, op: CompareOp, interval: { start: number; end: number }): Sql {
  switch (op) {
    case '>':
      return { sql: `${column} >= ?`, params: [interval.end] };
    case '>=':
      return { sql: `${column} >= ?`, params: [interval.start] };
    case '<':
      return { sql: `${column} < ?`, params: [interval.start] };
    case '<=':
      return { sql: `${column} < ?`, params: [interval.end] };
    default:
      return { sql: `(${column} >= ? AND ${column} < ?)`, params: [interval.start, interval.end] };
  }
}

/** A metadata value against a query value: numbers as numbers, ISO dates as instants, the rest as text. */
function valueCondition(op: CompareOp, value: QueryValue): Sql {
  const dateMs = `(unixepoch(v.text, 'subsec') * 1000)`;
  const isDate = `v.kind = 'text' AND v.text GLOB ${ISO_GLOB}`;
  const parts: Sql[] = [];
  if (op === '~') return { sql: `instr(${FOLD}(v.text), ?) > 0`, params: [fold(value.text)] };
  if (op === ':') {
    parts.push({ sql: `v.kind IN ('text', 'boolean') AND v.text = ?`, params: [value.text] });
    if (value.text === 'null') parts.push({ sql: `v.kind = 'null'`, params: [] });
  }
  if (value.number !== undefined) parts.push({ sql: `v.kind = 'number' AND v.num ${SQL_OP[op]} ?`, params: [value.number] });
  if (value.interval !== undefined) {
    const c = intervalCondition(dateMs, op, value.interval);
    parts.push({ sql: `${isDate} AND ${c.sql}`, params: c.params });
  }
  if (parts.length === 0) return { sql: '0', params: [] };
  return { sql: parts.map((p) => `(${p.sql})`).join(' OR '), params: parts.flatMap((p) => p.params) };
}
