// SQLite adapter of the event log: the events table written inside namespace transactions,
// with in-process wake-ups once a transaction that appended events has committed.
import { EventEmitter } from 'node:events';
import type { Db } from './database.js';
import type { EventLog } from '../../events/event-log.js';
import type { EventId, NewStorageEvent, RecordedFlag, StorageEvent } from '../../events/types.js';

interface EventRow {
  id: number;
  time: number;
  type: string;
  path: string;
  is_dir: number;
  cookie: string | null;
  data: string | null;
}

function fromRow(r: EventRow): StorageEvent {
  const e: StorageEvent = { id: r.id as EventId, time: r.time, type: r.type as RecordedFlag, path: r.path, isDir: r.is_dir === 1 };
  if (r.cookie !== null) e.cookie = r.cookie;
  if (r.data !== null) e.data = JSON.parse(r.data) as Record<string, unknown>;
  return e;
}

export class SqliteEventLog implements EventLog {
  private readonly emitter = new EventEmitter();
  private readonly insert;
  private readonly selectAfter;
  private readonly selectHead;
  private readonly selectOldest;
  private readonly deleteBefore;
  private readonly selectPosition;
  private readonly upsertPosition;
  private pendingHead = 0;
  private announcedHead = 0;

  constructor(private readonly db: Db) {
    this.emitter.setMaxListeners(0);
    this.insert = db.prepare('INSERT INTO events (time, type, path, is_dir, cookie, data) VALUES (?, ?, ?, ?, ?, ?)');
    this.selectAfter = db.prepare('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?');
    this.selectHead = db.prepare("SELECT seq AS head FROM sqlite_sequence WHERE name = 'events'");
    this.selectOldest = db.prepare('SELECT MIN(id) AS oldest FROM events');
    this.deleteBefore = db.prepare('DELETE FROM events WHERE time < ?');
    this.selectPosition = db.prepare('SELECT position FROM consumer_positions WHERE name = ?');
    this.upsertPosition = db.prepare(
      'INSERT INTO consumer_positions (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = MAX(position, excluded.position)',
    );
  }

  async position(consumer: string): Promise<number> {
    return (this.selectPosition.get(consumer) as { position: number } | undefined)?.position ?? 0;
  }

  async savePosition(consumer: string, position: number): Promise<void> {
    this.upsertPosition.run(consumer, position);
  }

  /** Appends inside the caller's open transaction; call `committed()` after it commits. */
  appendInTransaction(events: readonly NewStorageEvent[], time = Date.now()): void {
    for (const e of events) {
      const info = this.insert.run(time, e.type, e.path, e.isDir ? 1 : 0, e.cookie ?? null, e.data ? JSON.stringify(e.data) : null);
      this.pendingHead = Number(info.lastInsertRowid);
    }
  }

  /** The head appended by the transaction that just committed (0 if none); resets it. */
  takePendingHead(): number {
    const head = this.pendingHead;
    this.pendingHead = 0;
    return head;
  }

  /** Wakes consumers once a commit that appended events up to `head` is durable. */
  committed(head: number): void {
    if (head === 0) return;
    // Commits can become durable out of order (group commit): never announce a smaller head.
    if (head <= this.announcedHead) return;
    this.announcedHead = head;
    this.emitter.emit('append', head as EventId);
  }

  /** Forgets events of a transaction that rolled back. */
  rolledBack(): void {
    this.pendingHead = 0;
  }

  async read(afterId: number, limit: number): Promise<StorageEvent[]> {
    return this.readSync(afterId, limit);
  }

  readSync(afterId: number, limit: number): StorageEvent[] {
    return (this.selectAfter.all(afterId, limit) as EventRow[]).map(fromRow);
  }

  async head(): Promise<number> {
    return this.headSync();
  }

  headSync(): number {
    const row = this.selectHead.get() as { head: number } | undefined;
    return row?.head ?? 0;
  }

  async oldest(): Promise<number> {
    const row = this.selectOldest.get() as { oldest: number | null };
    return row.oldest ?? this.headSync() + 1;
  }

  onAppend(listener: (head: EventId) => void): () => void {
    this.emitter.on('append', listener);
    return () => this.emitter.off('append', listener);
  }

  async prune(olderThan: number): Promise<number> {
    return this.deleteBefore.run(olderThan).changes;
  }
}
