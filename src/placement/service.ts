// The placement domain as the API and the namespace see it: storage elements, rules, transfers,
// QoS, staging, verification and cleanup, with the scope checks each needs. Owns the judge, the
// transfer queue and the tape lifecycle and runs the periodic repair pass.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import { isAdmin, mayStorage, requireStorage, type Principal } from '../auth/scopes.js';
import type { EventLog } from '../events/event-log.js';
import { adler32Of } from '../storage/checksums.js';
import { LocalStorageElement } from '../storage/local-se.js';
import type { ReplicaSource } from '../storage/namespace.js';
import { normalizePath, userPath, type NsPath } from '../storage/paths.js';
import { TapeStorageElement } from '../storage/tape-se.js';
import type { Entry, Replica } from '../storage/types.js';
import { WebDavStorageElement } from '../storage/webdav-se.js';
import { Judge } from './judge.js';
import type { FileRef, PlacementStore, StageFile, StageRequest, TransferQuery } from './placement-store.js';
import { QosService } from './qos.js';
import { parseSeExpression, selectSes } from './se-expression.js';
import { LANDING_SE, SeRegistry, type SeSpace } from './se-registry.js';
import { TapeManager } from './tape.js';
import { TransferQueue, type TransferLimits } from './transfers.js';
import type { QosClass, Rule, RuleSpec, SeSpec, StorageElementInfo, Transfer } from './types.js';

export interface PlacementConfig extends TransferLimits {
  /** Seconds between repair passes (expired rules, stuck locks, space cleanup). */
  repairIntervalSeconds: number;
  /** How long a read waits for a NEARLINE file to be staged before answering 503. */
  stageWaitSeconds: number;
  /** How long a staged file stays online. */
  pinSeconds: number;
  /** How long a copy stuck on the only SE it may go to waits before it is tried there again. */
  stuckRetrySeconds: number;
  /** Below this free fraction of an SE with a capacity, unprotected replicas are cleaned up … */
  cleanBelowFreeFraction: number;
  /** … until this fraction is free again. */
  cleanUntilFreeFraction: number;
}

/** Online replicas are read from local disk first, then a tape buffer, then a remote endpoint. */
function readRank(kind: string | undefined): number {
  return kind === 'local' ? 0 : kind === 'tape' ? 1 : 2;
}

export class PlacementService implements ReplicaSource {
  readonly judge: Judge;
  readonly transfers: TransferQueue;
  readonly tape: TapeManager;
  readonly qos: QosService;
  private repairTimer: NodeJS.Timeout | undefined;
  private repairing: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {
      store: PlacementStore;
      registry: SeRegistry;
      eventLog: EventLog;
      config: PlacementConfig;
      qosClasses: QosClass[];
      /** Every replica location on an SE (to sweep what a crash left there). */
      locationsOn: (se: string) => Promise<Set<string>>;
      log: Logger;
    },
  ) {
    const { store, registry, log } = deps;
    this.transfers = new TransferQueue({ store, registry, limits: deps.config, log });
    this.judge = new Judge({
      store,
      registry,
      eventLog: deps.eventLog,
      transfers: this.transfers,
      stuckRetrySeconds: deps.config.stuckRetrySeconds,
      log,
    });
    this.tape = new TapeManager({ store, registry, pinSeconds: deps.config.pinSeconds, log });
    this.qos = new QosService({
      store,
      registry,
      judge: this.judge,
      classes: deps.qosClasses,
      removeReplica: (file, se, reason) => this.removeReplica(file, se, reason),
      log,
    });
    this.transfers.onFailed = (t) => this.judge.transferFailed(t);
    this.transfers.ruleOf = (id) => this.judge.cachedRule(id);
    this.transfers.stager = { stage: (entryId, se) => this.tape.stage(entryId, se) };
    this.judge.afterEvaluation = (file, rules) => this.qos.afterEvaluation(file, rules);
  }

  get store(): PlacementStore {
    return this.deps.store;
  }

  get registry(): SeRegistry {
    return this.deps.registry;
  }

  /** Recovers from an unclean stop, then starts the judge, the transfer workers and the tape loop. */
  async start(): Promise<void> {
    await this.transfers.recover();
    for (const info of this.deps.registry.list()) {
      if (info.name === LANDING_SE) continue;
      const b = this.deps.registry.backend(info.name);
      if (b instanceof LocalStorageElement || b instanceof TapeStorageElement) {
        const swept = await b.sweep(await this.deps.locationsOn(info.name));
        if (swept.partial + swept.orphaned > 0) this.deps.log.warn({ se: info.name, ...swept }, 'removed partial and uncommitted replicas');
      }
    }
    await this.judge.start();
    this.transfers.start();
    await this.tape.start();
    this.repairTimer = setInterval(() => {
      this.repairing = this.repair().catch((err: unknown) => this.deps.log.error({ err }, 'placement repair pass failed'));
    }, this.deps.config.repairIntervalSeconds * 1000);
    this.repairTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.repairTimer) clearInterval(this.repairTimer);
    await this.repairing;
    await this.judge.stop();
    await this.transfers.stop();
    await this.tape.stop();
    await this.deps.registry.close();
  }

  /** Expired rules lapse, stuck locks are tried again, full SEs are cleaned. */
  async repair(): Promise<void> {
    await this.judge.expireRules();
    await this.judge.repairStuck();
    for (const se of this.deps.registry.list()) await this.clean(se.name);
  }

  // ---- storage elements ----------------------------------------------------------------------------

  listSes(p: Principal): StorageElementInfo[] {
    void p;
    return this.deps.registry.list();
  }

  async showSe(name: string): Promise<StorageElementInfo & { space: SeSpace }> {
    const info = this.deps.registry.info(name);
    return { ...info, space: await this.deps.registry.space(name) };
  }

  async addSe(p: Principal, spec: SeSpec): Promise<StorageElementInfo> {
    requireAdmin(p, 'add storage elements');
    const info = await this.deps.registry.add(spec);
    await this.judge.repairStuck(); // rules waiting for SEs may be satisfiable now
    return info;
  }

  async setSeAttributes(p: Principal, name: string, set: Record<string, string>, remove: string[]): Promise<StorageElementInfo> {
    requireAdmin(p, 'change storage elements');
    const info = await this.deps.registry.setAttributes(name, set, remove);
    await this.judge.seChanged(name); // rules may no longer select it
    return info;
  }

  /** Takes an SE out of service (its copies are made again elsewhere) or back into it. */
  async setSeAvailable(p: Principal, name: string, available: boolean): Promise<StorageElementInfo> {
    requireAdmin(p, 'change storage elements');
    const info = await this.deps.registry.setAvailable(name, available);
    await this.judge.seChanged(name);
    return info;
  }

  async removeSe(p: Principal, name: string): Promise<void> {
    requireAdmin(p, 'remove storage elements');
    await this.deps.registry.remove(name);
  }

  /**
   * Reads every replica on an SE back and compares its ADLER32 with the file's; a mismatch marks
   * the replica BAD (REPLICA_BAD), and the judge has it copied again from a good one.
   */
  async verifySe(p: Principal, name: string, limit = 100_000): Promise<{ checked: number; bad: string[]; skipped: number }> {
    requireAdmin(p, 'verify storage elements');
    const backend = this.deps.registry.backend(name);
    if (!backend) throw new SluiceError('NOT_FOUND', `no storage element ${name}`);
    const replicas = [
      ...(await this.deps.store.replicasOn(name, 'AVAILABLE', limit)),
      ...(await this.deps.store.replicasOn(name, 'NEARLINE', limit)),
    ];
    const bad: string[] = [];
    let checked = 0;
    let skipped = 0;
    for (const r of replicas) {
      const file = await this.deps.store.fileById(r.entryId);
      const expected = file?.entry.checksums.adler32;
      if (!file || !expected || !r.online) {
        skipped++; // no checksum to compare, or only on tape (verifying would need a recall)
        continue;
      }
      let ok: boolean;
      let why = '';
      try {
        if (backend instanceof WebDavStorageElement) ok = await backend.verify(r.location, expected, { size: file.entry.size });
        else {
          const actual = await adler32Of(await backend.read(r.location));
          ok = actual.adler32 === expected && actual.size === file.entry.size;
          why = `has ${actual.size} bytes with ADLER32 ${actual.adler32}`;
        }
      } catch (e) {
        ok = false;
        why = (e as Error).message;
      }
      checked++;
      if (ok) {
        await this.deps.store.markVerified(r.entryId, name, Date.now());
      } else {
        bad.push(file.entry.path);
        await this.deps.store.markReplicaBad(
          r.entryId,
          name,
          `verification failed: expected ${file.entry.size} bytes with ADLER32 ${expected}${why ? ', replica ' + why : ''}`,
        );
        this.deps.log.warn({ se: name, path: file.entry.path }, 'replica failed verification; marked BAD');
      }
    }
    return { checked, bad, skipped };
  }

  /**
   * Frees space on an SE once it is nearly full (of its capacity, or of its file system): removes
   * replicas no rule protects, oldest first, never a file's last good replica — as dCache's sweeper
   * drops cached copies when a pool needs room.
   */
  async clean(name: string): Promise<number> {
    const { config } = this.deps;
    const space = await this.deps.registry.space(name);
    if (space.total === 0 || space.free / space.total >= config.cleanBelowFreeFraction) return 0;
    let free = space.free;
    let removed = 0;
    for (const r of await this.deps.store.replicasOn(name, 'AVAILABLE', 10_000)) {
      if (free / space.total >= config.cleanUntilFreeFraction) break;
      if (await this.deps.store.isProtected(r.entryId, name)) continue;
      const others = (await this.deps.store.replicasOf(r.entryId)).filter(
        (o) => o.se !== name && (o.state === 'AVAILABLE' || o.state === 'NEARLINE'),
      );
      if (others.length === 0) continue;
      const file = await this.deps.store.fileById(r.entryId);
      if (!file) continue;
      await this.removeReplica(file, name, 'space cleanup: no rule protects it');
      free += file.entry.size;
      removed++;
    }
    if (removed > 0) this.deps.log.info({ se: name, removed }, 'cleaned unprotected replicas');
    return removed;
  }

  private async removeReplica(file: FileRef, se: string, reason: string): Promise<void> {
    const location = await this.deps.store.removeReplica(file.entryId, se, reason);
    if (location)
      await this.deps.registry
        .backend(se)
        ?.remove(location)
        .catch(() => undefined);
  }

  // ---- rules -------------------------------------------------------------------------------------

  async createRule(p: Principal, spec: RuleSpec): Promise<Rule> {
    const path = userPath(spec.path);
    requireStorage(p, 'modify', path);
    parseSeExpression(spec.expression); // syntax errors with their position
    const ses = selectSes(spec.expression, this.deps.registry.expressionUniverse());
    if (ses.length < spec.copies) {
      throw new SluiceError(
        'BAD_REQUEST',
        `expression "${spec.expression}" selects ${ses.length} storage element${ses.length === 1 ? '' : 's'} (${ses.join(', ')}) for ${spec.copies} copies`,
      );
    }
    if (spec.source !== undefined) selectSes(spec.source, this.deps.registry.expressionUniverse());
    const now = Date.now();
    const rule: Rule = {
      id: randomUUID(),
      owner: p.subject,
      path,
      glob: spec.glob,
      labels: spec.labels ?? [],
      xattrs: spec.xattrs ?? {},
      copies: spec.copies,
      expression: spec.expression,
      source: spec.source,
      grouping: spec.grouping,
      expires: spec.lifetimeSeconds !== undefined ? now + spec.lifetimeSeconds * 1000 : undefined,
      priority: spec.priority,
      activity: spec.activity,
      comment: spec.comment,
      fileId: undefined,
      qos: undefined,
      completed: undefined,
      state: 'REPLICATING',
      reason: undefined,
      locks: { ok: 0, replicating: 0, stuck: 0 },
      created: now,
      updated: now,
    };
    return this.judge.addRule(rule);
  }

  listRules(p: Principal): Rule[] {
    return this.judge
      .ruleList()
      .filter((r) => mayRead(p, r.path))
      .sort((a, b) => a.created - b.created);
  }

  async getRule(p: Principal, id: string): Promise<Rule> {
    const rule = await this.judge.refreshRule(id);
    if (!rule || !mayRead(p, rule.path)) throw new SluiceError('NOT_FOUND', `no rule ${id}`);
    return rule;
  }

  async ruleLocks(p: Principal, id: string, limit: number, offset: number) {
    await this.getRule(p, id);
    return this.deps.store.locksOfRule(id, limit, offset);
  }

  async deleteRule(p: Principal, id: string): Promise<void> {
    const rule = await this.getRule(p, id);
    requireStorage(p, 'modify', rule.path as NsPath);
    await this.judge.removeRule(id);
  }

  async suspendRule(p: Principal, id: string, suspended: boolean): Promise<Rule> {
    const rule = await this.getRule(p, id);
    requireStorage(p, 'modify', rule.path as NsPath);
    return (await this.judge.setSuspended(id, suspended))!;
  }

  // ---- transfers -----------------------------------------------------------------------------------

  async listTransfers(p: Principal, q: TransferQuery): Promise<Transfer[]> {
    if (q.path !== undefined) requireStorage(p, 'read', q.path as NsPath);
    const list = await this.deps.store.listTransfers(q);
    return list.filter((t) => mayRead(p, t.path)).map((t) => ({ ...t, bytesDone: this.transfers.live(t.id) ?? t.bytesDone }));
  }

  async getTransfer(p: Principal, id: string): Promise<Transfer> {
    const t = await this.transfers.get(id);
    if (!t || !mayRead(p, t.path)) throw new SluiceError('NOT_FOUND', `no transfer ${id}`);
    return t;
  }

  async cancelTransfer(p: Principal, id: string): Promise<Transfer> {
    const t = await this.getTransfer(p, id);
    requireStorage(p, 'modify', t.path as NsPath);
    return this.transfers.cancel(id);
  }

  // ---- QoS and staging -----------------------------------------------------------------------------

  private async requireFile(path: NsPath): Promise<FileRef> {
    const file = await this.deps.store.fileByPath(path);
    if (!file) throw new SluiceError('NOT_FOUND', `${path} is not a file (QoS applies to files; use a rule for a directory)`);
    return file;
  }

  async qosOf(p: Principal, path: NsPath): Promise<{ currentQos: string; targetQos?: string }> {
    requireStorage(p, 'read', path);
    return this.qos.describe(await this.requireFile(path));
  }

  async transitionQos(p: Principal, path: NsPath, target: string): Promise<void> {
    requireStorage(p, 'modify', path);
    await this.qos.transition(p.subject, await this.requireFile(path), target);
  }

  async stage(p: Principal, files: { path: string; pinSeconds?: number }[]): Promise<StageRequest> {
    if (files.length === 0) throw new SluiceError('BAD_REQUEST', 'no files to stage');
    const normalized = files.map((f) => ({ ...f, path: userPath(f.path) }));
    for (const f of normalized) {
      // WLCG's storage.stage, or plain read rights (a read would stage the file anyway).
      if (!mayStorage(p, 'stage', f.path)) requireStorage(p, 'read', f.path);
    }
    return this.tape.submit(p.subject, normalized);
  }

  async stageRequest(p: Principal, id: string): Promise<StageRequest> {
    const r = await this.tape.getRequest(id);
    if (r.owner !== p.subject && !isAdmin(p)) throw new SluiceError('NOT_FOUND', `no stage request ${id}`);
    return r;
  }

  /** A stage request with, per file, whether it is on disk now (the WLCG tape REST API's onDisk). */
  async stageStatus(p: Principal, id: string): Promise<Omit<StageRequest, 'files'> & { files: (StageFile & { onDisk: boolean })[] }> {
    const r = await this.stageRequest(p, id);
    const files = await Promise.all(
      r.files.map(async (f) => {
        const file = await this.deps.store.fileByPath(f.path);
        const replicas = file ? await this.deps.store.replicasOf(file.entryId) : [];
        return { ...f, onDisk: replicas.some((x) => x.state === 'AVAILABLE' || (x.state === 'NEARLINE' && x.online)) };
      }),
    );
    return { ...r, files };
  }

  async cancelStage(p: Principal, id: string, paths?: string[]): Promise<StageRequest> {
    await this.stageRequest(p, id);
    return this.tape.cancel(id, paths?.map(normalizePath));
  }

  async releaseStage(p: Principal, id: string, paths?: string[]): Promise<void> {
    await this.stageRequest(p, id);
    await this.tape.release(id, paths?.map(normalizePath));
  }

  /** Cancels what is still running, releases the pins and forgets the request. */
  async deleteStage(p: Principal, id: string): Promise<void> {
    await this.stageRequest(p, id);
    await this.tape.remove(id);
  }

  /** WLCG archiveinfo: where each file is (DISK, TAPE, DISK_AND_TAPE, NONE). */
  async archiveInfo(p: Principal, paths: string[]): Promise<{ path: string; locality?: string; error?: string }[]> {
    const out: { path: string; locality?: string; error?: string }[] = [];
    for (const path of paths) {
      try {
        const normalized = userPath(path);
        requireStorage(p, 'read', normalized);
        const file = await this.deps.store.fileByPath(normalized);
        if (!file) {
          out.push({ path, error: 'USER ERROR: file does not exist' });
          continue;
        }
        const loc = localityOf(await this.deps.store.replicasOf(file.entryId));
        out.push({
          path,
          locality: { ONLINE: 'DISK', NEARLINE: 'TAPE', ONLINE_AND_NEARLINE: 'DISK_AND_TAPE', LOST: 'LOST' }[loc] ?? 'NONE',
        });
      } catch (e) {
        out.push({ path, error: (e as Error).message });
      }
    }
    return out;
  }

  // ---- reads for the namespace (ReplicaSource) --------------------------------------------------------

  /** Opens the best online replica; a file only on tape is staged first (waiting stageWaitSeconds). */
  async open(entry: Entry, replicas: Replica[], range?: { start: number; end: number }): Promise<Readable> {
    const { registry, config } = this.deps;
    const kind = (se: string) => (registry.has(se) ? registry.info(se).kind : undefined);
    const online = replicas
      .filter((r) => registry.usable(r.se) && (r.state === 'AVAILABLE' || (r.state === 'NEARLINE' && r.online)))
      .sort((a, b) => readRank(kind(a.se)) - readRank(kind(b.se)));
    for (const r of online) {
      try {
        return await registry.backend(r.se)!.read(r.location, range);
      } catch (err) {
        this.deps.log.warn({ err, se: r.se, path: entry.path }, 'replica unreadable; trying the next');
      }
    }
    const nearline = replicas.find((r) => r.state === 'NEARLINE' && kind(r.se) === 'tape' && registry.usable(r.se));
    if (!nearline) throw new SluiceError('NOT_FOUND', `${entry.path} has no available replica`);
    const file = await this.deps.store.fileByPath(entry.path);
    if (!file) throw new SluiceError('NOT_FOUND', `${entry.path} does not exist`);
    const staged = this.tape.stage(file.entryId, nearline.se);
    staged.catch(() => undefined);
    const waited = await Promise.race([
      staged.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), config.stageWaitSeconds * 1000).unref()),
    ]);
    if (!waited) {
      throw new SluiceError('UNAVAILABLE', `${entry.path} is NEARLINE; it is being staged, retry later`, {
        retryAfterSeconds: Math.max(1, Math.ceil(config.stageWaitSeconds)),
      });
    }
    const after = (await this.deps.store.replicasOf(file.entryId)).find((r) => r.se === nearline.se)!;
    return registry.backend(nearline.se)!.read(after.location, range);
  }

  async release(replica: Replica): Promise<void> {
    await this.deps.registry.backend(replica.se)?.remove(replica.location);
  }
}

/** dCache's file locality from a file's replicas. */
export function localityOf(replicas: Replica[]): string {
  const online = replicas.some((r) => r.state === 'AVAILABLE' || (r.state === 'NEARLINE' && r.online));
  const nearline = replicas.some((r) => r.state === 'NEARLINE');
  if (online && nearline) return 'ONLINE_AND_NEARLINE';
  if (online) return 'ONLINE';
  if (nearline) return 'NEARLINE';
  return replicas.length === 0 ? 'UNAVAILABLE' : 'LOST';
}

function requireAdmin(p: Principal, what: string): void {
  if (!isAdmin(p)) throw new SluiceError('FORBIDDEN', `only an admin token may ${what}`);
}

const mayRead = (p: Principal, path: string): boolean => mayStorage(p, 'read', path);
