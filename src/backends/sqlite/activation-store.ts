// Activation records in SQLite. Finished records are buffered and written in one transaction per
// batch, so thousands of calls a second cost one commit each few milliseconds, not one each; a
// record an API caller was promised (an accepted async call) is written and synced at once.
import type { Db } from './database.js';
import type { WalSync } from './wal-sync.js';
import type { ActivationFilter, ActivationStore } from '../../functions/activation-store.js';
import type { Activation } from '../../functions/types.js';

const BATCH_DELAY_MS = 10;
const BATCH_MAX = 1000;

export class SqliteActivationStore implements ActivationStore {
  private readonly pending = new Map<string, Activation>();
  private timer: NodeJS.Timeout | undefined;
  private readonly q;
  private readonly writeBatch: (rows: Activation[]) => void;

  constructor(
    private readonly db: Db,
    private readonly wal?: WalSync,
  ) {
    this.q = {
      upsert: db.prepare(
        `INSERT INTO activations (id, function, version, seq, status, subject, cause, cold, queued_at, ended_at, key, record)
         VALUES (@id, @function, @version, @seq, @status, @subject, @cause, @cold, @queuedAt, @endedAt, @key, @record)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, cold = excluded.cold, ended_at = excluded.ended_at, record = excluded.record`,
      ),
      get: db.prepare('SELECT record FROM activations WHERE id = ?'),
      byKey: db.prepare(`SELECT record FROM activations WHERE key = ? AND status = 'success' LIMIT 1`),
      unfinished: db.prepare(`SELECT record FROM activations WHERE status IN ('queued', 'running') ORDER BY id`),
      prune: db.prepare(`DELETE FROM activations WHERE ended_at IS NOT NULL AND ended_at < ?`),
    };
    this.writeBatch = db.transaction((rows: Activation[]) => {
      for (const a of rows) this.q.upsert.run(this.row(a));
    });
  }

  private row(a: Activation) {
    return {
      id: a.id,
      function: a.function,
      version: a.version,
      seq: a.seq,
      status: a.status,
      subject: a.subject,
      cause: a.cause,
      cold: a.cold ? 1 : 0,
      queuedAt: Date.parse(a.queuedAt),
      endedAt: a.endedAt ? Date.parse(a.endedAt) : null,
      key: a.key ?? null,
      record: JSON.stringify(a),
    };
  }

  save(activation: Activation): void {
    this.pending.set(activation.id, activation);
    if (this.pending.size >= BATCH_MAX) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), BATCH_DELAY_MS);
  }

  async saveDurable(activation: Activation): Promise<void> {
    this.pending.set(activation.id, activation);
    this.flush();
    await this.wal?.durable();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const rows = [...this.pending.values()];
    this.pending.clear();
    this.writeBatch(rows);
  }

  get(id: string): Activation | undefined {
    const buffered = this.pending.get(id);
    if (buffered) return buffered;
    const row = this.q.get.get(id) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as Activation) : undefined;
  }

  succeededWithKey(key: string): Activation | undefined {
    for (const a of this.pending.values()) if (a.key === key && a.status === 'success') return a;
    const row = this.q.byKey.get(key) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as Activation) : undefined;
  }

  list(filter: ActivationFilter): Activation[] {
    // Buffered records are newer than anything on disk; writing them first keeps one code path.
    this.flush();
    const where: string[] = [];
    const args: (string | number)[] = [];
    const add = (clause: string, value: string | undefined) => {
      if (value === undefined) return;
      where.push(clause);
      args.push(value);
    };
    add('function = ?', filter.function);
    add('status = ?', filter.status);
    add('subject = ?', filter.subject);
    add('id < ?', filter.before);
    const sql = `SELECT record FROM activations ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, filter.limit) as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as Activation);
  }

  unfinished(): Activation[] {
    this.flush();
    return (this.q.unfinished.all() as { record: string }[]).map((r) => JSON.parse(r.record) as Activation);
  }

  prune(endedBefore: number): number {
    this.flush();
    return this.q.prune.run(endedBefore).changes;
  }
}
