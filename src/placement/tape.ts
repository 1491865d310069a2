// Tape lifecycle, as an HSM-backed dCache pool runs it: files written to a tape SE wait in its disk
// buffer for flushDelaySeconds, are flushed (REPLICA_FLUSHED) and leave the buffer; a read or a
// bring-online request stages them back (REPLICA_STAGED) and pins them for a while; unpinned staged
// copies are evicted again. Stage requests follow the WLCG tape REST API's model.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import { TapeStorageElement } from '../storage/tape-se.js';
import type { PlacementStore, StageFile, StageRequest } from './placement-store.js';
import type { SeRegistry } from './se-registry.js';

const TICK_MS = 200;
const SCAN_LIMIT = 500;

export class TapeManager {
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private readonly flushing = new Set<string>();
  private readonly stages = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  /** Requests being worked on: cancels change these objects, so the worker sees them. */
  private readonly live = new Map<string, StageRequest>();

  constructor(
    private readonly deps: {
      store: PlacementStore;
      registry: SeRegistry;
      /** How long a staged file stays online by default. */
      pinSeconds: number;
      log: Logger;
    },
  ) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
    // Stage requests interrupted by a stop are picked up again.
    for (const r of await this.deps.store.openStageRequests()) this.startRequest(r);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.abort.abort(new SluiceError('UNAVAILABLE', 'server stopping'));
    await Promise.allSettled([...this.stages.values()]);
  }

  private tapes(): TapeStorageElement[] {
    return this.deps.registry
      .list()
      .map((i) => this.deps.registry.backend(i.name))
      .filter((b): b is TapeStorageElement => b instanceof TapeStorageElement);
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      for (const tape of this.tapes()) {
        await this.flushDue(tape);
        await this.evictUnpinned(tape);
      }
    } catch (err) {
      this.deps.log.error({ err }, 'tape flush/evict pass failed');
    } finally {
      this.ticking = false;
    }
  }

  /** Flushes files that waited long enough in the buffer. */
  async flushDue(tape: TapeStorageElement, now = Date.now()): Promise<number> {
    const dueBefore = now - tape.options.flushDelaySeconds * 1000;
    let n = 0;
    for (const r of await this.deps.store.replicasOn(tape.name, 'AVAILABLE', SCAN_LIMIT)) {
      if (r.created > dueBefore || r.location === '') continue;
      const key = `${r.entryId}@${tape.name}`;
      if (this.flushing.has(key)) continue;
      this.flushing.add(key);
      try {
        await tape.flush(r.location);
        // The buffer copy leaves once the file is on tape: reads must stage, as from a real HSM.
        await this.deps.store.replicaFlushed(r.entryId, tape.name, false);
        await tape.evict(r.location);
        n++;
      } catch (err) {
        this.deps.log.error({ err, se: tape.name }, 'flush to tape failed; will retry');
      } finally {
        this.flushing.delete(key);
      }
    }
    return n;
  }

  private async evictUnpinned(tape: TapeStorageElement, now = Date.now()): Promise<void> {
    for (const r of await this.deps.store.replicasOn(tape.name, 'NEARLINE', SCAN_LIMIT)) {
      if (!r.online || r.pinnedUntil === undefined || r.pinnedUntil > now) continue;
      if (this.stages.has(`${r.entryId}@${tape.name}`)) continue;
      await this.deps.store.replicaEvicted(r.entryId, tape.name);
      await tape.evict(r.location);
    }
  }

  /**
   * Brings a NEARLINE replica online (one recall per file however many ask) and pins it for
   * pinSeconds; an online one just gets its pin extended.
   */
  stage(entryId: number, se: string, pinSeconds = this.deps.pinSeconds): Promise<void> {
    const key = `${entryId}@${se}`;
    const running = this.stages.get(key);
    if (running) return running;
    const p = this.doStage(entryId, se, pinSeconds).finally(() => this.stages.delete(key));
    this.stages.set(key, p);
    return p;
  }

  private async doStage(entryId: number, se: string, pinSeconds: number): Promise<void> {
    const tape = this.deps.registry.backend(se);
    if (!(tape instanceof TapeStorageElement)) throw new SluiceError('CONFLICT', `${se} is not a tape SE`);
    const replica = (await this.deps.store.replicasOf(entryId)).find((r) => r.se === se);
    if (!replica || replica.state === 'BAD') throw new SluiceError('NOT_FOUND', `no good replica on ${se}`);
    const pinnedUntil = Date.now() + pinSeconds * 1000;
    if (replica.state === 'AVAILABLE' || (replica.online && (await tape.isOnline(replica.location)))) {
      if (replica.state === 'NEARLINE') await this.deps.store.setPin(entryId, se, Math.max(pinnedUntil, replica.pinnedUntil ?? 0));
      return;
    }
    await tape.stage(replica.location, this.abort.signal);
    await this.deps.store.replicaStaged(entryId, se, pinnedUntil);
  }

  /** Whether a file has a tape replica that must be staged before it can be read. */
  async nearlineReplicaOf(entryId: number): Promise<string | undefined> {
    const replicas = await this.deps.store.replicasOf(entryId);
    if (replicas.some((r) => r.state === 'AVAILABLE' || (r.state === 'NEARLINE' && r.online))) return undefined;
    return replicas.find((r) => r.state === 'NEARLINE')?.se;
  }

  // ---- stage requests (WLCG tape REST API) ---------------------------------------------------------

  async submit(owner: string, files: { path: string; pinSeconds?: number }[]): Promise<StageRequest> {
    const request: StageRequest = {
      id: randomUUID(),
      owner,
      created: Date.now(),
      started: undefined,
      completed: undefined,
      files: files.map((f) => ({ path: f.path, state: 'SUBMITTED' as const, ...(f.pinSeconds ? { pinSeconds: f.pinSeconds } : {}) })),
    };
    await this.deps.store.insertStageRequest(request);
    this.startRequest(request);
    return request;
  }

  private startRequest(request: StageRequest): void {
    void this.runRequest(request).catch((err: unknown) => {
      if (!this.abort.signal.aborted)
        this.deps.log.error({ err, request: request.id }, 'stage request failed; it resumes at the next start');
    });
  }

  private async runRequest(request: StageRequest): Promise<void> {
    const save = () => this.deps.store.updateStageRequest(request);
    this.live.set(request.id, request);
    request.started ??= Date.now();
    await save();
    await Promise.all(
      request.files.map(async (f: StageFile) => {
        if (f.state === 'COMPLETED' || f.state === 'FAILED' || f.state === 'CANCELLED') return;
        const pinSeconds = f.pinSeconds ?? this.deps.pinSeconds;
        f.state = 'STARTED';
        await save();
        try {
          const file = await this.deps.store.fileByPath(f.path);
          if (!file) throw new SluiceError('NOT_FOUND', `${f.path} does not exist`);
          const tapeReplica = (await this.deps.store.replicasOf(file.entryId)).find(
            (r) => this.deps.registry.has(r.se) && this.deps.registry.info(r.se).kind === 'tape' && r.state !== 'BAD',
          );
          if (!tapeReplica) {
            if ((await this.deps.store.replicasOf(file.entryId)).some((r) => r.state === 'AVAILABLE')) {
              f.state = 'COMPLETED'; // on disk already: nothing to recall
              return;
            }
            throw new SluiceError('NOT_FOUND', `${f.path} has no replica on tape`);
          }
          await this.stage(file.entryId, tapeReplica.se, pinSeconds);
          const after = (await this.deps.store.replicasOf(file.entryId)).find((r) => r.se === tapeReplica.se);
          if ((f.state as StageFile['state']) === 'CANCELLED') return;
          f.state = 'COMPLETED';
          if (after?.pinnedUntil !== undefined) f.pinnedUntil = after.pinnedUntil;
        } catch (e) {
          if (this.abort.signal.aborted) return;
          if ((f.state as StageFile['state']) === 'CANCELLED') return;
          f.state = 'FAILED';
          f.error = (e as Error).message;
        } finally {
          if (!this.abort.signal.aborted) await save();
        }
      }),
    );
    this.live.delete(request.id);
    if (this.abort.signal.aborted) return;
    request.completed ??= Date.now();
    await save();
  }

  async getRequest(id: string): Promise<StageRequest> {
    const r = this.live.get(id) ?? (await this.deps.store.getStageRequest(id));
    if (!r) throw new SluiceError('NOT_FOUND', `no stage request ${id}`);
    return r;
  }

  private requireMembers(r: StageRequest, paths: string[] | undefined): void {
    const unknown = (paths ?? []).filter((p) => !r.files.some((f) => f.path === p));
    if (unknown.length > 0) throw new SluiceError('BAD_REQUEST', `not in stage request ${r.id}: ${unknown.join(', ')}`);
  }

  async cancel(id: string, paths: string[] | undefined): Promise<StageRequest> {
    const r = await this.getRequest(id);
    this.requireMembers(r, paths);
    for (const f of r.files) {
      if ((paths === undefined || paths.includes(f.path)) && (f.state === 'SUBMITTED' || f.state === 'STARTED')) f.state = 'CANCELLED';
    }
    if (r.files.every((f) => f.state !== 'SUBMITTED' && f.state !== 'STARTED')) r.completed ??= Date.now();
    await this.deps.store.updateStageRequest(r);
    return r;
  }

  /** Releases the pins a request holds: the staged copies may be evicted now. */
  async release(id: string, paths: string[] | undefined): Promise<void> {
    const r = await this.getRequest(id);
    this.requireMembers(r, paths);
    for (const f of r.files) {
      if (paths !== undefined && !paths.includes(f.path)) continue;
      const file = await this.deps.store.fileByPath(f.path);
      if (!file) continue;
      for (const rep of await this.deps.store.replicasOf(file.entryId)) {
        if (rep.state === 'NEARLINE' && rep.online) await this.deps.store.setPin(file.entryId, rep.se, Date.now());
      }
    }
  }

  /** Cancels what is still running, releases the request's pins and forgets it. */
  async remove(id: string): Promise<void> {
    await this.cancel(id, undefined);
    await this.release(id, undefined);
    this.live.delete(id);
    await this.deps.store.deleteStageRequest(id);
  }
}
