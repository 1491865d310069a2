// Triggers and pipelines as the API sees them: create, list, enable/disable, remove, dead letters and
// replay; one running consumer per enabled trigger. A trigger acts for its owner with the storage
// scopes the owner's token had when it was made (like a service account): it can never do more.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import { checkBody } from '../validation.js';
import { formatScope, isAdmin, requireScope, type Principal } from '../auth/scopes.js';
import { normalizePath } from '../storage/paths.js';
import { parseFunctionRef } from '../functions/registry.js';
import { compileFilter } from './filter.js';
import { TriggerConsumer, type DispatcherDeps } from './dispatcher.js';
import { PipelineRunner } from './pipelines.js';
import type { DeliveryCounts } from './trigger-store.js';
import { NewPipeline, NewTrigger, type Delivery, type Pipeline, type PipelineRun, type Trigger } from './types.js';

export interface TriggerStatus extends Trigger {
  deliveries: DeliveryCounts;
  inFlight: number;
  /** Events in the log this trigger has not read yet. */
  lag: number;
}

const newId = (prefix: string): string => `${prefix}_${randomBytes(8).toString('hex')}`;

const check = checkBody;

export class TriggerService {
  private readonly consumers = new Map<string, TriggerConsumer>();
  readonly pipelines: PipelineRunner;
  private started = false;

  constructor(private readonly deps: Omit<DispatcherDeps, 'pipelines' | 'newRunId'> & { log: Logger }) {
    this.pipelines = new PipelineRunner({ store: deps.store, invoker: deps.invoker, log: deps.log });
  }

  private get dispatcherDeps(): DispatcherDeps {
    return { ...this.deps, pipelines: this.pipelines, newRunId: () => newId('run') };
  }

  async start(): Promise<void> {
    this.started = true;
    for (const t of await this.deps.store.list()) if (t.enabled) await this.startConsumer(t);
  }

  async stop(): Promise<void> {
    this.started = false;
    await Promise.all([...this.consumers.values()].map((c) => c.stop()));
    this.consumers.clear();
  }

  private async startConsumer(t: Trigger): Promise<void> {
    if (!this.started) return;
    const c = new TriggerConsumer(t, this.dispatcherDeps);
    this.consumers.set(t.id, c);
    await c.start();
  }

  async create(body: unknown, p: Principal): Promise<Trigger> {
    requireScope(p, 'function.invoke');
    const spec = check<NewTrigger>(NewTrigger, body, 'trigger');
    spec.filter.path = normalizePath(spec.filter.path);
    compileFilter(spec.filter);
    if ('function' in spec.target) {
      // A trigger on a function that does not exist would only fill its dead-letter list.
      const { name, ref } = parseFunctionRef(spec.target.function);
      await this.deps.invoker.resolve(name, ref);
    } else if (!(await this.deps.store.getPipeline(spec.target.pipeline))) {
      throw new SluiceError('NOT_FOUND', `no pipeline ${spec.target.pipeline}`);
    }
    const { from, ...rest } = spec;
    const position = from === 'beginning' ? (await this.deps.eventLog.oldest()) - 1 : await this.deps.eventLog.head();
    const scopes = isAdmin(p) ? ['storage.read:/', 'storage.modify:/'] : p.scopes.filter((s) => 'path' in s).map(formatScope);
    const trigger: Trigger = { ...rest, id: newId('trg'), owner: p.subject, scopes, position, created: new Date().toISOString() };
    await this.deps.store.create(trigger);
    this.deps.log.info({ trigger: trigger.name, target: trigger.target, by: p.subject }, 'trigger created');
    if (trigger.enabled) await this.startConsumer(trigger);
    return trigger;
  }

  private async own(idOrName: string, p: Principal): Promise<Trigger> {
    const t = await this.deps.store.get(idOrName);
    if (!t || (!isAdmin(p) && t.owner !== p.subject)) throw new SluiceError('NOT_FOUND', `no trigger ${idOrName}`);
    return t;
  }

  async list(p: Principal): Promise<TriggerStatus[]> {
    const all = await this.deps.store.list();
    const mine = all.filter((t) => isAdmin(p) || t.owner === p.subject);
    return Promise.all(mine.map((t) => this.status(t)));
  }

  async get(idOrName: string, p: Principal): Promise<TriggerStatus> {
    return this.status(await this.own(idOrName, p));
  }

  private async status(t: Trigger): Promise<TriggerStatus> {
    const c = this.consumers.get(t.id);
    const position = c?.trigger.position ?? t.position;
    return {
      ...t,
      position,
      deliveries: await this.deps.store.counts(t.id),
      inFlight: c?.load.inFlight ?? 0,
      lag: Math.max(0, (await this.deps.eventLog.head()) - position),
    };
  }

  async setEnabled(idOrName: string, enabled: boolean, p: Principal): Promise<TriggerStatus> {
    const t = await this.own(idOrName, p);
    await this.deps.store.setEnabled(t.id, enabled);
    const running = this.consumers.get(t.id);
    if (!enabled && running) {
      this.consumers.delete(t.id);
      await running.stop();
    }
    if (enabled && !running) await this.startConsumer({ ...t, enabled: true });
    return this.get(t.id, p);
  }

  async remove(idOrName: string, p: Principal): Promise<void> {
    const t = await this.own(idOrName, p);
    const running = this.consumers.get(t.id);
    this.consumers.delete(t.id);
    await running?.stop();
    await this.deps.store.remove(t.id);
  }

  async deadLetters(idOrName: string, p: Principal, limit: number): Promise<Delivery[]> {
    const t = await this.own(idOrName, p);
    return this.deps.store.deadLetters(t.id, limit);
  }

  /** Dead deliveries back in the queue, with fresh attempts (after a fix of the function, say). */
  async replay(idOrName: string, p: Principal, events?: number[]): Promise<Delivery[]> {
    const t = await this.own(idOrName, p);
    const revived = await this.deps.store.replay(t.id, events);
    this.consumers.get(t.id)?.revive(revived);
    return revived;
  }

  // ---- pipelines ----

  async savePipeline(body: unknown, p: Principal): Promise<Pipeline> {
    requireScope(p, 'function.invoke');
    const spec = check<NewPipeline>(NewPipeline, body, 'pipeline');
    for (const s of spec.steps) parseFunctionRef(s.function);
    const existing = await this.deps.store.getPipeline(spec.name);
    if (existing && !isAdmin(p) && existing.owner !== p.subject)
      throw new SluiceError('CONFLICT', `pipeline ${spec.name} belongs to ${existing.owner}`);
    const pipeline: Pipeline = { ...spec, owner: p.subject, created: existing?.created ?? new Date().toISOString() };
    await this.deps.store.savePipeline(pipeline);
    return pipeline;
  }

  async listPipelines(p: Principal): Promise<Pipeline[]> {
    requireScope(p, 'function.invoke');
    return this.deps.store.listPipelines();
  }

  async getPipeline(name: string, p: Principal): Promise<Pipeline> {
    requireScope(p, 'function.invoke');
    const pipeline = await this.deps.store.getPipeline(name);
    if (!pipeline) throw new SluiceError('NOT_FOUND', `no pipeline ${name}`);
    return pipeline;
  }

  async removePipeline(name: string, p: Principal): Promise<void> {
    const pipeline = await this.getPipeline(name, p);
    if (!isAdmin(p) && pipeline.owner !== p.subject) throw new SluiceError('FORBIDDEN', `pipeline ${name} belongs to ${pipeline.owner}`);
    const users = (await this.deps.store.list()).filter((t) => 'pipeline' in t.target && t.target.pipeline === name);
    if (users.length > 0)
      throw new SluiceError('CONFLICT', `pipeline ${name} is the target of trigger(s) ${users.map((t) => t.name).join(', ')}`);
    await this.deps.store.removePipeline(name);
  }

  /** Runs a pipeline by hand (the caller's rights); waits for the end. */
  async runPipeline(name: string, input: unknown, p: Principal): Promise<PipelineRun> {
    const pipeline = await this.getPipeline(name, p);
    const run = this.pipelines.newRun(newId('run'), pipeline, input, 'api', p.subject);
    return this.pipelines.run(pipeline, run, p);
  }

  async getRun(id: string, p: Principal): Promise<PipelineRun> {
    const run = await this.deps.store.getRun(id);
    if (!run || (!isAdmin(p) && run.subject !== p.subject)) throw new SluiceError('NOT_FOUND', `no pipeline run ${id}`);
    return run;
  }

  async listRuns(name: string, p: Principal, limit: number): Promise<PipelineRun[]> {
    await this.getPipeline(name, p);
    return (await this.deps.store.listRuns(name, limit)).filter((r) => isAdmin(p) || r.subject === p.subject);
  }
}
