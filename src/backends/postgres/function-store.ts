// The function store on PostgreSQL (tables in function-tables.ts), for several stateless nodes sharing
// one database. Every change is one transaction that first locks the function's row, so deploys,
// alias moves and removals of one function never interleave: seq numbers stay dense and unique, and
// a version is never removed while an alias is being pointed at it. Reads are single statements (one
// snapshot each). Commits are durable when they return; no WalSync is needed.
import type { QueryResult, QueryResultRow } from 'pg';
import { inTransaction, translatePgError, type PgClient, type PgPool } from './database.js';
import { SluiceError } from '../../errors.js';
import { LATEST, type FunctionStore, type FunctionSummary, type NewVersion } from '../../functions/function-store.js';
import type { FunctionVersion, Manifest, VersionId } from '../../functions/types.js';

interface VersionRow {
  name: string;
  digest: string;
  seq: number;
  manifest: Manifest;
  size: number;
  created: number;
  created_by: string;
  /** Aliases pointing at the version, by name. */
  aliases: string[];
}

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

/** A version row with its aliases, in one statement; `v` is function_versions. */
const SELECT_VERSION = `SELECT v.name, v.digest, v.seq, v.manifest, v.size, v.created, v.created_by,
  ARRAY(SELECT a.alias FROM function_aliases a WHERE a.name = v.name AND a.digest = v.digest ORDER BY a.alias) AS aliases
  FROM function_versions v`;

export class PgFunctionStore implements FunctionStore {
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

  async recordDeploy(v: NewVersion, aliases: readonly string[]): Promise<{ version: FunctionVersion; created: boolean }> {
    if (aliases.includes(LATEST)) throw latestRefused();
    const now = Date.now();
    return this.transaction(async (c) => {
      await lockOrCreate(c, v.name, now);
      const created = !(await hasVersion(c, v.name, v.version));
      if (created) {
        const { rows } = await c.query<{ seq: number }>(
          'UPDATE functions SET next_seq = next_seq + 1 WHERE name = $1 RETURNING next_seq - 1 AS seq',
          [v.name],
        );
        await c.query(
          `INSERT INTO function_versions (name, digest, seq, manifest, size, created, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [v.name, v.version, rows[0]!.seq, JSON.stringify(v.manifest), v.size, now, v.createdBy],
        );
      }
      for (const alias of [LATEST, ...aliases]) await pointAlias(c, v.name, alias, v.version, now);
      return { version: (await getVersion(c, v.name, v.version))!, created };
    });
  }

  async get(name: string, version: VersionId): Promise<FunctionVersion | undefined> {
    return getVersion(this.db, name, version);
  }

  async bySeq(name: string, seq: number): Promise<FunctionVersion | undefined> {
    const { rows } = await this.db.query<VersionRow>(`${SELECT_VERSION} WHERE v.name = $1 AND v.seq = $2`, [name, seq]);
    return rows[0] ? toVersion(rows[0]) : undefined;
  }

  async byPrefix(name: string, prefix: string, limit: number): Promise<FunctionVersion[]> {
    // Digests are lower-case hex compared byte-wise, so a range scan on the primary key finds the prefix exactly.
    const { rows } = await this.db.query<VersionRow>(
      `${SELECT_VERSION} WHERE v.name = $1 AND v.digest >= $2 AND v.digest < $3 ORDER BY v.seq DESC LIMIT $4`,
      [name, prefix, prefix + 'g', limit],
    );
    return rows.map(toVersion);
  }

  async versions(name: string): Promise<FunctionVersion[]> {
    return versionsOf(this.db, name);
  }

  async summary(name: string): Promise<FunctionSummary | undefined> {
    return (await this.summaries(name))[0];
  }

  async list(): Promise<FunctionSummary[]> {
    return this.summaries(undefined);
  }

  async setAlias(name: string, alias: string, version: VersionId): Promise<void> {
    if (alias === LATEST) throw latestRefused();
    await this.transaction(async (c) => {
      if (!(await lock(c, name)) || !(await hasVersion(c, name, version)))
        throw new SluiceError('NOT_FOUND', `function ${name} has no version ${version}`);
      await pointAlias(c, name, alias, version, Date.now());
    });
  }

  async removeAlias(name: string, alias: string): Promise<boolean> {
    if (alias === LATEST) throw latestRefused();
    const { rowCount } = await this.db.query('DELETE FROM function_aliases WHERE name = $1 AND alias = $2', [name, alias]);
    return (rowCount ?? 0) > 0;
  }

  async removeVersion(name: string, version: VersionId): Promise<{ functionRemoved: boolean }> {
    return this.transaction(async (c) => {
      const row = (await lock(c, name))
        ? (await c.query<{ seq: number }>('SELECT seq FROM function_versions WHERE name = $1 AND digest = $2', [name, version])).rows[0]
        : undefined;
      if (!row) throw new SluiceError('NOT_FOUND', `function ${name} has no version ${version}`);
      const { rows: heldRows } = await c.query<{ alias: string }>(
        'SELECT alias FROM function_aliases WHERE name = $1 AND digest = $2 AND alias <> $3 ORDER BY alias',
        [name, version, LATEST],
      );
      const held = heldRows.map((r) => r.alias);
      if (held.length > 0) {
        throw new SluiceError(
          'CONFLICT',
          `version ${row.seq} of ${name} is still aliased as ${held.join(', ')}; move or remove the aliases first`,
          { aliases: held },
        );
      }
      await c.query('DELETE FROM function_aliases WHERE name = $1 AND digest = $2', [name, version]);
      await c.query('DELETE FROM function_versions WHERE name = $1 AND digest = $2', [name, version]);
      const { rows: newest } = await c.query<{ digest: string }>(
        'SELECT digest FROM function_versions WHERE name = $1 ORDER BY seq DESC LIMIT 1',
        [name],
      );
      if (!newest[0]) {
        await c.query('DELETE FROM function_aliases WHERE name = $1', [name]);
        await c.query('DELETE FROM functions WHERE name = $1', [name]);
        return { functionRemoved: true };
      }
      if (!(await c.query('SELECT 1 FROM function_aliases WHERE name = $1 AND alias = $2', [name, LATEST])).rowCount) {
        await pointAlias(c, name, LATEST, newest[0].digest as VersionId, Date.now());
      }
      return { functionRemoved: false };
    });
  }

  async removeFunction(name: string): Promise<FunctionVersion[]> {
    return this.transaction(async (c) => {
      if (!(await lock(c, name))) return [];
      const removed = await versionsOf(c, name);
      await c.query('DELETE FROM function_aliases WHERE name = $1', [name]);
      await c.query('DELETE FROM function_versions WHERE name = $1', [name]);
      await c.query('DELETE FROM functions WHERE name = $1', [name]);
      return removed;
    });
  }

  async allVersions(): Promise<{ name: string; version: VersionId }[]> {
    const { rows } = await this.db.query<{ name: string; digest: string }>('SELECT name, digest FROM function_versions ORDER BY name, seq');
    return rows.map((r) => ({ name: r.name, version: r.digest as VersionId }));
  }

  private async summaries(only: string | undefined): Promise<FunctionSummary[]> {
    const { rows } = await this.db.query<VersionRow & { count: number; all_aliases: [string, string][] }>(
      `SELECT v.name, v.digest, v.seq, v.manifest, v.size, v.created, v.created_by,
              (SELECT count(*) FROM function_versions c WHERE c.name = v.name) AS count,
              (SELECT json_agg(json_build_array(b.alias, b.digest) ORDER BY b.alias) FROM function_aliases b WHERE b.name = v.name)
                AS all_aliases
       FROM function_aliases a JOIN function_versions v ON v.name = a.name AND v.digest = a.digest
       WHERE a.alias = $1 ${only === undefined ? '' : 'AND a.name = $2'} ORDER BY v.name`,
      only === undefined ? [LATEST] : [LATEST, only],
    );
    return rows.map((row) => {
      const own = row.all_aliases ?? [];
      return {
        name: row.name,
        latest: toVersion({ ...row, aliases: own.filter(([, digest]) => digest === row.digest).map(([alias]) => alias) }),
        versions: row.count,
        aliases: Object.fromEntries(own.map(([alias, digest]) => [alias, digest as VersionId])),
      };
    });
  }
}

/** Locks the function's row for the rest of the transaction; false when there is no such function. */
async function lock(c: PgClient, name: string): Promise<boolean> {
  return ((await c.query('SELECT 1 FROM functions WHERE name = $1 FOR UPDATE', [name])).rowCount ?? 0) > 0;
}

/** Creates the function's row if needed and locks it; a concurrent removal of the function is waited out and retried. */
async function lockOrCreate(c: PgClient, name: string, now: number): Promise<void> {
  for (;;) {
    await c.query('INSERT INTO functions (name, next_seq, created) VALUES ($1, 1, $2) ON CONFLICT (name) DO NOTHING', [name, now]);
    if (await lock(c, name)) return;
  }
}

async function hasVersion(c: PgClient, name: string, version: VersionId): Promise<boolean> {
  return ((await c.query('SELECT 1 FROM function_versions WHERE name = $1 AND digest = $2', [name, version])).rowCount ?? 0) > 0;
}

async function pointAlias(c: PgClient, name: string, alias: string, version: VersionId, now: number): Promise<void> {
  await c.query(
    `INSERT INTO function_aliases (name, alias, digest, updated) VALUES ($1, $2, $3, $4)
     ON CONFLICT (name, alias) DO UPDATE SET digest = excluded.digest, updated = excluded.updated`,
    [name, alias, version, now],
  );
}

async function getVersion(q: Queryable, name: string, version: VersionId): Promise<FunctionVersion | undefined> {
  const { rows } = await q.query<VersionRow>(`${SELECT_VERSION} WHERE v.name = $1 AND v.digest = $2`, [name, version]);
  return rows[0] ? toVersion(rows[0]) : undefined;
}

async function versionsOf(q: Queryable, name: string): Promise<FunctionVersion[]> {
  const { rows } = await q.query<VersionRow>(`${SELECT_VERSION} WHERE v.name = $1 ORDER BY v.seq DESC`, [name]);
  return rows.map(toVersion);
}

function toVersion(r: VersionRow): FunctionVersion {
  return {
    name: r.name,
    version: r.digest as VersionId,
    seq: r.seq,
    manifest: r.manifest,
    size: r.size,
    created: new Date(r.created).toISOString(),
    createdBy: r.created_by,
    aliases: r.aliases,
  };
}

function latestRefused(): SluiceError {
  return new SluiceError('BAD_REQUEST', `"${LATEST}" always points at the newest deploy; it cannot be set or removed by hand`);
}
