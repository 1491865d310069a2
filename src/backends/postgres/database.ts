// The scale-out state database: a PostgreSQL connection pool, and each domain's migrations applied
// once, in order, under an advisory lock (several nodes may start at the same time).
import pg from 'pg';
import { SluiceError } from '../../errors.js';

export type PgPool = pg.Pool;
export type PgClient = pg.PoolClient;

export interface PgMigration {
  /** Domain that owns the tables, e.g. "storage". */
  domain: string;
  /** Increasing per domain, starting at 1. */
  version: number;
  sql: string;
}

/** Big integers (event ids, sizes) come back as JS numbers: they stay far below 2^53. */
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export function openPool(url: string, opts: { max?: number } = {}): PgPool {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10 });
  // An idle client losing its connection (server restart) must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

const MIGRATION_LOCK = 0x51_1c_e0_01;

/**
 * Domains in the order the caller gives them (first appearance), versions ascending within each.
 * Unlike SQLite, PostgreSQL checks a REFERENCES target when the table is created: placement's
 * rule_locks reference storage's ns_entries, so [...storage, ...placement] must run in that order,
 * not alphabetically ('placement' < 'storage').
 */
function inApplyOrder(migrations: readonly PgMigration[]): PgMigration[] {
  const rank = new Map<string, number>();
  for (const m of migrations) if (!rank.has(m.domain)) rank.set(m.domain, rank.size);
  return [...migrations].sort((a, b) => rank.get(a.domain)! - rank.get(b.domain)! || a.version - b.version);
}

/** Applies the migrations not applied yet: domains in the order given, a domain's tables before those that reference them. */
export async function migratePg(pool: PgPool, migrations: readonly PgMigration[]): Promise<void> {
  const client = await pool.connect();
  const onLost = () => undefined;
  client.on('error', onLost);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      domain TEXT NOT NULL, version INTEGER NOT NULL, applied BIGINT NOT NULL, PRIMARY KEY (domain, version))`);
    const sorted = inApplyOrder(migrations);
    for (const m of sorted) {
      const done = await client.query('SELECT 1 FROM schema_migrations WHERE domain = $1 AND version = $2', [m.domain, m.version]);
      if (done.rowCount) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (domain, version, applied) VALUES ($1, $2, $3)', [
          m.domain,
          m.version,
          Date.now(),
        ]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw e;
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.off('error', onLost);
    client.release();
  }
}

/** Runs fn in one transaction on one client; retried on a serialization failure or deadlock. */
export async function inTransaction<T>(pool: PgPool, fn: (c: PgClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    // A checked-out client has no pool listener: a connection lost (server restart) must fail the
    // running query, not crash the process with an unhandled 'error' event.
    const onLost = () => undefined;
    client.on('error', onLost);
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => (broken = rollbackError));
      const code = (e as { code?: string }).code;
      if (attempt < 3 && (code === '40001' || code === '40P01')) continue;
      throw e;
    } finally {
      client.off('error', onLost);
      // A client that cannot even roll back is dropped rather than handed to the next caller.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }
}

const LOST_CONNECTION = /^(Connection terminated|Client has encountered a connection error)/;

/**
 * A failure because the database cannot be reached right now (restart, failover, network) as
 * SluiceError UNAVAILABLE (503: try again); every other error unchanged.
 */
export function translatePgError(e: unknown): unknown {
  if (e instanceof SluiceError) return e;
  const code = (e as { code?: unknown }).code;
  const lost =
    (typeof code === 'string' &&
      (code.startsWith('08') || ['57P01', '57P02', '57P03', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code))) ||
    (e instanceof Error && LOST_CONNECTION.test(e.message));
  return lost ? new SluiceError('UNAVAILABLE', `state database unavailable: ${(e as Error).message}`) : e;
}
