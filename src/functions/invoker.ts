// Invocations: resolves a function version, records the activation, queues the call on the version's
// pool and completes the record with the outcome. Accepted asynchronous calls are durable before
// they are acknowledged and re-run after a restart; crashed instances are retried per manifest.
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { SluiceError } from '../errors.js';
import { covers, formatScope, isAdmin, parseScope, requireScope, type Principal, type Scope } from '../auth/scopes.js';
import { isWithin } from '../storage/paths.js';
import type { ActivationTokens } from '../auth/activation-tokens.js';
import type { ActivationFilter, ActivationStore } from './activation-store.js';
import type { FunctionRegistry } from './registry.js';
import { InstancePool, type CallRun, type PoolStatus } from './pool.js';
import { instanceSpec, insideSocket, type RuntimeHost } from './runtimes.js';
import type { Sandbox } from './sandbox.js';
import { StemCells } from './stem-cells.js';
import type { Activation, ActivationError, ActivationId, FunctionVersion, InvokeMessage } from './types.js';
import { PROTOCOL_VERSION } from './types.js';

export interface InvokeRequest {
  name: string;
  /** Alias, seq number or digest prefix; default `latest`. */
  ref?: string;
  input: unknown;
  principal: Principal;
  blocking: boolean;
  /** 'api' for direct calls; triggers and pipelines name themselves. */
  cause?: string;
  /**
   * For triggers and pipelines, which keep their own durable record of the work: wait for the end
   * however long the call runs, and learn the activation id as soon as it exists.
   */
  untilDone?: { accepted(activation: Activation): void };
  /** Idempotency key recorded with the activation (see ActivationStore.succeededWithKey). */
  key?: string;
}

export interface InvokerDeps {
  config: Config;
  registry: FunctionRegistry;
  store: ActivationStore;
  sandbox: Sandbox;
  activationTokens: ActivationTokens;
  /** Host path of the API unix socket that ctx.storage talks to. */
  apiSocket: string;
  log: Logger;
}

// Random bytes for ids, drawn from the kernel 4 KiB at a time: one getrandom() per ~400 calls
// instead of one per call on the invocation hot path.
const entropy = Buffer.alloc(4096);
let entropyUsed = entropy.length;

function randomHex(bytes: number): string {
  if (entropyUsed + bytes > entropy.length) {
    randomFillSync(entropy);
    entropyUsed = 0;
  }
  const hex = entropy.toString('hex', entropyUsed, entropyUsed + bytes);
  entropyUsed += bytes;
  return hex;
}

/** Activation ids sort by time: 12 hex digits of epoch ms, then 20 random. */
export function newActivationId(now = Date.now()): ActivationId {
  return (now.toString(16).padStart(12, '0') + randomHex(10)) as ActivationId;
}

/** The storage scopes an activation's token carries: never more than the caller holds. */
export function activationScopes(caller: Principal, declared: readonly string[] | undefined): Scope[] {
  const held: Scope[] = isAdmin(caller)
    ? [
        { kind: 'storage.read', path: '/' },
        { kind: 'storage.modify', path: '/' },
      ]
    : caller.scopes.filter((s) => 'path' in s);
  if (declared === undefined) return held;
  // Each declared scope is granted as far as the caller holds it: whole if a held scope covers it,
  // narrowed to the held path where the caller holds only part of it, not at all otherwise.
  const granted: Scope[] = [];
  for (const want of declared.map(parseScope)) {
    if (!('path' in want)) continue;
    if (covers(held, want)) {
      granted.push(want);
      continue;
    }
    for (const h of held) {
      if ('path' in h && isWithin(h.path, want.path) && covers([h], { kind: want.kind, path: h.path })) {
        granted.push({ kind: want.kind, path: h.path });
      }
    }
  }
  return granted;
}

function inputWithDefaults(params: Record<string, unknown>, input: unknown): unknown {
  if (Object.keys(params).length === 0) return input;
  if (input === undefined || input === null) return { ...params };
  if (typeof input === 'object' && !Array.isArray(input)) return { ...params, ...(input as Record<string, unknown>) };
  return input;
}

interface Waiter {
  promise: Promise<Activation>;
  resolve(a: Activation): void;
}

export class Invoker {
  private readonly pools = new Map<string, InstancePool>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly host: RuntimeHost;
  private closing = false;
  private prune: NodeJS.Timeout | undefined;
  private readonly cells: StemCells;

  constructor(private readonly deps: InvokerDeps) {
    this.host = { sandbox: deps.sandbox, config: deps.config.functions, apiSocket: deps.apiSocket };
    this.cells = new StemCells({
      host: this.host,
      cellsDir: join(deps.config.dataDir, 'run', 'cells'),
      perRuntime: deps.config.functions.prewarm,
      log: deps.log.child({ part: 'prewarm' }),
    });
    deps.registry.on('removed', ({ name, version }: { name: string; version?: string }) => {
      for (const [key, pool] of this.pools) {
        if (pool.version.name === name && (version === undefined || pool.version.version === version)) {
          this.pools.delete(key);
          void pool.close({ code: 'CANCELLED', message: `function ${name} was removed` });
        }
      }
    });
  }

  /**
   * Versions under an alias keep scaling.min warm instances; others scale to zero. Re-evaluated for a
   * function whenever it changes (deploy, alias set or removed).
   */
  private async warmAliased(name?: string): Promise<void> {
    const names = name !== undefined ? [name] : (await this.deps.registry.list()).map((f) => f.name);
    for (const n of names) {
      const versions = await this.deps.registry.versions(n).catch(() => [] as FunctionVersion[]);
      const aliased = new Set(versions.filter((v) => v.aliases.length > 0).map((v) => v.version));
      for (const v of versions) if (aliased.has(v.version)) this.cells.want(v.manifest.runtime);
      for (const v of versions) if (aliased.has(v.version) && v.manifest.scaling.min > 0) this.poolFor(v);
      for (const pool of this.pools.values()) {
        if (pool.version.name !== n) continue;
        const keep = aliased.has(pool.version.version);
        if (pool.keepWarm !== keep) {
          pool.keepWarm = keep;
          pool.rescale();
        }
      }
    }
  }

  /** Re-runs accepted calls a previous process left behind; warms functions with scaling.min > 0. */
  async start(): Promise<void> {
    await this.cells.init();
    for (const a of this.deps.store.unfinished()) await this.recover(a);
    await this.warmAliased();
    this.deps.registry.on('changed', ({ name }) => {
      if (this.closing) return;
      this.warmAliased(name).catch((err: unknown) => this.deps.log.error({ err, function: name }, 'could not warm instances'));
    });
    const retentionMs = this.deps.config.functions.activationRetentionHours * 3600_000;
    this.prune = setInterval(() => {
      try {
        const n = this.deps.store.prune(Date.now() - retentionMs);
        if (n > 0) this.deps.log.info({ pruned: n }, 'pruned activations past retention');
      } catch (err) {
        this.deps.log.error({ err }, 'activation pruning failed');
      }
    }, 60_000);
    this.prune.unref();
  }

  /**
   * Starts an activation. Resolves with the finished activation when blocking and it ends within
   * functions.blockingTimeoutSeconds; otherwise with the activation as it is now (queued or running).
   */
  async invoke(req: InvokeRequest): Promise<Activation> {
    requireScope(req.principal, 'function.invoke');
    if (this.closing) throw new SluiceError('UNAVAILABLE', 'the server is shutting down');
    const v = await this.deps.registry.resolve(req.name, req.ref);
    const now = Date.now();
    const activation: Activation = {
      id: newActivationId(now),
      function: v.name,
      version: v.version,
      seq: v.seq,
      status: 'queued',
      subject: req.principal.subject,
      cause: req.cause ?? 'api',
      blocking: req.blocking,
      ...(req.key !== undefined ? { key: req.key } : {}),
      input: inputWithDefaults(v.manifest.params, req.input),
      scopes: activationScopes(req.principal, v.manifest.scopes).map(formatScope),
      logs: [],
      cold: false,
      queuedAt: new Date(now).toISOString(),
      attempts: 0,
    };
    const waiter = this.waiterFor(activation.id);
    if (!req.blocking) {
      // Acknowledged means it will run, even across a crash: on disk before the 202.
      await this.deps.store.saveDurable(activation);
    }
    try {
      this.enqueue(v, activation);
    } catch (e) {
      this.waiters.delete(activation.id);
      if (!req.blocking) {
        activation.status = 'error';
        activation.error = { code: 'CANCELLED', message: (e as Error).message };
        activation.endedAt = new Date().toISOString();
        this.deps.store.save(activation);
      }
      throw e;
    }
    if (req.untilDone) {
      req.untilDone.accepted(activation);
      return waiter.promise;
    }
    if (!req.blocking) return activation;
    const limitMs = this.deps.config.functions.blockingTimeoutSeconds * 1000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Activation>((resolve) => (timer = setTimeout(() => resolve(activation), limitMs)));
    try {
      return await Promise.race([waiter.promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The version a reference names (NOT_FOUND when there is none), for those that bind to functions. */
  resolve(name: string, ref?: string): Promise<FunctionVersion> {
    return this.deps.registry.resolve(name, ref);
  }

  /** The successful activation made under an idempotency key, if any. */
  succeededWithKey(key: string): Activation | undefined {
    return this.deps.store.succeededWithKey(key);
  }

  /** An activation by id, without a permission check (for the domains that started it). */
  find(id: string): Activation | undefined {
    return this.deps.store.get(id);
  }

  get(id: string, principal: Principal): Activation {
    const a = /^[0-9a-f]{32}$/.test(id) ? this.deps.store.get(id) : undefined;
    // Someone else's activation does not exist, as far as the caller can tell.
    if (!a || (!isAdmin(principal) && a.subject !== principal.subject)) throw new SluiceError('NOT_FOUND', `no activation ${id}`);
    return a;
  }

  list(filter: Omit<ActivationFilter, 'subject'>, principal: Principal): Activation[] {
    return this.deps.store.list({ ...filter, ...(isAdmin(principal) ? {} : { subject: principal.subject }) });
  }

  get sandboxKind(): Sandbox['kind'] {
    return this.deps.sandbox.kind;
  }

  prewarmStatus(): ReturnType<StemCells['status']> {
    return this.cells.status();
  }

  poolStatus(name?: string): PoolStatus[] {
    return [...this.pools.values()].filter((p) => name === undefined || p.version.name === name).map((p) => p.status());
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.prune) clearInterval(this.prune);
    await Promise.all(
      [...this.pools.values()].map((p) => p.close({ code: 'CANCELLED', message: 'the server shut down before the call ran' })),
    );
    this.pools.clear();
    await this.cells.close();
    this.deps.store.flush();
  }

  private waiterFor(id: string): Waiter {
    let resolve!: (a: Activation) => void;
    const promise = new Promise<Activation>((r) => (resolve = r));
    const w = { promise, resolve };
    this.waiters.set(id, w);
    return w;
  }

  private poolFor(v: FunctionVersion): InstancePool {
    const key = `${v.name}@${v.version}`;
    let pool = this.pools.get(key);
    if (!pool) {
      const bundleDir = this.deps.registry.bundleDir(v);
      pool = new InstancePool({
        version: v,
        launch: (_id, call) => this.deps.sandbox.wrap(instanceSpec(this.host, v, bundleDir, call)),
        init: {
          protocol: PROTOCOL_VERSION,
          function: v.name,
          version: v.version,
          handler: v.manifest.handler,
          concurrency: v.manifest.scaling.concurrency,
          // Also in the spawn environment; repeated here for prewarmed instances, which learn whose they are at init.
          env: { ...v.manifest.env, SLUICE_FUNCTION: v.name, SLUICE_VERSION: v.version },
        },
        takePrewarmed: (init, onExit) => this.cells.take(v, bundleDir, init, onExit),
        maxQueued: this.deps.config.functions.maxQueuedPerFunction,
        log: this.deps.log.child({ function: v.name, seq: v.seq }),
      });
      this.pools.set(key, pool);
    }
    return pool;
  }

  private enqueue(v: FunctionVersion, activation: Activation): void {
    const scopes = activation.scopes.map(parseScope);
    const timeoutMs = v.manifest.limits.timeoutSeconds * 1000;
    const socket = insideSocket(this.host);
    const enqueuedAt = Date.now();
    this.poolFor(v).submit({
      id: activation.id,
      enqueuedAt,
      timeoutMs,
      message: (startedAt): InvokeMessage => {
        const deadline = startedAt + timeoutMs;
        return {
          type: 'invoke',
          id: activation.id,
          deadline,
          function: v.name,
          version: v.version,
          storage: { socket, token: this.deps.activationTokens.mint(activation.subject, activation.id, scopes, deadline + 10_000) },
          event: activation.input,
        };
      },
      started: ({ instance, startedAt, cold }) => {
        activation.status = 'running';
        activation.attempts++;
        activation.instance = instance;
        activation.cold = cold;
        activation.startedAt = new Date(startedAt).toISOString();
        activation.waitMs = startedAt - enqueuedAt;
        this.deps.store.save(activation);
      },
      done: (run) => this.complete(v, activation, run),
    });
  }

  private complete(v: FunctionVersion, activation: Activation, run: CallRun): void {
    const { outcome } = run;
    if (!outcome.ok && outcome.error.code === 'INSTANCE_EXITED' && activation.attempts <= v.manifest.retries && !this.closing) {
      this.deps.log.info({ activation: activation.id, attempt: activation.attempts }, 'instance crashed; retrying the call');
      activation.logs.push(
        ...outcome.logs,
        `${new Date().toISOString()} sluice: attempt ${activation.attempts} failed: ${outcome.error.message}`,
      );
      activation.status = 'queued';
      try {
        this.enqueue(v, activation);
        return;
      } catch {
        // queue full or pool closing: report the crash below
      }
    }
    if (this.closing && !activation.blocking && !outcome.ok && outcome.error.code === 'CANCELLED') {
      // Accepted work is not dropped by a shutdown: it stays queued on disk and runs after the restart.
      activation.status = 'queued';
      this.deps.store.save(activation);
      this.waiters.delete(activation.id);
      return;
    }
    const ended = Date.now();
    activation.status = outcome.ok ? 'success' : 'error';
    if (outcome.ok) activation.result = outcome.result;
    else activation.error = outcome.error;
    activation.logs.push(...outcome.logs);
    activation.cold = run.cold;
    if (run.instance) activation.instance = run.instance;
    activation.endedAt = new Date(ended).toISOString();
    activation.durationMs = ended - run.startedAt;
    if (run.initMs !== undefined) activation.initMs = run.initMs;
    this.deps.store.save(activation);
    const w = this.waiters.get(activation.id);
    this.waiters.delete(activation.id);
    w?.resolve(activation);
  }

  private async recover(a: Activation): Promise<void> {
    let v: FunctionVersion;
    try {
      v = await this.deps.registry.resolve(a.function, a.version);
    } catch {
      return this.interrupt(a, { code: 'CANCELLED', message: `function ${a.function} version ${a.version} no longer exists` });
    }
    // Accepted async work runs at least once: whether it waited or was cut off by the crash, it runs
    // again now. A blocking caller got an error when the connection broke, so its call is not re-run.
    if (a.blocking) {
      return this.interrupt(a, { code: 'INSTANCE_EXITED', message: 'the server stopped while the call ran' });
    }
    this.deps.log.info({ activation: a.id, function: a.function }, 'resuming an accepted call left by the previous run');
    a.status = 'queued';
    this.waiterFor(a.id);
    try {
      this.enqueue(v, a);
    } catch (e) {
      this.waiters.delete(a.id);
      this.interrupt(a, { code: 'CANCELLED', message: (e as Error).message });
    }
  }

  private interrupt(a: Activation, error: ActivationError): void {
    a.status = 'error';
    a.error = error;
    a.endedAt = new Date().toISOString();
    this.deps.store.save(a);
  }
}

export const apiSocketPath = (dataDir: string): string => join(dataDir, 'run', 'api.sock');
