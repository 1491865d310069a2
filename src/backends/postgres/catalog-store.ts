// The catalogue store on PostgreSQL (tables in catalog-tables.ts), for several stateless nodes sharing
// one database. Each write is one transaction that locks the record it changes (SELECT … FOR UPDATE),
// so concurrent annotations merge instead of losing each other, and creating the current record of a
// path is INSERT … ON CONFLICT DO NOTHING against the one-current-record-per-path index, so two nodes
// seeing a new file at once end up with one record. A record and its provenance are read in one
// statement. Commits are durable when they return; no WalSync is needed.
//
// Search compiles the parsed query to one SELECT with every user value bound as a parameter, as the
// SQLite adapter does: record fields are columns, metadata fields are one subquery over
// catalog_values, checksums are JSONB containment (`:`) or a scan of the array (`~`), and a bare word
// or phrase is a tsquery built here from the same tokens the tsvector columns were built from (no
// user text is ever parsed as tsquery syntax). The caller's readable prefixes become index-friendly
// range conditions on the path.
import type { QueryResult, QueryResultRow } from 'pg';
import { inTransaction, translatePgError, type PgClient, type PgPool } from './database.js';
import { SluiceError } from '../../errors.js';
import type {
  Annotation,
  CatalogStore,
  Derivation,
  EdgeRow,
  NewDataset,
  NewFile,
  PathFilter,
  PlaceholderFor,
} from '../../catalog/catalog-store.js';
import { type CatalogQuery, type CompareOp, type QueryTerm, type QueryValue, type RecordField } from '../../catalog/query.js';
import { flattenMetadata, fullText, mergePatch, type MetadataValue } from '../../catalog/metadata.js';
import {
  newRecordId,
  strongestChecksum,
  type CatalogRecord,
  type Checksum,
  type DatasetFile,
  type MetadataSource,
  type Provenance,
  type RecordId,
  type RecordKind,
  type RecordType,
} from '../../catalog/types.js';

interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

/** Statements on the pool, a database that cannot be reached failing as UNAVAILABLE. */
function translated(pool: PgPool): Queryable {
  return {
    query: <R extends QueryResultRow>(text: string, values?: unknown[]) =>
      pool.query<R>(text, values).catch((e: unknown) => {
        throw translatePgError(e);
      }),
  };
}

interface RecordRow {
  seq: number;
  id: string;
  path: string;
  kind: RecordKind;
  type: RecordType;
  owner: string;
  size: number;
  checksums: Checksum[];
  metadata: Record<string, unknown>;
  sources: Record<string, MetadataSource>;
  created: number;
  updated: number;
  deleted: number | null;
}

interface ProvenanceRow {
  function: string;
  version: string;
  activation: string;
  parameters: unknown;
  recorded: number;
  inputs: { id: string; path: string; checksum: string | null }[];
}

const RECORD_COLUMNS = 'seq, id, path, kind, type, owner, size, checksums, metadata, sources, created, updated, deleted';
const r = (columns: string): string => columns.replace(/(\w+)/g, 'r.$1');

/** A record's columns and its provenance (null without a derivation), from `r`. */
const SELECT_RECORD = `SELECT ${r(RECORD_COLUMNS)},
  (SELECT json_build_object(
      'function', d.function, 'version', d.version, 'activation', d.activation, 'parameters', d.parameters,
      'recorded', d.recorded,
      'inputs', (SELECT coalesce(json_agg(json_build_object('id', ir.id, 'path', i.path, 'checksum', i.checksum) ORDER BY i.position), '[]')
                 FROM catalog_inputs i JOIN catalog_records ir ON ir.seq = i.input WHERE i.output = d.output))
   FROM catalog_derivations d WHERE d.output = r.seq) AS provenance`;

const CURRENT = 'deleted IS NULL';

/** Binds query parameters in order: `$1`, `$2`, … */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** Rows of `column` at `path` or below it ('0' follows '/' in byte order; paths compare byte-wise). */
function atOrBelow(column: string, path: string, p: Params): string {
  const [exact, low, high] = path === '/' ? ['/', '/', '0'] : [path, path + '/', path + '0'];
  return `(${column} = ${p.add(exact)} OR (${column} >= ${p.add(low)} AND ${column} < ${p.add(high)}))`;
}

export class PgCatalogStore implements CatalogStore {
  private readonly db: Queryable;

  constructor(private readonly pool: PgPool) {
    this.db = translated(pool);
  }

  /** One transaction (see inTransaction), a database that cannot be reached failing as UNAVAILABLE. */
  private transaction<T>(fn: (c: PgClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn).catch((e: unknown) => {
      throw translatePgError(e);
    });
  }

  async get(id: RecordId): Promise<CatalogRecord | undefined> {
    return (await records(this.db, 'WHERE r.id = $1', [id]))[0];
  }

  async getMany(ids: readonly RecordId[]): Promise<CatalogRecord[]> {
    if (ids.length === 0) return [];
    return records(this.db, 'WHERE r.id = ANY($1::text[])', [ids]);
  }

  async atPath(path: string): Promise<CatalogRecord | undefined> {
    const where = 'WHERE r.path = $1 ORDER BY r.deleted IS NOT NULL, r.deleted DESC, r.seq DESC LIMIT 1';
    return (await records(this.db, where, [path]))[0];
  }

  async upsertFile(f: NewFile, now: number): Promise<CatalogRecord> {
    return this.transaction(async (c) => {
      for (;;) {
        const row = await current(c, f.path);
        if (!row) {
          const seq = await insert(c, f, now, null);
          if (seq === undefined) continue; // another node created it just now: update that one
          return bySeq(c, seq);
        }
        const hasDerivation = ((await c.query('SELECT 1 FROM catalog_derivations WHERE output = $1', [row.seq])).rowCount ?? 0) > 0;
        const stale = hasDerivation && f.type === 'raw' && contentChanged(row, f);
        if (stale) await dropDerivation(c, row.seq);
        const type: RecordType = hasDerivation && !stale ? 'derived' : f.type;
        await c.query(
          'UPDATE catalog_records SET type = $1, owner = $2, size = $3, checksums = $4, created = $5, updated = $6 WHERE seq = $7',
          [type, f.owner, f.size, JSON.stringify(f.checksums), Math.min(f.created ?? row.created, row.created), now, row.seq],
        );
        return bySeq(c, row.seq);
      }
    });
  }

  async annotate(a: Annotation, placeholder: PlaceholderFor | undefined, now: number): Promise<CatalogRecord> {
    return this.transaction(async (c) => {
      let row = await current(c, a.path);
      if (!row) {
        if (!placeholder) throw new SluiceError('NOT_FOUND', `no catalogue record for ${a.path}`);
        row = await ensure(c, a.path, placeholder, now, true);
      }
      const metadata = { ...row.metadata };
      metadata[a.key] = a.replace ? a.metadata : mergePatch(metadata[a.key], a.metadata);
      const text = JSON.stringify(metadata);
      if (Buffer.byteLength(text) > a.maxBytes) {
        throw new SluiceError('PAYLOAD_TOO_LARGE', `metadata of ${a.path} would be larger than ${a.maxBytes} bytes`);
      }
      const sources = { ...row.sources, [a.key]: { updated: new Date(now).toISOString(), ...a.source } };
      await c.query('UPDATE catalog_records SET metadata = $1, sources = $2, updated = $3 WHERE seq = $4', [
        text,
        JSON.stringify(sources),
        now,
        row.seq,
      ]);
      await index(c, row.seq, metadata);
      return bySeq(c, row.seq);
    });
  }

  async recordDerivation(d: Derivation, placeholder: PlaceholderFor, now: number): Promise<CatalogRecord> {
    return this.transaction(async (c) => {
      const output = await ensure(c, d.path, placeholder, now, true);
      const inputs: { given: Derivation['inputs'][number]; row: RecordRow }[] = [];
      for (const given of d.inputs) inputs.push({ given, row: await ensure(c, given.path, placeholder, now, false) });
      await dropDerivation(c, output.seq);
      await c.query(
        'INSERT INTO catalog_derivations (output, function, version, activation, parameters, recorded) VALUES ($1, $2, $3, $4, $5, $6)',
        [output.seq, d.function, d.version, d.activation, JSON.stringify(d.parameters ?? null), now],
      );
      if (inputs.length > 0) {
        await c.query(
          `INSERT INTO catalog_inputs (output, position, input, path, checksum)
           SELECT $1, u.position, u.input, u.path, u.checksum
           FROM unnest($2::int[], $3::bigint[], $4::text[], $5::text[]) AS u (position, input, path, checksum)`,
          [
            output.seq,
            inputs.map((_, position) => position),
            inputs.map((i) => i.row.seq),
            inputs.map((i) => i.given.path),
            inputs.map((i) => i.given.checksum ?? strongestChecksum(i.row.checksums) ?? null),
          ],
        );
      }
      await c.query(`UPDATE catalog_records SET type = 'derived', updated = $1 WHERE seq = $2`, [now, output.seq]);
      return bySeq(c, output.seq);
    });
  }

  async moved(from: string, to: string, now: number): Promise<number> {
    if (from === to) return 0;
    return this.transaction(async (c) => {
      // What the rename replaced at the destination is gone (but never the records being moved).
      const replaced = new Params();
      const nowParam = replaced.add(now);
      await c.query(
        `UPDATE catalog_records SET deleted = ${nowParam}, updated = ${nowParam}
         WHERE ${CURRENT} AND ${atOrBelow('path', to, replaced)} AND NOT ${atOrBelow('path', from, replaced)}`,
        replaced.values,
      );
      const moving = new Params();
      const { rows } = await c.query<{ seq: number; path: string }>(
        `SELECT seq, path FROM catalog_records WHERE ${CURRENT} AND ${atOrBelow('path', from, moving)} ORDER BY seq FOR UPDATE`,
        moving.values,
      );
      if (rows.length === 0) return 0;
      const paths = rows.map((row) => to + row.path.slice(from.length));
      await c.query(
        `UPDATE catalog_records r SET path = u.path, path_fts = u.fts::tsvector, updated = $1
         FROM unnest($2::bigint[], $3::text[], $4::text[]) AS u (seq, path, fts) WHERE r.seq = u.seq`,
        [now, rows.map((row) => row.seq), paths, paths.map((p) => tsvector(ftsTokens(p)))],
      );
      return rows.length;
    });
  }

  async removed(path: string, now: number): Promise<number> {
    const p = new Params();
    const at = p.add(now);
    const { rowCount } = await this.db.query(
      `UPDATE catalog_records SET deleted = ${at}, updated = ${at} WHERE ${CURRENT} AND ${atOrBelow('path', path, p)}`,
      p.values,
    );
    return rowCount ?? 0;
  }

  async createDataset(d: NewDataset, now: number): Promise<CatalogRecord> {
    return this.transaction(async (c) => {
      const metadata: Record<string, unknown> = { ...d.metadata };
      const text = JSON.stringify(metadata);
      for (;;) {
        const row = await current(c, d.path);
        if (row) {
          throw new SluiceError('CONFLICT', row.kind === 'dataset' ? `a dataset exists at ${d.path}` : `${d.path} has a file record`);
        }
        if (Buffer.byteLength(text) > d.maxBytes) {
          throw new SluiceError('PAYLOAD_TOO_LARGE', `metadata of ${d.path} would be larger than ${d.maxBytes} bytes`);
        }
        const updated = new Date(now).toISOString();
        const sources = Object.fromEntries(Object.keys(metadata).map((k) => [k, { updated, ...d.source }]));
        const { rows } = await c.query<{ seq: number }>(
          `INSERT INTO catalog_records (id, path, kind, type, owner, size, checksums, metadata, sources, created, updated, path_fts)
           VALUES ($1, $2, 'dataset', $3, $4, 0, '[]', $5, $6, $7, $7, $8::tsvector)
           ON CONFLICT (path) WHERE deleted IS NULL DO NOTHING RETURNING seq`,
          [newRecordId(), d.path, d.type, d.owner, text, JSON.stringify(sources), now, tsvector(ftsTokens(d.path))],
        );
        if (!rows[0]) continue; // another node created a record there just now: refused above
        await index(c, rows[0].seq, metadata);
        return bySeq(c, rows[0].seq);
      }
    });
  }

  async filesBelow(path: string, filter: PathFilter): Promise<DatasetFile[]> {
    if (filter.kind === 'under' && filter.prefixes.length === 0) return [];
    const p = new Params();
    const [low, high] = path === '/' ? ['/', '0'] : [path + '/', path + '0'];
    const where = [`kind = 'file'`, CURRENT, `(path >= ${p.add(low)} AND path < ${p.add(high)})`];
    if (filter.kind === 'under') where.push('(' + filter.prefixes.map((prefix) => atOrBelow('path', prefix, p)).join(' OR ') + ')');
    const { rows } = await this.db.query<{ id: string; path: string; type: RecordType; size: number; checksums: Checksum[] }>(
      `SELECT id, path, type, size, checksums FROM catalog_records WHERE ${where.join(' AND ')} ORDER BY path`,
      p.values,
    );
    return rows.map((row) => ({ id: row.id as RecordId, path: row.path, type: row.type, size: row.size, checksums: row.checksums }));
  }

  async removeDataset(path: string, now: number): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE catalog_records SET deleted = $1, updated = $1 WHERE ${CURRENT} AND kind = 'dataset' AND path = $2`,
      [now, path],
    );
    return (rowCount ?? 0) > 0;
  }

  async search(query: CatalogQuery, filter: PathFilter, page: { limit: number; offset: number }): Promise<CatalogRecord[]> {
    const where: string[] = [];
    const p = new Params();
    if (query.deleted === 'exclude') where.push('r.deleted IS NULL');
    if (query.deleted === 'only') where.push('r.deleted IS NOT NULL');
    if (filter.kind === 'under') {
      if (filter.prefixes.length === 0) return [];
      where.push('(' + filter.prefixes.map((prefix) => atOrBelow('r.path', prefix, p)).join(' OR ') + ')');
    }
    for (const term of query.terms) {
      const sql = compileTerm(term, p);
      where.push(term.negate ? `NOT (${sql})` : `(${sql})`);
    }
    // The page is chosen first; provenance is gathered for its records only.
    const pageSql =
      `SELECT ${RECORD_COLUMNS} FROM catalog_records r` +
      (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
      ` ORDER BY r.created DESC, r.seq DESC LIMIT ${p.add(page.limit)} OFFSET ${p.add(page.offset)}`;
    const { rows } = await this.db.query<RecordRow & { provenance: ProvenanceRow | null }>(
      `${SELECT_RECORD} FROM (${pageSql}) r ORDER BY r.created DESC, r.seq DESC`,
      p.values,
    );
    return rows.map(toRecord);
  }

  async edges(ids: readonly RecordId[], direction: 'up' | 'down'): Promise<EdgeRow[]> {
    if (ids.length === 0) return [];
    const side = direction === 'up' ? 'ro' : 'ri';
    const { rows } = await this.db.query<Omit<EdgeRow, 'inputChecksum'> & { inputChecksum: string | null }>(
      `SELECT ri.id AS "from", ro.id AS "to", d.function, d.version, d.activation, i.path AS "inputPath", i.checksum AS "inputChecksum"
       FROM catalog_derivations d
       JOIN catalog_records ro ON ro.seq = d.output
       JOIN catalog_inputs i ON i.output = d.output
       JOIN catalog_records ri ON ri.seq = i.input
       WHERE ${side}.id = ANY($1::text[])
       ORDER BY ro.seq, i.position`,
      [ids],
    );
    return rows.map(({ inputChecksum, ...e }) => ({
      ...e,
      from: e.from as RecordId,
      to: e.to as RecordId,
      ...(inputChecksum !== null ? { inputChecksum } : {}),
    }));
  }
}

// ---- reading and writing records -------------------------------------------------------------------

async function records(q: Queryable, where: string, params: unknown[]): Promise<CatalogRecord[]> {
  const { rows } = await q.query<RecordRow & { provenance: ProvenanceRow | null }>(
    `${SELECT_RECORD} FROM catalog_records r ${where}`,
    params,
  );
  return rows.map(toRecord);
}

async function bySeq(q: Queryable, seq: number): Promise<CatalogRecord> {
  return (await records(q, 'WHERE r.seq = $1', [seq]))[0]!;
}

/** The current record at path, locked for the rest of the transaction. */
async function current(c: PgClient, path: string): Promise<RecordRow | undefined> {
  const { rows } = await c.query<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE path = $1 AND ${CURRENT} FOR UPDATE`, [
    path,
  ]);
  return rows[0];
}

/**
 * The current record at path, else one made from the placeholder (or the last deleted one, for a
 * file that is gone). `lock`: the record is locked for the rest of the transaction (inputs are only
 * read, and locking them too would make derivations sharing inputs deadlock).
 */
async function ensure(c: PgClient, path: string, placeholder: PlaceholderFor, now: number, lock: boolean): Promise<RecordRow> {
  const forUpdate = lock ? 'FOR UPDATE' : '';
  for (;;) {
    const { rows } = await c.query<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE path = $1 AND ${CURRENT} ${forUpdate}`, [
      path,
    ]);
    if (rows[0]) return rows[0];
    const p = placeholder(path);
    if (p.gone) {
      const { rows: last } = await c.query<RecordRow>(
        `SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE path = $1 ORDER BY deleted DESC NULLS LAST, seq DESC LIMIT 1 ${forUpdate}`,
        [path],
      );
      if (last[0]) return last[0];
    }
    const seq = await insert(c, p, now, p.gone ? now : null);
    if (seq === undefined) continue; // another node created the current record just now: use it
    const { rows: made } = await c.query<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM catalog_records WHERE seq = $1`, [seq]);
    return made[0]!;
  }
}

/** Inserts a record without metadata; undefined when a current record at its path exists already. */
async function insert(c: PgClient, f: NewFile, now: number, deleted: number | null): Promise<number | undefined> {
  const { rows } = await c.query<{ seq: number }>(
    `INSERT INTO catalog_records (id, path, type, owner, size, checksums, created, updated, deleted, path_fts)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::tsvector)
     ON CONFLICT (path) WHERE ${CURRENT} DO NOTHING RETURNING seq`,
    [
      newRecordId(),
      f.path,
      f.type,
      f.owner,
      f.size,
      JSON.stringify(f.checksums),
      f.created ?? now,
      now,
      deleted,
      tsvector(ftsTokens(f.path)),
    ],
  );
  return rows[0]?.seq;
}

async function dropDerivation(c: PgClient, seq: number): Promise<void> {
  await c.query('DELETE FROM catalog_inputs WHERE output = $1', [seq]);
  await c.query('DELETE FROM catalog_derivations WHERE output = $1', [seq]);
}

/** Rebuilds the flattened values and the metadata full text of one record. */
async function index(c: PgClient, seq: number, metadata: Record<string, unknown>): Promise<void> {
  const values = flattenMetadata(metadata);
  await c.query('DELETE FROM catalog_values WHERE record = $1', [seq]);
  if (values.length > 0) {
    await c.query(
      `INSERT INTO catalog_values (record, path, leaf, kind, num, text, instant)
       SELECT $1, u.path, u.leaf, u.kind, u.num, u.text, u.instant
       FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::bigint[]) AS u (path, leaf, kind, num, text, instant)`,
      [
        seq,
        values.map((v) => storable(v.path)),
        values.map((v) => storable(v.leaf)),
        values.map((v) => v.kind),
        values.map((v) => v.num ?? null),
        values.map((v) => storable(v.text)),
        values.map(instantOf),
      ],
    );
  }
  await c.query('UPDATE catalog_records SET body_fts = $1::tsvector WHERE seq = $2', [tsvector(ftsTokens(fullText(values))), seq]);
}

function toRecord(row: RecordRow & { provenance: ProvenanceRow | null }): CatalogRecord {
  const record: CatalogRecord = {
    id: row.id as RecordId,
    path: row.path,
    kind: row.kind,
    type: row.type,
    owner: row.owner,
    size: row.size,
    checksums: row.checksums,
    created: new Date(row.created).toISOString(),
    updated: new Date(row.updated).toISOString(),
    deleted: row.deleted !== null,
    ...(row.deleted !== null ? { deletedAt: new Date(row.deleted).toISOString() } : {}),
    metadata: row.metadata,
    metadataSources: row.sources,
  };
  const d = row.provenance;
  if (d) {
    const provenance: Provenance = {
      function: d.function,
      version: d.version,
      activation: d.activation,
      parameters: d.parameters,
      recorded: new Date(d.recorded).toISOString(),
      inputs: d.inputs.map((i) => ({ id: i.id, path: i.path, ...(i.checksum !== null ? { checksum: i.checksum } : {}) })),
    };
    record.provenance = provenance;
  }
  return record;
}

/** Size or a checksum of a type both know differs; a record without checksums (a stub) has no content to differ from. */
function contentChanged(row: RecordRow, f: NewFile): boolean {
  const before = row.checksums;
  if (before.length === 0) return false;
  if (row.size !== f.size) return true;
  return f.checksums.some((c) => before.some((b) => b.type === c.type && b.value !== c.value));
}

/** PostgreSQL text cannot hold NUL: the index and the search drop it (the metadata itself keeps it, as JSON). */
const storable = (s: string): string => s.replace(/\0/g, '');

/**
 * The instant (ms since the epoch) of metadata text that reads as an ISO date or time, as the SQLite
 * adapter's `unixepoch(text, 'subsec')` reads it: a full date, then optionally a time (seconds and
 * any number of fractional digits optional, 24:00 allowed) and a zone (Z or ±HH:MM); day overflow
 * rolls over (2024-02-30 is 2024-03-01); ASCII blanks around the parts are allowed; milliseconds
 * rounded.
 */
const SQLITE_DATE_RE =
  /^(\d{4})-(\d{2})-(\d{2})[ \t\n\v\f\rT]*(?:(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?[ \t\n\v\f\r]*(?:([Zz])|([+-])(\d{2}):(\d{2}))?)?[ \t\n\v\f\r]*$/;

const instantOf = (v: MetadataValue): number | null => (v.kind === 'text' ? isoInstant(v.text) : null);

export function isoInstant(text: string): number | null {
  const m = SQLITE_DATE_RE.exec(text);
  if (!m) return null;
  const n = (group: number): number => Number(m[group] ?? 0);
  const [year, month, day, hour, minute, second, tzHour, tzMinute] = [n(1), n(2), n(3), n(4), n(5), n(6), n(10), n(11)];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || minute > 59 || second > 59 || tzHour > 14 || tzMinute > 59) {
    return null;
  }
  // Date.UTC reads years below 100 as 19xx; the Gregorian calendar repeats every 400 years.
  const cycles = year < 100 ? 1 : 0;
  const start = Date.UTC(year + 400 * cycles, month - 1, day, hour, minute) - cycles * GREGORIAN_CYCLE_MS;
  let fraction = 0;
  if (m[7] !== undefined) {
    // SQLite's arithmetic: digits as a double, capped below the next second, then rounded to ms.
    let scale = 1;
    for (const digit of m[7]) {
      fraction = fraction * 10 + Number(digit);
      scale *= 10;
    }
    fraction = Math.min(fraction / scale, 0.999);
  }
  const offset = m[9] === undefined ? 0 : (m[9] === '-' ? -1 : 1) * (tzHour * 60 + tzMinute) * 60_000;
  const instant = start + Math.trunc((second + fraction) * 1000 + 0.5) - offset;
  return instant < END_OF_9999 ? instant : null;
}

/** 400 years: 146097 days. */
const GREGORIAN_CYCLE_MS = 146_097 * 86_400_000;
/** SQLite's dates end with the year 9999. */
const END_OF_9999 = Date.UTC(10_000, 0, 1);

// ---- full text -------------------------------------------------------------------------------------
//
// Tokens as SQLite's FTS5 unicode61 tokenizer (remove_diacritics 2) makes them: runs of letters,
// digits and private-use characters, case-folded, without diacritics. PostgreSQL's own parser would
// keep `/b/scan_0001.nxs` or `12.4` as one token and depends on the server's locale, so the tsvector
// and the tsquery are both written here, from the same tokens.

const TOKEN_RE = /[\p{L}\p{N}\p{Co}]+/gu;
/** PostgreSQL's limits: a lexeme below 2 KiB, positions up to 16383 (larger are clamped), a tsvector below 1 MiB. */
const MAX_LEXEME_BYTES = 2046;
const MAX_POSITIONS = 256;
const TSVECTOR_BUDGET = 1_000_000;

export function ftsTokens(text: string): string[] {
  return (
    text
      .toLowerCase()
      .normalize('NFD')
      .replace(/\p{M}+/gu, '')
      .normalize('NFC')
      .match(TOKEN_RE) ?? []
  );
}

const lexeme = (token: string): string => `'${token.replace(/['\\]/g, '\\$&')}'`;

/**
 * A tsvector literal of tokens at positions 1, 2, …. Words too long for a lexeme are left out (as
 * to_tsvector does); past the size limit, later words are left out rather than the write refused.
 */
export function tsvector(tokens: readonly string[]): string {
  const positions = new Map<string, number[]>();
  let bytes = 0;
  tokens.forEach((token, i) => {
    const size = Buffer.byteLength(token);
    if (size > MAX_LEXEME_BYTES) return;
    const list = positions.get(token);
    if (list && list.length >= MAX_POSITIONS) return;
    const cost = 2 + (list ? 0 : size + 8);
    if (bytes + cost > TSVECTOR_BUDGET) return;
    bytes += cost;
    if (list) list.push(i + 1);
    else positions.set(token, [i + 1]);
  });
  return [...positions].map(([token, at]) => `${lexeme(token)}:${at.join(',')}`).join(' ');
}

/** The tsquery of a text term: its words as one phrase, the last a prefix when asked; undefined when it can match nothing. */
function tsquery(text: string, prefix: boolean): string | undefined {
  const tokens = ftsTokens(text);
  if (tokens.length === 0 || tokens.some((t) => Buffer.byteLength(t) > MAX_LEXEME_BYTES)) return undefined;
  return tokens.map(lexeme).join(' <-> ') + (prefix ? ':*' : '');
}

// ---- query compilation -----------------------------------------------------------------------------

/** Case folding for `~`: catalog_fold in SQL (Unicode lower case), toLowerCase here. */
const fold = (s: string): string => s.toLowerCase();

const SQL_OP: Record<Exclude<CompareOp, '~'>, string> = { ':': '=', '>': '>', '>=': '>=', '<': '<', '<=': '<=' };

function compileTerm(term: QueryTerm, p: Params): string {
  if (term.kind === 'text') {
    const q = tsquery(term.text, term.prefix);
    if (q === undefined) return 'FALSE';
    const param = p.add(q);
    return `r.path_fts @@ ${param}::tsquery OR r.body_fts @@ ${param}::tsquery`;
  }
  const { field, op, value } = term;
  if (field.kind === 'record') return compileRecordField(field.name, op, value, p);
  let key: string;
  if (field.kind === 'metadata') key = `v.path = ${p.add(storable(field.path))}`;
  else {
    const suffix = p.add(storable('.' + field.path));
    key = `v.leaf = ${p.add(storable(field.leaf))} AND (v.path = ${p.add(storable(field.path))} OR right(v.path, char_length(${suffix}::text)) = ${suffix})`;
  }
  return `r.seq IN (SELECT v.record FROM catalog_values v WHERE ${key} AND (${valueCondition(op, value, p)}))`;
}

function compileRecordField(name: RecordField, op: CompareOp, value: QueryValue, p: Params): string {
  switch (name) {
    case 'id':
    case 'kind':
    case 'type':
      return `r.${name} = ${p.add(storable(value.text))}`;
    case 'path':
    case 'owner':
      return textCondition(`r.${name}`, op, value.text, p);
    case 'size':
      return `r.size ${SQL_OP[op as Exclude<CompareOp, '~'>]} ${p.add(value.number)}::float8`;
    case 'created':
    case 'updated':
      return intervalCondition(`r.${name}`, op, value.interval!, p);
    case 'checksums': {
      const text = storable(value.text.toLowerCase());
      if (op === '~') {
        return `EXISTS (SELECT 1 FROM jsonb_array_elements(r.checksums) c WHERE strpos(catalog_fold((c ->> 'type') || ':' || (c ->> 'value')), ${p.add(fold(text))}) > 0)`;
      }
      // TYPE:VALUE or a bare value, both by containment (GIN).
      const forms: Partial<Checksum>[][] = [[{ value: text }]];
      const colon = text.indexOf(':');
      if (colon >= 0) forms.push([{ type: text.slice(0, colon), value: text.slice(colon + 1) }]);
      return forms.map((f) => `r.checksums @> ${p.add(JSON.stringify(f))}::jsonb`).join(' OR ');
    }
    case 'provenance.function':
    case 'provenance.version':
    case 'provenance.activation':
      return `r.seq IN (SELECT d.output FROM catalog_derivations d WHERE ${textCondition(`d.${name.slice('provenance.'.length)}`, op, value.text, p)})`;
    case 'provenance.inputs.path':
      return `r.seq IN (SELECT i.output FROM catalog_inputs i WHERE ${textCondition('i.path', op, value.text, p)})`;
    case 'provenance.inputs.id':
      return `r.seq IN (SELECT i.output FROM catalog_inputs i JOIN catalog_records ir ON ir.seq = i.input WHERE ir.id = ${p.add(storable(value.text))})`;
  }
}

/** `:` exact, `~` contains, case-insensitive (strpos: no LIKE metacharacters to escape). */
function textCondition(column: string, op: CompareOp, text: string, p: Params): string {
  return op === '~' ? `strpos(catalog_fold(${column}), ${p.add(fold(storable(text)))}) > 0` : `${column} = ${p.add(storable(text))}`;
}

/** A comparison with the interval a date names: `:` within it, `>` after it, `>=` from its start, … */
function intervalCondition(column: string, op: CompareOp, interval: { start: number; end: number }, p: Params): string {
  switch (op) {
    case '>':
      return `${column} >= ${p.add(interval.end)}::bigint`;
    case '>=':
      return `${column} >= ${p.add(interval.start)}::bigint`;
    case '<':
      return `${column} < ${p.add(interval.start)}::bigint`;
    case '<=':
      return `${column} < ${p.add(interval.end)}::bigint`;
    default:
      return `(${column} >= ${p.add(interval.start)}::bigint AND ${column} < ${p.add(interval.end)}::bigint)`;
  }
}

/** A metadata value against a query value: numbers as numbers, ISO dates as instants, the rest as text. */
function valueCondition(op: CompareOp, value: QueryValue, p: Params): string {
  if (op === '~') return `strpos(catalog_fold(v.text), ${p.add(fold(storable(value.text)))}) > 0`;
  const parts: string[] = [];
  if (op === ':') {
    parts.push(`v.kind IN ('text', 'boolean') AND v.text = ${p.add(storable(value.text))}`);
    if (value.text === 'null') parts.push(`v.kind = 'null'`);
  }
  if (value.number !== undefined) parts.push(`v.kind = 'number' AND v.num ${SQL_OP[op]} ${p.add(value.number)}::float8`);
  if (value.interval !== undefined) parts.push(`v.instant IS NOT NULL AND ${intervalCondition('v.instant', op, value.interval, p)}`);
  if (parts.length === 0) return 'FALSE';
  return parts.map((part) => `(${part})`).join(' OR ');
}
