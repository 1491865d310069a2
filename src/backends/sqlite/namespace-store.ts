// SQLite adapter of the namespace store. Every mutation runs in one transaction that also appends
// its storage events, so a change and its events are committed together or not at all.
import { randomUUID, randomBytes } from 'node:crypto';
import type { Db } from './database.js';
import type { SqliteEventLog } from './event-log.js';
import type { WalSync } from './wal-sync.js';
import { SluiceError } from '../../errors.js';
import type { NsPath } from '../../storage/paths.js';
import { nameOf, parentOf } from '../../storage/paths.js';
import type { AttributeChange, CommitResult, CopyItem, NamespaceStore, NewFile } from '../../storage/namespace-store.js';
import type { Checksums, DeadProperty, Entry, Replica } from '../../storage/types.js';
import * as nsEvents from '../../storage/namespace-events.js';
import { transactWithEvents } from './transact.js';
import type { NewStorageEvent } from '../../events/types.js';

export interface EntryRow {
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

export interface ReplicaRow {
  entry_id: number;
  se: string;
  location: string;
  state: Replica['state'];
  created: number;
  online: number;
  pinned_until: number | null;
  verified: number | null;
  reason: string | null;
}

export function toEntry(r: EntryRow): Entry {
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

export const toReplica = (r: ReplicaRow): Replica => ({
  se: r.se,
  location: r.location,
  state: r.state,
  created: r.created,
  online: r.online === 1,
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

export class SqliteNamespaceStore implements NamespaceStore {
  private readonly q;

  constructor(
    private readonly db: Db,
    private readonly log: SqliteEventLog,
    /** Makes commits durable before they are acknowledged (group commit); absent with synchronous=FULL. */
    private readonly wal?: WalSync,
  ) {
    this.q = {
      get: db.prepare('SELECT * FROM ns_entries WHERE path = ?'),
      children: db.prepare('SELECT * FROM ns_entries WHERE parent = ? ORDER BY name'),
      descendants: db.prepare('SELECT * FROM ns_entries WHERE path >= ? AND path < ? ORDER BY path'),
      replicasOf: db.prepare('SELECT * FROM replicas WHERE entry_id = ?'),
      replicasBelow: db.prepare(
        'SELECT r.* FROM replicas r JOIN ns_entries e ON e.id = r.entry_id WHERE e.path = ? OR (e.path >= ? AND e.path < ?)',
      ),
      insertEntry: db.prepare(`INSERT INTO ns_entries
        (file_id, path, parent, name, type, size, mode, owner, ctime, mtime, adler32, md5, sha256, content_type, labels, xattrs, etag)
        VALUES (@file_id, @path, @parent, @name, @type, @size, @mode, @owner, @ctime, @mtime, @adler32, @md5, @sha256, @content_type, @labels, @xattrs, @etag)`),
      updateContent: db.prepare(`UPDATE ns_entries SET size = @size, mtime = @mtime, adler32 = @adler32, md5 = @md5,
        sha256 = @sha256, content_type = @content_type, etag = @etag WHERE id = @id`),
      deleteReplicas: db.prepare('DELETE FROM replicas WHERE entry_id = ?'),
      insertReplica: db.prepare('INSERT INTO replicas (entry_id, se, location, state, created) VALUES (?, ?, ?, ?, ?)'),
      deleteTree: db.prepare('DELETE FROM ns_entries WHERE path = ? OR (path >= ? AND path < ?)'),
      renameOne: db.prepare('UPDATE ns_entries SET path = ?, parent = ?, name = ?, ctime = ? WHERE id = ?'),
      renameBelow: db.prepare(
        'UPDATE ns_entries SET path = ? || substr(path, ?), parent = ? || substr(parent, ?) WHERE path >= ? AND path < ?',
      ),
      touchDir: db.prepare('UPDATE ns_entries SET mtime = ? WHERE path = ?'),
      setAttrs: db.prepare('UPDATE ns_entries SET labels = ?, xattrs = ?, ctime = ? WHERE id = ?'),
      deadProps: db.prepare('SELECT ns, name, xml FROM dead_props WHERE entry_id = ? ORDER BY ns, name'),
      putDeadProp: db.prepare('INSERT OR REPLACE INTO dead_props (entry_id, ns, name, xml) VALUES (?, ?, ?, ?)'),
      delDeadProp: db.prepare('DELETE FROM dead_props WHERE entry_id = ? AND ns = ? AND name = ?'),
      copyDeadProps: db.prepare(
        'INSERT INTO dead_props (entry_id, ns, name, xml) SELECT ?, ns, name, xml FROM dead_props WHERE entry_id = ?',
      ),
      setChecksums: db.prepare(
        'UPDATE ns_entries SET adler32 = COALESCE(adler32, ?), md5 = COALESCE(md5, ?), sha256 = COALESCE(sha256, ?) WHERE path = ? AND etag = ?',
      ),
      locationsOn: db.prepare('SELECT location FROM replicas WHERE se = ?'),
    };
    // The root always exists.
    if (!this.q.get.get('/')) {
      const now = Date.now();
      this.q.insertEntry.run(this.row({ path: '/', type: 'DIR', owner: 'root', mode: 0o755, now }));
    }
  }

  private row(a: {
    path: string;
    type: 'DIR' | 'REGULAR';
    owner: string;
    mode: number;
    now: number;
    size?: number;
    checksums?: Checksums;
    contentType?: string | undefined;
  }) {
    return {
      file_id: newFileId(),
      path: a.path,
      parent: a.path === '/' ? '' : parentOf(a.path as NsPath),
      name: nameOf(a.path as NsPath),
      type: a.type,
      size: a.size ?? 0,
      mode: a.mode,
      owner: a.owner,
      ctime: a.now,
      mtime: a.now,
      adler32: a.checksums?.adler32 ?? null,
      md5: a.checksums?.md5 ?? null,
      sha256: a.checksums?.sha256 ?? null,
      content_type: a.contentType ?? null,
      labels: '[]',
      xattrs: '{}',
      etag: newEtag(),
    };
  }

  /** Runs fn in one transaction with its events; resolves once the commit is durable. */
  private transact<T>(fn: (events: NewStorageEvent[]) => T): Promise<T> {
    return transactWithEvents(this.db, this.log, this.wal, fn);
  }

  private getRow(path: string): EntryRow | undefined {
    return this.q.get.get(path) as EntryRow | undefined;
  }

  private requireDirRow(path: string, what: string): EntryRow {
    const row = this.getRow(path);
    if (!row) throw new SluiceError('CONFLICT', `${what} ${path} does not exist`);
    if (row.type !== 'DIR') throw new SluiceError('NOT_A_DIRECTORY', `${what} ${path} is not a directory`);
    return row;
  }

  private releasedBelow(path: string): Replica[] {
    const [lo, hi] = below(path);
    return (this.q.replicasBelow.all(path, lo, hi) as ReplicaRow[]).map(toReplica);
  }

  async get(path: NsPath): Promise<Entry | undefined> {
    const row = this.getRow(path);
    return row ? toEntry(row) : undefined;
  }

  async children(dir: NsPath): Promise<Entry[]> {
    return (this.q.children.all(dir) as EntryRow[]).map(toEntry);
  }

  async descendants(dir: NsPath): Promise<Entry[]> {
    const [lo, hi] = below(dir);
    return (this.q.descendants.all(lo, hi) as EntryRow[]).map(toEntry);
  }

  async replicas(path: NsPath): Promise<Replica[]> {
    const row = this.getRow(path);
    if (!row) return [];
    return (this.q.replicasOf.all(row.id) as ReplicaRow[]).map(toReplica);
  }

  async mkdir(path: NsPath, owner: string, mode: number): Promise<Entry> {
    return this.transact((events) => {
      if (this.getRow(path)) throw new SluiceError('EXISTS', `${path} already exists`);
      this.requireDirRow(parentOf(path), 'parent');
      const now = Date.now();
      this.q.insertEntry.run(this.row({ path, type: 'DIR', owner, mode, now }));
      this.q.touchDir.run(now, parentOf(path));
      const entry = toEntry(this.getRow(path)!);
      events.push(...nsEvents.directoryCreated(entry));
      return entry;
    });
  }

  async commitFile(f: NewFile): Promise<CommitResult> {
    return this.transact((events) => {
      this.requireDirRow(parentOf(f.path), 'parent');
      const now = Date.now();
      const current = this.getRow(f.path);
      if (f.ifMatch && (!current || !f.ifMatch.includes(current.etag))) {
        throw new SluiceError('PRECONDITION_FAILED', `${f.path} does not match If-Match`);
      }
      let released: Replica[] = [];
      let id: number;
      if (current) {
        if (f.mustNotExist) throw new SluiceError('EXISTS', `${f.path} already exists`);
        if (current.type === 'DIR') throw new SluiceError('IS_A_DIRECTORY', `${f.path} is a directory`);
        f.beforeOverwrite?.(toEntry(current));
        released = (this.q.replicasOf.all(current.id) as ReplicaRow[]).map(toReplica);
        this.q.deleteReplicas.run(current.id);
        this.q.updateContent.run({
          id: current.id,
          size: f.size,
          mtime: now,
          adler32: f.checksums.adler32 ?? null,
          md5: f.checksums.md5 ?? null,
          sha256: f.checksums.sha256 ?? null,
          content_type: f.contentType ?? current.content_type,
          etag: newEtag(),
        });
        id = current.id;
      } else {
        const info = this.q.insertEntry.run(
          this.row({
            path: f.path,
            type: 'REGULAR',
            owner: f.owner,
            mode: f.mode,
            now,
            size: f.size,
            checksums: f.checksums,
            contentType: f.contentType,
          }),
        );
        id = Number(info.lastInsertRowid);
        this.q.touchDir.run(now, parentOf(f.path));
      }
      this.q.insertReplica.run(id, f.replica.se, f.replica.location, 'AVAILABLE', now);
      const entry = toEntry(this.getRow(f.path)!);
      events.push(...nsEvents.fileWritten(entry, !current, f.activation));
      return { entry, created: !current, released };
    });
  }

  async remove(path: NsPath, opts: { ifMatch?: string[] } = {}): Promise<{ removed: Entry[]; released: Replica[] }> {
    if (path === '/') throw new SluiceError('FORBIDDEN', 'the root cannot be removed');
    return this.transact((events) => {
      const row = this.getRow(path);
      if (!row) throw new SluiceError('NOT_FOUND', `${path} does not exist`);
      if (opts.ifMatch && !opts.ifMatch.includes(row.etag)) throw new SluiceError('PRECONDITION_FAILED', `${path} does not match If-Match`);
      const [lo, hi] = below(path);
      const removed = [toEntry(row), ...(this.q.descendants.all(lo, hi) as EntryRow[]).map(toEntry)];
      const released = this.releasedBelow(path);
      this.q.deleteTree.run(path, lo, hi);
      this.q.touchDir.run(Date.now(), parentOf(path));
      events.push(...nsEvents.removed(removed));
      return { removed, released };
    });
  }

  async move(from: NsPath, to: NsPath, opts: { overwrite: boolean }) {
    if (from === '/' || to === '/') throw new SluiceError('FORBIDDEN', 'the root cannot be moved or replaced');
    if (to === from) throw new SluiceError('FORBIDDEN', 'source and destination are the same');
    if (to.startsWith(from + '/')) throw new SluiceError('CONFLICT', 'cannot move a directory into itself');
    return this.transact((events) => {
      const src = this.getRow(from);
      if (!src) throw new SluiceError('NOT_FOUND', `${from} does not exist`);
      this.requireDirRow(parentOf(to), 'destination parent');
      const existing = this.getRow(to);
      let released: Replica[] = [];
      if (existing) {
        if (!opts.overwrite) throw new SluiceError('PRECONDITION_FAILED', `${to} exists and Overwrite is F`);
        const [lo, hi] = below(to);
        const removed = [toEntry(existing), ...(this.q.descendants.all(lo, hi) as EntryRow[]).map(toEntry)];
        released = this.releasedBelow(to);
        this.q.deleteTree.run(to, lo, hi);
        events.push(...nsEvents.removed(removed));
      }
      const now = Date.now();
      this.q.renameOne.run(to, parentOf(to), nameOf(to), now, src.id);
      if (src.type === 'DIR') {
        const [lo, hi] = below(from);
        this.q.renameBelow.run(to, from.length + 1, to, from.length + 1, lo, hi);
      }
      this.q.touchDir.run(now, parentOf(from));
      this.q.touchDir.run(now, parentOf(to));
      const entry = toEntry(this.getRow(to)!);
      events.push(...nsEvents.moved(entry, from, to, randomBytes(4).readUInt32BE(0).toString()));
      return { entry, replacedTarget: existing !== undefined, released };
    });
  }

  async commitCopy(items: CopyItem[], opts: { overwrite: boolean; owner: string }) {
    return this.transact((events) => {
      const first = items[0];
      if (!first) throw new SluiceError('BAD_REQUEST', 'nothing to copy');
      const root = first.target;
      this.requireDirRow(parentOf(root), 'destination parent');
      const existing = this.getRow(root);
      let released: Replica[] = [];
      if (existing) {
        if (!opts.overwrite) throw new SluiceError('PRECONDITION_FAILED', `${root} exists and Overwrite is F`);
        const [lo, hi] = below(root);
        const removed = [toEntry(existing), ...(this.q.descendants.all(lo, hi) as EntryRow[]).map(toEntry)];
        released = this.releasedBelow(root);
        this.q.deleteTree.run(root, lo, hi);
        events.push(...nsEvents.removed(removed));
      }
      const now = Date.now();
      for (const item of items) {
        const s = item.source;
        const info = this.q.insertEntry.run(
          this.row({
            path: item.target,
            type: s.type,
            owner: opts.owner,
            mode: s.mode,
            now,
            size: s.size,
            checksums: s.checksums,
            contentType: s.contentType,
          }),
        );
        const id = Number(info.lastInsertRowid);
        const srcRow = this.getRow(s.path);
        if (srcRow) {
          this.q.copyDeadProps.run(id, srcRow.id);
          this.q.setAttrs.run(srcRow.labels, srcRow.xattrs, now, id);
        }
        if (item.replica) this.q.insertReplica.run(id, item.replica.se, item.replica.location, 'AVAILABLE', now);
        const entry = toEntry(this.getRow(item.target)!);
        events.push(...(entry.type === 'DIR' ? nsEvents.directoryCreated(entry) : nsEvents.fileWritten(entry, true)));
      }
      this.q.touchDir.run(now, parentOf(root));
      return { replacedTarget: existing !== undefined, released };
    });
  }

  async changeAttributes(path: NsPath, change: AttributeChange): Promise<Entry> {
    return this.transact((events) => {
      const row = this.getRow(path);
      if (!row) throw new SluiceError('NOT_FOUND', `${path} does not exist`);
      const labels = new Set(JSON.parse(row.labels) as string[]);
      for (const l of change.addLabels ?? []) labels.add(l);
      for (const l of change.removeLabels ?? []) labels.delete(l);
      const xattrs = JSON.parse(row.xattrs) as Record<string, string>;
      Object.assign(xattrs, change.setXattrs ?? {});
      for (const k of change.removeXattrs ?? []) delete xattrs[k];
      this.q.setAttrs.run(JSON.stringify([...labels].sort()), JSON.stringify(xattrs), Date.now(), row.id);
      for (const p of change.setDeadProps ?? []) this.q.putDeadProp.run(row.id, p.ns, p.name, p.xml);
      for (const p of change.removeDeadProps ?? []) this.q.delDeadProp.run(row.id, p.ns, p.name);
      const entry = toEntry(this.getRow(path)!);
      events.push(...nsEvents.attributesChanged(entry));
      return entry;
    });
  }

  async deadProperties(path: NsPath): Promise<DeadProperty[]> {
    const row = this.getRow(path);
    if (!row) return [];
    return this.q.deadProps.all(row.id) as DeadProperty[];
  }

  async recordChecksum(path: NsPath, etag: string, c: Checksums): Promise<void> {
    this.q.setChecksums.run(c.adler32 ?? null, c.md5 ?? null, c.sha256 ?? null, path, etag);
  }

  async locationsOn(se: string): Promise<Set<string>> {
    return new Set((this.q.locationsOn.all(se) as { location: string }[]).map((r) => r.location));
  }
}
