// PostgreSQL adapter of the namespace store, for many stateless nodes on one database. Every
// mutation runs in one transaction that also appends its storage events (outbox), as the SQLite
// adapter does; what SQLite gets from its single writer, this one gets from row locks:
// - remove, move and the target of an overwriting copy lock their whole subtree FOR UPDATE (lockTree)
//   before they read it;
// - a writer that creates entries in a directory updates the directory's mtime as its last change,
//   on the row it checked (same id, same path, still a directory), and fails with CONFLICT if that
//   row is gone: either it got there before a remove or rename of the tree (which then waits for it
//   and sees its entries) or after (and its own entries roll back). Many writers fill one directory
//   at once; they only queue on the directory row for the short end of their transactions.
// - directory mtimes and the event log's counter are updated last, to keep the part of a
//   transaction that writers to one directory (or to the log) go through one at a time short.
// Transactions that deadlock are retried (database.ts), and so are two creations of one path at
// once: the second then sees the first's entry and decides as SQLite's second writer would.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import pg from 'pg';
import type { QueryResultRow } from 'pg';
import { migratePg, openPool, translatePgError } from './database.js';
import type { PgClient, PgPool } from './database.js';
import { PgEventLog, transactWithEvents } from './event-log.js';
import { pgEventLogMigrations, pgStorageMigrations } from './tables.js';
import { SluiceError } from '../../errors.js';
import type { NewStorageEvent } from '../../events/types.js';
import type { NsPath } from '../../storage/paths.js';
import { nameOf, parentOf } from '../../storage/paths.js';
import type { AttributeChange, CommitResult, CopyItem, NamespaceStore, NewFile } from '../../storage/namespace-store.js';
import type { Checksums, DeadProperty, Entry, Replica } from '../../storage/types.js';
import * as nsEvents from '../../storage/namespace-events.js';

export interface PgEntryRow {
  id: number;
  file_id: string;
  path: string;
  parent: string;
  name: string;
  type: 'DIR' | 'REGULAR';
  size: number;
  mode: number;
  owner: string;
  ctime: number;
  mtime: number;
  adler32: string | null;
  md5: string | null;
  sha256: string | null;
  content_type: string | null;
  labels: string;
  xattrs: string;
  etag: string;
}

export interface PgReplicaRow {
  entry_id: number;
  se: string;
  location: string;
  state: Replica['state'];
  created: number;
  online: boolean;
  pinned_until: number | null;
  verified: number | null;
  reason: string | null;
}

export function toEntry(r: PgEntryRow): Entry {
  const checksums: Checksums = {};
  if (r.adler32) checksums.adler32 = r.adler32;
  if (r.md5) checksums.md5 = r.md5;
  if (r.sha256) checksums.sha256 = r.sha256;
  return {
    fileId: r.file_id,
    path: r.path as NsPath,
    name: r.name,
    type: r.type,
    size: r.size,
    mode: r.mode,
    owner: r.owner,
    ctime: r.ctime,
    mtime: r.mtime,
    checksums,
    contentType: r.content_type ?? undefined,
    labels: JSON.parse(r.labels) as string[],
    xattrs: JSON.parse(r.xattrs) as Record<string, string>,
    etag: r.etag,
  };
}

export const toReplica = (r: PgReplicaRow): Replica => ({
  se: r.se,
  location: r.location,
  state: r.state,
  created: r.created,
  online: r.online,
  ...(r.pinned_until !== null ? { pinnedUntil: r.pinned_until } : {}),
  ...(r.verified !== null ? { verified: r.verified } : {}),
  ...(r.reason !== null ? { reason: r.reason } : {}),
});

/** File ids in dCache's pnfsId style: 36 upper-case hex digits. */
const newFileId = (): string => '0000' + randomBytes(16).toString('hex').toUpperCase();
const newEtag = (): string => randomUUID().replace(/-/g, '').slice(0, 20);

/** Range bounds for "everything strictly below dir" on the path index ('0' sorts right after '/'). */
function below(dir: string): [string, string] {
  return dir === '/' ? ['/', '0'] : [dir + '/', dir + '0'];
}

const bySe = (a: Replica, b: Replica) => (a.se < b.se ? -1 : a.se > b.se ? 1 : 0);

type Db = PgPool | PgClient;

async function rows<R extends QueryResultRow>(db: Db, sql: string, params: unknown[] = []): Promise<R[]> {
  return (await (db as PgClient).query<R>(sql, params)).rows;
}

async function one<R extends QueryResultRow>(db: Db, sql: string, params: unknown[] = []): Promise<R | undefined> {
  return (await rows<R>(db, sql, params))[0];
}

const INSERT_ENTRY = `INSERT INTO ns_entries
  (file_id, path, parent, name, type, size, mode, owner, ctime, mtime, adler32, md5, sha256, content_type, labels, xattrs, etag)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING *`;

function entryParams(a: {
  path: string;
  type: 'DIR' | 'REGULAR';
  owner: string;
  mode: number;
  now: number;
  size?: number;
  checksums?: Checksums;
  contentType?: string | undefined;
  labels?: string;
  xattrs?: string;
}): unknown[] {
  return [
    newFileId(),
    a.path,
    a.path === '/' ? '' : parentOf(a.path as NsPath),
    nameOf(a.path as NsPath),
    a.type,
    a.size ?? 0,
    a.mode,
    a.owner,
    a.now,
    a.checksums?.adler32 ?? null,
    a.checksums?.md5 ?? null,
    a.checksums?.sha256 ?? null,
    a.contentType ?? null,
    a.labels ?? '[]',
    a.xattrs ?? '{}',
    newEtag(),
  ];
}

const MAX_ATTEMPTS = 5;

export class PgNamespaceStore implements NamespaceStore {
  private constructor(
    private readonly pool: PgPool,
    private readonly log: PgEventLog,
  ) {}

  /** The store on a migrated database; creates the root on first open (several nodes may race). */
  static async open(pool: PgPool, log: PgEventLog): Promise<PgNamespaceStore> {
    const params = entryParams({ path: '/', type: 'DIR', owner: 'root', mode: 0o755, now: Date.now() });
    await pool.query(INSERT_ENTRY.replace('RETURNING *', 'ON CONFLICT (path) DO NOTHING'), params).catch((e: unknown) => {
      throw translatePgError(e);
    });
    return new PgNamespaceStore(pool, log);
  }

  /** A read outside any transaction; a lost database shows as UNAVAILABLE. */
  private async query<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      return await rows<R>(this.pool, sql, params);
    } catch (e) {
      throw translatePgError(e);
    }
  }

  /** Runs fn in one transaction with its events; resolves once committed. */
  private async transact<T>(fn: (c: PgClient, events: NewStorageEvent[]) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await transactWithEvents(this.pool, this.log, fn);
      } catch (e) {
        // Two writers created one path at once: the loser's INSERT fails once the winner commits.
        if (attempt < MAX_ATTEMPTS && e instanceof pg.DatabaseError && e.code === '23505') continue;
        throw translatePgError(e);
      }
    }
  }

  private getRow(db: Db, path: string): Promise<PgEntryRow | undefined> {
    return one<PgEntryRow>(db, 'SELECT * FROM ns_entries WHERE path = $1', [path]);
  }

  /** The directory new entries go into; touchDirs makes sure it is still there at the end. */
  private async requireDirRow(c: PgClient, path: string, what: string): Promise<PgEntryRow> {
    const row = await this.getRow(c, path);
    if (!row) throw new SluiceError('CONFLICT', `${what} ${path} does not exist`);
    if (row.type !== 'DIR') throw new SluiceError('NOT_A_DIRECTORY', `${what} ${path} is not a directory`);
    return row;
  }

  /**
   * Locks path and everything below it FOR UPDATE; false when path does not exist. Repeated until
   * a pass finds nothing new: a writer that had already updated one of the directories (touchDirs)
   * when a pass came to lock it made that pass wait for its commit, and what it made is locked by
   * the next pass; writers that come later find their directory gone or locked (touchDirs).
   */
  private async lockTree(c: PgClient, path: string): Promise<boolean> {
    const [lo, hi] = below(path);
    const locked = new Set<number>();
    for (;;) {
      const found = await rows<{ id: number; path: string }>(
        c,
        'SELECT id, path FROM ns_entries WHERE path = $1 OR (path >= $2 AND path < $3) ORDER BY path FOR UPDATE',
        [path, lo, hi],
      );
      if (!found.some((r) => r.path === path)) return false;
      const fresh = found.filter((r) => !locked.has(r.id));
      if (fresh.length === 0) return true;
      for (const r of fresh) locked.add(r.id);
    }
  }

  /** The locked tree at path (path first, then its descendants), its replicas, and deletes it. */
  private async deleteTree(c: PgClient, root: PgEntryRow): Promise<{ removed: Entry[]; released: Replica[] }> {
    const [lo, hi] = below(root.path);
    const descendants = await rows<PgEntryRow>(c, 'SELECT * FROM ns_entries WHERE path >= $1 AND path < $2 ORDER BY path', [lo, hi]);
    const released = await rows<PgReplicaRow>(
      c,
      'SELECT r.* FROM replicas r JOIN ns_entries e ON e.id = r.entry_id WHERE e.path = $1 OR (e.path >= $2 AND e.path < $3)',
      [root.path, lo, hi],
    );
    await c.query('DELETE FROM ns_entries WHERE path = $1 OR (path >= $2 AND path < $3)', [root.path, lo, hi]);
    return { removed: [toEntry(root), ...descendants.map(toEntry)], released: released.map(toReplica) };
  }

  /**
   * Sets directory mtimes as the last change before the events, in path order (one lock order for
   * all writers). A directory given as a row must still be that directory: a writer that made
   * entries in it learns here, under the row lock, whether a remove or rename took it meanwhile.
   */
  private async touchDirs(c: PgClient, now: number, dirs: (string | { dir: PgEntryRow; what: string })[]): Promise<void> {
    const byPath = new Map<string, { dir: PgEntryRow; what: string } | undefined>();
    for (const d of dirs) {
      if (typeof d !== 'string') byPath.set(d.dir.path, d);
      else if (!byPath.has(d)) byPath.set(d, undefined);
    }
    for (const path of [...byPath.keys()].sort()) {
      const checked = byPath.get(path);
      if (!checked) {
        await c.query('UPDATE ns_entries SET mtime = $1 WHERE path = $2', [now, path]);
        continue;
      }
      const res = await c.query("UPDATE ns_entries SET mtime = $1 WHERE id = $2 AND path = $3 AND type = 'DIR'", [
        now,
        checked.dir.id,
        path,
      ]);
      if (res.rowCount !== 1) throw new SluiceError('CONFLICT', `${checked.what} ${path} was removed or moved meanwhile`);
    }
  }

  async get(path: NsPath): Promise<Entry | undefined> {
    const [row] = await this.query<PgEntryRow>('SELECT * FROM ns_entries WHERE path = $1', [path]);
    return row ? toEntry(row) : undefined;
  }

  async children(dir: NsPath): Promise<Entry[]> {
    return (await this.query<PgEntryRow>('SELECT * FROM ns_entries WHERE parent = $1 ORDER BY name', [dir])).map(toEntry);
  }

  async descendants(dir: NsPath): Promise<Entry[]> {
    const [lo, hi] = below(dir);
    const found = await this.query<PgEntryRow>('SELECT * FROM ns_entries WHERE path >= $1 AND path < $2 ORDER BY path', [lo, hi]);
    return found.map(toEntry);
  }

  async replicas(path: NsPath): Promise<Replica[]> {
    const found = await this.query<PgReplicaRow>(
      'SELECT r.* FROM replicas r JOIN ns_entries e ON e.id = r.entry_id WHERE e.path = $1 ORDER BY r.se COLLATE "C"',
      [path],
    );
    return found.map(toReplica);
  }

  async mkdir(path: NsPath, owner: string, mode: number): Promise<Entry> {
    return this.transact(async (c, events) => {
      if (await this.getRow(c, path)) throw new SluiceError('EXISTS', `${path} already exists`);
      const parent = await this.requireDirRow(c, parentOf(path), 'parent');
      const now = Date.now();
      const row = (await one<PgEntryRow>(c, INSERT_ENTRY, entryParams({ path, type: 'DIR', owner, mode, now })))!;
      await this.touchDirs(c, now, [{ dir: parent, what: 'parent' }]);
      const entry = toEntry(row);
      events.push(...nsEvents.directoryCreated(entry));
      return entry;
    });
  }

  async commitFile(f: NewFile): Promise<CommitResult> {
    return this.transact(async (c, events) => {
      const parent = await this.requireDirRow(c, parentOf(f.path), 'parent');
      const now = Date.now();
      const current = await one<PgEntryRow>(c, 'SELECT * FROM ns_entries WHERE path = $1 FOR NO KEY UPDATE', [f.path]);
      if (f.ifMatch && (!current || !f.ifMatch.includes(current.etag))) {
        throw new SluiceError('PRECONDITION_FAILED', `${f.path} does not match If-Match`);
      }
      let released: Replica[] = [];
      let row: PgEntryRow;
      if (current) {
        if (f.mustNotExist) throw new SluiceError('EXISTS', `${f.path} already exists`);
        if (current.type === 'DIR') throw new SluiceError('IS_A_DIRECTORY', `${f.path} is a directory`);
        f.beforeOverwrite?.(toEntry(current));
        released = (await rows<PgReplicaRow>(c, 'DELETE FROM replicas WHERE entry_id = $1 RETURNING *', [current.id]))
          .map(toReplica)
          .sort(bySe);
        row = (await one<PgEntryRow>(
          c,
          `UPDATE ns_entries SET size = $2, mtime = $3, adler32 = $4, md5 = $5, sha256 = $6, content_type = $7, etag = $8
           WHERE id = $1 RETURNING *`,
          [
            current.id,
            f.size,
            now,
            f.checksums.adler32 ?? null,
            f.checksums.md5 ?? null,
            f.checksums.sha256 ?? null,
            f.contentType ?? current.content_type,
            newEtag(),
          ],
        ))!;
      } else {
        const params = entryParams({
          path: f.path,
          type: 'REGULAR',
          owner: f.owner,
          mode: f.mode,
          now,
          size: f.size,
          checksums: f.checksums,
          contentType: f.contentType,
        });
        row = (await one<PgEntryRow>(c, INSERT_ENTRY, params))!;
      }
      await c.query('INSERT INTO replicas (entry_id, se, location, state, created) VALUES ($1, $2, $3, $4, $5)', [
        row.id,
        f.replica.se,
        f.replica.location,
        'AVAILABLE',
        now,
      ]);
      if (!current) await this.touchDirs(c, now, [{ dir: parent, what: 'parent' }]);
      const entry = toEntry(row);
      events.push(...nsEvents.fileWritten(entry, !current, f.activation));
      return { entry, created: !current, released };
    });
  }

  async remove(path: NsPath, opts: { ifMatch?: string[] } = {}): Promise<{ removed: Entry[]; released: Replica[] }> {
    if (path === '/') throw new SluiceError('FORBIDDEN', 'the root cannot be removed');
    return this.transact(async (c, events) => {
      const row = (await this.lockTree(c, path)) ? await this.getRow(c, path) : undefined;
      if (!row) throw new SluiceError('NOT_FOUND', `${path} does not exist`);
      if (opts.ifMatch && !opts.ifMatch.includes(row.etag)) throw new SluiceError('PRECONDITION_FAILED', `${path} does not match If-Match`);
      const result = await this.deleteTree(c, row);
      await this.touchDirs(c, Date.now(), [parentOf(path)]);
      events.push(...nsEvents.removed(result.removed));
      return result;
    });
  }

  async move(from: NsPath, to: NsPath, opts: { overwrite: boolean }) {
    if (from === '/' || to === '/') throw new SluiceError('FORBIDDEN', 'the root cannot be moved or replaced');
    if (to === from) throw new SluiceError('FORBIDDEN', 'source and destination are the same');
    if (to.startsWith(from + '/')) throw new SluiceError('CONFLICT', 'cannot move a directory into itself');
    return this.transact(async (c, events) => {
      const src = (await this.lockTree(c, from)) ? await this.getRow(c, from) : undefined;
      if (!src) throw new SluiceError('NOT_FOUND', `${from} does not exist`);
      const toParent = await this.requireDirRow(c, parentOf(to), 'destination parent');
      const existing = (await this.lockTree(c, to)) ? await this.getRow(c, to) : undefined;
      let released: Replica[] = [];
      if (existing) {
        if (!opts.overwrite) throw new SluiceError('PRECONDITION_FAILED', `${to} exists and Overwrite is F`);
        // Replacing an ancestor of the source would delete the source with it.
        if (from.startsWith(to + '/')) throw new SluiceError('CONFLICT', `${to} contains ${from}`);
        const result = await this.deleteTree(c, existing);
        released = result.released;
        events.push(...nsEvents.removed(result.removed));
      }
      const now = Date.now();
      const moved = (await one<PgEntryRow>(
        c,
        'UPDATE ns_entries SET path = $1, parent = $2, name = $3, ctime = $4 WHERE id = $5 RETURNING *',
        [to, parentOf(to), nameOf(to), now, src.id],
      ))!;
      if (src.type === 'DIR') {
        const [lo, hi] = below(from);
        // char_length: PostgreSQL counts characters, JavaScript's length UTF-16 units.
        await c.query(
          `UPDATE ns_entries SET path = $1::text || substr(path, char_length($2::text) + 1),
             parent = $1::text || substr(parent, char_length($2::text) + 1)
           WHERE path >= $3 AND path < $4`,
          [to, from, lo, hi],
        );
      }
      await this.touchDirs(c, now, [parentOf(from), { dir: toParent, what: 'destination parent' }]);
      const entry = toEntry(moved);
      events.push(...nsEvents.moved(entry, from, to, randomBytes(4).readUInt32BE(0).toString()));
      return { entry, replacedTarget: existing !== undefined, released };
    });
  }

  async commitCopy(items: CopyItem[], opts: { overwrite: boolean; owner: string }) {
    return this.transact(async (c, events) => {
      const first = items[0];
      if (!first) throw new SluiceError('BAD_REQUEST', 'nothing to copy');
      const root = first.target;
      const rootParent = await this.requireDirRow(c, parentOf(root), 'destination parent');
      const existing = (await this.lockTree(c, root)) ? await this.getRow(c, root) : undefined;
      let released: Replica[] = [];
      if (existing) {
        if (!opts.overwrite) throw new SluiceError('PRECONDITION_FAILED', `${root} exists and Overwrite is F`);
        const result = await this.deleteTree(c, existing);
        released = result.released;
        events.push(...nsEvents.removed(result.removed));
      }
      const now = Date.now();
      for (const item of items) {
        const s = item.source;
        const srcRow = await one<{ id: number; labels: string; xattrs: string }>(
          c,
          'SELECT id, labels, xattrs FROM ns_entries WHERE path = $1',
          [s.path],
        );
        const row = (await one<PgEntryRow>(
          c,
          INSERT_ENTRY,
          entryParams({
            path: item.target,
            type: s.type,
            owner: opts.owner,
            mode: s.mode,
            now,
            size: s.size,
            checksums: s.checksums,
            contentType: s.contentType,
            ...(srcRow ? { labels: srcRow.labels, xattrs: srcRow.xattrs } : {}),
          }),
        ))!;
        if (srcRow) {
          await c.query('INSERT INTO dead_props (entry_id, ns, name, xml) SELECT $1, ns, name, xml FROM dead_props WHERE entry_id = $2', [
            row.id,
            srcRow.id,
          ]);
        }
        if (item.replica) {
          await c.query('INSERT INTO replicas (entry_id, se, location, state, created) VALUES ($1, $2, $3, $4, $5)', [
            row.id,
            item.replica.se,
            item.replica.location,
            'AVAILABLE',
            now,
          ]);
        }
        const entry = toEntry(row);
        events.push(...(entry.type === 'DIR' ? nsEvents.directoryCreated(entry) : nsEvents.fileWritten(entry, true)));
      }
      await this.touchDirs(c, now, [{ dir: rootParent, what: 'destination parent' }]);
      return { replacedTarget: existing !== undefined, released };
    });
  }

  async changeAttributes(path: NsPath, change: AttributeChange): Promise<Entry> {
    return this.transact(async (c, events) => {
      const row = await one<PgEntryRow>(c, 'SELECT * FROM ns_entries WHERE path = $1 FOR NO KEY UPDATE', [path]);
      if (!row) throw new SluiceError('NOT_FOUND', `${path} does not exist`);
      const labels = new Set(JSON.parse(row.labels) as string[]);
      for (const l of change.addLabels ?? []) labels.add(l);
      for (const l of change.removeLabels ?? []) labels.delete(l);
      const xattrs = JSON.parse(row.xattrs) as Record<string, string>;
      Object.assign(xattrs, change.setXattrs ?? {});
      for (const k of change.removeXattrs ?? []) delete xattrs[k];
      const updated = (await one<PgEntryRow>(c, 'UPDATE ns_entries SET labels = $1, xattrs = $2, ctime = $3 WHERE id = $4 RETURNING *', [
        JSON.stringify([...labels].sort()),
        JSON.stringify(xattrs),
        Date.now(),
        row.id,
      ]))!;
      for (const p of change.setDeadProps ?? []) {
        await c.query(
          `INSERT INTO dead_props (entry_id, ns, name, xml) VALUES ($1, $2, $3, $4)
           ON CONFLICT (entry_id, ns, name) DO UPDATE SET xml = excluded.xml`,
          [row.id, p.ns, p.name, p.xml],
        );
      }
      for (const p of change.removeDeadProps ?? []) {
        await c.query('DELETE FROM dead_props WHERE entry_id = $1 AND ns = $2 AND name = $3', [row.id, p.ns, p.name]);
      }
      const entry = toEntry(updated);
      events.push(...nsEvents.attributesChanged(entry));
      return entry;
    });
  }

  async deadProperties(path: NsPath): Promise<DeadProperty[]> {
    return this.query<DeadProperty>(
      'SELECT d.ns, d.name, d.xml FROM dead_props d JOIN ns_entries e ON e.id = d.entry_id WHERE e.path = $1 ORDER BY d.ns, d.name',
      [path],
    );
  }

  async recordChecksum(path: NsPath, etag: string, c: Checksums): Promise<void> {
    await this.query(
      'UPDATE ns_entries SET adler32 = COALESCE(adler32, $1), md5 = COALESCE(md5, $2), sha256 = COALESCE(sha256, $3) WHERE path = $4 AND etag = $5',
      [c.adler32 ?? null, c.md5 ?? null, c.sha256 ?? null, path, etag],
    );
  }

  async locationsOn(se: string): Promise<Set<string>> {
    return new Set((await this.query<{ location: string }>('SELECT location FROM replicas WHERE se = $1', [se])).map((r) => r.location));
  }
}

/** The namespace on PostgreSQL as one owned unit: pool, migrations, event log and store. */
export interface PgNamespace {
  pool: PgPool;
  log: PgEventLog;
  store: PgNamespaceStore;
  /** Stops listening and closes the pool. */
  close(): Promise<void>;
}

export async function openPgNamespace(url: string, opts: { poolSize?: number; log?: Logger } = {}): Promise<PgNamespace> {
  const pool = openPool(url, { max: opts.poolSize ?? 10 });
  let log: PgEventLog | undefined;
  try {
    await migratePg(pool, [...pgStorageMigrations, ...pgEventLogMigrations]);
    log = await PgEventLog.open(pool, { log: opts.log });
    const store = await PgNamespaceStore.open(pool, log);
    const opened = log;
    return {
      pool,
      log: opened,
      store,
      async close() {
        await opened.close();
        await pool.end();
      },
    };
  } catch (e) {
    await log?.close();
    await pool.end().catch(() => undefined);
    throw e;
  }
}
