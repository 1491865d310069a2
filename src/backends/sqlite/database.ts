// Opens the embedded SQLite state database and applies each domain's migrations in order.
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';

export type { Db };

export interface Migration {
  /** Domain that owns the tables, e.g. "storage". */
  domain: string;
  /** Increasing per domain, starting at 1. */
  version: number;
  sql: string;
}

/**
 * Opens the database in WAL mode. With `groupCommit`, commits do not fsync on the event loop
 * (synchronous=NORMAL) and the caller makes changes durable with WalSync before acknowledging them;
 * otherwise every commit is on disk when it returns (synchronous=FULL).
 */
export function openDatabase(file: string, opts: { groupCommit?: boolean } = {}): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(opts.groupCommit ? 'synchronous = NORMAL' : 'synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return db;
}

export function migrate(db: Db, migrations: readonly Migration[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    domain TEXT NOT NULL, version INTEGER NOT NULL, applied INTEGER NOT NULL, PRIMARY KEY (domain, version))`);
  const applied = db.prepare('SELECT 1 FROM schema_migrations WHERE domain = ? AND version = ?');
  const record = db.prepare('INSERT INTO schema_migrations (domain, version, applied) VALUES (?, ?, ?)');
  const sorted = [...migrations].sort((a, b) => a.domain.localeCompare(b.domain) || a.version - b.version);
  for (const m of sorted) {
    if (applied.get(m.domain, m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.domain, m.version, Date.now());
    })();
  }
}
