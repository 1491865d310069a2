// The placement state port: storage elements, replicas as placement sees them, rules with their
// locks, transfers and stage requests. Replica changes commit together with their placement events.
// Adapters: backends/sqlite (embedded), postgres (scale-out).
import type { Entry, Replica, ReplicaState } from '../storage/types.js';
import type { Lock, LockState, Rule, RuleState, Transfer, TransferState } from './types.js';

/** A file as the judge and the transfer workers handle it: its entry and its internal id. */
export interface FileRef {
  entryId: number;
  entry: Entry;
}

export interface NewTransfer {
  id: string;
  file: FileRef;
  source: string | undefined;
  destination: string;
  priority: number;
  activity: string;
  ruleId: string | undefined;
  maxAttempts: number;
}

export interface TransferUpdate {
  state?: TransferState;
  attempts?: number;
  nextAttempt?: number;
  bytesDone?: number;
  mode?: Transfer['mode'];
  source?: string;
  error?: string | null;
  started?: number;
  finished?: number;
}

export interface TransferQuery {
  state?: TransferState;
  path?: string;
  ruleId?: string;
  limit: number;
  offset: number;
}

export interface StageFile {
  path: string;
  state: 'SUBMITTED' | 'STARTED' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  error?: string;
  /** The pin lifetime the client asked for (WLCG diskLifetime), kept across restarts. */
  pinSeconds?: number;
  pinnedUntil?: number;
}

export interface StageRequest {
  id: string;
  owner: string;
  created: number;
  started: number | undefined;
  completed: number | undefined;
  files: StageFile[];
}

export interface PlacementStore {
  // storage elements
  listSes(): Promise<
    { name: string; kind: string; spec: Record<string, unknown>; attributes: Record<string, string>; available: boolean; created: number }[]
  >;
  setSeAvailable(name: string, available: boolean): Promise<void>;
  insertSe(name: string, kind: string, spec: Record<string, unknown>, attributes: Record<string, string>): Promise<void>;
  setSeAttributes(name: string, attributes: Record<string, string>): Promise<void>;
  deleteSe(name: string): Promise<void>;
  replicaCountOn(se: string): Promise<number>;
  usedBytesOn(se: string): Promise<number>;

  // files and replicas
  fileById(entryId: number): Promise<FileRef | undefined>;
  fileByPath(path: string): Promise<FileRef | undefined>;
  /** Regular files at or below path, in path order, a page at a time. */
  filesUnder(path: string, afterPath: string, limit: number): Promise<FileRef[]>;
  replicasOf(entryId: number): Promise<Replica[]>;
  /** Replicas on one SE in one state (for flushing, verification, eviction). */
  replicasOn(se: string, state: ReplicaState, limit: number): Promise<(Replica & { entryId: number })[]>;
  /** Marks a replica being written (only when the file has none on that SE yet). */
  beginReplica(entryId: number, se: string): Promise<void>;
  /** Drops replicas left COPYING by an unclean stop. */
  dropCopyingReplicas(): Promise<number>;
  /**
   * Records a new verified replica if the file still has the content `etag` names; returns the
   * location of a replica it replaced (a BAD one) so its bytes can go, or 'stale' if the file changed.
   */
  commitReplica(
    entryId: number,
    etag: string,
    replica: { se: string; location: string; state: ReplicaState; online: boolean },
    event: { rule?: string; transfer?: string },
  ): Promise<{ replaced: string | undefined } | 'stale'>;
  /** Removes a COPYING marker after a failed copy. */
  abandonReplica(entryId: number, se: string): Promise<void>;
  markReplicaBad(entryId: number, se: string, reason: string): Promise<void>;
  markVerified(entryId: number, se: string, when: number): Promise<void>;
  /** Deletes a replica row (with its REPLICA_REMOVED event); returns its location. */
  removeReplica(entryId: number, se: string, reason: string): Promise<string | undefined>;
  /** Tape: the bytes are on tape now (REPLICA_FLUSHED); online says whether the buffer copy stays. */
  replicaFlushed(entryId: number, se: string, online: boolean): Promise<void>;
  /** Tape: the bytes are back in the buffer until pinnedUntil (REPLICA_STAGED). */
  replicaStaged(entryId: number, se: string, pinnedUntil: number): Promise<void>;
  replicaEvicted(entryId: number, se: string): Promise<void>;
  /** Moves the pin of an online tape replica (extended by another stage, ended by a release): no event. */
  setPin(entryId: number, se: string, until: number): Promise<void>;

  // rules and locks
  insertRule(rule: Rule): Promise<void>;
  getRule(id: string): Promise<Rule | undefined>;
  listRules(filter?: { fileId?: string }): Promise<Rule[]>;
  setRuleState(
    id: string,
    state: RuleState,
    reason: string | undefined,
    event: { path: string; previous: RuleState } | undefined,
  ): Promise<void>;
  /** Marks a QoS transition done, with its QOS_CHANGED event. */
  completeQos(ruleIds: string[], file: FileRef, qos: string, previous: string): Promise<void>;
  deleteRule(id: string): Promise<void>;
  locksOfFile(entryId: number): Promise<Lock[]>;
  locksOfRule(ruleId: string, limit: number, offset: number): Promise<Lock[]>;
  lockCounts(ruleId: string): Promise<{ ok: number; replicating: number; stuck: number }>;
  setLock(ruleId: string, entryId: number, se: string, state: LockState, reason: string | undefined): Promise<void>;
  deleteLock(ruleId: string, entryId: number, se: string): Promise<void>;
  /** SEs that locks of this rule hold, with how many files each (for grouping). */
  lockedSesOfRule(ruleId: string, underPath?: string): Promise<Map<string, number>>;
  /** Whether any rule protects the replica of this file on this SE. */
  isProtected(entryId: number, se: string): Promise<boolean>;

  // transfers
  insertTransfer(t: NewTransfer): Promise<Transfer>;
  getTransfer(id: string): Promise<(Transfer & { entryId: number }) | undefined>;
  listTransfers(q: TransferQuery): Promise<Transfer[]>;
  /** The newest queued, staging or active transfer of this file to this SE, if any. */
  openTransferTo(entryId: number, destination: string): Promise<Transfer | undefined>;
  /** Queued transfers due now, best first. */
  dueTransfers(now: number, limit: number): Promise<(Transfer & { entryId: number })[]>;
  /** `durable`: on disk before it resolves (a change a user was told about); others may ride on the next commit. */
  updateTransfer(id: string, u: TransferUpdate, opts?: { durable?: boolean }): Promise<void>;
  /** After an unclean stop: ACTIVE and STAGING transfers go back to the queue. */
  requeueInterrupted(): Promise<number>;
  nextDueTime(): Promise<number | undefined>;

  // stage requests
  insertStageRequest(r: StageRequest): Promise<void>;
  getStageRequest(id: string): Promise<StageRequest | undefined>;
  updateStageRequest(r: StageRequest): Promise<void>;
  openStageRequests(): Promise<StageRequest[]>;
  deleteStageRequest(id: string): Promise<void>;
}
