// One warm instance: a sandboxed process of one function version speaking the instance protocol
// (docs/function-protocol.md). It owns the process and enforces the per-call limits: the timeout and
// the memory limit kill the process, a result past maxOutputBytes fails the call, logs past
// maxLogBytes are cut. Every way the process can end fails its in-flight calls with a precise code.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { LineSplitter } from './line-splitter.js';
import { killTree, treeRssBytes } from './process-tree.js';
import type { Launch } from './sandbox.js';
import type { ActivationError, ActivationErrorCode, FromInstance, InitMessage, InvokeMessage, Manifest } from './types.js';
import { LogCollector, OutputTail } from './log-collector.js';

export type CallOutcome = ({ ok: true; result: unknown } | { ok: false; error: ActivationError }) & { logs: string[] };
type Ending = { ok: true; result: unknown } | { ok: false; error: ActivationError };

interface Call {
  id: string;
  logs: LogCollector;
  timer: NodeJS.Timeout;
  resolve(outcome: CallOutcome): void;
}

/** Writes a launch's environment to the fd the sandbox reads it from (see runtimes.ENV_FD). */
export function passEnvironment(proc: ChildProcess, launch: Launch): void {
  const fd = proc.stdio[4] as Writable | null | undefined;
  if (!fd) return;
  fd.on('error', () => undefined);
  fd.end(launch.envFdData ?? Buffer.alloc(0));
}

export type InstanceState = 'starting' | 'ready' | 'stopping' | 'dead';

/** Room for the envelope around a result ({"type":"result","id":…}) on top of maxOutputBytes. */
const ENVELOPE_BYTES = 4096;
const MEMORY_POLL_BUSY_MS = 50;
const MEMORY_POLL_IDLE_MS = 1000;
const STOP_GRACE_MS = 2000;
const OUT_OF_MEMORY_RE = /heap out of memory|Fatal process out of memory|MemoryError|Cannot allocate memory|std::bad_alloc/;
const RESULT_HEAD_RE = /^\{"type":"(result|error|log)","id":"([0-9a-f]{32})"/;

export interface InstanceOptions {
  id: string;
  launch: Launch;
  /** Absent for a prewarmed instance (a stem cell) that waits to be adopted by a function. */
  init?: InitMessage;
  limits: Manifest['limits'];
  log: Logger;
  /** Called once when the process is gone, whatever the reason. */
  onExit(instance: Instance): void;
}

export class Instance {
  readonly id: string;
  state: InstanceState = 'starting';
  /** When the process was started, or adopted from the prewarmed ones: the start a cold call waits for. */
  spawnedAt = Date.now();
  readyAt = 0;
  /** When the last call ended (or the instance became ready). */
  idleSince = Date.now();
  callsServed = 0;
  readonly ready: Promise<void>;
  /** Resolves once the process has exited. */
  readonly gone: Promise<void>;
  private markGone!: () => void;

  private readonly proc: ChildProcess;
  private readonly calls = new Map<string, Call>();
  private limits: Manifest['limits'];
  private readonly log: Logger;
  private readonly control: LineSplitter;
  private onExit: (instance: Instance) => void;
  private memoryTimer: NodeJS.Timeout | undefined;
  /** Why the process is being killed, to report instead of a bare exit. */
  private killReason: ActivationError | undefined;
  private exited = false;
  private corked = false;
  private initSent = false;
  /** The runtime said it ran out of memory (V8's heap limit, a failed allocation) before it died. */
  private sawOutOfMemory = false;
  private initError: ActivationError | undefined;
  /** Output no call can be named for (printed between calls, or with several in flight). */
  private readonly unattributed = new OutputTail(20);
  /** The last raw output lines, to explain an unexpected exit. */
  private readonly recentOutput = new OutputTail(10);

  constructor(private readonly opts: InstanceOptions) {
    this.id = opts.id;
    this.limits = opts.limits;
    this.log = opts.log;
    this.onExit = opts.onExit;
    this.proc = spawn(opts.launch.file, opts.launch.args, {
      cwd: opts.launch.cwd,
      env: opts.launch.env,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
      // Its own process group, so a kill reaches everything the function started.
      detached: true,
    });
    passEnvironment(this.proc, opts.launch);
    let resolveReady!: () => void;
    let rejectReady!: (e: ActivationError) => void;
    this.ready = new Promise<void>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    this.gone = new Promise<void>((res) => (this.markGone = res));
    // Nobody may be awaiting `ready` when it fails (the pool learns of it from onExit too).
    this.ready.catch(() => undefined);

    const control = (this.control = new LineSplitter(opts.limits.maxOutputBytes + ENVELOPE_BYTES, {
      line: (text) => this.onMessage(text, resolveReady, rejectReady),
      overflow: (head, bytes) => this.onOverflow(head, bytes),
    }));
    const fd3 = this.proc.stdio[3] as Readable;
    fd3.on('data', (chunk: Buffer) => control.push(chunk));
    fd3.on('error', () => undefined);
    for (const [stream, name] of [
      [this.proc.stdout, 'stdout'],
      [this.proc.stderr, 'stderr'],
    ] as const) {
      const lines = new LineSplitter(16 * 1024, {
        line: (text) => this.onOutput(name, text),
        overflow: (head) => this.onOutput(name, head + ' [line cut]'),
      });
      stream!.on('data', (chunk: Buffer) => lines.push(chunk));
    }
    this.stdin.on('error', () => undefined);
    this.proc.on('error', (err) => {
      this.initError ??= { code: 'INIT_FAILED', message: `could not start the instance: ${err.message}` };
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = true;
      // Never became ready: whoever waits for it learns why (a rejection after ready is a no-op).
      if (this.readyAt === 0) rejectReady(this.initError ?? this.exitError(code, signal, 'INIT_FAILED'));
      this.onProcessExit(code, signal);
    });
    if (opts.init) this.send(opts.init);
    this.watchMemory();
  }

  /** True while this is a prewarmed instance no function has adopted yet. */
  get unadopted(): boolean {
    return this.state === 'starting' && !this.initSent;
  }

  /**
   * Binds a prewarmed instance to a function: its limits, its exit handler, and the init message
   * that loads its handler. The cold start it saves is everything up to here.
   */
  adopt(init: InitMessage, limits: Manifest['limits'], onExit: (instance: Instance) => void): void {
    this.limits = limits;
    this.control.maxLineBytes = limits.maxOutputBytes + ENVELOPE_BYTES;
    this.onExit = onExit;
    this.spawnedAt = Date.now();
    this.send(init);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get inFlight(): number {
    return this.calls.size;
  }

  private get stdin(): Writable {
    return this.proc.stdin!;
  }

  invoke(msg: InvokeMessage, timeoutMs: number): Promise<CallOutcome> {
    return new Promise<CallOutcome>((resolve) => {
      if (this.state !== 'ready') {
        resolve({ ok: false, error: { code: 'INSTANCE_EXITED', message: `instance ${this.id} is ${this.state}` }, logs: [] });
        return;
      }
      const timer = setTimeout(() => this.onTimeout(msg.id, timeoutMs), timeoutMs);
      this.calls.set(msg.id, { id: msg.id, logs: new LogCollector(this.limits.maxLogBytes), timer, resolve });
      this.rescheduleMemoryWatch();
      this.send(msg);
    });
  }

  /** Graceful stop: close stdin (the protocol's shutdown), kill after a grace period. */
  stop(): void {
    if (this.state === 'dead' || this.state === 'stopping') return;
    this.state = 'stopping';
    this.stdin.end();
    const t = setTimeout(() => this.kill({ code: 'CANCELLED', message: 'instance did not exit after stdin closed' }), STOP_GRACE_MS);
    t.unref();
  }

  kill(reason: ActivationError): void {
    if (this.exited) return;
    this.killReason ??= reason;
    // No new call may be handed to it between now and the exit event.
    if (this.state === 'ready' || this.state === 'starting') this.state = 'stopping';
    if (this.proc.pid !== undefined) killTree(this.proc.pid, 'SIGKILL');
  }

  private send(msg: InitMessage | InvokeMessage): void {
    if (msg.type === 'init') this.initSent = true;
    // Calls handed over in one tick leave in one write: under load that is one syscall, not one each.
    if (!this.corked) {
      this.corked = true;
      this.stdin.cork();
      process.nextTick(() => {
        this.corked = false;
        this.stdin.uncork();
      });
    }
    this.stdin.write(JSON.stringify(msg) + '\n');
  }

  private onMessage(text: string, resolveReady: () => void, rejectReady: (e: ActivationError) => void): void {
    if (text === '') return;
    let msg: FromInstance;
    try {
      msg = JSON.parse(text) as FromInstance;
    } catch {
      this.protocolViolation(`not JSON: ${text.slice(0, 120)}`);
      return;
    }
    switch (msg.type) {
      case 'ready':
        if (this.state !== 'starting') return;
        this.state = 'ready';
        this.readyAt = this.idleSince = Date.now();
        resolveReady();
        return;
      case 'init_error': {
        const e = msg.error ?? { message: 'init_error without details' };
        this.initError = {
          code: 'INIT_FAILED',
          message: e.message,
          ...(e.name ? { name: e.name } : {}),
          ...(e.stack ? { stack: e.stack } : {}),
        };
        rejectReady(this.initError);
        this.kill(this.initError);
        return;
      }
      case 'log': {
        const call = msg.id === undefined ? undefined : this.calls.get(msg.id);
        const line = `${new Date().toISOString()} ${msg.level ?? 'info'}: ${String(msg.message)}`;
        if (call) call.logs.add(line);
        else this.unattributed.add(line);
        return;
      }
      case 'result':
        this.finish(msg.id, { ok: true, result: msg.result ?? null });
        return;
      case 'error': {
        const e = msg.error ?? { message: 'error without details' };
        this.finish(msg.id, {
          ok: false,
          error: {
            code: 'APPLICATION_ERROR',
            message: String(e.message),
            ...(e.name ? { name: String(e.name) } : {}),
            ...(e.stack ? { stack: String(e.stack) } : {}),
          },
        });
        return;
      }
      default:
        this.protocolViolation(`unknown message type ${JSON.stringify((msg as { type?: unknown }).type)}`);
    }
  }

  /** A line on fd 3 longer than the output limit: fail the call it belongs to, drop the rest. */
  private onOverflow(head: string, bytes: number): void {
    const m = RESULT_HEAD_RE.exec(head);
    const message = `output exceeds limits.maxOutputBytes (${this.limits.maxOutputBytes} bytes); cut after ${bytes} bytes`;
    if (m && this.calls.has(m[2]!)) {
      if (m[1] === 'log') this.calls.get(m[2]!)!.logs.add(`${new Date().toISOString()} log line cut: longer than ${bytes} bytes`);
      else this.finish(m[2]!, { ok: false, error: { code: 'OUTPUT_LIMIT', message } });
    } else {
      this.protocolViolation(message);
    }
  }

  private onOutput(stream: 'stdout' | 'stderr', text: string): void {
    const line = `${new Date().toISOString()} ${stream}: ${text}`;
    this.recentOutput.add(line);
    if (OUT_OF_MEMORY_RE.test(text)) this.sawOutOfMemory = true;
    // Raw output cannot name its call; with one call in flight it is that call's.
    if (this.calls.size === 1) this.calls.values().next().value!.logs.add(line);
    else this.unattributed.add(line);
  }

  private finish(id: string, outcome: Ending): void {
    const call = this.calls.get(id);
    if (!call) return; // late answer of a call already failed (timeout, output limit)
    this.calls.delete(id);
    clearTimeout(call.timer);
    this.callsServed++;
    if (this.calls.size === 0) this.idleSince = Date.now();
    call.resolve({ ...outcome, logs: call.logs.lines() });
  }

  private onTimeout(id: string, timeoutMs: number): void {
    if (!this.calls.has(id)) return;
    const seconds = timeoutMs / 1000;
    this.finish(id, {
      ok: false,
      error: { code: 'TIMEOUT', message: `call ran longer than limits.timeoutSeconds (${seconds} s); instance killed` },
    });
    // The handler may be in an endless loop: only killing the process ends it.
    this.kill({ code: 'INSTANCE_EXITED', message: `instance killed because call ${id} timed out` });
  }

  private protocolViolation(message: string): void {
    this.log.warn({ instance: this.id, message }, 'instance broke the protocol; killing it');
    this.kill({ code: 'PROTOCOL_ERROR', message: `instance broke the protocol: ${message}` });
  }

  private watchMemory(): void {
    const limitBytes = this.limits.memoryMb * 1024 * 1024;
    const check = () => {
      if (this.exited || this.proc.pid === undefined) return;
      const rss = treeRssBytes(this.proc.pid);
      if (rss > limitBytes) {
        this.kill({
          code: 'MEMORY_LIMIT',
          message: `instance used ${Math.round(rss / 1048576)} MiB, over limits.memoryMb (${this.limits.memoryMb} MiB); killed`,
        });
        return;
      }
      this.memoryTimer = setTimeout(check, this.calls.size > 0 ? MEMORY_POLL_BUSY_MS : MEMORY_POLL_IDLE_MS);
      this.memoryTimer.unref();
    };
    this.memoryTimer = setTimeout(check, MEMORY_POLL_BUSY_MS);
    this.memoryTimer.unref();
  }

  private rescheduleMemoryWatch(): void {
    // Going busy: check soon rather than after the idle interval.
    if (this.calls.size !== 1 || !this.memoryTimer) return;
    this.memoryTimer.refresh();
  }

  private exitError(code: number | null, signal: NodeJS.Signals | null, fallback: ActivationErrorCode): ActivationError {
    if (this.killReason) return this.killReason;
    const tail = this.recentOutput.lines().slice(-5);
    if (this.sawOutOfMemory) {
      return { code: 'MEMORY_LIMIT', message: `instance ran out of memory (limits.memoryMb ${this.limits.memoryMb} MiB)` };
    }
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    return { code: fallback, message: `instance ${how}${tail.length ? `; last output: ${tail.join(' | ').slice(0, 500)}` : ''}` };
  }

  private onProcessExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.memoryTimer) clearTimeout(this.memoryTimer);
    const wasStopping = this.state === 'stopping';
    this.state = 'dead';
    const error = this.exitError(code, signal, 'INSTANCE_EXITED');
    const several = this.calls.size > 1;
    for (const call of [...this.calls.values()]) {
      // Output nobody could be named for may explain the end; each call that died keeps it.
      if (several) for (const line of this.unattributed.lines()) call.logs.add(line);
      this.finish(call.id, { ok: false, error });
    }
    if (!wasStopping && !this.killReason && code !== 0) {
      this.log.warn({ instance: this.id, code, signal }, 'instance exited unexpectedly');
    }
    this.onExit(this);
    this.markGone();
  }
}
