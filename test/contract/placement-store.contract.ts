// The contract every PlacementStore adapter must keep (SQLite now, PostgreSQL for scale-out): storage
// elements, replicas as placement sees them (each change with its placement event, in the same
// commit), rules and their locks, the transfer queue and stage requests. Files come from the
// namespace store over the same state, as in a running server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PlacementStore, FileRef, StageRequest } from '../../src/placement/placement-store.js';
import type { NamespaceStore } from '../../src/storage/namespace-store.js';
import type { EventLog } from '../../src/events/event-log.js';
import type { Rule } from '../../src/placement/types.js';
import { normalizePath as P } from '../../src/storage/paths.js';

export interface PlacementStoreUnderTest {
  store: PlacementStore;
  /** The namespace over the same state: placement works on its files. */
  namespace: NamespaceStore;
  log: EventLog;
  close(): Promise<void>;
}

const location = () => randomBytes(16).toString('hex');

/** Creates (or overwrites) a file through the namespace, with its parents; returns it as placement sees it. */
async function file(s: PlacementStoreUnderTest, path: string, size = 3): Promise<FileRef> {
  const parts = path.split('/').slice(1, -1);
  for (let i = 1; i <= parts.length; i++) {
    const dir = P('/' + parts.slice(0, i).join('/'));
    if (!(await s.namespace.get(dir))) await s.namespace.mkdir(dir, 'alice', 0o755);
  }
  await s.namespace.commitFile({
    path: P(path),
    owner: 'alice',
    mode: 0o644,
    size,
    checksums: { adler32: '024d0127' },
    contentType: undefined,
    replica: { se: 'local', location: location() },
  });
  const ref = await s.store.fileByPath(path);
  assert.ok(ref, `${path} as placement sees it`);
  return ref;
}

async function eventsAfter(log: EventLog, after: number) {
  return (await log.read(after, 1000)).map((e) => ({ type: e.type, path: e.path, isDir: e.isDir, data: e.data }));
}

function rule(over: Partial<Rule> = {}): Rule {
  const now = Date.now();
  return {
    id: randomUUID(),
    owner: 'alice',
    path: '/beam',
    glob: undefined,
    labels: [],
    xattrs: {},
    copies: 1,
    expression: 'medium=disk',
    source: undefined,
    grouping: 'DATASET',
    expires: undefined,
    priority: 3,
    activity: 'User Subscriptions',
    comment: undefined,
    fileId: undefined,
    qos: undefined,
    completed: undefined,
    state: 'REPLICATING',
    reason: undefined,
    locks: { ok: 0, replicating: 0, stuck: 0 },
    created: now,
    updated: now,
    ...over,
  };
}

const newTransfer = (f: FileRef, over: { priority?: number; destination?: string; source?: string; ruleId?: string } = {}) => ({
  id: randomUUID(),
  file: f,
  source: over.source,
  destination: over.destination ?? 'disk2',
  priority: over.priority ?? 3,
  activity: 'User Subscriptions',
  ruleId: over.ruleId,
  maxAttempts: 3,
});

function stageRequest(over: Partial<StageRequest> = {}): StageRequest {
  return {
    id: randomUUID(),
    owner: 'alice',
    created: Date.now(),
    started: undefined,
    completed: undefined,
    files: [{ path: '/beam/a', state: 'SUBMITTED' }],
    ...over,
  };
}

export function placementStoreContract(name: string, open: () => Promise<PlacementStoreUnderTest>): void {
  const withStore = (title: string, fn: (s: PlacementStoreUnderTest) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const s = await open();
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    });

  // ---- storage elements ------------------------------------------------------------------------

  withStore('storage elements: insert, list, attributes, availability, delete', async ({ store }) => {
    await store.insertSe('tape1', 'tape', { path: '/srv/tape1', stageDelaySeconds: 30 }, { medium: 'tape' });
    await store.insertSe('disk2', 'local', { path: '/srv/disk2' }, { medium: 'disk', site: 'desy' });
    await assert.rejects(store.insertSe('disk2', 'local', {}, {}), 'a second SE of the same name is refused');

    const byName = async () => new Map((await store.listSes()).map((se) => [se.name, se]));
    let ses = await byName();
    assert.equal(ses.size, 2);
    const tape = ses.get('tape1')!;
    assert.equal(tape.kind, 'tape');
    assert.deepEqual(tape.spec, { path: '/srv/tape1', stageDelaySeconds: 30 });
    assert.deepEqual(tape.attributes, { medium: 'tape' });
    assert.equal(tape.available, true);
    assert.ok(Math.abs(tape.created - Date.now()) < 60_000);

    await store.setSeAttributes('disk2', { medium: 'disk', site: 'cern' });
    await store.setSeAvailable('tape1', false);
    ses = await byName();
    assert.deepEqual(ses.get('disk2')!.attributes, { medium: 'disk', site: 'cern' });
    assert.equal(ses.get('tape1')!.available, false);
    await store.setSeAvailable('tape1', true);
    assert.equal((await byName()).get('tape1')!.available, true);

    await store.deleteSe('tape1');
    assert.deepEqual([...(await byName()).keys()], ['disk2']);
  });

  withStore('replica counts and used bytes per SE', async (s) => {
    const a = await file(s, '/beam/a', 10);
    const b = await file(s, '/beam/b', 32);
    assert.equal(await s.store.replicaCountOn('disk2'), 0);
    assert.equal(await s.store.usedBytesOn('disk2'), 0);
    for (const f of [a, b]) {
      await s.store.beginReplica(f.entryId, 'disk2');
      assert.notEqual(
        await s.store.commitReplica(f.entryId, f.entry.etag, { se: 'disk2', location: location(), state: 'AVAILABLE', online: true }, {}),
        'stale',
      );
    }
    assert.equal(await s.store.replicaCountOn('disk2'), 2);
    assert.equal(await s.store.usedBytesOn('disk2'), 42);
    assert.equal(await s.store.replicaCountOn('local'), 2, 'the namespace committed each file with a replica on local');
  });

  // ---- files ---------------------------------------------------------------------------------------

  withStore('files by id and path, regular files only; files under a path in path order, by pages', async (s) => {
    const a = await file(s, '/beam/run1/a');
    const b = await file(s, '/beam/run1/b');
    const c = await file(s, '/beam/run2/c');
    await file(s, '/beamline/d'); // a look-alike prefix, not below /beam
    assert.equal((await s.store.fileById(a.entryId))?.entry.path, '/beam/run1/a');
    assert.equal((await s.store.fileByPath('/beam/run1/b'))?.entryId, b.entryId);
    assert.equal(await s.store.fileByPath('/beam/run1'), undefined, 'a directory is not a file');
    assert.equal(await s.store.fileByPath('/nothing'), undefined);
    const dir = await s.namespace.get(P('/beam/run1'));
    assert.equal(dir?.type, 'DIR');

    assert.deepEqual(
      (await s.store.filesUnder('/beam', '', 100)).map((f) => f.entry.path),
      ['/beam/run1/a', '/beam/run1/b', '/beam/run2/c'],
    );
    const page1 = await s.store.filesUnder('/beam', '', 2);
    assert.deepEqual(
      page1.map((f) => f.entryId),
      [a.entryId, b.entryId],
    );
    const page2 = await s.store.filesUnder('/beam', page1.at(-1)!.entry.path, 2);
    assert.deepEqual(
      page2.map((f) => f.entryId),
      [c.entryId],
    );
    assert.deepEqual(await s.store.filesUnder('/beam', '/beam/run2/c', 2), []);
    assert.deepEqual(
      (await s.store.filesUnder('/beam/run2/c', '', 10)).map((f) => f.entry.path),
      ['/beam/run2/c'],
      'a file path gives the file itself',
    );
    assert.equal((await s.store.filesUnder('/', '', 100)).length, 4);
  });

  // ---- replicas ------------------------------------------------------------------------------------

  withStore('replica lifecycle: COPYING marker, commit with REPLICA_AVAILABLE, verified', async (s) => {
    const f = await file(s, '/beam/a');
    const head = await s.log.head();
    await s.store.beginReplica(f.entryId, 'disk2');
    await s.store.beginReplica(f.entryId, 'disk2'); // a second marker is a no-op
    let replicas = await s.store.replicasOf(f.entryId);
    const copying = replicas.find((r) => r.se === 'disk2');
    assert.equal(copying?.state, 'COPYING');
    assert.equal(replicas.filter((r) => r.se === 'disk2').length, 1);
    assert.deepEqual(await eventsAfter(s.log, head), [], 'a COPYING marker is not an event');

    const loc = location();
    const before = Date.now();
    const r = await s.store.commitReplica(
      f.entryId,
      f.entry.etag,
      { se: 'disk2', location: loc, state: 'AVAILABLE', online: true },
      { rule: 'rule-1', transfer: 'tr-1' },
    );
    assert.deepEqual(r, { replaced: undefined });
    replicas = await s.store.replicasOf(f.entryId);
    const committed = replicas.find((x) => x.se === 'disk2')!;
    assert.equal(committed.state, 'AVAILABLE');
    assert.equal(committed.location, loc);
    assert.equal(committed.online, true);
    assert.ok(committed.verified !== undefined && committed.verified >= before, 'a committed replica was just verified');
    assert.deepEqual(await eventsAfter(s.log, head), [
      {
        type: 'REPLICA_AVAILABLE',
        path: '/beam/a',
        isDir: false,
        data: { fileId: f.entry.fileId, se: 'disk2', size: 3, rule: 'rule-1', transfer: 'tr-1' },
      },
    ]);

    await s.store.markVerified(f.entryId, 'disk2', 1234);
    assert.equal((await s.store.replicasOf(f.entryId)).find((x) => x.se === 'disk2')!.verified, 1234);

    const on = await s.store.replicasOn('disk2', 'AVAILABLE', 10);
    assert.deepEqual(
      on.map((x) => [x.entryId, x.location]),
      [[f.entryId, loc]],
    );
    assert.deepEqual(await s.store.replicasOn('disk2', 'NEARLINE', 10), []);
  });

  withStore('commitReplica of a file that changed meanwhile is stale: no row, no event', async (s) => {
    const f = await file(s, '/beam/a');
    await s.store.beginReplica(f.entryId, 'disk2');
    await file(s, '/beam/a', 5); // overwritten while the copy ran: new etag
    const head = await s.log.head();
    const r = await s.store.commitReplica(
      f.entryId,
      f.entry.etag,
      { se: 'disk2', location: location(), state: 'AVAILABLE', online: true },
      {},
    );
    assert.equal(r, 'stale');
    assert.deepEqual(
      (await s.store.replicasOf(f.entryId)).filter((x) => x.se === 'disk2'),
      [],
      'neither the replica nor its COPYING marker is left',
    );
    assert.deepEqual(await eventsAfter(s.log, head), []);

    // A copy of an older version (the etag it was started with is not the file's): stale, and the
    // COPYING marker goes with it.
    const h = await file(s, '/beam/h');
    await s.store.beginReplica(h.entryId, 'disk2');
    assert.equal(
      await s.store.commitReplica(h.entryId, 'an-older-etag', { se: 'disk2', location: location(), state: 'AVAILABLE', online: true }, {}),
      'stale',
    );
    assert.deepEqual(
      (await s.store.replicasOf(h.entryId)).map((x) => x.se),
      ['local'],
    );

    // A removed file is stale too.
    const g = await file(s, '/beam/g');
    await s.namespace.remove(P('/beam/g'));
    assert.equal(
      await s.store.commitReplica(g.entryId, g.entry.etag, { se: 'disk2', location: location(), state: 'AVAILABLE', online: true }, {}),
      'stale',
    );
  });

  withStore('abandoning and dropping COPYING markers leave committed replicas alone', async (s) => {
    const a = await file(s, '/beam/a');
    const b = await file(s, '/beam/b');
    await s.store.beginReplica(a.entryId, 'disk2');
    await s.store.abandonReplica(a.entryId, 'disk2');
    assert.equal(
      (await s.store.replicasOf(a.entryId)).find((x) => x.se === 'disk2'),
      undefined,
    );
    await s.store.abandonReplica(a.entryId, 'local'); // not COPYING: stays
    assert.equal((await s.store.replicasOf(a.entryId)).find((x) => x.se === 'local')?.state, 'AVAILABLE');

    await s.store.beginReplica(a.entryId, 'disk2');
    await s.store.beginReplica(b.entryId, 'disk2');
    await s.store.beginReplica(b.entryId, 'disk3');
    assert.equal(await s.store.dropCopyingReplicas(), 3);
    assert.equal(await s.store.dropCopyingReplicas(), 0);
    for (const f of [a, b]) {
      assert.deepEqual(
        (await s.store.replicasOf(f.entryId)).map((x) => [x.se, x.state]),
        [['local', 'AVAILABLE']],
      );
    }
  });

  withStore('markReplicaBad sets BAD with its reason and REPLICA_BAD once; a new commit replaces the BAD copy', async (s) => {
    const f = await file(s, '/beam/a');
    const bad = location();
    await s.store.beginReplica(f.entryId, 'disk2');
    await s.store.commitReplica(f.entryId, f.entry.etag, { se: 'disk2', location: bad, state: 'AVAILABLE', online: true }, {});
    const head = await s.log.head();
    await s.store.markReplicaBad(f.entryId, 'disk2', 'checksum mismatch');
    await s.store.markReplicaBad(f.entryId, 'disk2', 'checksum mismatch'); // already BAD: no second event
    const r = (await s.store.replicasOf(f.entryId)).find((x) => x.se === 'disk2')!;
    assert.equal(r.state, 'BAD');
    assert.equal(r.reason, 'checksum mismatch');
    assert.deepEqual(await eventsAfter(s.log, head), [
      { type: 'REPLICA_BAD', path: '/beam/a', isDir: false, data: { fileId: f.entry.fileId, se: 'disk2', reason: 'checksum mismatch' } },
    ]);
    assert.equal((await s.store.replicasOn('disk2', 'BAD', 10)).length, 1);

    // A COPYING marker cannot be BAD.
    await s.store.beginReplica(f.entryId, 'disk3');
    await s.store.markReplicaBad(f.entryId, 'disk3', 'x');
    assert.equal((await s.store.replicasOf(f.entryId)).find((x) => x.se === 'disk3')?.state, 'COPYING');

    // The repair copy replaces the BAD replica and names its old location, whose bytes can go.
    const good = location();
    const replaced = await s.store.commitReplica(
      f.entryId,
      f.entry.etag,
      { se: 'disk2', location: good, state: 'AVAILABLE', online: true },
      {},
    );
    assert.deepEqual(replaced, { replaced: bad });
    const now = (await s.store.replicasOf(f.entryId)).find((x) => x.se === 'disk2')!;
    assert.equal(now.state, 'AVAILABLE');
    assert.equal(now.location, good);
    assert.equal(now.reason, undefined);
  });

  withStore('removeReplica deletes the row with REPLICA_REMOVED and returns its location', async (s) => {
    const f = await file(s, '/beam/a');
    const loc = location();
    await s.store.beginReplica(f.entryId, 'disk2');
    await s.store.commitReplica(f.entryId, f.entry.etag, { se: 'disk2', location: loc, state: 'AVAILABLE', online: true }, {});
    const head = await s.log.head();
    assert.equal(await s.store.removeReplica(f.entryId, 'disk2', 'rule deleted'), loc);
    assert.equal(await s.store.removeReplica(f.entryId, 'disk2', 'rule deleted'), undefined, 'a second removal finds nothing');
    assert.equal(
      (await s.store.replicasOf(f.entryId)).find((x) => x.se === 'disk2'),
      undefined,
    );
    assert.deepEqual(await eventsAfter(s.log, head), [
      { type: 'REPLICA_REMOVED', path: '/beam/a', isDir: false, data: { fileId: f.entry.fileId, se: 'disk2', reason: 'rule deleted' } },
    ]);
    // A COPYING marker has no bytes yet: removing it returns no location.
    await s.store.beginReplica(f.entryId, 'disk3');
    assert.equal(await s.store.removeReplica(f.entryId, 'disk3', 'x'), undefined);
    assert.equal(
      (await s.store.replicasOf(f.entryId)).find((x) => x.se === 'disk3'),
      undefined,
    );
  });

  withStore('tape: flushed (REPLICA_FLUSHED), staged with a pin (REPLICA_STAGED), evicted', async (s) => {
    const f = await file(s, '/beam/a');
    const loc = location();
    await s.store.beginReplica(f.entryId, 'tape1');
    await s.store.commitReplica(f.entryId, f.entry.etag, { se: 'tape1', location: loc, state: 'AVAILABLE', online: true }, {});
    const tapeReplica = async () => (await s.store.replicasOf(f.entryId)).find((x) => x.se === 'tape1')!;

    let head = await s.log.head();
    await s.store.replicaFlushed(f.entryId, 'tape1', false);
    let r = await tapeReplica();
    assert.equal(r.state, 'NEARLINE');
    assert.equal(r.online, false);
    assert.equal(r.location, loc);
    assert.deepEqual(await eventsAfter(s.log, head), [
      { type: 'REPLICA_FLUSHED', path: '/beam/a', isDir: false, data: { fileId: f.entry.fileId, se: 'tape1' } },
    ]);
    assert.deepEqual(
      (await s.store.replicasOn('tape1', 'NEARLINE', 10)).map((x) => x.entryId),
      [f.entryId],
    );
    assert.deepEqual(await s.store.replicasOn('tape1', 'AVAILABLE', 10), []);

    head = await s.log.head();
    const pinnedUntil = Date.now() + 60_000;
    await s.store.replicaStaged(f.entryId, 'tape1', pinnedUntil);
    r = await tapeReplica();
    assert.equal(r.state, 'NEARLINE');
    assert.equal(r.online, true);
    assert.equal(r.pinnedUntil, pinnedUntil);
    assert.deepEqual(await eventsAfter(s.log, head), [
      { type: 'REPLICA_STAGED', path: '/beam/a', isDir: false, data: { fileId: f.entry.fileId, se: 'tape1', pinnedUntil } },
    ]);

    // Moving the pin (another stage of an online copy, a release) sends no event.
    head = await s.log.head();
    await s.store.setPin(f.entryId, 'tape1', pinnedUntil + 5000);
    assert.equal((await tapeReplica()).pinnedUntil, pinnedUntil + 5000);
    assert.deepEqual(await eventsAfter(s.log, head), []);

    await s.store.replicaEvicted(f.entryId, 'tape1');
    r = await tapeReplica();
    assert.equal(r.state, 'NEARLINE');
    assert.equal(r.online, false);
    assert.equal(r.pinnedUntil, undefined);
    await s.store.setPin(f.entryId, 'tape1', pinnedUntil);
    assert.equal((await tapeReplica()).pinnedUntil, undefined, 'an offline copy has no pin to move');

    // Flushing that keeps the buffer copy leaves the replica online.
    const g = await file(s, '/beam/g');
    await s.store.beginReplica(g.entryId, 'tape1');
    await s.store.commitReplica(g.entryId, g.entry.etag, { se: 'tape1', location: location(), state: 'AVAILABLE', online: true }, {});
    await s.store.replicaFlushed(g.entryId, 'tape1', true);
    const kept = (await s.store.replicasOf(g.entryId)).find((x) => x.se === 'tape1')!;
    assert.equal(kept.state, 'NEARLINE');
    assert.equal(kept.online, true);

    // Tape changes of a replica that does not exist are no-ops without events.
    head = await s.log.head();
    await s.store.replicaFlushed(f.entryId, 'tape9', false);
    await s.store.replicaStaged(f.entryId, 'tape9', pinnedUntil);
    assert.deepEqual(await eventsAfter(s.log, head), []);
  });

  // ---- rules and locks ---------------------------------------------------------------------------------

  withStore('rules: insert, get, list (all or of one file), delete', async ({ store }) => {
    const r1 = rule({
      glob: '**/*.nxs',
      labels: ['raw'],
      xattrs: { sample: 'lysozyme' },
      expires: Date.now() + 3_600_000,
      comment: 'keep',
    });
    const r2 = rule({
      created: r1.created + 1,
      fileId: 'F1',
      qos: 'tape',
      expression: 'medium=tape',
      source: 'site=desy',
      grouping: 'NONE',
    });
    await store.insertRule(r1);
    await store.insertRule(r2);
    await assert.rejects(store.insertRule(r1), 'a second rule with the same id is refused');
    assert.deepEqual(await store.getRule(r1.id), r1);
    assert.deepEqual(await store.getRule(r2.id), r2);
    assert.equal(await store.getRule('nope'), undefined);
    assert.deepEqual(
      (await store.listRules()).map((r) => r.id),
      [r1.id, r2.id],
      'oldest first',
    );
    assert.deepEqual(
      (await store.listRules({ fileId: 'F1' })).map((r) => r.id),
      [r2.id],
    );
    assert.deepEqual(await store.listRules({ fileId: 'F2' }), []);
    await store.deleteRule(r1.id);
    assert.equal(await store.getRule(r1.id), undefined);
    assert.deepEqual(
      (await store.listRules()).map((r) => r.id),
      [r2.id],
    );
  });

  withStore('rule state: with an event RULE_STATE is appended, without none', async ({ store, log }) => {
    const r = rule();
    await store.insertRule(r);
    let head = await log.head();
    await store.setRuleState(r.id, 'STUCK', 'no SE has space', { path: '/beam', previous: 'REPLICATING' });
    let got = (await store.getRule(r.id))!;
    assert.equal(got.state, 'STUCK');
    assert.equal(got.reason, 'no SE has space');
    assert.ok(got.updated >= r.updated);
    assert.deepEqual(await eventsAfter(log, head), [
      {
        type: 'RULE_STATE',
        path: '/beam',
        isDir: true,
        data: { rule: r.id, state: 'STUCK', previous: 'REPLICATING', reason: 'no SE has space' },
      },
    ]);

    head = await log.head();
    await store.setRuleState(r.id, 'OK', undefined, { path: '/beam', previous: 'STUCK' });
    got = (await store.getRule(r.id))!;
    assert.equal(got.state, 'OK');
    assert.equal(got.reason, undefined, 'the reason is cleared');
    assert.deepEqual(await eventsAfter(log, head), [
      { type: 'RULE_STATE', path: '/beam', isDir: true, data: { rule: r.id, state: 'OK', previous: 'STUCK' } },
    ]);

    head = await log.head();
    await store.setRuleState(r.id, 'REPLICATING', undefined, undefined);
    assert.equal((await store.getRule(r.id))!.state, 'REPLICATING');
    assert.deepEqual(await eventsAfter(log, head), []);
  });

  withStore('completeQos marks the rules completed with QOS_CHANGED', async (s) => {
    const f = await file(s, '/beam/a');
    const r = rule({ fileId: f.entry.fileId, qos: 'tape', path: '/beam/a' });
    await s.store.insertRule(r);
    const head = await s.log.head();
    const before = Date.now();
    await s.store.completeQos([r.id], f, 'tape', 'disk');
    const got = (await s.store.getRule(r.id))!;
    assert.ok(got.completed !== undefined && got.completed >= before);
    assert.deepEqual(await eventsAfter(s.log, head), [
      { type: 'QOS_CHANGED', path: '/beam/a', isDir: false, data: { fileId: f.entry.fileId, qos: 'tape', previous: 'disk' } },
    ]);
  });

  withStore('locks: set (and update), counts, of a file and of a rule, locked SEs, protection, delete', async (s) => {
    const a = await file(s, '/beam/run1/a');
    const b = await file(s, '/beam/run1/b');
    const c = await file(s, '/beam/run2/c');
    const r = rule();
    const other = rule();
    await s.store.insertRule(r);
    await s.store.insertRule(other);

    await s.store.setLock(r.id, a.entryId, 'disk2', 'REPLICATING', undefined);
    await s.store.setLock(r.id, a.entryId, 'disk2', 'OK', undefined); // an update, not a second lock
    await s.store.setLock(r.id, b.entryId, 'disk2', 'REPLICATING', undefined);
    await s.store.setLock(r.id, b.entryId, 'disk3', 'STUCK', 'no space');
    await s.store.setLock(r.id, c.entryId, 'disk3', 'OK', undefined);
    await s.store.setLock(r.id, c.entryId, 'disk1', 'OK', undefined);
    await s.store.setLock(other.id, a.entryId, 'tape1', 'OK', undefined);

    assert.deepEqual(await s.store.lockCounts(r.id), { ok: 3, replicating: 1, stuck: 1 });
    assert.deepEqual((await s.store.getRule(r.id))!.locks, { ok: 3, replicating: 1, stuck: 1 }, 'a rule carries its lock counts');
    assert.deepEqual(await s.store.lockCounts('nope'), { ok: 0, replicating: 0, stuck: 0 });

    const ofA = (await s.store.locksOfFile(a.entryId)).sort((x, y) => x.se.localeCompare(y.se));
    assert.deepEqual(ofA, [
      { ruleId: r.id, fileId: a.entry.fileId, path: '/beam/run1/a', se: 'disk2', state: 'OK', reason: undefined },
      { ruleId: other.id, fileId: a.entry.fileId, path: '/beam/run1/a', se: 'tape1', state: 'OK', reason: undefined },
    ]);

    const ofRule = await s.store.locksOfRule(r.id, 100, 0);
    assert.deepEqual(
      ofRule.map((l) => [l.path, l.se, l.state, l.reason]),
      [
        ['/beam/run1/a', 'disk2', 'OK', undefined],
        ['/beam/run1/b', 'disk2', 'REPLICATING', undefined],
        ['/beam/run1/b', 'disk3', 'STUCK', 'no space'],
        ['/beam/run2/c', 'disk1', 'OK', undefined],
        ['/beam/run2/c', 'disk3', 'OK', undefined],
      ],
      'in path, then SE order',
    );
    assert.deepEqual(
      (await s.store.locksOfRule(r.id, 2, 1)).map((l) => [l.path, l.se]),
      [
        ['/beam/run1/b', 'disk2'],
        ['/beam/run1/b', 'disk3'],
      ],
    );

    assert.deepEqual(
      await s.store.lockedSesOfRule(r.id),
      new Map([
        ['disk1', 1],
        ['disk2', 2],
        ['disk3', 2],
      ]),
    );
    assert.deepEqual(
      await s.store.lockedSesOfRule(r.id, '/beam/run2'),
      new Map([
        ['disk1', 1],
        ['disk3', 1],
      ]),
      'files directly in one directory (DATASET grouping)',
    );

    assert.equal(await s.store.isProtected(a.entryId, 'disk2'), true);
    assert.equal(await s.store.isProtected(a.entryId, 'tape1'), true);
    assert.equal(await s.store.isProtected(a.entryId, 'disk3'), false);

    await s.store.deleteLock(r.id, a.entryId, 'disk2');
    assert.equal(await s.store.isProtected(a.entryId, 'disk2'), false);
    assert.deepEqual(await s.store.lockCounts(r.id), { ok: 2, replicating: 1, stuck: 1 });

    // Deleting a rule drops its locks: what it protected becomes deletable.
    await s.store.deleteRule(other.id);
    assert.equal(await s.store.isProtected(a.entryId, 'tape1'), false);
    assert.deepEqual(await s.store.locksOfFile(a.entryId), []);

    // Removing a file drops the locks on it.
    await s.namespace.remove(P('/beam/run2/c'));
    assert.deepEqual(await s.store.lockCounts(r.id), { ok: 0, replicating: 1, stuck: 1 });
  });

  // ---- transfers -----------------------------------------------------------------------------------------

  withStore('transfers: insert from the file, get, one open transfer per file and destination', async (s) => {
    const f = await file(s, '/beam/a', 7);
    const r = rule();
    await s.store.insertRule(r);
    const before = Date.now();
    const t = await s.store.insertTransfer(newTransfer(f, { source: 'local', ruleId: r.id, priority: 4 }));
    assert.equal(t.state, 'QUEUED');
    assert.equal(t.fileId, f.entry.fileId);
    assert.equal(t.path, '/beam/a');
    assert.equal(t.etag, f.entry.etag);
    assert.equal(t.size, 7);
    assert.equal(t.adler32, '024d0127');
    assert.equal(t.source, 'local');
    assert.equal(t.destination, 'disk2');
    assert.equal(t.priority, 4);
    assert.equal(t.activity, 'User Subscriptions');
    assert.equal(t.ruleId, r.id);
    assert.equal(t.attempts, 0);
    assert.equal(t.maxAttempts, 3);
    assert.equal(t.bytesDone, 0);
    assert.equal(t.mode, undefined);
    assert.equal(t.error, undefined);
    assert.equal(t.started, undefined);
    assert.equal(t.finished, undefined);
    assert.ok(t.created >= before && t.nextAttempt <= Date.now());

    const got = await s.store.getTransfer(t.id);
    assert.equal(got?.entryId, f.entryId);
    assert.equal(got?.id, t.id);
    assert.equal(await s.store.getTransfer('nope'), undefined);

    assert.equal((await s.store.openTransferTo(f.entryId, 'disk2'))?.id, t.id);
    assert.equal(await s.store.openTransferTo(f.entryId, 'disk3'), undefined);
    for (const state of ['STAGING', 'ACTIVE'] as const) {
      await s.store.updateTransfer(t.id, { state });
      assert.equal((await s.store.openTransferTo(f.entryId, 'disk2'))?.id, t.id, `${state} is open`);
    }
    for (const state of ['DONE', 'FAILED', 'CANCELLED'] as const) {
      await s.store.updateTransfer(t.id, { state });
      assert.equal(await s.store.openTransferTo(f.entryId, 'disk2'), undefined, `${state} is not open`);
    }
  });

  withStore('due transfers: queued ones due now, by priority then age; the next due time', async (s) => {
    const f = await file(s, '/beam/a');
    const ids: Record<string, string> = {};
    for (const [name, priority] of [
      ['old3', 3],
      ['top5', 5],
      ['new3', 3],
      ['low1', 1],
      ['later', 5],
    ] as const) {
      ids[name] = (await s.store.insertTransfer(newTransfer(f, { priority, destination: `se-${name}` }))).id;
      await sleep(3); // distinct creation times
    }
    const future = Date.now() + 60_000;
    await s.store.updateTransfer(ids.later!, { nextAttempt: future });
    const now = Date.now();
    const name = (id: string) => Object.entries(ids).find(([, v]) => v === id)![0];

    const due = await s.store.dueTransfers(now, 100);
    assert.deepEqual(
      due.map((t) => name(t.id)),
      ['top5', 'old3', 'new3', 'low1'],
    );
    assert.ok(due.every((t) => t.entryId === f.entryId));
    assert.deepEqual(
      (await s.store.dueTransfers(now, 2)).map((t) => name(t.id)),
      ['top5', 'old3'],
    );
    assert.deepEqual(
      (await s.store.dueTransfers(future, 100)).map((t) => name(t.id)),
      ['top5', 'later', 'old3', 'new3', 'low1'],
    );

    await s.store.updateTransfer(ids.top5!, { state: 'ACTIVE' });
    assert.deepEqual(
      (await s.store.dueTransfers(now, 100)).map((t) => name(t.id)),
      ['old3', 'new3', 'low1'],
      'only QUEUED transfers are due',
    );
    const next = await s.store.nextDueTime();
    assert.ok(next !== undefined && next <= now);
    for (const id of ['old3', 'new3', 'low1']) await s.store.updateTransfer(ids[id]!, { state: 'DONE' });
    assert.equal(await s.store.nextDueTime(), future);
    await s.store.updateTransfer(ids.later!, { state: 'CANCELLED' });
    assert.equal(await s.store.nextDueTime(), undefined);
  });

  withStore('updateTransfer sets only the fields given; an error of null clears it', async (s) => {
    const f = await file(s, '/beam/a');
    const t = await s.store.insertTransfer(newTransfer(f));
    await s.store.updateTransfer(t.id, {
      state: 'ACTIVE',
      attempts: 1,
      bytesDone: 2,
      mode: 'tpc',
      source: 'disk9',
      error: 'connection reset',
      started: 1000,
    });
    let got = (await s.store.getTransfer(t.id))!;
    assert.equal(got.state, 'ACTIVE');
    assert.equal(got.attempts, 1);
    assert.equal(got.bytesDone, 2);
    assert.equal(got.mode, 'tpc');
    assert.equal(got.source, 'disk9');
    assert.equal(got.error, 'connection reset');
    assert.equal(got.started, 1000);
    assert.equal(got.finished, undefined);
    assert.equal(got.priority, t.priority, 'untouched');

    await s.store.updateTransfer(t.id, { state: 'DONE', error: null, finished: 2000, bytesDone: 3 });
    got = (await s.store.getTransfer(t.id))!;
    assert.equal(got.state, 'DONE');
    assert.equal(got.error, undefined);
    assert.equal(got.finished, 2000);
    assert.equal(got.started, 1000);
    assert.equal(got.mode, 'tpc');
    await s.store.updateTransfer(t.id, {}); // nothing to change
    assert.deepEqual(await s.store.getTransfer(t.id), got);
  });

  withStore('requeueInterrupted puts ACTIVE and STAGING transfers back in the queue, due now', async (s) => {
    const f = await file(s, '/beam/a');
    const states = ['QUEUED', 'STAGING', 'ACTIVE', 'DONE', 'FAILED'] as const;
    const ids = new Map<string, string>();
    for (const state of states) {
      const t = await s.store.insertTransfer(newTransfer(f, { destination: `se-${state}` }));
      await s.store.updateTransfer(t.id, { state, nextAttempt: Date.now() + 60_000 });
      ids.set(state, t.id);
    }
    const before = Date.now();
    assert.equal(await s.store.requeueInterrupted(), 2);
    for (const state of states) {
      const t = (await s.store.getTransfer(ids.get(state)!))!;
      const expected = state === 'STAGING' || state === 'ACTIVE' ? 'QUEUED' : state;
      assert.equal(t.state, expected, state);
      if (expected !== state) assert.ok(t.nextAttempt >= before && t.nextAttempt <= Date.now(), 'due at once');
    }
    assert.equal(await s.store.requeueInterrupted(), 0);
  });

  withStore('listTransfers: newest first, filtered by state, rule and path (a file or below a directory), paged', async (s) => {
    const a = await file(s, '/beam/run1/a');
    const b = await file(s, '/beam/run2/b');
    const look = await file(s, '/beamline/c');
    const r = rule();
    await s.store.insertRule(r);
    const ta = await s.store.insertTransfer(newTransfer(a, { ruleId: r.id }));
    await sleep(3);
    const tb = await s.store.insertTransfer(newTransfer(b));
    await sleep(3);
    const tc = await s.store.insertTransfer(newTransfer(look, { ruleId: r.id }));
    await s.store.updateTransfer(tb.id, { state: 'FAILED' });
    const ids = (list: { id: string }[]) => list.map((t) => t.id);
    const all = await s.store.listTransfers({ limit: 100, offset: 0 });
    assert.deepEqual(ids(all), [tc.id, tb.id, ta.id]);
    assert.ok(
      all.every((t) => !('entryId' in t)),
      'listed transfers carry no internal ids',
    );
    assert.deepEqual(ids(await s.store.listTransfers({ limit: 1, offset: 1 })), [tb.id]);
    assert.deepEqual(ids(await s.store.listTransfers({ state: 'FAILED', limit: 100, offset: 0 })), [tb.id]);
    assert.deepEqual(ids(await s.store.listTransfers({ state: 'QUEUED', limit: 100, offset: 0 })), [tc.id, ta.id]);
    assert.deepEqual(ids(await s.store.listTransfers({ ruleId: r.id, limit: 100, offset: 0 })), [tc.id, ta.id]);
    assert.deepEqual(ids(await s.store.listTransfers({ path: '/beam', limit: 100, offset: 0 })), [tb.id, ta.id], 'not /beamline');
    assert.deepEqual(ids(await s.store.listTransfers({ path: '/beam/run1/a', limit: 100, offset: 0 })), [ta.id]);
    assert.deepEqual(ids(await s.store.listTransfers({ path: '/', limit: 100, offset: 0 })), [tc.id, tb.id, ta.id]);
    assert.deepEqual(ids(await s.store.listTransfers({ path: '/beam', ruleId: r.id, state: 'QUEUED', limit: 100, offset: 0 })), [ta.id]);
  });

  // ---- stage requests ------------------------------------------------------------------------------------

  withStore('stage requests: insert, get, update; open ones (not completed) oldest first', async ({ store }) => {
    const now = Date.now();
    const r1 = stageRequest({ created: now, files: [{ path: '/beam/a', state: 'SUBMITTED', pinSeconds: 3600 }] });
    const r2 = stageRequest({ created: now + 1, owner: 'bob' });
    const r3 = stageRequest({ created: now + 2 });
    for (const r of [r3, r1, r2]) await store.insertStageRequest(r);
    assert.deepEqual(await store.getStageRequest(r1.id), r1);
    assert.equal(await store.getStageRequest('nope'), undefined);
    assert.deepEqual(
      (await store.openStageRequests()).map((r) => r.id),
      [r1.id, r2.id, r3.id],
    );

    const started: StageRequest = {
      ...r1,
      started: now + 5,
      files: [
        { path: '/beam/a', state: 'COMPLETED', pinSeconds: 3600, pinnedUntil: now + 3_600_000 },
        { path: '/beam/b', state: 'FAILED', error: '/beam/b does not exist' },
      ],
    };
    await store.updateStageRequest(started);
    assert.deepEqual(await store.getStageRequest(r1.id), started);
    await store.updateStageRequest({ ...started, completed: now + 9 });
    assert.equal((await store.getStageRequest(r1.id))!.completed, now + 9);
    assert.equal((await store.getStageRequest(r1.id))!.owner, 'alice', 'the owner does not change');
    assert.deepEqual(
      (await store.openStageRequests()).map((r) => r.id),
      [r2.id, r3.id],
    );
    await store.deleteStageRequest(r2.id);
    assert.equal(await store.getStageRequest(r2.id), undefined);
    assert.deepEqual(
      (await store.openStageRequests()).map((r) => r.id),
      [r3.id],
    );
  });
}
