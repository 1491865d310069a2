// Quality of service, as dCache offers it: a file's class (disk, tape, disk+tape, or a class the
// operator defines) names the rules it is kept by. A transition replaces the file's QoS rules; once
// they are all satisfied, replicas that no rule protects are removed (a disk→tape transition frees
// the disk) and QOS_CHANGED is sent. While it runs the namespace API reports targetQos.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import type { Replica } from '../storage/types.js';
import type { FileRef, PlacementStore } from './placement-store.js';
import type { SeRegistry } from './se-registry.js';
import type { Judge } from './judge.js';
import { replicaStanding } from './rule-matching.js';
import type { QosClass, Rule } from './types.js';

const FROM_PREFIX = 'QoS transition from ';

export class QosService {
  private readonly byName: Map<string, QosClass>;

  constructor(
    private readonly deps: {
      store: PlacementStore;
      registry: SeRegistry;
      judge: Judge;
      classes: QosClass[];
      /** Removes an unprotected replica (bytes and row, with REPLICA_REMOVED). */
      removeReplica: (file: FileRef, se: string, reason: string) => Promise<void>;
      log: Logger;
    },
  ) {
    this.byName = new Map(deps.classes.map((c) => [c.name, c]));
  }

  classes(): QosClass[] {
    return [...this.byName.values()];
  }

  /** The class a file's replicas give it now: disk, tape, disk+tape, a completed custom class, or none. */
  current(replicas: Replica[], rules: Rule[]): string {
    const done = rules.find((r) => r.qos !== undefined && r.completed !== undefined);
    if (done && !['disk', 'tape', 'disk+tape'].includes(done.qos!)) return done.qos!;
    const kind = (se: string) => (this.deps.registry.has(se) ? this.deps.registry.info(se) : undefined);
    const onDisk = replicas.some((r) => r.state === 'AVAILABLE' && kind(r.se)?.kind !== 'tape' && kind(r.se)?.attributes.medium !== 'tape');
    const onTape = replicas.some((r) => r.state === 'NEARLINE' && replicaStanding(r, kind(r.se)?.kind) === 'good');
    return onDisk && onTape ? 'disk+tape' : onTape ? 'tape' : onDisk ? 'disk' : 'none';
  }

  /** The class a running transition moves the file to, if one runs. */
  target(rules: Rule[]): string | undefined {
    const pending = rules.find((r) => r.qos !== undefined && r.completed === undefined);
    return pending?.qos;
  }

  async describe(file: FileRef): Promise<{ currentQos: string; targetQos?: string }> {
    const rules = await this.deps.store.listRules({ fileId: file.entry.fileId });
    const current = this.current(await this.deps.store.replicasOf(file.entryId), rules);
    const target = this.target(rules);
    return target !== undefined && target !== current ? { currentQos: current, targetQos: target } : { currentQos: current };
  }

  /** Starts a transition of one file to a class. */
  async transition(owner: string, file: FileRef, target: string): Promise<void> {
    const cls = this.byName.get(target);
    if (!cls) throw new SluiceError('BAD_REQUEST', `unknown QoS class "${target}"; one of: ${[...this.byName.keys()].join(', ')}`);
    const old = await this.deps.store.listRules({ fileId: file.entry.fileId });
    const previous = this.current(await this.deps.store.replicasOf(file.entryId), old);
    // New rules first, old ones after: the file is protected throughout.
    const now = Date.now();
    const created: Rule[] = cls.rules.map((t) => ({
      id: randomUUID(),
      owner,
      path: file.entry.path,
      glob: undefined,
      labels: [],
      xattrs: {},
      copies: t.copies,
      expression: t.expression,
      source: undefined,
      grouping: 'NONE',
      expires: undefined,
      priority: 4,
      activity: 'QoS',
      comment: FROM_PREFIX + previous,
      fileId: file.entry.fileId,
      qos: target,
      completed: undefined,
      state: 'REPLICATING',
      reason: undefined,
      locks: { ok: 0, replicating: 0, stuck: 0 },
      created: now,
      updated: now,
    }));
    for (const rule of created) {
      await this.deps.store.insertRule(rule);
    }
    for (const r of old.filter((r) => r.qos !== undefined)) await this.deps.judge.removeRule(r.id);
    for (const rule of created) this.deps.judge.adopt(rule);
    await this.deps.judge.exclusive(async () => {
      await this.deps.judge.evaluateFile(file, created);
      await this.deps.judge.settleRuleStates();
    });
  }

  /** Run by the judge after it evaluated a file: completes a transition whose rules are all OK. */
  async afterEvaluation(file: FileRef, rules: Rule[]): Promise<void> {
    if (!rules.some((r) => r.qos !== undefined && r.fileId === file.entry.fileId)) return;
    const all = await this.deps.store.listRules({ fileId: file.entry.fileId });
    const pending = all.filter((r) => r.qos !== undefined && r.completed === undefined);
    if (pending.length === 0) return;
    const locks = await this.deps.store.locksOfFile(file.entryId);
    const satisfied = pending.every((r) => {
      const mine = locks.filter((l) => l.ruleId === r.id);
      return mine.length >= r.copies && mine.every((l) => l.state === 'OK');
    });
    if (!satisfied) return;
    // What no rule protects is no longer wanted by the file's class: a disk→tape transition frees the disk.
    for (const replica of await this.deps.store.replicasOf(file.entryId)) {
      if (replica.state === 'COPYING') continue;
      if (locks.some((l) => l.se === replica.se)) continue;
      await this.deps.removeReplica(file, replica.se, `not needed by QoS class ${pending[0]!.qos}`);
    }
    const previous = pending[0]!.comment?.startsWith(FROM_PREFIX) ? pending[0]!.comment.slice(FROM_PREFIX.length) : 'none';
    await this.deps.store.completeQos(
      pending.map((r) => r.id),
      file,
      pending[0]!.qos!,
      previous,
    );
    for (const r of pending) await this.deps.judge.refreshRule(r.id);
    this.deps.log.info({ path: file.entry.path, qos: pending[0]!.qos, previous }, 'QoS transition completed');
  }
}
