// The function store on the embedded SQLite database (tables in functions/tables.ts). Every change is
// one transaction; with group commit, WalSync makes it durable before the caller is answered.
import type { Db } from './database.js';
import type { WalSync } from './wal-sync.js';
import { SluiceError } from '../../errors.js';
import { LATEST, type FunctionStore, type FunctionSummary, type NewVersion } from '../../functions/function-store.js';
import type { FunctionVersion, Manifest, VersionId } from '../../functions/types.js';

interface VersionRow {
  name: string;
  digest: string;
  seq: number;
  manifest: string;
  size: number;
  created: number;
  created_by: string;
}

interface AliasRow {
  name: string;
  alias: string;
  digest: string;
}

const VERSION_COLUMNS = 'name, digest, seq, manifest, size, created, created_by';

export class SqliteFunctionStore implements FunctionStore {
  constructor(
    private readonly db: Db,
    private readonly wal?: WalSync,
  ) {}

  async recordDeploy(v: NewVersion, aliases: readonly string[]): Promise<{ version: FunctionVersion; created: boolean }> {
    if (aliases.includes(LATEST)) throw latestRefused();
    const now = Date.now();
    const created = this.db.transaction((): boolean => {
      this.db.prepare('INSERT INTO functions (name, next_seq, created) VALUES (?, 1, ?) ON CONFLICT (name) DO NOTHING').run(v.name, now);
      const existing = this.db.prepare('SELECT 1 FROM function_versions WHERE name = ? AND digest = ?').get(v.name, v.version);
      if (!existing) {
        const { next_seq: seq } = this.db.prepare('SELECT next_seq FROM functions WHERE name = ?').get(v.name) as { next_seq: number };
        this.db.prepare('UPDATE functions SET next_seq = next_seq + 1 WHERE name = ?').run(v.name);
        this.db
          .prepare(`INSERT INTO function_versions (${VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`)
          .run(v.name, v.version, seq, JSON.stringify(v.manifest), v.size, now, v.createdBy);
      }
      for (const alias of [LATEST, ...aliases]) this.pointAlias(v.name, alias, v.version, now);
      return !existing;
    })();
    await this.wal?.durable();
    return { version: (await this.get(v.name, v.version))!, created };
  }

  async get(name: string, version: VersionId): Promise<FunctionVersion | undefined> {
    const row = this.db.prepare(`SELECT ${VERSION_COLUMNS} FROM function_versions WHERE name = ? AND digest = ?`).get(name, version);
    return row ? this.withAliases(name, [row as VersionRow])[0] : undefined;
  }

  async bySeq(name: string, seq: number): Promise<FunctionVersion | undefined> {
    const row = this.db.prepare(`SELECT ${VERSION_COLUMNS} FROM function_versions WHERE name = ? AND seq = ?`).get(name, seq);
    return row ? this.withAliases(name, [row as VersionRow])[0] : undefined;
  }

  async byPrefix(name: string, prefix: string, limit: number): Promise<FunctionVersion[]> {
    // Digests are lower-case hex, so a range scan on the primary key finds the prefix exactly (no LIKE escaping).
    const rows = this.db
      .prepare(`SELECT ${VERSION_COLUMNS} FROM function_versions WHERE name = ? AND digest >= ? AND digest < ? ORDER BY seq DESC LIMIT ?`)
      .all(name, prefix, prefix + 'g', limit) as VersionRow[];
    return this.withAliases(name, rows);
  }

  async versions(name: string): Promise<FunctionVersion[]> {
    const rows = this.db
      .prepare(`SELECT ${VERSION_COLUMNS} FROM function_versions WHERE name = ? ORDER BY seq DESC`)
      .all(name) as VersionRow[];
    return this.withAliases(name, rows);
  }

  async summary(name: string): Promise<FunctionSummary | undefined> {
    return this.summaries(name)[0];
  }

  async list(): Promise<FunctionSummary[]> {
    return this.summaries(undefined);
  }

  async setAlias(name: string, alias: string, version: VersionId): Promise<void> {
    if (alias === LATEST) throw latestRefused();
    this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM function_versions WHERE name = ? AND digest = ?').get(name, version)) {
        throw new SluiceError('NOT_FOUND', `function ${name} has no version ${version}`);
      }
      this.pointAlias(name, alias, version, Date.now());
    })();
    await this.wal?.durable();
  }

  async removeAlias(name: string, alias: string): Promise<boolean> {
    if (alias === LATEST) throw latestRefused();
    const { changes } = this.db.prepare('DELETE FROM function_aliases WHERE name = ? AND alias = ?').run(name, alias);
    if (changes > 0) await this.wal?.durable();
    return changes > 0;
  }

  async removeVersion(name: string, version: VersionId): Promise<{ functionRemoved: boolean }> {
    const functionRemoved = this.db.transaction((): boolean => {
      const row = this.db.prepare('SELECT seq FROM function_versions WHERE name = ? AND digest = ?').get(name, version) as
        { seq: number } | undefined;
      if (!row) throw new SluiceError('NOT_FOUND', `function ${name} has no version ${version}`);
      const held = (
        this.db
          .prepare('SELECT alias FROM function_aliases WHERE name = ? AND digest = ? AND alias != ? ORDER BY alias')
          .all(name, version, LATEST) as { alias: string }[]
      ).map((r) => r.alias);
      if (held.length > 0) {
        throw new SluiceError(
          'CONFLICT',
          `version ${row.seq} of ${name} is still aliased as ${held.join(', ')}; move or remove the aliases first`,
          {
            aliases: held,
          },
        );
      }
      this.db.prepare('DELETE FROM function_aliases WHERE name = ? AND digest = ?').run(name, version);
      this.db.prepare('DELETE FROM function_versions WHERE name = ? AND digest = ?').run(name, version);
      const newest = this.db.prepare('SELECT digest FROM function_versions WHERE name = ? ORDER BY seq DESC LIMIT 1').get(name) as
        { digest: string } | undefined;
      if (!newest) {
        this.db.prepare('DELETE FROM function_aliases WHERE name = ?').run(name);
        this.db.prepare('DELETE FROM functions WHERE name = ?').run(name);
        return true;
      }
      if (!this.db.prepare('SELECT 1 FROM function_aliases WHERE name = ? AND alias = ?').get(name, LATEST)) {
        this.pointAlias(name, LATEST, newest.digest as VersionId, Date.now());
      }
      return false;
    })();
    await this.wal?.durable();
    return { functionRemoved };
  }

  async removeFunction(name: string): Promise<FunctionVersion[]> {
    const removed = await this.versions(name);
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM function_aliases WHERE name = ?').run(name);
      this.db.prepare('DELETE FROM function_versions WHERE name = ?').run(name);
      this.db.prepare('DELETE FROM functions WHERE name = ?').run(name);
    })();
    if (removed.length > 0) await this.wal?.durable();
    return removed;
  }

  async allVersions(): Promise<{ name: string; version: VersionId }[]> {
    const rows = this.db.prepare('SELECT name, digest FROM function_versions ORDER BY name, seq').all() as {
      name: string;
      digest: string;
    }[];
    return rows.map((r) => ({ name: r.name, version: r.digest as VersionId }));
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private pointAlias(name: string, alias: string, version: VersionId, now: number): void {
    this.db
      .prepare(
        `INSERT INTO function_aliases (name, alias, digest, updated) VALUES (?, ?, ?, ?)
         ON CONFLICT (name, alias) DO UPDATE SET digest = excluded.digest, updated = excluded.updated`,
      )
      .run(name, alias, version, now);
  }

  private withAliases(name: string, rows: readonly VersionRow[]): FunctionVersion[] {
    if (rows.length === 0) return [];
    const byDigest = new Map<string, string[]>();
    for (const a of this.db
      .prepare('SELECT name, alias, digest FROM function_aliases WHERE name = ? ORDER BY alias')
      .all(name) as AliasRow[]) {
      byDigest.set(a.digest, [...(byDigest.get(a.digest) ?? []), a.alias]);
    }
    return rows.map((r) => toVersion(r, byDigest.get(r.digest) ?? []));
  }

  private summaries(only: string | undefined): FunctionSummary[] {
    const oneName = only === undefined ? '' : 'AND a.name = ?';
    const args = only === undefined ? [LATEST] : [LATEST, only];
    const latest = this.db
      .prepare(
        `SELECT v.name, v.digest, v.seq, v.manifest, v.size, v.created, v.created_by,
                (SELECT COUNT(*) FROM function_versions c WHERE c.name = v.name) AS count
         FROM function_aliases a JOIN function_versions v ON v.name = a.name AND v.digest = a.digest
         WHERE a.alias = ? ${oneName} ORDER BY v.name`,
      )
      .all(...args) as (VersionRow & { count: number })[];
    const aliases = this.db
      .prepare(`SELECT name, alias, digest FROM function_aliases ${only === undefined ? '' : 'WHERE name = ?'} ORDER BY name, alias`)
      .all(...args.slice(1)) as AliasRow[];
    const byName = new Map<string, AliasRow[]>();
    for (const a of aliases) byName.set(a.name, [...(byName.get(a.name) ?? []), a]);
    return latest.map((row) => {
      const own = byName.get(row.name) ?? [];
      return {
        name: row.name,
        latest: toVersion(
          row,
          own.filter((a) => a.digest === row.digest).map((a) => a.alias),
        ),
        versions: row.count,
        aliases: Object.fromEntries(own.map((a) => [a.alias, a.digest as VersionId])),
      };
    });
  }
}

function toVersion(r: VersionRow, aliases: string[]): FunctionVersion {
  return {
    name: r.name,
    version: r.digest as VersionId,
    seq: r.seq,
    manifest: JSON.parse(r.manifest) as Manifest,
    size: r.size,
    created: new Date(r.created).toISOString(),
    createdBy: r.created_by,
    aliases,
  };
}

function latestRefused(): SluiceError {
  return new SluiceError('BAD_REQUEST', `"${LATEST}" always points at the newest deploy; it cannot be set or removed by hand`);
}
