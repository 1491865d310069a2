// Triggers, deliveries, pipelines and runs in SQLite. Delivery updates are many and small: they are
// written in batches (one transaction per few milliseconds); a crash may lose the last batch, which
// only means a delivery is tried again — the (trigger, event) key keeps it from being recorded twice.
import type { Db } from './database.js';
import { SluiceError } from '../../errors.js';
import type { DeliveryCounts, TriggerStore } from '../../triggers/trigger-store.js';
import type { Delivery, DeliveryStatus, Pipeline, PipelineRun, Trigger } from '../../triggers/types.js';

interface TriggerRow {
  id: string;
  name: string;
  owner: string;
  enabled: number;
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

const BATCH_DELAY_MS = 5;

function toTrigger(r: TriggerRow): Trigger {
  const spec = JSON.parse(r.spec) as Omit<Trigger, 'id' | 'name' | 'owner' | 'enabled' | 'position' | 'created'>;
  return {
    ...spec,
    id: r.id,
    name: r.name,
    owner: r.owner,
    enabled: r.enabled === 1,
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

export class SqliteTriggerStore implements TriggerStore {
  private readonly q;
  private readonly pendingUpdates = new Map<string, Delivery>();
  private timer: NodeJS.Timeout | undefined;
  private readonly writeUpdates: (rows: Delivery[]) => void;
  private readonly advanceTx: (triggerId: string, position: number, matched: { event: number; path: string }[]) => void;

  /**
   * @param writeFirst called before each batch of delivery updates: a delivery marked succeeded must
   *   not reach the disk before the activation it names (the activation store's batch goes first).
   */
  constructor(
    private readonly db: Db,
    private readonly writeFirst?: () => void,
  ) {
    this.q = {
      insert: db.prepare('INSERT INTO triggers (id, name, owner, enabled, position, created, spec) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      byId: db.prepare('SELECT * FROM triggers WHERE id = ? OR name = ?'),
      all: db.prepare('SELECT * FROM triggers ORDER BY name'),
      enable: db.prepare('UPDATE triggers SET enabled = ? WHERE id = ?'),
      remove: db.prepare('DELETE FROM triggers WHERE id = ?'),
      position: db.prepare('UPDATE triggers SET position = ? WHERE id = ? AND position < ?'),
      insertDelivery: db.prepare(
        `INSERT INTO trigger_deliveries (trigger_id, event_id, path, status, attempts, not_before, updated)
         VALUES (?, ?, ?, 'pending', 0, 0, ?) ON CONFLICT DO NOTHING`,
      ),
      open: db.prepare(`SELECT * FROM trigger_deliveries WHERE trigger_id = ? AND status IN ('pending', 'running') ORDER BY event_id`),
      updateDelivery: db.prepare(
        `UPDATE trigger_deliveries SET status = @status, attempts = @attempts, not_before = @notBefore, activation = @activation,
         last_error = @lastError, updated = @updated WHERE trigger_id = @trigger AND event_id = @event`,
      ),
      dead: db.prepare(`SELECT * FROM trigger_deliveries WHERE trigger_id = ? AND status = 'dead' ORDER BY event_id LIMIT ?`),
      counts: db.prepare('SELECT status, COUNT(*) AS n FROM trigger_deliveries WHERE trigger_id = ? GROUP BY status'),
      savePipeline: db.prepare(
        'INSERT INTO pipelines (name, owner, created, spec) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, spec = excluded.spec',
      ),
      getPipeline: db.prepare('SELECT * FROM pipelines WHERE name = ?'),
      allPipelines: db.prepare('SELECT * FROM pipelines ORDER BY name'),
      removePipeline: db.prepare('DELETE FROM pipelines WHERE name = ?'),
      saveRun: db.prepare(
        'INSERT INTO pipeline_runs (id, pipeline, status, created, record) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, record = excluded.record',
      ),
      getRun: db.prepare('SELECT record FROM pipeline_runs WHERE id = ?'),
      runs: db.prepare('SELECT record FROM pipeline_runs WHERE pipeline = ? ORDER BY created DESC, id DESC LIMIT ?'),
    };
    this.writeUpdates = db.transaction((rows: Delivery[]) => {
      for (const d of rows) {
        this.q.updateDelivery.run({ ...d, activation: d.activation ?? null, lastError: d.lastError ?? null });
      }
    });
    this.advanceTx = db.transaction((triggerId: string, position: number, matched: { event: number; path: string }[]) => {
      const now = Date.now();
      for (const m of matched) this.q.insertDelivery.run(triggerId, m.event, m.path, now);
      this.q.position.run(position, triggerId, position);
    });
  }

  async create(t: Trigger): Promise<void> {
    const { id, name, owner, enabled, position, created, ...spec } = t;
    try {
      this.q.insert.run(id, name, owner, enabled ? 1 : 0, position, Date.parse(created), JSON.stringify(spec));
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new SluiceError('CONFLICT', `a trigger named ${name} exists`);
      throw e;
    }
  }

  async get(idOrName: string): Promise<Trigger | undefined> {
    const row = this.q.byId.get(idOrName, idOrName) as TriggerRow | undefined;
    return row ? toTrigger(row) : undefined;
  }

  async list(): Promise<Trigger[]> {
    return (this.q.all.all() as TriggerRow[]).map(toTrigger);
  }

  async setEnabled(id: string, enabled: boolean): Promise<void> {
    this.q.enable.run(enabled ? 1 : 0, id);
  }

  async remove(id: string): Promise<void> {
    this.flush();
    this.q.remove.run(id);
  }

  async advance(triggerId: string, position: number, matched: { event: number; path: string }[]): Promise<void> {
    this.advanceTx(triggerId, position, matched);
  }

  async open(triggerId: string): Promise<Delivery[]> {
    this.flush();
    return (this.q.open.all(triggerId) as DeliveryRow[]).map(toDelivery);
  }

  async update(d: Delivery): Promise<void> {
    this.pendingUpdates.set(`${d.trigger}/${d.event}`, { ...d });
    this.timer ??= setTimeout(() => this.flush(), BATCH_DELAY_MS);
  }

  async updateNow(d: Delivery): Promise<void> {
    this.pendingUpdates.set(`${d.trigger}/${d.event}`, { ...d });
    this.flush();
  }

  /** Writes buffered delivery updates now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pendingUpdates.size === 0) return;
    this.writeFirst?.();
    const rows = [...this.pendingUpdates.values()];
    this.pendingUpdates.clear();
    this.writeUpdates(rows);
  }

  async deadLetters(triggerId: string, limit: number): Promise<Delivery[]> {
    this.flush();
    return (this.q.dead.all(triggerId, limit) as DeliveryRow[]).map(toDelivery);
  }

  async replay(triggerId: string, events?: number[]): Promise<Delivery[]> {
    this.flush();
    const dead = (this.q.dead.all(triggerId, 1_000_000) as DeliveryRow[]).map(toDelivery);
    const chosen = events ? dead.filter((d) => events.includes(d.event)) : dead;
    const now = Date.now();
    const revived = chosen.map((d) => ({ ...d, status: 'pending' as const, attempts: 0, notBefore: 0, updated: now }));
    this.writeUpdates(revived);
    return revived;
  }

  async counts(triggerId: string): Promise<DeliveryCounts> {
    this.flush();
    const counts: DeliveryCounts = { pending: 0, running: 0, succeeded: 0, dead: 0 };
    for (const r of this.q.counts.all(triggerId) as { status: DeliveryStatus; n: number }[]) counts[r.status] = r.n;
    return counts;
  }

  async savePipeline(p: Pipeline): Promise<void> {
    const { name, owner, created, ...spec } = p;
    this.q.savePipeline.run(name, owner, Date.parse(created), JSON.stringify(spec));
  }

  async getPipeline(name: string): Promise<Pipeline | undefined> {
    const r = this.q.getPipeline.get(name) as { name: string; owner: string; created: number; spec: string } | undefined;
    return r
      ? {
          ...(JSON.parse(r.spec) as Omit<Pipeline, 'name' | 'owner' | 'created'>),
          name: r.name,
          owner: r.owner,
          created: new Date(r.created).toISOString(),
        }
      : undefined;
  }

  async listPipelines(): Promise<Pipeline[]> {
    const rows = this.q.allPipelines.all() as { name: string; owner: string; created: number; spec: string }[];
    return rows.map((r) => ({
      ...(JSON.parse(r.spec) as Omit<Pipeline, 'name' | 'owner' | 'created'>),
      name: r.name,
      owner: r.owner,
      created: new Date(r.created).toISOString(),
    }));
  }

  async removePipeline(name: string): Promise<boolean> {
    return this.q.removePipeline.run(name).changes > 0;
  }

  async saveRun(run: PipelineRun): Promise<void> {
    this.q.saveRun.run(run.id, run.pipeline, run.status, Date.parse(run.created), JSON.stringify(run));
  }

  async getRun(id: string): Promise<PipelineRun | undefined> {
    const r = this.q.getRun.get(id) as { record: string } | undefined;
    return r ? (JSON.parse(r.record) as PipelineRun) : undefined;
  }

  async listRuns(pipeline: string, limit: number): Promise<PipelineRun[]> {
    return (this.q.runs.all(pipeline, limit) as { record: string }[]).map((r) => JSON.parse(r.record) as PipelineRun);
  }
}
