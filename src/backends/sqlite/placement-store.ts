// SQLite adapter of the placement store. Replica changes append their placement events in the same
// transaction (outbox), so triggers, SSE clients and the judge see exactly what was committed.
import type { Db } from './database.js';
import type { SqliteEventLog } from './event-log.js';
import type { WalSync } from './wal-sync.js';
import { transactWithEvents } from './transact.js';
import { toEntry, toReplica, type EntryRow, type ReplicaRow } from './namespace-store.js';
import type { NewStorageEvent } from '../../events/types.js';
import type { Replica, ReplicaState } from '../../storage/types.js';
import type { FileRef, NewTransfer, PlacementStore, StageRequest, TransferQuery, TransferUpdate } from '../../placement/placement-store.js';
import type { Lock, LockState, Rule, RuleState, Transfer } from '../../placement/types.js';
import { below, toTransfer, u, type TransferRow } from '../placement-rows.js';

interface RuleRow {
  id: string;
  owner: string;
  path: string;
  glob: string | null;
  labels: string;
  xattrs: string;
  copies: number;
  expression: string;
  source: string | null;
  grouping: Rule['grouping'];
  expires: number | null;
  priority: number;
  activity: string;
  comment: string | null;
  file_id: string | null;
  qos: string | null;
  completed: number | null;
  state: RuleState;
  reason: string | null;
  created: number;
  updated: number;
}

function toRule(r: RuleRow, locks: Rule['locks']): Rule {
  return {
    id: r.id,
    owner: r.owner,
    path: r.path,
    glob: u(r.glob),
    labels: JSON.parse(r.labels) as string[],
    xattrs: JSON.parse(r.xattrs) as Record<string, string>,
    copies: r.copies,
    expression: r.expression,
    source: u(r.source),
    grouping: r.grouping,
    expires: u(r.expires),
    priority: r.priority,
    activity: r.activity,
    comment: u(r.comment),
    fileId: u(r.file_id),
    qos: u(r.qos),
    completed: u(r.completed),
    state: r.state,
    reason: u(r.reason),
    locks,
    created: r.created,
    updated: r.updated,
  };
}

export class SqlitePlacementStore implements PlacementStore {
  private readonly q;

  constructor(
    private readonly db: Db,
    private readonly log: SqliteEventLog,
    private readonly wal?: WalSync,
  ) {
    this.q = {
      listSes: db.prepare('SELECT * FROM storage_elements ORDER BY name'),
      insertSe: db.prepare('INSERT INTO storage_elements (name, kind, spec, attributes, created) VALUES (?, ?, ?, ?, ?)'),
      setSeAttrs: db.prepare('UPDATE storage_elements SET attributes = ? WHERE name = ?'),
      setSeAvailable: db.prepare('UPDATE storage_elements SET available = ? WHERE name = ?'),
      deleteSe: db.prepare('DELETE FROM storage_elements WHERE name = ?'),
      replicaCount: db.prepare('SELECT COUNT(*) AS n FROM replicas WHERE se = ?'),
      usedBytes: db.prepare('SELECT COALESCE(SUM(e.size), 0) AS n FROM replicas r JOIN ns_entries e ON e.id = r.entry_id WHERE r.se = ?'),
      entryById: db.prepare('SELECT * FROM ns_entries WHERE id = ?'),
      entryByPath: db.prepare('SELECT * FROM ns_entries WHERE path = ?'),
      filesBelow: db.prepare(
        "SELECT * FROM ns_entries WHERE type = 'REGULAR' AND path > ? AND path >= ? AND path < ? ORDER BY path LIMIT ?",
      ),
      replicasOf: db.prepare('SELECT * FROM replicas WHERE entry_id = ? ORDER BY created'),
      replica: db.prepare('SELECT * FROM replicas WHERE entry_id = ? AND se = ?'),
      replicasOn: db.prepare('SELECT * FROM replicas WHERE se = ? AND state = ? ORDER BY created LIMIT ?'),
      beginReplica: db.prepare(
        "INSERT INTO replicas (entry_id, se, location, state, created) VALUES (?, ?, '', 'COPYING', ?) ON CONFLICT DO NOTHING",
      ),
      dropCopying: db.prepare("DELETE FROM replicas WHERE state = 'COPYING'"),
      abandon: db.prepare("DELETE FROM replicas WHERE entry_id = ? AND se = ? AND state = 'COPYING'"),
      upsertReplica: db.prepare(`INSERT INTO replicas (entry_id, se, location, state, created, online, verified)
        VALUES (@entry_id, @se, @location, @state, @now, @online, @now)
        ON CONFLICT (entry_id, se) DO UPDATE SET location = excluded.location, state = excluded.state, created = excluded.created,
          online = excluded.online, verified = excluded.verified, pinned_until = NULL, reason = NULL`),
      setReplicaState: db.prepare('UPDATE replicas SET state = ?, reason = ? WHERE entry_id = ? AND se = ?'),
      setVerified: db.prepare('UPDATE replicas SET verified = ? WHERE entry_id = ? AND se = ?'),
      deleteReplica: db.prepare('DELETE FROM replicas WHERE entry_id = ? AND se = ?'),
      setFlushed: db.prepare("UPDATE replicas SET state = 'NEARLINE', online = ? WHERE entry_id = ? AND se = ?"),
      setStaged: db.prepare('UPDATE replicas SET online = 1, pinned_until = ? WHERE entry_id = ? AND se = ?'),
      setPin: db.prepare('UPDATE replicas SET pinned_until = ? WHERE entry_id = ? AND se = ? AND online = 1'),
      deleteStage: db.prepare('DELETE FROM stage_requests WHERE id = ?'),
      setEvicted: db.prepare('UPDATE replicas SET online = 0, pinned_until = NULL WHERE entry_id = ? AND se = ?'),
      insertRule: db.prepare(`INSERT INTO rules (id, owner, path, glob, labels, xattrs, copies, expression, grouping, expires, priority,
        activity, comment, file_id, qos, state, reason, created, updated, source) VALUES (@id, @owner, @path, @glob, @labels, @xattrs, @copies,
        @expression, @grouping, @expires, @priority, @activity, @comment, @file_id, @qos, @state, @reason, @created, @updated, @source)`),
      getRule: db.prepare('SELECT * FROM rules WHERE id = ?'),
      listRules: db.prepare('SELECT * FROM rules ORDER BY created'),
      rulesOfFile: db.prepare('SELECT * FROM rules WHERE file_id = ? ORDER BY created'),
      setRuleState: db.prepare('UPDATE rules SET state = ?, reason = ?, updated = ? WHERE id = ?'),
      deleteRule: db.prepare('DELETE FROM rules WHERE id = ?'),
      completeRule: db.prepare('UPDATE rules SET completed = ? WHERE id = ?'),
      locksOfFile: db.prepare(
        'SELECT l.*, e.file_id, e.path FROM rule_locks l JOIN ns_entries e ON e.id = l.entry_id WHERE l.entry_id = ?',
      ),
      locksOfRule: db.prepare(
        'SELECT l.*, e.file_id, e.path FROM rule_locks l JOIN ns_entries e ON e.id = l.entry_id WHERE l.rule_id = ? ORDER BY e.path, l.se LIMIT ? OFFSET ?',
      ),
      lockCounts: db.prepare('SELECT state, COUNT(*) AS n FROM rule_locks WHERE rule_id = ? GROUP BY state'),
      setLock: db.prepare(`INSERT INTO rule_locks (rule_id, entry_id, se, state, reason) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (rule_id, entry_id, se) DO UPDATE SET state = excluded.state, reason = excluded.reason`),
      deleteLock: db.prepare('DELETE FROM rule_locks WHERE rule_id = ? AND entry_id = ? AND se = ?'),
      lockedSes: db.prepare('SELECT se, COUNT(*) AS n FROM rule_locks WHERE rule_id = ? GROUP BY se'),
      lockedSesBelow: db.prepare(
        'SELECT l.se, COUNT(*) AS n FROM rule_locks l JOIN ns_entries e ON e.id = l.entry_id WHERE l.rule_id = ? AND e.parent = ? GROUP BY l.se',
      ),
      isProtected: db.prepare('SELECT 1 FROM rule_locks WHERE entry_id = ? AND se = ? LIMIT 1'),
      insertTransfer: db.prepare(`INSERT INTO transfers (id, entry_id, file_id, path, etag, size, adler32, source, destination, state,
        priority, activity, rule_id, max_attempts, next_attempt, created) VALUES (@id, @entry_id, @file_id, @path, @etag, @size, @adler32,
        @source, @destination, 'QUEUED', @priority, @activity, @rule_id, @max_attempts, @now, @now)`),
      getTransfer: db.prepare('SELECT * FROM transfers WHERE id = ?'),
      openTransferTo: db.prepare(
        "SELECT * FROM transfers WHERE entry_id = ? AND destination = ? AND state IN ('QUEUED', 'STAGING', 'ACTIVE') ORDER BY created DESC LIMIT 1",
      ),
      due: db.prepare("SELECT * FROM transfers WHERE state = 'QUEUED' AND next_attempt <= ? ORDER BY priority DESC, created LIMIT ?"),
      nextDue: db.prepare("SELECT MIN(next_attempt) AS t FROM transfers WHERE state = 'QUEUED'"),
      requeue: db.prepare("UPDATE transfers SET state = 'QUEUED', next_attempt = ? WHERE state IN ('ACTIVE', 'STAGING')"),
      insertStage: db.prepare('INSERT INTO stage_requests (id, owner, created, started, completed, files) VALUES (?, ?, ?, ?, ?, ?)'),
      getStage: db.prepare('SELECT * FROM stage_requests WHERE id = ?'),
      updateStage: db.prepare('UPDATE stage_requests SET started = ?, completed = ?, files = ? WHERE id = ?'),
      openStages: db.prepare('SELECT * FROM stage_requests WHERE completed IS NULL ORDER BY created'),
    };
  }

  private transact<T>(fn: (events: NewStorageEvent[]) => T): Promise<T> {
    return transactWithEvents(this.db, this.log, this.wal, fn);
  }

  private fileRow(entryId: number): EntryRow | undefined {
    return this.q.entryById.get(entryId) as EntryRow | undefined;
  }

  async listSes() {
    const rows = this.q.listSes.all() as {
      name: string;
      kind: string;
      spec: string;
      attributes: string;
      available: number;
      created: number;
    }[];
    return rows.map((r) => ({
      name: r.name,
      kind: r.kind,
      spec: JSON.parse(r.spec) as Record<string, unknown>,
      attributes: JSON.parse(r.attributes) as Record<string, string>,
      available: r.available === 1,
      created: r.created,
    }));
  }

  async insertSe(name: string, kind: string, spec: Record<string, unknown>, attributes: Record<string, string>): Promise<void> {
    await this.transact(() => this.q.insertSe.run(name, kind, JSON.stringify(spec), JSON.stringify(attributes), Date.now()));
  }

  async setSeAttributes(name: string, attributes: Record<string, string>): Promise<void> {
    await this.transact(() => this.q.setSeAttrs.run(JSON.stringify(attributes), name));
  }

  async setSeAvailable(name: string, available: boolean): Promise<void> {
    await this.transact(() => this.q.setSeAvailable.run(available ? 1 : 0, name));
  }

  async deleteSe(name: string): Promise<void> {
    await this.transact(() => this.q.deleteSe.run(name));
  }

  async replicaCountOn(se: string): Promise<number> {
    return (this.q.replicaCount.get(se) as { n: number }).n;
  }

  async usedBytesOn(se: string): Promise<number> {
    return (this.q.usedBytes.get(se) as { n: number }).n;
  }

  async fileById(entryId: number): Promise<FileRef | undefined> {
    const row = this.fileRow(entryId);
    return row && row.type === 'REGULAR' ? { entryId: row.id, entry: toEntry(row) } : undefined;
  }

  async fileByPath(path: string): Promise<FileRef | undefined> {
    const row = this.q.entryByPath.get(path) as EntryRow | undefined;
    return row && row.type === 'REGULAR' ? { entryId: row.id, entry: toEntry(row) } : undefined;
  }

  async filesUnder(path: string, afterPath: string, limit: number): Promise<FileRef[]> {
    const out: FileRef[] = [];
    if (afterPath === '') {
      const self = await this.fileByPath(path);
      if (self) return [self];
    }
    const [lo, hi] = below(path);
    for (const row of this.q.filesBelow.all(afterPath, lo, hi, limit) as EntryRow[]) out.push({ entryId: row.id, entry: toEntry(row) });
    return out;
  }

  async replicasOf(entryId: number): Promise<Replica[]> {
    return (this.q.replicasOf.all(entryId) as ReplicaRow[]).map(toReplica);
  }

  async replicasOn(se: string, state: ReplicaState, limit: number) {
    return (this.q.replicasOn.all(se, state, limit) as ReplicaRow[]).map((r) => ({ ...toReplica(r), entryId: r.entry_id }));
  }

  async beginReplica(entryId: number, se: string): Promise<void> {
    // Not durable on its own: a COPYING marker lost in a crash is what recovery would drop anyway.
    this.q.beginReplica.run(entryId, se, Date.now());
  }

  async dropCopyingReplicas(): Promise<number> {
    return this.transact(() => this.q.dropCopying.run().changes);
  }

  async commitReplica(
    entryId: number,
    etag: string,
    replica: { se: string; location: string; state: ReplicaState; online: boolean },
    event: { rule?: string; transfer?: string },
  ): Promise<{ replaced: string | undefined } | 'stale'> {
    return this.transact((events) => {
      const row = this.fileRow(entryId);
      if (!row || row.etag !== etag) {
        this.q.abandon.run(entryId, replica.se);
        return 'stale' as const;
      }
      const previous = this.q.replica.get(entryId, replica.se) as ReplicaRow | undefined;
      this.q.upsertReplica.run({
        entry_id: entryId,
        se: replica.se,
        location: replica.location,
        state: replica.state,
        online: replica.online ? 1 : 0,
        now: Date.now(),
      });
      events.push({
        type: 'REPLICA_AVAILABLE',
        path: row.path,
        isDir: false,
        data: { fileId: row.file_id, se: replica.se, size: row.size, ...event },
      });
      return { replaced: previous && previous.location !== '' && previous.location !== replica.location ? previous.location : undefined };
    });
  }

  async abandonReplica(entryId: number, se: string): Promise<void> {
    this.q.abandon.run(entryId, se);
  }

  async markReplicaBad(entryId: number, se: string, reason: string): Promise<void> {
    await this.transact((events) => {
      const row = this.fileRow(entryId);
      const replica = this.q.replica.get(entryId, se) as ReplicaRow | undefined;
      if (!row || !replica || replica.state === 'BAD' || replica.state === 'COPYING') return;
      this.q.setReplicaState.run('BAD', reason, entryId, se);
      events.push({ type: 'REPLICA_BAD', path: row.path, isDir: false, data: { fileId: row.file_id, se, reason } });
    });
  }

  async markVerified(entryId: number, se: string, when: number): Promise<void> {
    this.q.setVerified.run(when, entryId, se);
  }

  async removeReplica(entryId: number, se: string, reason: string): Promise<string | undefined> {
    return this.transact((events) => {
      const row = this.fileRow(entryId);
      const replica = this.q.replica.get(entryId, se) as ReplicaRow | undefined;
      if (!row || !replica) return undefined;
      this.q.deleteReplica.run(entryId, se);
      events.push({ type: 'REPLICA_REMOVED', path: row.path, isDir: false, data: { fileId: row.file_id, se, reason } });
      return replica.location === '' ? undefined : replica.location;
    });
  }

  async replicaFlushed(entryId: number, se: string, online: boolean): Promise<void> {
    await this.transact((events) => {
      const row = this.fileRow(entryId);
      if (!row) return;
      if (this.q.setFlushed.run(online ? 1 : 0, entryId, se).changes === 0) return;
      events.push({ type: 'REPLICA_FLUSHED', path: row.path, isDir: false, data: { fileId: row.file_id, se } });
    });
  }

  async replicaStaged(entryId: number, se: string, pinnedUntil: number): Promise<void> {
    await this.transact((events) => {
      const row = this.fileRow(entryId);
      if (!row) return;
      if (this.q.setStaged.run(pinnedUntil, entryId, se).changes === 0) return;
      events.push({ type: 'REPLICA_STAGED', path: row.path, isDir: false, data: { fileId: row.file_id, se, pinnedUntil } });
    });
  }

  async setPin(entryId: number, se: string, until: number): Promise<void> {
    await this.transact(() => this.q.setPin.run(until, entryId, se));
  }

  async deleteStageRequest(id: string): Promise<void> {
    await this.transact(() => this.q.deleteStage.run(id));
  }

  async replicaEvicted(entryId: number, se: string): Promise<void> {
    await this.transact(() => this.q.setEvicted.run(entryId, se));
  }

  async insertRule(rule: Rule): Promise<void> {
    await this.transact(() =>
      this.q.insertRule.run({
        id: rule.id,
        owner: rule.owner,
        path: rule.path,
        glob: rule.glob ?? null,
        labels: JSON.stringify(rule.labels),
        xattrs: JSON.stringify(rule.xattrs),
        copies: rule.copies,
        expression: rule.expression,
        source: rule.source ?? null,
        grouping: rule.grouping,
        expires: rule.expires ?? null,
        priority: rule.priority,
        activity: rule.activity,
        comment: rule.comment ?? null,
        file_id: rule.fileId ?? null,
        qos: rule.qos ?? null,
        state: rule.state,
        reason: rule.reason ?? null,
        created: rule.created,
        updated: rule.updated,
      }),
    );
  }

  async getRule(id: string): Promise<Rule | undefined> {
    const row = this.q.getRule.get(id) as RuleRow | undefined;
    return row ? toRule(row, await this.lockCounts(id)) : undefined;
  }

  async listRules(filter: { fileId?: string } = {}): Promise<Rule[]> {
    const rows = (filter.fileId !== undefined ? this.q.rulesOfFile.all(filter.fileId) : this.q.listRules.all()) as RuleRow[];
    return Promise.all(rows.map(async (r) => toRule(r, await this.lockCounts(r.id))));
  }

  async setRuleState(id: string, state: RuleState, reason: string | undefined, event: { path: string; previous: RuleState } | undefined) {
    await this.transact((events) => {
      this.q.setRuleState.run(state, reason ?? null, Date.now(), id);
      if (event) {
        events.push({
          type: 'RULE_STATE',
          path: event.path,
          isDir: true,
          data: { rule: id, state, previous: event.previous, ...(reason !== undefined ? { reason } : {}) },
        });
      }
    });
  }

  async completeQos(ruleIds: string[], file: FileRef, qos: string, previous: string): Promise<void> {
    await this.transact((events) => {
      const now = Date.now();
      for (const id of ruleIds) this.q.completeRule.run(now, id);
      events.push({ type: 'QOS_CHANGED', path: file.entry.path, isDir: false, data: { fileId: file.entry.fileId, qos, previous } });
    });
  }

  async deleteRule(id: string): Promise<void> {
    await this.transact(() => this.q.deleteRule.run(id));
  }

  private toLock(r: { rule_id: string; file_id: string; path: string; se: string; state: LockState; reason: string | null }): Lock {
    return { ruleId: r.rule_id, fileId: r.file_id, path: r.path, se: r.se, state: r.state, reason: u(r.reason) };
  }

  async locksOfFile(entryId: number): Promise<Lock[]> {
    return (this.q.locksOfFile.all(entryId) as Parameters<SqlitePlacementStore['toLock']>[0][]).map((r) => this.toLock(r));
  }

  async locksOfRule(ruleId: string, limit: number, offset: number): Promise<Lock[]> {
    return (this.q.locksOfRule.all(ruleId, limit, offset) as Parameters<SqlitePlacementStore['toLock']>[0][]).map((r) => this.toLock(r));
  }

  async lockCounts(ruleId: string): Promise<{ ok: number; replicating: number; stuck: number }> {
    const counts = { ok: 0, replicating: 0, stuck: 0 };
    for (const r of this.q.lockCounts.all(ruleId) as { state: LockState; n: number }[]) {
      if (r.state === 'OK') counts.ok = r.n;
      else if (r.state === 'REPLICATING') counts.replicating = r.n;
      else counts.stuck = r.n;
    }
    return counts;
  }

  async setLock(ruleId: string, entryId: number, se: string, state: LockState, reason: string | undefined): Promise<void> {
    // Locks are derived state: the judge can rebuild them from rules and replicas, so no fsync here.
    this.q.setLock.run(ruleId, entryId, se, state, reason ?? null);
  }

  async deleteLock(ruleId: string, entryId: number, se: string): Promise<void> {
    this.q.deleteLock.run(ruleId, entryId, se);
  }

  async lockedSesOfRule(ruleId: string, underPath?: string): Promise<Map<string, number>> {
    const rows = (underPath !== undefined ? this.q.lockedSesBelow.all(ruleId, underPath) : this.q.lockedSes.all(ruleId)) as {
      se: string;
      n: number;
    }[];
    return new Map(rows.map((r) => [r.se, r.n]));
  }

  async isProtected(entryId: number, se: string): Promise<boolean> {
    return this.q.isProtected.get(entryId, se) !== undefined;
  }

  async insertTransfer(t: NewTransfer): Promise<Transfer> {
    const e = t.file.entry;
    // No fsync of its own: a transfer lost in a crash is requested again when the judge re-reads
    // the events it had not yet confirmed; the next durable commit carries it anyway.
    this.db.transaction(() =>
      this.q.insertTransfer.run({
        id: t.id,
        entry_id: t.file.entryId,
        file_id: e.fileId,
        path: e.path,
        etag: e.etag,
        size: e.size,
        adler32: e.checksums.adler32 ?? null,
        source: t.source ?? null,
        destination: t.destination,
        priority: t.priority,
        activity: t.activity,
        rule_id: t.ruleId ?? null,
        max_attempts: t.maxAttempts,
        now: Date.now(),
      }),
    )();
    return (await this.getTransfer(t.id))!;
  }

  async getTransfer(id: string) {
    const row = this.q.getTransfer.get(id) as TransferRow | undefined;
    return row ? toTransfer(row) : undefined;
  }

  async listTransfers(q: TransferQuery): Promise<Transfer[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.state) {
      where.push('state = ?');
      args.push(q.state);
    }
    if (q.ruleId) {
      where.push('rule_id = ?');
      args.push(q.ruleId);
    }
    if (q.path) {
      const [lo, hi] = below(q.path);
      where.push('(path = ? OR (path >= ? AND path < ?))');
      args.push(q.path, lo, hi);
    }
    const sql = `SELECT * FROM transfers ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created DESC, id LIMIT ? OFFSET ?`;
    return (this.db.prepare(sql).all(...args, q.limit, q.offset) as TransferRow[]).map((r) => {
      const { entryId: _entryId, ...t } = toTransfer(r);
      return t;
    });
  }

  async openTransferTo(entryId: number, destination: string): Promise<Transfer | undefined> {
    const row = this.q.openTransferTo.get(entryId, destination) as TransferRow | undefined;
    return row ? toTransfer(row) : undefined;
  }

  async dueTransfers(now: number, limit: number) {
    return (this.q.due.all(now, limit) as TransferRow[]).map(toTransfer);
  }

  async updateTransfer(id: string, upd: TransferUpdate, opts: { durable?: boolean } = {}): Promise<void> {
    const cols: string[] = [];
    const args: unknown[] = [];
    const set = (col: string, v: unknown) => {
      cols.push(`${col} = ?`);
      args.push(v);
    };
    if (upd.state !== undefined) set('state', upd.state);
    if (upd.attempts !== undefined) set('attempts', upd.attempts);
    if (upd.nextAttempt !== undefined) set('next_attempt', upd.nextAttempt);
    if (upd.bytesDone !== undefined) set('bytes_done', upd.bytesDone);
    if (upd.mode !== undefined) set('mode', upd.mode);
    if (upd.source !== undefined) set('source', upd.source);
    if (upd.error !== undefined) set('error', upd.error);
    if (upd.started !== undefined) set('started', upd.started);
    if (upd.finished !== undefined) set('finished', upd.finished);
    if (cols.length === 0) return;
    const update = () => this.db.prepare(`UPDATE transfers SET ${cols.join(', ')} WHERE id = ?`).run(...args, id);
    // Progress and outcomes need no fsync of their own (a lost one means the transfer runs again,
    // finds its copy already committed, and is done); what a user was told (a cancel) does.
    if (opts.durable) await this.transact(update);
    else update();
  }

  async requeueInterrupted(): Promise<number> {
    return this.transact(() => this.q.requeue.run(Date.now()).changes);
  }

  async nextDueTime(): Promise<number | undefined> {
    return u((this.q.nextDue.get() as { t: number | null }).t);
  }

  async insertStageRequest(r: StageRequest): Promise<void> {
    await this.transact(() =>
      this.q.insertStage.run(r.id, r.owner, r.created, r.started ?? null, r.completed ?? null, JSON.stringify(r.files)),
    );
  }

  private toStage(row: { id: string; owner: string; created: number; started: number | null; completed: number | null; files: string }) {
    return {
      id: row.id,
      owner: row.owner,
      created: row.created,
      started: u(row.started),
      completed: u(row.completed),
      files: JSON.parse(row.files) as StageRequest['files'],
    };
  }

  async getStageRequest(id: string): Promise<StageRequest | undefined> {
    const row = this.q.getStage.get(id) as Parameters<SqlitePlacementStore['toStage']>[0] | undefined;
    return row ? this.toStage(row) : undefined;
  }

  async updateStageRequest(r: StageRequest): Promise<void> {
    await this.transact(() => this.q.updateStage.run(r.started ?? null, r.completed ?? null, JSON.stringify(r.files), r.id));
  }

  async openStageRequests(): Promise<StageRequest[]> {
    return (this.q.openStages.all() as Parameters<SqlitePlacementStore['toStage']>[0][]).map((r) => this.toStage(r));
  }
}
