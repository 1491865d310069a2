// One trigger as a durable consumer of the storage-event log. It reads from its own position, turns
// each matching event into a delivery (trigger, event) and moves the position in the same transaction,
// then runs deliveries on its target with a concurrency limit (optionally one at a time per path, in
// log order), retrying with exponential backoff and dead-lettering after the last attempt.
// After a crash, deliveries still open are taken up again; one whose activation had already succeeded
// is marked done without running it a second time.
import type { Logger } from 'pino';
import { parseScope, type Principal } from '../auth/scopes.js';
import { toCloudEvent } from '../events/cloudevents.js';
import type { EventLog } from '../events/event-log.js';
import type { EventId, StorageEvent } from '../events/types.js';
import type { Invoker } from '../functions/invoker.js';
import { parseFunctionRef } from '../functions/registry.js';
import type { Activation } from '../functions/types.js';
import type { Namespace } from '../storage/namespace.js';
import type { NsPath } from '../storage/paths.js';
import { compileFilter, type CompiledFilter } from './filter.js';
import type { PipelineRunner } from './pipelines.js';
import type { TriggerStore } from './trigger-store.js';
import type { Delivery, Trigger } from './types.js';

const READ_BATCH = 2000;

/** What a trigger may tell the catalogue (see catalog/); absent when the catalogue is not wired. */
export interface CatalogSink {
  annotate(
    path: string,
    key: string,
    metadata: unknown,
    producedBy: { function: string; version: string; activation: string },
    opts: { replace: boolean },
  ): Promise<unknown>;
}

export interface DispatcherDeps {
  store: TriggerStore;
  eventLog: EventLog;
  namespace: Namespace;
  invoker: Invoker;
  pipelines: PipelineRunner;
  catalog?: CatalogSink;
  /** CloudEvents `source` of this deployment. */
  source: string;
  newRunId(): string;
  log: Logger;
}

export function backoffMs(attempts: number, baseSeconds: number, maxSeconds: number): number {
  return Math.min(maxSeconds, baseSeconds * 2 ** Math.max(0, attempts - 1)) * 1000;
}

export class TriggerConsumer {
  private readonly filter: CompiledFilter;
  private readonly principal: Principal;
  private readonly ready: Delivery[] = [];
  private readonly events = new Map<number, StorageEvent>();
  private readonly busyPaths = new Set<string>();
  /** Ordered triggers: events waiting out a retry backoff, by path; later events of the path wait behind them. */
  private readonly retrying = new Map<string, Set<number>>();
  private inFlight = 0;
  private reading = false;
  private moreToRead = true;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly trigger: Trigger,
    private readonly deps: DispatcherDeps,
  ) {
    this.filter = compileFilter(trigger.filter);
    this.principal = {
      subject: trigger.owner,
      tokenId: `trigger:${trigger.id}`,
      scopes: [...trigger.scopes.map(parseScope), { kind: 'function.invoke' }],
    };
  }

  async start(): Promise<void> {
    // Open deliveries of a previous run: a call may have succeeded after their last recorded state.
    for (const d of await this.deps.store.open(this.trigger.id)) await this.recover(d);
    this.unsubscribe = this.deps.eventLog.onAppend(() => {
      this.moreToRead = true;
      this.pump();
    });
    this.pump();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.retrying.clear();
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  get load(): { inFlight: number; ready: number } {
    return { inFlight: this.inFlight, ready: this.ready.length };
  }

  /** Dead deliveries revived by a replay. */
  revive(deliveries: Delivery[]): void {
    for (const d of deliveries) this.schedule(d);
  }

  /**
   * A delivery left open by a previous run: done if a call for it already succeeded (found by its
   * idempotency key, or as a finished pipeline run), else tried again.
   */
  private async recover(d: Delivery): Promise<void> {
    const done = this.deps.invoker.succeededWithKey(this.keyOf(d));
    const run = !done && d.activation?.startsWith('run_') ? await this.deps.store.getRun(d.activation) : undefined;
    if (done || run?.status === 'succeeded') {
      await this.finish({ ...d, ...(done ? { activation: done.id } : {}) }, 'succeeded');
      return;
    }
    if (d.status === 'running')
      this.deps.log.info({ trigger: this.trigger.name, event: d.event }, 'delivery interrupted by a restart; trying again');
    this.schedule({ ...d, status: 'pending' });
  }

  private keyOf(d: Pick<Delivery, 'event'>): string {
    return `${this.trigger.id}/${d.event}`;
  }

  private schedule(d: Delivery): void {
    const wait = d.notBefore - Date.now();
    if (wait <= 0) {
      this.ready.push(d);
      if (this.ready.length > 1 && this.ready.at(-2)!.event > d.event) this.ready.sort((a, b) => a.event - b.event);
      this.pump();
      return;
    }
    const held = this.trigger.delivery.ordered ? (this.retrying.get(d.path) ?? new Set<number>()) : undefined;
    if (held) this.retrying.set(d.path, held.add(d.event));
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (held?.delete(d.event) && held.size === 0 && this.retrying.get(d.path) === held) this.retrying.delete(d.path);
      this.schedule({ ...d, notBefore: 0 });
    }, wait);
    t.unref();
    this.timers.add(t);
  }

  private pump(): void {
    if (this.stopped || !this.trigger.enabled) return;
    if (this.moreToRead && !this.reading && this.ready.length < READ_BATCH) void this.readMore();
    const limit = this.trigger.delivery.concurrency;
    for (let i = 0; i < this.ready.length && this.inFlight < limit;) {
      const d = this.ready[i]!;
      if (this.trigger.delivery.ordered && (this.busyPaths.has(d.path) || this.waitsBehindRetry(d))) {
        i++;
        continue;
      }
      this.ready.splice(i, 1);
      void this.deliver(d);
    }
  }

  /** Whether an earlier event of the same path is waiting out its backoff (ordered triggers). */
  private waitsBehindRetry(d: Delivery): boolean {
    const held = this.retrying.get(d.path);
    if (!held) return false;
    for (const e of held) if (e < d.event) return true;
    return false;
  }

  private async readMore(): Promise<void> {
    this.reading = true;
    try {
      while (!this.stopped) {
        const from = this.trigger.position;
        const events = await this.deps.eventLog.read(from, READ_BATCH);
        if (events.length === 0) {
          this.moreToRead = false;
          break;
        }
        if (events[0]!.id > from + 1 && from > 0) {
          const oldest = await this.deps.eventLog.oldest();
          if (oldest > from + 1) {
            this.deps.log.error({ trigger: this.trigger.name, from, oldest }, 'events were pruned before this trigger took them');
          }
        }
        const matched: StorageEvent[] = [];
        for (const e of events) if (this.filter.matches(e) && (await this.attributesMatch(e))) matched.push(e);
        const position = events.at(-1)!.id;
        await this.deps.store.advance(
          this.trigger.id,
          position,
          matched.map((e) => ({ event: e.id, path: e.path })),
        );
        this.trigger.position = position;
        const now = Date.now();
        for (const e of matched) {
          this.events.set(e.id, e);
          this.ready.push({
            trigger: this.trigger.id,
            event: e.id,
            path: e.path,
            status: 'pending',
            attempts: 0,
            notBefore: 0,
            updated: now,
          });
        }
        this.pump();
        if (events.length < READ_BATCH || this.ready.length >= READ_BATCH) {
          this.moreToRead = events.length === READ_BATCH;
          break;
        }
      }
    } catch (err) {
      this.deps.log.error({ err, trigger: this.trigger.name }, 'reading the event log failed; retrying in 1 s');
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.pump();
      }, 1000);
      this.timers.add(t);
    } finally {
      this.reading = false;
    }
  }

  private async attributesMatch(e: StorageEvent): Promise<boolean> {
    if (!this.filter.needsAttributesOf(e)) return true;
    // Only files the trigger's owner may read can match on their attributes.
    const entry = await this.deps.namespace.find(this.principal, e.path as NsPath).catch(() => undefined);
    if (!entry) return false;
    return this.filter.attributesMatch({ labels: entry.labels, xattrs: entry.xattrs, size: entry.size }, e);
  }

  private async eventOf(id: number): Promise<StorageEvent | undefined> {
    const cached = this.events.get(id);
    if (cached) return cached;
    const [e] = await this.deps.eventLog.read(id - 1, 1);
    return e && e.id === (id as EventId) ? e : undefined;
  }

  private async deliver(d: Delivery): Promise<void> {
    this.inFlight++;
    this.busyPaths.add(d.path);
    const attempt: Delivery = { ...d, status: 'running', attempts: d.attempts + 1, updated: Date.now() };
    try {
      const event = await this.eventOf(d.event);
      if (!event) {
        await this.finish(attempt, 'dead', `event ${d.event} is no longer in the log (pruned)`);
        return;
      }
      const input = { ...this.trigger.params, ...toCloudEvent(event, this.deps.source) };
      const outcome = await this.run(attempt, event, input);
      if (outcome.ok) {
        this.events.delete(d.event);
        await this.finish(attempt, 'succeeded');
      } else if (attempt.attempts >= this.trigger.delivery.maxAttempts) {
        this.events.delete(d.event);
        this.deps.log.warn({ trigger: this.trigger.name, event: d.event, error: outcome.error }, 'delivery dead-lettered');
        await this.finish(attempt, 'dead', outcome.error);
      } else {
        const { backoffSeconds, maxBackoffSeconds } = this.trigger.delivery;
        const retry: Delivery = {
          ...attempt,
          status: 'pending',
          lastError: outcome.error,
          notBefore: Date.now() + backoffMs(attempt.attempts, backoffSeconds, maxBackoffSeconds),
          updated: Date.now(),
        };
        await this.deps.store.update(retry);
        this.schedule(retry);
      }
    } catch (err) {
      // Counted like any failed attempt, so an error that keeps coming ends as a dead letter.
      const error = `internal error: ${(err as Error).message}`;
      this.deps.log.error({ err, trigger: this.trigger.name, event: d.event }, 'delivery failed unexpectedly');
      if (attempt.attempts >= this.trigger.delivery.maxAttempts) {
        await this.finish(attempt, 'dead', error);
      } else {
        const { backoffSeconds, maxBackoffSeconds } = this.trigger.delivery;
        const retry: Delivery = {
          ...attempt,
          status: 'pending',
          lastError: error,
          notBefore: Date.now() + backoffMs(attempt.attempts, backoffSeconds, maxBackoffSeconds),
        };
        await this.deps.store.update(retry);
        this.schedule(retry);
      }
    } finally {
      this.inFlight--;
      this.busyPaths.delete(d.path);
      if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.pump();
    }
  }

  private async run(attempt: Delivery, event: StorageEvent, input: unknown): Promise<{ ok: true } | { ok: false; error: string }> {
    const target = this.trigger.target;
    if ('pipeline' in target) {
      const pipeline = await this.deps.store.getPipeline(target.pipeline);
      if (!pipeline) return { ok: false, error: `pipeline ${target.pipeline} does not exist` };
      // The run an earlier attempt started and a restart cut off resumes: its finished steps stay done.
      const interrupted = attempt.activation ? await this.deps.pipelines.interrupted(attempt.activation, pipeline) : undefined;
      const run =
        interrupted ??
        this.deps.pipelines.newRun(this.deps.newRunId(), pipeline, input, `trigger:${this.trigger.name}`, this.trigger.owner);
      attempt.activation = run.id;
      await this.deps.store.updateNow(attempt);
      const done = await this.deps.pipelines.run(pipeline, run, this.principal);
      return done.status === 'succeeded' ? { ok: true } : { ok: false, error: done.error ?? 'pipeline failed' };
    }
    const { name, ref } = parseFunctionRef(target.function);
    let activation: Activation;
    try {
      activation = await this.deps.invoker.invoke({
        name,
        ...(ref !== undefined ? { ref } : {}),
        input,
        principal: this.principal,
        blocking: true,
        cause: `trigger:${this.trigger.name}`,
        // The activation carries the delivery's idempotency key: after a crash the success is found
        // by it, so the delivery row need not be written before the call (it is batched).
        key: this.keyOf(attempt),
        untilDone: {
          accepted: (a) => {
            attempt.activation = a.id;
            void this.deps.store.update(attempt);
          },
        },
      });
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
    if (activation.status !== 'success') return { ok: false, error: `${activation.error?.code}: ${activation.error?.message}` };
    const annotate = this.trigger.catalog?.annotate;
    const metadata = (activation.result as { metadata?: unknown } | null)?.metadata;
    if (annotate && this.deps.catalog && metadata !== undefined) {
      // An extractor's answer is the whole truth about the file now: replace, do not merge with an earlier run.
      await this.deps.catalog.annotate(
        event.path,
        annotate,
        metadata,
        { function: activation.function, version: activation.version, activation: activation.id },
        { replace: true },
      );
    }
    return { ok: true };
  }

  private async finish(d: Delivery, status: 'succeeded' | 'dead', error?: string): Promise<void> {
    await this.deps.store.update({ ...d, status, updated: Date.now(), ...(error !== undefined ? { lastError: error } : {}) });
  }
}
