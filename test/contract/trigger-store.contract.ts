// The contract every TriggerStore adapter must keep (SQLite now, PostgreSQL for scale-out), from what
// the dispatcher, the service and the pipeline runner rely on: triggers and their log positions, one
// delivery per (trigger, event) recorded together with the position, batched delivery updates that
// the store itself reads back at once, `updateNow` committed before it returns (in order with what
// was written before it), the `writeFirst` hook before delivery updates reach the state, dead letters
// and replay, pipelines and pipeline runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TriggerStore } from '../../src/triggers/trigger-store.js';
import type { Delivery, Pipeline, PipelineRun, Trigger } from '../../src/triggers/types.js';

export interface TriggerStoreUnderTest {
  store: TriggerStore;
  /** A second store over the same state without the first one's buffer: what a restart, or another node, would read. */
  peer: TriggerStore;
  close(): Promise<void>;
}

export interface TriggerStoreOptions {
  /** Passed to the store: called before each batch of delivery updates is written. */
  writeFirst?: () => void | Promise<void>;
}

const id = (prefix: string) => `${prefix}_${randomBytes(8).toString('hex')}`;

function trigger(over: Partial<Trigger> = {}): Trigger {
  return {
    id: id('trg'),
    name: 'on-nexus',
    description: 'extract metadata',
    filter: {
      events: ['IN_CLOSE_WRITE', 'IN_MOVED_TO'],
      path: '/beam',
      recursive: true,
      glob: '**/*.nxs',
      directories: false,
      labels: ['raw'],
      xattrs: { sample: 'lysozyme' },
      minSize: 1,
    },
    target: { function: 'extract@prod' },
    params: { depth: 2, nested: { list: [1, 'x', null], flag: true } },
    delivery: { maxAttempts: 5, backoffSeconds: 1, maxBackoffSeconds: 300, concurrency: 64, ordered: true },
    catalog: { annotate: 'nexus' },
    enabled: true,
    owner: 'alice',
    scopes: ['storage.read:/beam', 'storage.modify:/beam/derived'],
    position: 42,
    created: new Date().toISOString(),
    ...over,
  };
}

function delivery(t: Trigger, event: number, over: Partial<Delivery> = {}): Delivery {
  return {
    trigger: t.id,
    event,
    path: `/beam/f${event}.nxs`,
    status: 'pending',
    attempts: 0,
    notBefore: 0,
    updated: Date.now(),
    ...over,
  };
}

const matched = (...events: number[]) => events.map((event) => ({ event, path: `/beam/f${event}.nxs` }));
const eventsOf = (ds: Delivery[]) => ds.map((d) => d.event);

function pipeline(name: string, over: Partial<Pipeline> = {}): Pipeline {
  return {
    name,
    description: 'reduce, then index',
    steps: [
      { function: 'reduce@2', params: { bins: 100 }, maxAttempts: 3 },
      { function: 'index', params: {}, maxAttempts: 1 },
    ],
    owner: 'alice',
    created: new Date().toISOString(),
    ...over,
  };
}

function run(pipelineName: string, created: number, over: Partial<PipelineRun> = {}): PipelineRun {
  return {
    id: id('run'),
    pipeline: pipelineName,
    status: 'running',
    cause: 'trigger:on-nexus',
    subject: 'alice',
    input: { path: '/beam/a.nxs' },
    steps: [
      { function: 'reduce@2', status: 'running', attempts: 1, activations: ['act_1'] },
      { function: 'index', status: 'pending', attempts: 0, activations: [] },
    ],
    created: new Date(created).toISOString(),
    ...over,
  };
}

/** Waits until check passes (batched writes land within a few milliseconds), at most `ms`. */
async function eventually(check: () => Promise<void>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(20);
    }
  }
}

export function triggerStoreContract(name: string, open: (opts: TriggerStoreOptions) => Promise<TriggerStoreUnderTest>): void {
  const withStore = (title: string, fn: (s: TriggerStoreUnderTest) => Promise<void>, opts: TriggerStoreOptions = {}) =>
    test(`${name}: ${title}`, async () => {
      const s = await open(opts);
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    });

  // ---- triggers ------------------------------------------------------------------------------------

  withStore('triggers: create, get by id or by name, list by name; a second trigger of one name is CONFLICT', async ({ store }) => {
    const a = trigger({ name: 'zeta' });
    const b = trigger({
      name: 'alpha',
      description: '',
      target: { pipeline: 'reduce' },
      params: {},
      catalog: undefined,
      enabled: false,
      position: 0,
    });
    delete b.catalog;
    await store.create(a);
    await store.create(b);
    assert.deepEqual(await store.get(a.id), a, 'every field as given');
    assert.deepEqual(await store.get('alpha'), b);
    assert.equal(await store.get('nope'), undefined);
    assert.deepEqual(
      (await store.list()).map((t) => t.name),
      ['alpha', 'zeta'],
    );
    await assert.rejects(store.create(trigger({ name: 'zeta' })), { code: 'CONFLICT' });
    assert.equal((await store.list()).length, 2);
  });

  withStore('triggers: enable and disable; remove drops its deliveries; unknown ids change nothing', async ({ store }) => {
    const t = trigger();
    await store.create(t);
    await store.setEnabled(t.id, false);
    assert.equal((await store.get(t.id))!.enabled, false);
    await store.setEnabled(t.id, true);
    assert.equal((await store.get(t.id))!.enabled, true);
    await store.setEnabled('trg_nope', false);
    await store.remove('trg_nope');

    await store.advance(t.id, 50, matched(43, 44));
    await store.update(delivery(t, 43, { status: 'running', attempts: 1 }));
    await store.remove(t.id);
    assert.equal(await store.get(t.id), undefined);
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(await store.open(t.id), []);
    assert.deepEqual(await store.counts(t.id), { pending: 0, running: 0, succeeded: 0, dead: 0 });

    // The same name again is a new trigger with nothing of the old one's.
    const again = trigger({ name: t.name });
    await store.create(again);
    assert.deepEqual(await store.open(again.id), []);
  });

  // ---- advancing -----------------------------------------------------------------------------------

  withStore('advance records one pending delivery per matched event and moves the position', async ({ store, peer }) => {
    const t = trigger({ position: 42 });
    await store.create(t);
    const before = Date.now();
    await store.advance(t.id, 50, matched(45, 43, 47));
    assert.equal((await store.get(t.id))!.position, 50);
    const open = await store.open(t.id);
    assert.deepEqual(eventsOf(open), [43, 45, 47], 'oldest event first');
    for (const d of open) {
      assert.equal(d.trigger, t.id);
      assert.equal(d.path, `/beam/f${d.event}.nxs`);
      assert.equal(d.status, 'pending');
      assert.equal(d.attempts, 0);
      assert.equal(d.notBefore, 0);
      assert.equal(d.activation, undefined);
      assert.equal(d.lastError, undefined);
      assert.ok(d.updated >= before && d.updated <= Date.now());
    }
    assert.deepEqual(eventsOf(await peer.open(t.id)), [43, 45, 47], 'committed when advance returns');
    assert.equal((await peer.get(t.id))!.position, 50);

    // Events read without a match still move the position.
    await store.advance(t.id, 60, []);
    assert.equal((await store.get(t.id))!.position, 60);
  });

  withStore('advance keeps a delivery that exists as it is, and never moves the position back', async ({ store }) => {
    const t = trigger({ position: 0 });
    await store.create(t);
    await store.advance(t.id, 10, matched(3, 7));
    await store.updateNow(delivery(t, 3, { status: 'running', attempts: 2, activation: 'act_3' }));
    // The same events again (a read repeated after a restart): no second delivery, no reset.
    await store.advance(t.id, 10, matched(3, 7));
    await store.advance(t.id, 5, matched(3));
    assert.equal((await store.get(t.id))!.position, 10, 'not back to 5');
    const open = await store.open(t.id);
    assert.deepEqual(
      open.map((d) => [d.event, d.status, d.attempts, d.activation]),
      [
        [3, 'running', 2, 'act_3'],
        [7, 'pending', 0, undefined],
      ],
    );
    assert.deepEqual(await store.counts(t.id), { pending: 1, running: 1, succeeded: 0, dead: 0 });
  });

  withStore('advance takes a whole log read (2000 events) at once', async ({ store }) => {
    const t = trigger({ position: 0 });
    await store.create(t);
    const events = Array.from({ length: 2000 }, (_, i) => i + 1);
    await store.advance(t.id, 2000, matched(...events));
    assert.equal((await store.counts(t.id)).pending, 2000);
    assert.deepEqual(eventsOf(await store.open(t.id)), events);
  });

  withStore('advance of a removed trigger records no delivery', async ({ store, peer }) => {
    const t = trigger();
    await store.create(t);
    await store.remove(t.id);
    // Refused or ignored; either way nothing is left behind.
    await store.advance(t.id, 60, matched(50)).catch(() => undefined);
    assert.deepEqual(await peer.open(t.id), []);
    assert.deepEqual(await peer.counts(t.id), { pending: 0, running: 0, succeeded: 0, dead: 0 });
  });

  // ---- delivery updates ----------------------------------------------------------------------------

  withStore('update may be batched, but the store reads its own updates at once and commits them soon', async ({ store, peer }) => {
    const t = trigger();
    await store.create(t);
    await store.advance(t.id, 50, matched(43, 44, 45, 46));
    const now = Date.now();
    const running = delivery(t, 43, { status: 'running', attempts: 1, activation: 'act_a', updated: now });
    const retrying = delivery(t, 46, { status: 'pending', attempts: 2, notBefore: now + 4000, lastError: 'boom', updated: now + 1 });
    await store.update(running);
    await store.update(delivery(t, 44, { status: 'succeeded', attempts: 1, activation: 'act_b' }));
    await store.update(delivery(t, 45, { status: 'dead', attempts: 5, lastError: 'TIMEOUT: 30 s' }));
    await store.update(retrying);
    await store.update(delivery(t, 99)); // never advanced: updating it records nothing

    assert.deepEqual(await store.open(t.id), [running, retrying], 'every field as given');
    assert.deepEqual(await store.counts(t.id), { pending: 1, running: 1, succeeded: 1, dead: 1 });
    assert.deepEqual(
      (await store.deadLetters(t.id, 10)).map((d) => [d.event, d.attempts, d.lastError]),
      [[45, 5, 'TIMEOUT: 30 s']],
    );
    await eventually(async () => assert.deepEqual(await peer.counts(t.id), { pending: 1, running: 1, succeeded: 1, dead: 1 }));
  });

  withStore('updateNow is committed when it returns, together with the updates buffered before it', async ({ store, peer }) => {
    const t = trigger({ target: { pipeline: 'reduce' } });
    await store.create(t);
    await store.advance(t.id, 50, matched(43, 44));
    await store.update(delivery(t, 43, { status: 'succeeded', attempts: 1 }));
    await store.updateNow(delivery(t, 44, { status: 'running', attempts: 1, activation: 'run_1' }));
    // No waiting: what a restart right now would find.
    assert.deepEqual(
      (await peer.open(t.id)).map((d) => [d.event, d.status, d.activation]),
      [[44, 'running', 'run_1']],
    );
    assert.deepEqual(await peer.counts(t.id), { pending: 0, running: 1, succeeded: 1, dead: 0 });
  });

  withStore('the latest state of a delivery wins, however its updates were written', async ({ store, peer }) => {
    const t = trigger();
    await store.create(t);
    await store.advance(t.id, 50, matched(43, 44));
    const writes: Promise<void>[] = [];
    for (let i = 1; i <= 200; i++) {
      const d = delivery(t, 43 + (i % 2), { status: 'running', attempts: i });
      // Batched updates, updateNow now and then, some while a batch is being written.
      writes.push(i % 17 === 0 ? store.updateNow(d) : store.update(d));
      if (i % 29 === 0) await sleep(2);
    }
    await Promise.all(writes);
    await store.update(delivery(t, 43, { status: 'succeeded', attempts: 201 }));
    assert.deepEqual(
      (await store.open(t.id)).map((d) => [d.event, d.attempts]),
      [[44, 199]],
    );
    await eventually(async () => {
      assert.deepEqual(
        (await peer.open(t.id)).map((d) => [d.event, d.attempts]),
        [[44, 199]],
      );
      assert.deepEqual(await peer.counts(t.id), { pending: 0, running: 1, succeeded: 1, dead: 0 });
    });
  });

  {
    // The hook sees the state as it was before the updates it precedes are written.
    let peerOf: TriggerStore | undefined;
    let triggerId = '';
    const seen: string[][] = [];
    withStore(
      'writeFirst is called before buffered delivery updates are written, and not when none are',
      async ({ store, peer }) => {
        peerOf = peer;
        const t = trigger();
        triggerId = t.id;
        await store.create(t);
        await store.advance(t.id, 50, matched(43));
        assert.equal(seen.length, 0, 'advance writes no delivery update');
        await store.updateNow(delivery(t, 43, { status: 'running', attempts: 1, activation: 'act_1' }));
        // (A synchronous adapter does not wait for the hook's promise: it read the state at once, though.)
        await eventually(async () => assert.deepEqual(seen, [['pending']], 'called once, before the update was written'));
        await store.open(t.id);
        await store.counts(t.id);
        assert.equal(seen.length, 1, 'nothing buffered: not called');
        await store.update(delivery(t, 43, { status: 'succeeded', attempts: 1, activation: 'act_1' }));
        await eventually(async () => assert.equal((await peer.counts(t.id)).succeeded, 1));
        assert.deepEqual(seen, [['pending'], ['running']]);
      },
      {
        writeFirst: async () => {
          const state = peerOf ? await peerOf.open(triggerId) : [];
          seen.push(state.map((d) => d.status));
        },
      },
    );
  }

  withStore('an error message with a NUL in it does not keep the update from being recorded', async ({ store, peer }) => {
    const t = trigger();
    await store.create(t);
    await store.advance(t.id, 50, matched(43, 44));
    await store.update(delivery(t, 43, { status: 'dead', attempts: 5, lastError: 'bad output: \u0000\u0001 at byte 7' }));
    await store.updateNow(delivery(t, 44, { status: 'succeeded', attempts: 1 }));
    const [dead] = await peer.deadLetters(t.id, 10);
    assert.equal(dead?.event, 43);
    // Kept, or with the NUL replaced where the database's text cannot hold it.
    assert.ok(
      ['bad output: \u0000\u0001 at byte 7', 'bad output: \ufffd\u0001 at byte 7'].includes(dead?.lastError ?? ''),
      dead?.lastError,
    );
  });

  // ---- dead letters and replay ---------------------------------------------------------------------

  withStore('dead letters: oldest event first, limited', async ({ store }) => {
    const t = trigger();
    await store.create(t);
    await store.advance(t.id, 60, matched(41, 42, 43, 44, 45));
    for (const e of [45, 41, 43, 44]) await store.update(delivery(t, e, { status: 'dead', attempts: 5, lastError: `e${e}` }));
    assert.deepEqual(eventsOf(await store.deadLetters(t.id, 10)), [41, 43, 44, 45]);
    assert.deepEqual(eventsOf(await store.deadLetters(t.id, 2)), [41, 43]);
    assert.deepEqual(await store.deadLetters('trg_nope', 10), []);
  });

  withStore('replay: chosen or all dead deliveries back to pending with fresh attempts, returned', async ({ store, peer }) => {
    const t = trigger();
    await store.create(t);
    await store.advance(t.id, 60, matched(41, 42, 43, 44));
    for (const e of [41, 43, 44]) {
      await store.update(delivery(t, e, { status: 'dead', attempts: 5, notBefore: 123, activation: `act_${e}`, lastError: `e${e}` }));
    }
    await store.update(delivery(t, 42, { status: 'succeeded', attempts: 1 }));

    const before = Date.now();
    const one = await store.replay(t.id, [43, 42, 99]);
    assert.deepEqual(
      one.map((d) => [d.trigger, d.event, d.path, d.status, d.attempts, d.notBefore, d.lastError]),
      [[t.id, 43, '/beam/f43.nxs', 'pending', 0, 0, 'e43']],
      'only dead ones; the last error is kept',
    );
    assert.ok(one[0]!.updated >= before);
    assert.deepEqual(eventsOf(await peer.open(t.id)), [43], 'recorded when replay returns');
    assert.deepEqual(eventsOf(await store.deadLetters(t.id, 10)), [41, 44]);
    assert.deepEqual(await store.replay(t.id, []), []);

    const rest = await store.replay(t.id);
    assert.deepEqual(eventsOf(rest), [41, 44]);
    assert.ok(rest.every((d) => d.status === 'pending' && d.attempts === 0 && d.notBefore === 0));
    assert.deepEqual(await store.counts(t.id), { pending: 3, running: 0, succeeded: 1, dead: 0 });
    assert.deepEqual(await store.replay(t.id), []);
  });

  // ---- pipelines and runs --------------------------------------------------------------------------

  withStore('pipelines: save (an update keeps its creation time), get, list by name, remove', async ({ store }) => {
    const b = pipeline('reduce');
    const a = pipeline('archive', { description: '', steps: [{ function: 'tar', params: { level: 9 }, maxAttempts: 2 }] });
    await store.savePipeline(b);
    await store.savePipeline(a);
    assert.deepEqual(await store.getPipeline('reduce'), b);
    assert.equal(await store.getPipeline('nope'), undefined);
    assert.deepEqual(
      (await store.listPipelines()).map((p) => p.name),
      ['archive', 'reduce'],
    );

    const changed = pipeline('reduce', { owner: 'bob', description: 'v2', created: new Date(Date.now() + 60_000).toISOString() });
    await store.savePipeline(changed);
    assert.deepEqual(await store.getPipeline('reduce'), { ...changed, created: b.created }, 'created stays the first one');

    assert.equal(await store.removePipeline('reduce'), true);
    assert.equal(await store.removePipeline('reduce'), false);
    assert.deepEqual(
      (await store.listPipelines()).map((p) => p.name),
      ['archive'],
    );
  });

  withStore('pipeline runs: saved and updated, got, listed newest first per pipeline, limited', async ({ store }) => {
    const t0 = Date.now();
    const r1 = run('reduce', t0);
    const r2 = run('reduce', t0 + 1000);
    const r3 = run('reduce', t0 + 2000);
    const other = run('archive', t0 + 3000);
    for (const r of [r2, r1, other, r3]) await store.saveRun(r);
    assert.deepEqual(await store.getRun(r1.id), r1);
    assert.equal(await store.getRun('run_nope'), undefined);
    assert.deepEqual(
      (await store.listRuns('reduce', 10)).map((r) => r.id),
      [r3.id, r2.id, r1.id],
    );
    assert.deepEqual(
      (await store.listRuns('reduce', 2)).map((r) => r.id),
      [r3.id, r2.id],
    );
    assert.deepEqual(await store.listRuns('nope', 10), []);

    // A run's record as the runner keeps it, whatever its functions returned.
    const done: PipelineRun = {
      ...r1,
      status: 'succeeded',
      steps: [
        { function: 'reduce@2', status: 'succeeded', attempts: 2, activations: ['act_1', 'act_2'], result: { bins: [1, 2.5, -3e-7] } },
        { function: 'index', status: 'succeeded', attempts: 1, activations: ['act_3'], result: 'text with \u0000, \ud800 and ✓' },
      ],
      result: 'text with \u0000, \ud800 and ✓',
      ended: new Date(t0 + 5000).toISOString(),
    };
    await store.saveRun(done);
    assert.deepEqual(await store.getRun(r1.id), done);
    assert.deepEqual(
      (await store.listRuns('reduce', 10)).map((r) => [r.id, r.status]),
      [
        [r3.id, 'running'],
        [r2.id, 'running'],
        [r1.id, 'succeeded'],
      ],
      'an update keeps its place',
    );
  });
}
