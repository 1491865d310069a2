// The instances of one function version and the calls waiting for them. Calls queue (bounded) and
// are handed to the busiest instance that still has a free slot, so load packs onto few instances
// and the rest go idle and stop; the autoscaler decides when to start and stop instances.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import { instancesToStart, instancesToStop } from './autoscaler.js';
import { Instance, type CallOutcome } from './instance.js';
import { runExecCall } from './exec-call.js';
import type { Launch } from './sandbox.js';
import type { ActivationError, FunctionVersion, InitMessage, InvokeMessage } from './types.js';

/** What a call learns about how it ran, besides its outcome. */
export interface CallRun {
  outcome: CallOutcome;
  cold: boolean;
  instance: string;
  startedAt: number;
  /** ms the instance took to start, when the call waited for it. */
  initMs?: number;
}

export interface PendingCall {
  id: string;
  enqueuedAt: number;
  timeoutMs: number;
  /** Builds the invoke message when the call is handed to an instance (its deadline starts then). */
  message(startedAt: number): InvokeMessage;
  /** Tells the caller the call left the queue. */
  started(run: { instance: string; startedAt: number; cold: boolean }): void;
  done(run: CallRun): void;
}

export interface PoolStatus {
  function: string;
  version: string;
  seq: number;
  runtime: string;
  instances: { id: string; pid: number | undefined; state: string; inFlight: number; callsServed: number; idleMs: number }[];
  starting: number;
  ready: number;
  inFlight: number;
  queued: number;
  coldStarts: number;
  max: number;
  min: number;
  concurrency: number;
}

export interface PoolOptions {
  version: FunctionVersion;
  /** How to start one instance (warm runtimes) or one call's process (exec, given its call). */
  launch(instanceId: string, call?: InvokeMessage): Launch;
  init: Omit<InitMessage, 'type'>;
  maxQueued: number;
  log: Logger;
  /** A prewarmed instance adopted for this version, when one fits (see stem-cells.ts). */
  takePrewarmed?: (init: InitMessage, onExit: (i: Instance) => void) => Promise<Instance | undefined>;
}

const newInstanceId = (): string => randomBytes(6).toString('hex');

export class InstancePool {
  readonly version: FunctionVersion;
  private readonly instances = new Map<string, Instance>();
  private readonly queue: PendingCall[] = [];
  private reaper: NodeJS.Timeout | undefined;
  private coldStarts = 0;
  private closed = false;
  /** exec runtime: processes running now (each is one call). */
  private execRunning = 0;
  /** Instances being obtained (a prewarmed one being adopted, or about to be spawned). */
  private pendingStarts = 0;

  constructor(private readonly opts: PoolOptions) {
    this.version = opts.version;
    this.pump();
  }

  private get scaling() {
    return this.version.manifest.scaling;
  }

  /**
   * Whether scaling.min applies: only to versions an alias points at. A version invoked by its digest
   * or seq scales to zero whatever its manifest says, so old versions do not pin processes forever.
   */
  keepWarm = false;

  private get minInstances(): number {
    return this.keepWarm ? this.scaling.min : 0;
  }

  /** Re-evaluates the pool after keepWarm changed. */
  rescale(): void {
    this.pump();
    this.scheduleReaper();
  }

  private get isExec(): boolean {
    return this.version.manifest.runtime === 'exec';
  }

  submit(call: PendingCall): void {
    if (this.closed) throw new SluiceError('UNAVAILABLE', `function ${this.version.name} is being stopped`);
    if (this.queue.length >= this.opts.maxQueued) {
      throw new SluiceError(
        'TOO_MANY_REQUESTS',
        `queue of ${this.version.name} is full (${this.opts.maxQueued} calls waiting); retry later`,
        {
          retryAfterSeconds: 1,
        },
      );
    }
    this.queue.push(call);
    this.pump();
  }

  status(): PoolStatus {
    const now = Date.now();
    const list = [...this.instances.values()];
    return {
      function: this.version.name,
      version: this.version.version,
      seq: this.version.seq,
      runtime: this.version.manifest.runtime,
      instances: list.map((i) => ({
        id: i.id,
        pid: i.pid,
        state: i.state,
        inFlight: i.inFlight,
        callsServed: i.callsServed,
        idleMs: i.inFlight === 0 && i.state === 'ready' ? now - i.idleSince : 0,
      })),
      starting: list.filter((i) => i.state === 'starting').length,
      ready: list.filter((i) => i.state === 'ready').length,
      inFlight: this.isExec ? this.execRunning : list.reduce((n, i) => n + i.inFlight, 0),
      queued: this.queue.length,
      coldStarts: this.coldStarts,
      max: this.scaling.max,
      min: this.minInstances,
      concurrency: this.scaling.concurrency,
    };
  }

  /** Stops every instance and fails the queued calls; resolves once the processes are gone. */
  async close(reason: ActivationError): Promise<void> {
    this.closed = true;
    if (this.reaper) clearInterval(this.reaper);
    for (const call of this.queue.splice(0)) {
      call.done({ outcome: { ok: false, error: reason, logs: [] }, cold: false, instance: '', startedAt: Date.now() });
    }
    const exits = [...this.instances.values()].map((i) => {
      i.stop();
      return i.gone;
    });
    await Promise.all(exits);
  }

  private pump(): void {
    if (this.closed) return;
    if (this.isExec) return this.pumpExec();
    while (this.queue.length > 0) {
      const instance = this.pickInstance();
      if (!instance) break;
      this.run(instance, this.queue.shift()!);
    }
    const list = [...this.instances.values()];
    const toStart = instancesToStart({
      queued: this.queue.length,
      inFlight: list.reduce((n, i) => n + i.inFlight, 0),
      ready: list.filter((i) => i.state === 'ready').length,
      starting: list.filter((i) => i.state === 'starting').length + this.pendingStarts,
      concurrency: this.scaling.concurrency,
      min: this.minInstances,
      max: this.scaling.max,
    });
    for (let n = 0; n < toStart; n++) this.startInstance();
    this.scheduleReaper();
  }

  /** The busiest ready instance with a free slot: packing lets the others idle out. */
  private pickInstance(): Instance | undefined {
    let best: Instance | undefined;
    for (const i of this.instances.values()) {
      if (i.state !== 'ready' || i.inFlight >= this.scaling.concurrency) continue;
      if (!best || i.inFlight > best.inFlight) best = i;
    }
    return best;
  }

  private startInstance(): void {
    const id = newInstanceId();
    const init: InitMessage = { type: 'init', ...this.opts.init };
    const onExit = (i: Instance) => {
      this.instances.delete(i.id);
      this.opts.log.debug({ instance: i.id, served: i.callsServed }, 'instance gone');
      // Replace it if calls still wait (or min says so).
      setImmediate(() => this.pump());
    };
    this.pendingStarts++;
    void (this.opts.takePrewarmed?.(init, onExit) ?? Promise.resolve(undefined))
      .catch((err: unknown) => {
        this.opts.log.warn({ err }, 'prewarmed instance unusable; starting a fresh one');
        return undefined;
      })
      .then((prewarmed) => {
        this.pendingStarts--;
        const instance = prewarmed ?? this.spawnInstance(id, init, onExit);
        if (!instance) return;
        this.instances.set(instance.id, instance);
        this.coldStarts++;
        if (this.closed) instance.stop();
        instance.ready.then(
          () => {
            this.opts.log.debug(
              { instance: instance.id, ms: instance.readyAt - instance.spawnedAt, prewarmed: !!prewarmed },
              'instance ready',
            );
            this.pump();
          },
          (error: ActivationError) => {
            this.opts.log.warn({ instance: instance.id, error: error.message }, 'instance failed to start');
            // The calls waiting would only start another instance that fails the same way.
            this.failQueued(error);
          },
        );
      });
  }

  private spawnInstance(id: string, init: InitMessage, onExit: (i: Instance) => void): Instance | undefined {
    let launch: Launch;
    try {
      launch = this.opts.launch(id);
    } catch (e) {
      this.failQueued({ code: 'INIT_FAILED', message: `could not prepare the instance: ${(e as Error).message}` });
      return undefined;
    }
    return new Instance({ id, launch, init, limits: this.version.manifest.limits, log: this.opts.log, onExit });
  }

  private failQueued(error: ActivationError): void {
    for (const call of this.queue.splice(0)) {
      call.done({ outcome: { ok: false, error, logs: [] }, cold: true, instance: '', startedAt: Date.now() });
    }
  }

  private run(instance: Instance, call: PendingCall): void {
    const startedAt = Date.now();
    // A call that was waiting when its instance came up paid for the start: it is a cold call.
    const cold = instance.callsServed === 0 && instance.inFlight === 0 && call.enqueuedAt <= instance.readyAt;
    call.started({ instance: instance.id, startedAt, cold });
    void instance.invoke(call.message(startedAt), call.timeoutMs).then((outcome) => {
      call.done({
        outcome,
        cold,
        instance: instance.id,
        startedAt,
        ...(cold ? { initMs: instance.readyAt - instance.spawnedAt } : {}),
      });
      this.pump();
    });
  }

  private pumpExec(): void {
    while (this.queue.length > 0 && this.execRunning < this.scaling.max) {
      const call = this.queue.shift()!;
      const id = newInstanceId();
      const startedAt = Date.now();
      this.execRunning++;
      this.coldStarts++;
      call.started({ instance: id, startedAt, cold: true });
      const message = call.message(startedAt);
      let launch: Launch;
      try {
        launch = this.opts.launch(id, message);
      } catch (e) {
        this.execRunning--;
        call.done({
          outcome: { ok: false, error: { code: 'INIT_FAILED', message: (e as Error).message }, logs: [] },
          cold: true,
          instance: id,
          startedAt,
        });
        continue;
      }
      void runExecCall(launch, message.event, this.version.manifest.limits, call.timeoutMs).then((outcome) => {
        this.execRunning--;
        call.done({ outcome, cold: true, instance: id, startedAt });
        this.pump();
      });
    }
  }

  private scheduleReaper(): void {
    if (this.reaper || this.instances.size <= this.minInstances) return;
    const idleMs = this.scaling.idleTimeoutSeconds * 1000;
    const every = Math.min(1000, Math.max(20, idleMs / 4));
    this.reaper = setInterval(() => this.reap(idleMs), every);
    this.reaper.unref();
  }

  private reap(idleTimeoutMs: number): void {
    const now = Date.now();
    const idle = [...this.instances.values()]
      .filter((i) => i.state === 'ready' && i.inFlight === 0)
      .map((i) => ({ id: i.id, idleMs: now - i.idleSince }));
    const live = [...this.instances.values()].filter((i) => i.state === 'ready' || i.state === 'starting').length;
    for (const id of instancesToStop(idle, live, this.minInstances, idleTimeoutMs)) {
      this.opts.log.debug({ instance: id }, 'instance idle; stopping');
      this.instances.get(id)?.stop();
    }
    if (this.instances.size <= this.minInstances && this.reaper) {
      clearInterval(this.reaper);
      this.reaper = undefined;
    }
  }
}
