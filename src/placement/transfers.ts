// The transfer queue and its workers (what FTS does for Rucio): one transfer copies one file to one
// SE. Queued transfers start by priority within per-SE and per-link concurrency limits; each copy
// streams through sluice (checksummed on the way) or, between two WebDAV endpoints that support it,
// is pulled by the destination (HTTP third-party copy). A copy counts only once its ADLER32 matches
// the file's; then replica and REPLICA_AVAILABLE event commit together. Failures retry with
// exponential backoff; the last one makes the rule's lock STUCK.
import { randomUUID } from 'node:crypto';
import { Transform } from 'node:stream';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import type { StorageElement, ReceivedData } from '../storage/storage-element.js';
import { WebDavStorageElement } from '../storage/webdav-se.js';
import type { Replica } from '../storage/types.js';
import type { FileRef, PlacementStore } from './placement-store.js';
import type { SeRegistry } from './se-registry.js';
import type { Rule, Transfer } from './types.js';
import { selectSes } from './se-expression.js';

export interface TransferLimits {
  /** Concurrent transfers in total. */
  maxActive: number;
  /** Concurrent transfers into or out of one SE (an SE's own maxActiveTransfers wins). */
  maxActivePerSe: number;
  /** Concurrent transfers between one source and one destination. */
  maxActivePerLink: number;
  maxAttempts: number;
  /** First retry delay; doubles per attempt, capped at 10 minutes. */
  retryBaseSeconds: number;
}

interface Running {
  abort: AbortController;
  bytes: number;
  source: string | undefined;
  destination: string;
  done: Promise<void>;
}

/** What the transfer queue needs from the tape side. */
export interface Stager {
  /** Brings a NEARLINE tape replica online; resolves when it is. */
  stage(entryId: number, se: string): Promise<void>;
}

const MAX_BACKOFF_MS = 600_000;
/** How long a queued transfer's last source choice may stand in for a fresh one when its link is full. */
const SOURCE_HINT_MS = 5000;
/** How long a full window of due transfers is reused by the passes after the one that read it. */
const DUE_WINDOW_MS = 1000;

interface DueWindow {
  rows: (Transfer & { entryId: number })[];
  at: number;
  /** The read returned as many as asked: more are due behind these. */
  full: boolean;
  lowestPriority: number;
}

/** Preference of a source: local disk first, then a tape buffer, then remote endpoints. */
function sourceRank(kind: string | undefined): number {
  return kind === 'local' ? 0 : kind === 'tape' ? 1 : 2;
}

export class TransferQueue {
  private readonly running = new Map<string, Running>();
  private readonly requesting = new Set<string>();
  private pumping = false;
  private pumpAgain = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /**
   * The source each queued transfer got at the last pass that found its link or SE full. With a
   * backlog every pass looks at the same few hundred queued transfers, and choosing a source reads
   * the file's replicas: a transfer whose last choice is still full is passed over without that.
   * A hint only ever holds a transfer back; a launch always chooses afresh.
   */
  private sourceHints = new Map<string, { se: string; at: number }>();
  /**
   * The best due transfers as last read. A pass runs at every request and every finished
   * transfer; with a backlog, reading and decoding a window of rows each time costs more than the
   * copy of a small file. A full window stays valid until a transfer that would sort into it is
   * queued (higher priority), a retry falls due, or DUE_WINDOW_MS passes; a transfer changed
   * meanwhile (cancelled) is caught by run()'s check of its state.
   */
  private dueWindow: DueWindow | undefined;
  onFailed: ((t: Transfer & { entryId: number }) => Promise<void>) | undefined;
  stager: Stager | undefined;
  /** The rule a transfer serves (for its source expression). */
  ruleOf: ((id: string) => Rule | undefined) | undefined;

  constructor(
    private readonly deps: {
      store: PlacementStore;
      registry: SeRegistry;
      limits: TransferLimits;
      log: Logger;
    },
  ) {}

  /** After an unclean stop: interrupted transfers go back to the queue, half-made replicas away. */
  async recover(): Promise<void> {
    const requeued = await this.deps.store.requeueInterrupted();
    const dropped = await this.deps.store.dropCopyingReplicas();
    if (requeued + dropped > 0) this.deps.log.warn({ requeued, dropped }, 'requeued transfers interrupted by an unclean stop');
  }

  start(): void {
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const r of this.running.values()) r.abort.abort(new SluiceError('UNAVAILABLE', 'server stopping'));
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  /** Queues a copy of the file to an SE for a rule, unless one is already on its way. */
  async request(file: FileRef, destination: string, rule: Rule): Promise<void> {
    // Two rules (or a rule and the repairer) may ask at once: one check-and-insert at a time per copy.
    const key = `${file.entryId}>${destination}`;
    if (this.requesting.has(key)) return;
    this.requesting.add(key);
    try {
      const open = await this.deps.store.openTransferTo(file.entryId, destination);
      if (open && open.etag === file.entry.etag) return;
      // A transfer of content since overwritten is of no use: a queued one is dropped (a running one
      // finds out at its commit), and the new content gets its own.
      if (open?.state === 'QUEUED') {
        await this.deps.store.updateTransfer(open.id, {
          state: 'CANCELLED',
          error: 'superseded: the file was overwritten',
          finished: Date.now(),
        });
      }
      await this.deps.store.insertTransfer({
        id: randomUUID(),
        file,
        source: await this.sourceFor(file, destination, rule),
        destination,
        priority: rule.priority,
        activity: rule.activity,
        ruleId: rule.id,
        maxAttempts: this.deps.limits.maxAttempts,
      });
      // Queued behind a full window of the same or a higher priority, it is not among the best due.
      const w = this.dueWindow;
      if (w && !(w.full && rule.priority <= w.lowestPriority)) this.dueWindow = undefined;
    } finally {
      this.requesting.delete(key);
    }
    this.kick();
  }

  /** For a rule with a source expression: the SE to copy from (one of its SEs holding the file). */
  private async sourceFor(file: FileRef, destination: string, rule: Rule): Promise<string | undefined> {
    if (rule.source === undefined) return undefined;
    let allowed: string[];
    try {
      allowed = selectSes(rule.source, this.deps.registry.expressionUniverse());
    } catch {
      return undefined;
    }
    const replicas = await this.deps.store.replicasOf(file.entryId);
    const usable = replicas.filter(
      (r) => r.se !== destination && allowed.includes(r.se) && (r.state === 'AVAILABLE' || r.state === 'NEARLINE'),
    );
    usable.sort((a, b) => Number(b.online) - Number(a.online) || sourceRank(this.kindOf(a.se)) - sourceRank(this.kindOf(b.se)));
    return usable[0]?.se;
  }

  private kindOf(se: string): string | undefined {
    return this.deps.registry.has(se) ? this.deps.registry.info(se).kind : undefined;
  }

  /** A transfer as stored, with live progress for running ones. */
  async get(id: string): Promise<Transfer | undefined> {
    const t = await this.deps.store.getTransfer(id);
    if (!t) return undefined;
    const { entryId: _entryId, ...rest } = t;
    const live = this.running.get(id);
    return live ? { ...rest, bytesDone: live.bytes } : rest;
  }

  live(id: string): number | undefined {
    return this.running.get(id)?.bytes;
  }

  activeCount(): number {
    return this.running.size;
  }

  async cancel(id: string): Promise<Transfer> {
    this.dueWindow = undefined;
    const t = await this.deps.store.getTransfer(id);
    if (!t) throw new SluiceError('NOT_FOUND', `no transfer ${id}`);
    if (t.state === 'DONE' || t.state === 'FAILED' || t.state === 'CANCELLED') {
      throw new SluiceError('CONFLICT', `transfer ${id} is already ${t.state}`);
    }
    const live = this.running.get(id);
    if (live) {
      live.abort.abort(new SluiceError('CONFLICT', 'cancelled'));
      await live.done;
    } else {
      await this.deps.store.updateTransfer(id, { state: 'CANCELLED', error: 'cancelled', finished: Date.now() }, { durable: true });
      await this.onFailed?.({ ...t, state: 'CANCELLED', error: 'cancelled' });
    }
    return (await this.get(id))!;
  }

  kick(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump()
      .catch((err: unknown) => this.deps.log.error({ err }, 'transfer queue failed'))
      .finally(() => {
        this.pumping = false;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.kick();
        }
      });
  }

  private perSeLimit(se: string): number {
    return this.deps.registry.maxActive(se) ?? this.deps.limits.maxActivePerSe;
  }

  private async pump(): Promise<void> {
    const { limits } = this.deps;
    if (this.running.size >= limits.maxActive) return;
    const window = Math.max(64, limits.maxActive * 8);
    let cached = this.dueWindow;
    if (!cached || !cached.full || Date.now() - cached.at >= DUE_WINDOW_MS || cached.rows.length < window / 2) {
      const rows = await this.deps.store.dueTransfers(Date.now(), window);
      cached = { rows, at: Date.now(), full: rows.length >= window, lowestPriority: Math.min(...rows.map((r) => r.priority)) };
      this.dueWindow = cached;
    }
    const due = cached.rows;
    const perSe = new Map<string, number>();
    const perLink = new Map<string, number>();
    const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
    for (const r of this.running.values()) {
      count(perSe, r.destination);
      if (r.source) count(perSe, r.source);
      count(perLink, `${r.source ?? '?'}>${r.destination}`);
    }
    const full = (se: string, destination: string) =>
      (perSe.get(se) ?? 0) >= this.perSeLimit(se) || (perLink.get(`${se}>${destination}`) ?? 0) >= limits.maxActivePerLink;
    const now = Date.now();
    const hints = new Map<string, { se: string; at: number }>();
    for (const t of due) {
      if (this.running.size >= limits.maxActive) break;
      if (this.running.has(t.id)) continue; // launched by an earlier pass, not yet marked ACTIVE
      if ((perSe.get(t.destination) ?? 0) >= this.perSeLimit(t.destination)) continue;
      const hint = this.sourceHints.get(t.id);
      if (hint && now - hint.at < SOURCE_HINT_MS && full(hint.se, t.destination)) {
        hints.set(t.id, hint);
        continue;
      }
      const source = await this.pickSource(t);
      if (source && full(source.se, t.destination)) {
        hints.set(t.id, { se: source.se, at: now });
        continue;
      }
      count(perSe, t.destination);
      if (source) {
        count(perSe, source.se);
        count(perLink, `${source.se}>${t.destination}`);
      }
      this.launch(t, source);
    }
    this.sourceHints = hints;
    cached.rows = cached.rows.filter((r) => !this.running.has(r.id));
    if (this.timer) clearTimeout(this.timer);
    // A full window means transfers are due now and finishing ones kick the next pass; the time of
    // the next retry (a scan of the whole queue) matters only once the due ones are through.
    if (cached.full) return;
    const next = await this.deps.store.nextDueTime();
    if (next !== undefined && next > Date.now()) {
      this.timer = setTimeout(
        () => {
          this.dueWindow = undefined;
          this.kick();
        },
        Math.min(next - Date.now(), 60_000),
      );
      this.timer.unref();
    }
  }

  /** The best replica to copy from: online, not bad, not the destination; local before remote. */
  private async pickSource(t: Transfer & { entryId: number }): Promise<Replica | undefined> {
    const replicas = (await this.deps.store.replicasOf(t.entryId)).filter(
      (r) => r.se !== t.destination && (r.state === 'AVAILABLE' || r.state === 'NEARLINE') && this.deps.registry.usable(r.se),
    );
    replicas.sort((a, b) => Number(b.online) - Number(a.online) || sourceRank(this.kindOf(a.se)) - sourceRank(this.kindOf(b.se)));
    const pinned = t.source !== undefined ? replicas.find((r) => r.se === t.source) : undefined;
    if (pinned) return pinned;
    // A rule's source expression limits where copies come from, also after the first choice went bad.
    const restriction = t.ruleId !== undefined ? this.ruleOf?.(t.ruleId)?.source : undefined;
    if (restriction !== undefined) {
      let allowed: string[] = [];
      try {
        allowed = selectSes(restriction, this.deps.registry.expressionUniverse());
      } catch {
        // an expression that selects nothing now: no source
      }
      return replicas.find((r) => allowed.includes(r.se));
    }
    return replicas[0];
  }

  private launch(t: Transfer & { entryId: number }, source: Replica | undefined): void {
    const abort = new AbortController();
    const running: Running = { abort, bytes: 0, source: source?.se, destination: t.destination, done: Promise.resolve() };
    this.running.set(t.id, running);
    running.done = this.run(t, source, running)
      .catch((err: unknown) => this.deps.log.error({ err, transfer: t.id }, 'transfer bookkeeping failed'))
      .finally(() => {
        this.running.delete(t.id);
        this.kick();
      });
  }

  private async run(t: Transfer & { entryId: number }, source: Replica | undefined, running: Running): Promise<void> {
    const { store, registry, log } = this.deps;
    const attempts = t.attempts + 1;
    // The pump's window of due transfers may be a moment old: one cancelled meanwhile stays so.
    if ((await store.getTransfer(t.id))?.state !== 'QUEUED') return;
    const file = await store.fileById(t.entryId);
    if (!file || file.entry.etag !== t.etag) {
      await store.updateTransfer(t.id, { state: 'CANCELLED', error: 'the file was changed or deleted', finished: Date.now() });
      return;
    }
    const dest = registry.backend(t.destination);
    const there = (await store.replicasOf(t.entryId)).find((r) => r.se === t.destination);
    if (there && (there.state === 'AVAILABLE' || there.state === 'NEARLINE')) {
      // Another transfer made this copy meanwhile (the file's content is unchanged: etag checked above).
      await store.updateTransfer(t.id, { state: 'DONE', error: 'already on the destination', finished: Date.now() });
      return;
    }
    try {
      if (!dest) throw new SluiceError('NOT_FOUND', `no storage element ${t.destination}`);
      if (!registry.usable(t.destination)) throw new SluiceError('UNAVAILABLE', `storage element ${t.destination} is out of service`);
      if (!source) throw new SluiceError('CONFLICT', 'no available source replica');
      const src = registry.backend(source.se);
      if (!src) throw new SluiceError('NOT_FOUND', `no storage element ${source.se}`);
      if (!source.online) {
        if (!this.stager) throw new SluiceError('UNAVAILABLE', `source replica on ${source.se} is NEARLINE`);
        await store.updateTransfer(t.id, { state: 'STAGING', source: source.se });
        await this.stager.stage(t.entryId, source.se);
        await store.updateTransfer(t.id, { state: 'QUEUED', nextAttempt: Date.now() });
        return;
      }
      if ((await registry.freeBytes(t.destination)) < file.entry.size) {
        throw new SluiceError('INSUFFICIENT_STORAGE', `storage element ${t.destination} has no room for ${file.entry.size} bytes`);
      }
      registry.consumed(t.destination, file.entry.size);
      await store.beginReplica(t.entryId, t.destination);
      await store.updateTransfer(t.id, { state: 'ACTIVE', attempts, source: source.se, started: Date.now(), error: null });
      const { received, mode } = await this.copy(file, source, src, dest, running);
      if (running.abort.signal.aborted) {
        await dest.remove(received.location).catch(() => undefined);
        const reason: unknown = running.abort.signal.reason;
        throw reason instanceof Error ? reason : new SluiceError('CONFLICT', 'cancelled');
      }
      const expected = file.entry.checksums.adler32;
      if (received.size !== file.entry.size || (expected !== undefined && received.checksums.adler32 !== expected)) {
        await dest.remove(received.location).catch(() => undefined);
        const what = `copy from ${source.se} has ${received.size} bytes, ADLER32 ${received.checksums.adler32}; the file has ${file.entry.size} bytes, ADLER32 ${expected}`;
        // The bytes came whole from the source: it is the source replica that is corrupt.
        await store.markReplicaBad(t.entryId, source.se, `checksum mismatch on transfer ${t.id}: ${what}`);
        throw new SluiceError('CHECKSUM_MISMATCH', what);
      }
      const committed = await store.commitReplica(
        t.entryId,
        t.etag,
        { se: t.destination, location: received.location, state: 'AVAILABLE', online: true },
        { transfer: t.id, ...(t.ruleId ? { rule: t.ruleId } : {}) },
      );
      if (committed === 'stale') {
        await dest.remove(received.location).catch(() => undefined);
        await store.updateTransfer(t.id, { state: 'CANCELLED', error: 'the file was changed or deleted', finished: Date.now() });
        return;
      }
      if (committed.replaced) await dest.remove(committed.replaced).catch(() => undefined);
      await store.updateTransfer(t.id, { state: 'DONE', bytesDone: received.size, mode, finished: Date.now() });
      log.debug({ transfer: t.id, path: file.entry.path, from: source.se, to: t.destination, mode }, 'transfer done');
    } catch (e) {
      await store.abandonReplica(t.entryId, t.destination);
      const error = (e as Error).message;
      const cancelled = running.abort.signal.aborted && (running.abort.signal.reason as SluiceError | undefined)?.code === 'CONFLICT';
      if (cancelled || this.stopped) {
        if (this.stopped && !cancelled) return; // left ACTIVE: requeued on the next start
        await store.updateTransfer(
          t.id,
          { state: 'CANCELLED', error: 'cancelled', bytesDone: running.bytes, finished: Date.now() },
          { durable: true },
        );
        await this.onFailed?.({ ...t, state: 'CANCELLED', error: 'cancelled' });
        return;
      }
      if (attempts < t.maxAttempts) {
        const delay = Math.min(MAX_BACKOFF_MS, this.deps.limits.retryBaseSeconds * 1000 * 2 ** (attempts - 1));
        log.warn({ transfer: t.id, path: t.path, to: t.destination, attempt: attempts, error }, 'transfer failed; will retry');
        await store.updateTransfer(t.id, { state: 'QUEUED', attempts, error, nextAttempt: Date.now() + delay, bytesDone: running.bytes });
      } else {
        log.error({ transfer: t.id, path: t.path, to: t.destination, attempts, error }, 'transfer failed for good');
        await store.updateTransfer(t.id, { state: 'FAILED', attempts, error, finished: Date.now(), bytesDone: running.bytes });
        await this.onFailed?.({ ...t, state: 'FAILED', attempts, error });
      }
    }
  }

  /** Moves the bytes: pulled by the destination when both are WebDAV and it can, else streamed. */
  private async copy(
    file: FileRef,
    source: Replica,
    src: StorageElement,
    dest: StorageElement,
    running: Running,
  ): Promise<{ received: ReceivedData; mode: Transfer['mode'] }> {
    const signal = running.abort.signal;
    if (dest instanceof WebDavStorageElement && src instanceof WebDavStorageElement) {
      const pulled = await dest.pullFrom(
        { url: src.urlOf(source.location), ...(src.authorization() ? { authorization: src.authorization()! } : {}) },
        {
          expectedSize: file.entry.size,
          ...(file.entry.checksums.adler32 ? { expectedAdler32: file.entry.checksums.adler32 } : {}),
          onProgress: (bytes) => (running.bytes = bytes),
          signal,
        },
      );
      if (pulled !== 'unsupported') return { received: pulled, mode: 'tpc' };
    }
    const stream = await src.read(source.location);
    const counted = stream.pipe(this.counter(running));
    stream.on('error', (e) => counted.destroy(e));
    const onAbort = () => stream.destroy(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const received = await dest.receive(counted, { extraChecksums: new Set(), expectedSize: file.entry.size });
      return { received, mode: src.kind !== 'webdav' && dest.kind !== 'webdav' ? 'local' : 'stream' };
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private counter(running: Running): Transform {
    return new Transform({
      transform(chunk: Buffer, _enc, cb) {
        running.bytes += chunk.length;
        cb(null, chunk);
      },
    });
  }
}
