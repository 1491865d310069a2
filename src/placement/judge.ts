// The judge (Rucio's judge-evaluator and judge-repairer): keeps every rule's locks in step with the
// namespace. It consumes the storage-event log as a durable consumer (new, moved, relabelled files;
// replicas that became available, bad or flushed), evaluates all files under a rule when the rule is
// created, asks the transfer queue for the copies a lock still lacks, and sets each rule's state
// from its locks. Evaluation is idempotent, so at-least-once delivery of events is enough.
import type { Logger } from 'pino';
import type { EventLog } from '../events/event-log.js';
import type { StorageEvent } from '../events/types.js';
import { parentOf, type NsPath } from '../storage/paths.js';
import type { FileRef, PlacementStore } from './placement-store.js';
import type { SeRegistry } from './se-registry.js';
import { selectSes } from './se-expression.js';
import { chooseSes, isWithinScope, replicaStanding, ruleCovers } from './rule-matching.js';
import type { LockState, Rule, RuleState, Transfer } from './types.js';

const CONSUMER = 'placement-judge';
const READ_BATCH = 500;
const SCAN_PAGE = 500;
/**
 * Recounting a rule's locks reads all of them, so while the log's events trickle in one by one (a
 * transfer finishing at a time) a recount after each would be quadratic in the rule's files. The
 * judge waits this many times the last recount's duration between recounts: at most ~5% of its
 * time (a rule of 10,000 files: about every 20 ms; a rule of a few files: at once).
 */
const SETTLE_SPACING = 20;
/** Files of a new rule evaluated at the same time. */
const EVALUATE_CONCURRENCY = 16;

/** Runs fn over items, at most `limit` at a time; stops starting new ones after a failure and rethrows it. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/** What the judge asks of the transfer queue. */
export interface TransferRequester {
  request(file: FileRef, destination: string, rule: Rule): Promise<void>;
}

/** Hook run after a file's locks were evaluated (QoS completes transitions there). */
export type AfterEvaluation = (file: FileRef, rules: Rule[]) => Promise<void>;

/**
 * Lock counts per SE of grouped rules (key: rule id + directory, or rule id alone for ALL), kept
 * for one pass over a rule's files: each file's group is read once from the store and then counted
 * along, instead of a query over all the rule's locks per file (quadratic in the files of a rule).
 */
type GroupCounts = Map<string, Map<string, number>>;

function groupKey(rule: Rule, file: FileRef): string {
  return rule.grouping === 'DATASET' ? `${rule.id}\0${parentOf(file.entry.path as NsPath)}` : rule.id;
}

export class Judge {
  private rules = new Map<string, Rule>();
  private position = 0;
  private running = false;
  private again = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  private idle: Promise<void> = Promise.resolve();
  private readonly dirtyRules = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private free = new Map<string, number>();
  private freeAt = 0;
  /** Log position saved as the judge's; lags `position` while a settle of the rules is due. */
  private savedPosition = 0;
  private settledAt = 0;
  private recountMs = 0;
  private settleTimer: NodeJS.Timeout | undefined;
  afterEvaluation: AfterEvaluation | undefined;

  constructor(
    private readonly deps: {
      store: PlacementStore;
      registry: SeRegistry;
      eventLog: EventLog;
      transfers: TransferRequester;
      /** How long a copy stuck on its only possible SE waits before it is tried there again. */
      stuckRetrySeconds: number;
      log: Logger;
    },
  ) {}

  async start(): Promise<void> {
    for (const r of await this.deps.store.listRules()) this.rules.set(r.id, r);
    const saved = await this.deps.eventLog.position(CONSUMER);
    this.position = saved > 0 ? saved : (await this.deps.eventLog.oldest()) - 1;
    this.savedPosition = this.position;
    this.unsubscribe = this.deps.eventLog.onAppend(() => setImmediate(() => this.kick()));
    this.kick();
    // A rule still REPLICATING may have been cut short in its first evaluation by a stop or a crash
    // (its files are evaluated in the background): judge its files again; evaluation is idempotent.
    for (const r of this.rules.values()) {
      if (r.state !== 'REPLICATING') continue;
      void this.evaluateRule(r.id).catch((err: unknown) => this.deps.log.error({ err, rule: r.id }, 'rule evaluation failed'));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.settleTimer) clearTimeout(this.settleTimer);
    await this.idle;
  }

  /** Resolves once every event appended so far has been judged (tests, orderly shutdown). */
  async caughtUp(): Promise<void> {
    const head = await this.deps.eventLog.head();
    while (this.position < head && !this.stopped) {
      this.kick();
      await this.idle;
      if (this.position < head) await new Promise((r) => setTimeout(r, 5));
    }
  }

  ruleList(): Rule[] {
    return [...this.rules.values()];
  }

  cachedRule(id: string): Rule | undefined {
    return this.rules.get(id);
  }

  // ---- rules -------------------------------------------------------------------------------------

  /**
   * Judge work runs one piece at a time (an event batch, a rule's evaluation, a repair pass), so two
   * never decide on the same file at once; within one piece files may be evaluated side by side.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Registers a new rule; the files it covers are evaluated in the background (a rule over millions
   * of files must not hold its request), and its state shows the progress.
   */
  async addRule(rule: Rule): Promise<Rule> {
    await this.deps.store.insertRule(rule);
    this.rules.set(rule.id, rule);
    void this.evaluateRule(rule.id).catch((err: unknown) => this.deps.log.error({ err, rule: rule.id }, 'rule evaluation failed'));
    return { ...rule };
  }

  /** Takes a rule already stored (QoS writes its rules itself) into the judge's set. */
  adopt(rule: Rule): void {
    this.rules.set(rule.id, rule);
  }

  evaluateRule(id: string): Promise<void> {
    return this.exclusive(() => this.evaluateRuleNow(id));
  }

  private async evaluateRuleNow(id: string): Promise<void> {
    const rule = this.rules.get(id);
    if (!rule) return;
    let after = '';
    if (rule.fileId !== undefined) {
      const file = await this.deps.store.fileByPath(rule.path);
      if (file && file.entry.fileId === rule.fileId) await this.evaluateFile(file, [rule]);
    } else {
      const groups: GroupCounts = new Map();
      for (;;) {
        const page = await this.deps.store.filesUnder(rule.path, after, SCAN_PAGE);
        if (page.length === 0) break;
        // Files side by side: each new transfer waits for its commit to be durable, and concurrent
        // commits share one WAL fsync (group commit) instead of paying one each in turn.
        await forEachLimited(page, EVALUATE_CONCURRENCY, (file) => this.evaluateFile(file, [rule], { groups }));
        after = page[page.length - 1]!.entry.path;
        if (page.length === 1 && after === rule.path) break;
      }
    }
    this.dirtyRules.add(id);
    await this.settleRuleStates();
  }

  removeRule(id: string): Promise<void> {
    return this.exclusive(() => this.removeRuleNow(id));
  }

  private async removeRuleNow(id: string): Promise<void> {
    await this.deps.store.deleteRule(id);
    this.rules.delete(id);
  }

  setSuspended(id: string, suspended: boolean): Promise<Rule | undefined> {
    return this.exclusive(() => this.setSuspendedNow(id, suspended));
  }

  private async setSuspendedNow(id: string, suspended: boolean): Promise<Rule | undefined> {
    const rule = this.rules.get(id);
    if (!rule) return undefined;
    if (suspended) {
      if (rule.state !== 'SUSPENDED') await this.setState(rule, 'SUSPENDED', 'suspended by ' + rule.owner);
    } else if (rule.state === 'SUSPENDED') {
      rule.state = 'REPLICATING';
      await this.deps.store.setRuleState(id, 'REPLICATING', undefined, { path: rule.path, previous: 'SUSPENDED' });
      await this.evaluateRuleNow(id);
    }
    return this.refreshRule(id);
  }

  /** Re-reads a rule with its lock counts. */
  async refreshRule(id: string): Promise<Rule | undefined> {
    const fresh = await this.deps.store.getRule(id);
    if (fresh) this.rules.set(id, fresh);
    return fresh;
  }

  // ---- files -------------------------------------------------------------------------------------

  /** Applies the given rules (default: all) to one file: locks, transfers, lock states. */
  async evaluateFile(
    file: FileRef,
    only?: Rule[],
    opts: { retryStuck?: 'elsewhere' | 'anywhere'; groups?: GroupCounts } = {},
  ): Promise<void> {
    const { store } = this.deps;
    const locks = await store.locksOfFile(file.entryId);
    const rules = only ?? [...this.rules.values()].filter((r) => ruleCovers(r, file.entry) || locks.some((l) => l.ruleId === r.id));
    if (rules.length === 0) return;
    const replicas = await store.replicasOf(file.entryId);
    const bySe = new Map(replicas.map((r) => [r.se, r]));
    const universe = this.deps.registry.expressionUniverse();
    const kindOf = (se: string) => (this.deps.registry.has(se) ? this.deps.registry.info(se).kind : undefined);
    const usable = (se: string) => this.deps.registry.usable(se);
    const holding = new Set(replicas.filter((r) => usable(r.se) && replicaStanding(r, kindOf(r.se)) !== 'missing').map((r) => r.se));
    await this.refreshFreeSpace();

    for (const rule of rules) {
      const mine = locks.filter((l) => l.ruleId === rule.id);
      if (!ruleCovers(rule, file.entry)) {
        // The file left the rule (moved out, label removed): the rule no longer protects its replicas.
        for (const l of mine) {
          await store.deleteLock(rule.id, file.entryId, l.se);
          this.countGroup(opts.groups, rule, file, l.se, -1);
        }
        if (mine.length > 0) this.dirtyRules.add(rule.id);
        continue;
      }
      let candidates: string[];
      try {
        candidates = selectSes(rule.expression, universe);
      } catch (e) {
        await this.stickAll(
          rule,
          file,
          mine.map((l) => l.se),
          (e as Error).message,
        );
        continue;
      }
      // The repairer tries another SE for a stuck copy when the expression offers enough others.
      const stuckOn = opts.retryStuck ? mine.filter((l) => l.state === 'STUCK').map((l) => l.se) : [];
      const others = candidates.filter((se) => !stuckOn.includes(se));
      const canMove = stuckOn.length > 0 && others.length >= rule.copies;
      const choosable = canMove ? others : candidates;
      // The group only matters for SEs still to choose: a file whose locks fill its copies keeps them.
      const lockedChoosable = new Set(mine.map((l) => l.se).filter((se) => choosable.includes(se)));
      const groupSes = lockedChoosable.size >= rule.copies ? [] : await this.groupSesOf(rule, file, opts.groups);
      const chosen = chooseSes({
        copies: rule.copies,
        candidates: choosable,
        locked: mine.map((l) => l.se),
        holding,
        groupSes,
        free: this.free,
        spreadKey: rule.grouping === 'NONE' ? file.entry.fileId : undefined,
      });
      // Counted at once (no await before): files evaluated beside this one see the choice.
      for (const se of chosen) if (!mine.some((l) => l.se === se)) this.countGroup(opts.groups, rule, file, se, +1);
      for (const l of mine) if (!chosen.includes(l.se)) this.countGroup(opts.groups, rule, file, l.se, -1);
      for (const l of mine) if (!chosen.includes(l.se)) await store.deleteLock(rule.id, file.entryId, l.se);
      const shortBy = rule.copies - chosen.length;
      for (const se of chosen) {
        const previous = mine.find((l) => l.se === se);
        const standing = usable(se) ? replicaStanding(bySe.get(se), kindOf(se)) : 'missing';
        let state: LockState;
        let reason: string | undefined;
        if (standing === 'good') state = 'OK';
        else if (previous?.state === 'STUCK' && !(opts.retryStuck === 'anywhere' || (opts.retryStuck === 'elsewhere' && canMove))) {
          state = 'STUCK';
          reason = previous.reason;
        } else {
          state = 'REPLICATING';
          if (standing === 'missing' && rule.state !== 'SUSPENDED') await this.deps.transfers.request(file, se, rule);
        }
        if (shortBy > 0 && state !== 'OK') {
          state = 'STUCK';
          reason = `expression "${rule.expression}" selects ${candidates.length} SEs for ${rule.copies} copies`;
        }
        if (!previous || previous.state !== state || previous.reason !== reason) {
          await store.setLock(rule.id, file.entryId, se, state, reason);
          this.dirtyRules.add(rule.id);
        }
      }
      if (shortBy > 0) this.dirtyRules.add(rule.id);
    }
    await this.afterEvaluation?.(file, rules);
  }

  private async stickAll(rule: Rule, file: FileRef, ses: string[], reason: string): Promise<void> {
    for (const se of ses) await this.deps.store.setLock(rule.id, file.entryId, se, 'STUCK', reason);
    this.dirtyRules.add(rule.id);
    if (ses.length === 0 && rule.state !== 'STUCK') await this.setState(rule, 'STUCK', reason);
  }

  /** SEs a grouped rule already uses: for the whole rule (ALL) or the file's directory (DATASET). */
  private async groupSesOf(rule: Rule, file: FileRef, groups?: GroupCounts): Promise<string[]> {
    if (rule.grouping === 'NONE') return [];
    const dir = rule.grouping === 'DATASET' ? parentOf(file.entry.path as NsPath) : undefined;
    const key = groupKey(rule, file);
    let counts = groups?.get(key);
    if (!counts) {
      counts = await this.deps.store.lockedSesOfRule(rule.id, dir);
      counts = groups?.get(key) ?? counts; // another file of the group may have read it meanwhile
      groups?.set(key, counts);
    }
    return [...counts.entries()]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([se]) => se);
  }

  /** Keeps a pass's group counts in step with the locks it sets and deletes. */
  private countGroup(groups: GroupCounts | undefined, rule: Rule, file: FileRef, se: string, delta: number): void {
    const counts = groups?.get(groupKey(rule, file));
    if (counts) counts.set(se, (counts.get(se) ?? 0) + delta);
  }

  private async refreshFreeSpace(): Promise<void> {
    if (Date.now() - this.freeAt < 5000) return;
    this.freeAt = Date.now();
    const free = new Map<string, number>();
    for (const se of this.deps.registry.list())
      free.set(se.name, (await this.deps.registry.space(se.name).catch(() => ({ free: 0 }))).free);
    this.free = free;
  }

  /** A transfer for a lock gave up (or was cancelled): the lock is stuck until repaired. */
  transferFailed(t: Transfer & { entryId: number }): Promise<void> {
    return this.exclusive(() => this.transferFailedNow(t));
  }

  private async transferFailedNow(t: Transfer & { entryId: number }): Promise<void> {
    const locks = (await this.deps.store.locksOfFile(t.entryId)).filter((l) => l.se === t.destination && l.state !== 'OK');
    for (const l of locks) {
      await this.deps.store.setLock(l.ruleId, t.entryId, l.se, 'STUCK', t.error ?? `transfer ${t.id} ${t.state.toLowerCase()}`);
      this.dirtyRules.add(l.ruleId);
    }
    await this.settleRuleStates();
  }

  /** An SE was taken out of service or came back: the rules holding copies there are judged again. */
  seChanged(name: string): Promise<void> {
    return this.exclusive(async () => {
      for (const rule of [...this.rules.values()]) {
        if ((await this.deps.store.lockedSesOfRule(rule.id)).has(name) || rule.state === 'STUCK') await this.evaluateRuleNow(rule.id);
      }
    });
  }

  /** The repairer: tries stuck locks again (new SEs may have come, old ones recovered). */
  repairStuck(now = Date.now()): Promise<void> {
    return this.exclusive(() => this.repairStuckNow(now));
  }

  private async repairStuckNow(now: number): Promise<void> {
    for (const rule of [...this.rules.values()]) {
      if (rule.state !== 'STUCK') continue;
      // A copy stuck on the only SE it may go to is tried there again only after a while (as Rucio's
      // judge-repairer waits); one that can move to another SE moves at once.
      const retry = now - rule.updated >= this.deps.stuckRetrySeconds * 1000 ? 'anywhere' : 'elsewhere';
      let offset = 0;
      for (;;) {
        const locks = await this.deps.store.locksOfRule(rule.id, SCAN_PAGE, offset);
        if (locks.length === 0) break;
        for (const l of locks.filter((x) => x.state === 'STUCK')) {
          const file = await this.deps.store.fileByPath(l.path);
          if (file) await this.evaluateFile(file, [rule], { retryStuck: retry });
        }
        offset += locks.length;
      }
      // A rule stuck before it got any lock (bad expression, too few SEs) is evaluated again whole.
      if ((await this.deps.store.lockCounts(rule.id)).stuck === 0) await this.evaluateRuleNow(rule.id);
      this.dirtyRules.add(rule.id);
    }
    await this.settleRuleStates();
  }

  /** Rules past their lifetime lapse; their replicas are no longer protected. */
  expireRules(now = Date.now()): Promise<string[]> {
    return this.exclusive(async () => {
      const expired = [...this.rules.values()].filter((r) => r.expires !== undefined && r.expires <= now).map((r) => r.id);
      for (const id of expired) {
        this.deps.log.info({ rule: id }, 'replication rule expired');
        await this.removeRuleNow(id);
      }
      return expired;
    });
  }

  /** Sets the state of every rule whose locks changed, sending RULE_STATE when it moved. */
  async settleRuleStates(): Promise<void> {
    const ids = [...this.dirtyRules];
    this.dirtyRules.clear();
    let recountMs = 0;
    for (const id of ids) {
      const rule = this.rules.get(id);
      if (!rule || rule.state === 'SUSPENDED') continue;
      const t0 = performance.now();
      const counts = await this.deps.store.lockCounts(id);
      recountMs += performance.now() - t0;
      let state: RuleState = counts.stuck > 0 ? 'STUCK' : counts.replicating > 0 ? 'REPLICATING' : 'OK';
      let reason: string | undefined;
      if (state === 'STUCK') {
        const stuck = (await this.deps.store.locksOfRule(id, 1000, 0)).find((l) => l.state === 'STUCK');
        reason = stuck?.reason;
      } else if (state === 'OK' && rule.state === 'STUCK' && counts.ok === 0) {
        // Stuck without locks (the expression selects too few SEs): stays stuck until repaired.
        state = 'STUCK';
        reason = rule.reason;
      }
      rule.locks = counts;
      if (state !== rule.state || reason !== rule.reason) await this.setState(rule, state, reason);
    }
    this.recountMs = recountMs;
    this.settledAt = performance.now();
  }

  private async setState(rule: Rule, state: RuleState, reason: string | undefined): Promise<void> {
    const previous = rule.state;
    rule.state = state;
    rule.reason = reason;
    rule.updated = Date.now();
    await this.deps.store.setRuleState(rule.id, state, reason, previous !== state ? { path: rule.path, previous } : undefined);
  }

  // ---- the event log -----------------------------------------------------------------------------

  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.idle = this.drain()
      .catch((err: unknown) => this.deps.log.error({ err }, 'placement judge failed; retrying'))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const events = await this.deps.eventLog.read(this.position, READ_BATCH);
      if (events.length === 0) break;
      await this.exclusive(() => this.judge(events));
      this.position = events[events.length - 1]!.id;
      await this.settleIfDue();
    }
    if (this.stopped) return;
    await this.settleIfDue();
    if (this.dirtyRules.size > 0 && !this.settleTimer) {
      const wait = this.settledAt + SETTLE_SPACING * this.recountMs - performance.now();
      this.settleTimer = setTimeout(
        () => {
          this.settleTimer = undefined;
          this.kick();
        },
        Math.max(1, Math.ceil(wait)),
      );
    }
  }

  /**
   * Settles the rules the judged events touched, unless the last recount was too recent; the
   * position is saved only once they are settled, so after a crash the events are judged again.
   */
  private async settleIfDue(): Promise<void> {
    if (this.dirtyRules.size > 0) {
      if (performance.now() - this.settledAt < SETTLE_SPACING * this.recountMs) return;
      await this.settleRuleStates();
    }
    if (this.position !== this.savedPosition) {
      await this.deps.eventLog.savePosition(CONSUMER, this.position);
      this.savedPosition = this.position;
    }
  }

  private async judge(events: StorageEvent[]): Promise<void> {
    if (this.rules.size === 0) return;
    // One evaluation per file per batch: a PUT's five events need one look.
    const files = new Set<string>();
    const trees = new Set<string>();
    let deleted = false;
    for (const e of events) {
      switch (e.type) {
        case 'IN_CLOSE_WRITE':
        case 'IN_ATTRIB':
        case 'REPLICA_AVAILABLE':
        case 'REPLICA_BAD':
        case 'REPLICA_REMOVED':
        case 'REPLICA_FLUSHED':
          if (!e.isDir) files.add(e.path);
          break;
        case 'IN_MOVED_TO':
          (e.isDir ? trees : files).add(e.path);
          break;
        case 'IN_DELETE':
          deleted = true;
          break;
        default:
          break;
      }
    }
    for (const path of files) {
      const file = await this.deps.store.fileByPath(path);
      if (file) await this.evaluateFile(file);
    }
    for (const dir of trees) {
      let after = '';
      for (;;) {
        const page = await this.deps.store.filesUnder(dir, after, SCAN_PAGE);
        if (page.length === 0) break;
        for (const file of page) await this.evaluateFile(file);
        after = page[page.length - 1]!.entry.path;
      }
    }
    if (deleted) {
      // Deleted files took their locks with them (cascade): recount the rules whose scope they were in.
      for (const e of events) {
        if (e.type !== 'IN_DELETE') continue;
        for (const r of this.rules.values()) if (isWithinScope(e.path, r.path) || isWithinScope(r.path, e.path)) this.dirtyRules.add(r.id);
      }
    }
  }
}
