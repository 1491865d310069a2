// Triggers, deliveries, pipelines and runs on PostgreSQL (tables in trigger-tables.ts), the
// scale-out twin of the SQLite adapter. Delivery updates are many and small: as there, they are
// buffered and written in batches, one statement every few milliseconds. Losing a batch (a crash, a
// database that stays away) only means a delivery is tried again: its activation carries the
// (trigger, event) idempotency key, so recovery finds a call that had succeeded. What must not be
// lost or reordered is kept so:
// - `updateNow` returns only once its row (and every update buffered before it) is committed, so a
//   pipeline run is named by its delivery before the run can be recorded as a success;
// - batches and replays are written one after another, never two at once on two connections, so a
//   later state of a delivery is never overwritten by an earlier one committing late;
// - `writeFirst` is awaited before each batch: the activations the batch's deliveries name are
//   recorded before a delivery can say it succeeded.
// A batch that fails because the database is unreachable is kept and tried again with backoff.
import type { Logger } from 'pino';
import type { QueryResultRow } from 'pg';
import { inTransaction, translatePgError } from './database.js';
import type { PgClient, PgPool } from './database.js';
import { SluiceError } from '../../errors.js';
import type { DeliveryCounts, TriggerStore } from '../../triggers/trigger-store.js';
import type { Delivery, DeliveryStatus, Pipeline, PipelineRun, Trigger } from '../../triggers/types.js';

interface TriggerRow {
  id: string;
  name: string;
  owner: string;
  enabled: boolean;
  position: number;
  created: number;
  spec: string;
}

interface DeliveryRow {
  trigger_id: string;
  event_id: number;
  path: string;
  status: DeliveryStatus;
  attempts: number;
  not_before: number;
  activation: string | null;
  last_error: string | null;
  updated: number;
}

interface PipelineRow {
  name: string;
  owner: string;
  created: number;
  spec: string;
}

export interface PgTriggerStoreOptions {
  /**
   * Awaited before each batch of delivery updates is written: a delivery marked succeeded must not
   * be committed before the activation it names (the activation store's batch goes first).
   */
  writeFirst?: () => void | Promise<void>;
  /** Where failed background batches are reported. */
  log?: Logger;
}

const BATCH_DELAY_MS = 5;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 10_000;

function toTrigger(r: TriggerRow): Trigger {
  const spec = JSON.parse(r.spec) as Omit<Trigger, 'id' | 'name' | 'owner' | 'enabled' | 'position' | 'created'>;
  return {
    ...spec,
    id: r.id,
    name: r.name,
    owner: r.owner,
    enabled: r.enabled,
    position: r.position,
    created: new Date(r.created).toISOString(),
  };
}

function toDelivery(r: DeliveryRow): Delivery {
  return {
    trigger: r.trigger_id,
    event: r.event_id,
    path: r.path,
    status: r.status,
    attempts: r.attempts,
    notBefore: r.not_before,
    ...(r.activation ? { activation: r.activation } : {}),
    ...(r.last_error ? { lastError: r.last_error } : {}),
    updated: r.updated,
  };
}

function toPipeline(r: PipelineRow): Pipeline {
  return {
    ...(JSON.parse(r.spec) as Omit<Pipeline, 'name' | 'owner' | 'created'>),
    name: r.name,
    owner: r.owner,
    created: new Date(r.created).toISOString(),
  };
}

/**
 * PostgreSQL text cannot hold NUL; an error message from a function may. Replaced rather than
 * refused: one such message must not keep a whole batch from being written.
 */
const storable = (s: string | undefined): string | null => (s === undefined ? null : s.replaceAll('\0', '\uFFFD'));

const keyOf = (d: Pick<Delivery, 'trigger' | 'event'>): string => `${d.trigger}/${d.event}`;

/** Failures worth trying the same batch again for: the database is away, or the statement lost a race. */
function transient(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'UNAVAILABLE' || code === '40001' || code === '40P01';
}

const UPDATE_BATCH = `
  UPDATE trigger_deliveries t SET status = u.status, attempts = u.attempts, not_before = u.not_before,
    activation = u.activation, last_error = u.last_error, updated = u.updated
  FROM unnest($1::text[], $2::bigint[], $3::text[], $4::integer[], $5::bigint[], $6::text[], $7::text[], $8::bigint[])
    AS u(trigger_id, event_id, status, attempts, not_before, activation, last_error, updated)
  WHERE t.trigger_id = u.trigger_id AND t.event_id = u.event_id`;

export class PgTriggerStore implements TriggerStore {
  /** Delivery updates not written yet, the latest per delivery. */
  private readonly buffered = new Map<string, Delivery>();
  private timer: NodeJS.Timeout | undefined;
  /** The tail of the delivery writes, run one after another. */
  private writing: Promise<unknown> = Promise.resolve();
  private retryMs = RETRY_MIN_MS;
  private closed = false;

  constructor(
    private readonly pool: PgPool,
    private readonly opts: PgTriggerStoreOptions = {},
  ) {}

  /** A statement on the pool; a lost database shows as UNAVAILABLE. */
  private async query<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    try {
      return (await this.pool.query<R>(sql, params)).rows;
    } catch (e) {
      throw translatePgError(e);
    }
  }

  private async transaction<T>(fn: (c: PgClient) => Promise<T>): Promise<T> {
    try {
      return await inTransaction(this.pool, fn);
    } catch (e) {
      throw translatePgError(e);
    }
  }

  /** Runs fn after every delivery write queued before it has ended (committed or failed). */
  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writing.then(fn, fn);
    this.writing = run.catch(() => undefined);
    return run;
  }

  async create(t: Trigger): Promise<void> {
    const { id, name, owner, enabled, position, created, ...spec } = t;
    try {
      await this.pool.query(
        'INSERT INTO triggers (id, name, owner, enabled, position, created, spec) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [id, name, owner, enabled, position, Date.parse(created), JSON.stringify(spec)],
      );
    } catch (e) {
      if ((e as { code?: string }).code === '23505') {
        const what = (e as { constraint?: string }).constraint === 'triggers_name_key' ? `named ${name}` : id;
        throw new SluiceError('CONFLICT', `a trigger ${what} exists`);
      }
      throw translatePgError(e);
    }
  }

  async get(idOrName: string): Promise<Trigger | undefined> {
    const [row] = await this.query<TriggerRow>('SELECT * FROM triggers WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1', [
      idOrName,
    ]);
    return row ? toTrigger(row) : undefined;
  }

  async list(): Promise<Trigger[]> {
    return (await this.query<TriggerRow>('SELECT * FROM triggers ORDER BY name')).map(toTrigger);
  }

  async setEnabled(id: string, enabled: boolean): Promise<void> {
    await this.query('UPDATE triggers SET enabled = $2 WHERE id = $1', [id, enabled]);
  }

  async remove(id: string): Promise<void> {
    await this.flush();
    await this.query('DELETE FROM triggers WHERE id = $1', [id]);
  }

  async advance(triggerId: string, position: number, matched: { event: number; path: string }[]): Promise<void> {
    await this.transaction(async (c) => {
      // The trigger's row, locked: advances of one trigger (even from two nodes) take turns, and a
      // trigger removed meanwhile gets no deliveries (rather than a foreign key error).
      const trigger = await c.query('SELECT 1 FROM triggers WHERE id = $1 FOR UPDATE', [triggerId]);
      if (trigger.rowCount === 0) return;
      if (matched.length > 0) {
        await c.query(
          `INSERT INTO trigger_deliveries (trigger_id, event_id, path, status, attempts, not_before, updated)
           SELECT $1, m.event_id, m.path, 'pending', 0, 0, $4 FROM unnest($2::bigint[], $3::text[]) AS m(event_id, path)
           ON CONFLICT DO NOTHING`,
          [triggerId, matched.map((m) => m.event), matched.map((m) => m.path), Date.now()],
        );
      }
      await c.query('UPDATE triggers SET position = $2 WHERE id = $1 AND position < $2', [triggerId, position]);
    });
  }

  async open(triggerId: string): Promise<Delivery[]> {
    await this.flush();
    const rows = await this.query<DeliveryRow>(
      `SELECT * FROM trigger_deliveries WHERE trigger_id = $1 AND status IN ('pending', 'running') ORDER BY event_id`,
      [triggerId],
    );
    return rows.map(toDelivery);
  }

  async update(d: Delivery): Promise<void> {
    this.buffered.set(keyOf(d), { ...d });
    this.schedule(BATCH_DELAY_MS);
  }

  async updateNow(d: Delivery): Promise<void> {
    this.buffered.set(keyOf(d), { ...d });
    await this.flush();
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush().catch((err: unknown) => {
        if (this.buffered.size === 0) return; // dropped, and reported, by writeBuffered
        this.opts.log?.warn({ err, pending: this.buffered.size, retryMs: this.retryMs }, 'delivery updates not written yet; retrying');
        this.schedule(this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      });
    }, delayMs);
  }

  /** Writes the buffered delivery updates now (after any write under way); rejects if they could not be. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.serially(() => this.writeBuffered());
  }

  private async writeBuffered(): Promise<void> {
    if (this.buffered.size === 0) return;
    // Taken before writeFirst: every activation these rows name was handed to its store before it runs.
    const rows = [...this.buffered.values()];
    this.buffered.clear();
    try {
      await this.opts.writeFirst?.();
      await this.query(UPDATE_BATCH, [
        rows.map((d) => d.trigger),
        rows.map((d) => d.event),
        rows.map((d) => d.status),
        rows.map((d) => d.attempts),
        rows.map((d) => d.notBefore),
        rows.map((d) => storable(d.activation)),
        rows.map((d) => storable(d.lastError)),
        rows.map((d) => d.updated),
      ]);
      this.retryMs = RETRY_MIN_MS;
    } catch (e) {
      if (transient(e)) {
        // Kept for the next write, unless a newer state of the same delivery came meanwhile.
        for (const d of rows) if (!this.buffered.has(keyOf(d))) this.buffered.set(keyOf(d), d);
      } else {
        this.opts.log?.error(
          { err: e, deliveries: rows.map(keyOf) },
          'delivery updates could not be written and are dropped; the deliveries are tried again after a restart',
        );
      }
      throw e;
    }
  }

  /** Writes what is buffered and stops the batch timer; the pool stays with its owner. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  async deadLetters(triggerId: string, limit: number): Promise<Delivery[]> {
    await this.flush();
    const rows = await this.query<DeliveryRow>(
      `SELECT * FROM trigger_deliveries WHERE trigger_id = $1 AND status = 'dead' ORDER BY event_id LIMIT $2`,
      [triggerId, limit],
    );
    return rows.map(toDelivery);
  }

  async replay(triggerId: string, events?: number[]): Promise<Delivery[]> {
    await this.flush();
    const rows = await this.serially(() =>
      this.query<DeliveryRow>(
        `UPDATE trigger_deliveries SET status = 'pending', attempts = 0, not_before = 0, updated = $3
         WHERE trigger_id = $1 AND status = 'dead' AND ($2::bigint[] IS NULL OR event_id = ANY ($2::bigint[]))
         RETURNING *`,
        [triggerId, events ?? null, Date.now()],
      ),
    );
    return rows.map(toDelivery).sort((a, b) => a.event - b.event);
  }

  async counts(triggerId: string): Promise<DeliveryCounts> {
    await this.flush();
    const counts: DeliveryCounts = { pending: 0, running: 0, succeeded: 0, dead: 0 };
    const rows = await this.query<{ status: DeliveryStatus; n: number }>(
      'SELECT status, COUNT(*) AS n FROM trigger_deliveries WHERE trigger_id = $1 GROUP BY status',
      [triggerId],
    );
    for (const r of rows) counts[r.status] = r.n;
    return counts;
  }

  async savePipeline(p: Pipeline): Promise<void> {
    const { name, owner, created, ...spec } = p;
    await this.query(
      `INSERT INTO pipelines (name, owner, created, spec) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, spec = excluded.spec`,
      [name, owner, Date.parse(created), JSON.stringify(spec)],
    );
  }

  async getPipeline(name: string): Promise<Pipeline | undefined> {
    const [row] = await this.query<PipelineRow>('SELECT * FROM pipelines WHERE name = $1', [name]);
    return row ? toPipeline(row) : undefined;
  }

  async listPipelines(): Promise<Pipeline[]> {
    return (await this.query<PipelineRow>('SELECT * FROM pipelines ORDER BY name')).map(toPipeline);
  }

  async removePipeline(name: string): Promise<boolean> {
    return (await this.query('DELETE FROM pipelines WHERE name = $1 RETURNING name', [name])).length > 0;
  }

  async saveRun(run: PipelineRun): Promise<void> {
    await this.query(
      `INSERT INTO pipeline_runs (id, pipeline, status, created, record) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, record = excluded.record`,
      [run.id, run.pipeline, run.status, Date.parse(run.created), JSON.stringify(run)],
    );
  }

  async getRun(id: string): Promise<PipelineRun | undefined> {
    const [row] = await this.query<{ record: string }>('SELECT record FROM pipeline_runs WHERE id = $1', [id]);
    return row ? (JSON.parse(row.record) as PipelineRun) : undefined;
  }

  async listRuns(pipeline: string, limit: number): Promise<PipelineRun[]> {
    const rows = await this.query<{ record: string }>(
      'SELECT record FROM pipeline_runs WHERE pipeline = $1 ORDER BY created DESC, id DESC LIMIT $2',
      [pipeline, limit],
    );
    return rows.map((r) => JSON.parse(r.record) as PipelineRun);
  }
}
