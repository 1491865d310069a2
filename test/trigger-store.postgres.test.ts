// Runs the trigger store contract against the PostgreSQL adapter (one server for the file, a fresh
// database per test; the peer store is another node's, on its own pool), and checks what only a
// shared database brings: nodes advancing one trigger at once, and a database that goes away while
// delivery updates are waiting to be written.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { triggerStoreContract } from './contract/trigger-store.contract.js';
import { startPostgres, type RunningPostgres } from './support/postgres.js';
import { migratePg, openPool, type PgPool } from '../src/backends/postgres/database.js';
import { PgTriggerStore } from '../src/backends/postgres/trigger-store.js';
import { pgTriggerMigrations } from '../src/backends/postgres/trigger-tables.js';
import type { Delivery, Trigger } from '../src/triggers/types.js';

let server: Promise<RunningPostgres> | undefined;
let databases = 0;
after(async () => (await server)?.stop());

/** A fresh, migrated database on the file's server. */
async function freshDatabase(): Promise<string> {
  server ??= startPostgres({ fsync: false });
  const url = await (await server).createDatabase(`triggers_${++databases}`);
  const pool = openPool(url, { max: 2 });
  try {
    await migratePg(pool, pgTriggerMigrations);
  } finally {
    await pool.end();
  }
  return url;
}

triggerStoreContract('postgres', async (opts) => {
  const url = await freshDatabase();
  const pool = openPool(url);
  const peerPool = openPool(url, { max: 2 });
  const store = new PgTriggerStore(pool, opts);
  return {
    store,
    peer: new PgTriggerStore(peerPool),
    async close() {
      await store.close();
      await Promise.all([pool.end(), peerPool.end()]);
    },
  };
});

const trigger = (id: string): Trigger => ({
  id,
  name: id.replace('_', '-'),
  description: '',
  filter: { events: ['IN_CLOSE_WRITE'], path: '/', recursive: true, directories: false },
  target: { function: 'echo' },
  params: {},
  delivery: { maxAttempts: 5, backoffSeconds: 1, maxBackoffSeconds: 300, concurrency: 64, ordered: false },
  enabled: true,
  owner: 'alice',
  scopes: ['storage.read:/'],
  position: 0,
  created: new Date().toISOString(),
});

const delivery = (trigger: string, event: number, over: Partial<Delivery> = {}): Delivery => ({
  trigger,
  event,
  path: `/f${event}`,
  status: 'pending',
  attempts: 0,
  notBefore: 0,
  updated: Date.now(),
  ...over,
});

test('postgres: nodes advancing one trigger at once record each delivery once and keep the furthest position', async () => {
  const url = await freshDatabase();
  const pools: PgPool[] = Array.from({ length: 4 }, () => openPool(url, { max: 4 }));
  try {
    const stores = pools.map((p) => new PgTriggerStore(p));
    await stores[0]!.create(trigger('trg_shared'));
    // Overlapping reads of the log: event e is matched by every read that covers it.
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const upTo = (i + 1) * 10;
        const events = Array.from({ length: 30 }, (_, k) => upTo - k).filter((e) => e > 0);
        return stores[i % stores.length]!.advance(
          'trg_shared',
          upTo,
          events.map((e) => ({ event: e, path: `/f${e}` })),
        );
      }),
    );
    assert.equal((await stores[1]!.get('trg_shared'))!.position, 400);
    const open = await stores[2]!.open('trg_shared');
    assert.deepEqual(
      open.map((d) => d.event),
      Array.from({ length: 400 }, (_, i) => i + 1),
    );
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test('postgres: delivery updates buffered while the database is away are written once it is back', async () => {
  // A server of its own: this one is killed.
  const pgServer = await startPostgres({ fsync: false });
  const url = await pgServer.createDatabase('outage');
  const pool = openPool(url, { max: 4 });
  const peerPool = openPool(url, { max: 1 });
  const warnings: unknown[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
  const store = new PgTriggerStore(pool, { log });
  try {
    await migratePg(pool, pgTriggerMigrations);
    await store.create(trigger('trg_outage'));
    await store.advance(
      'trg_outage',
      10,
      [1, 2, 3].map((e) => ({ event: e, path: `/f${e}` })),
    );

    await pgServer.kill();
    await store.update(delivery('trg_outage', 1, { status: 'succeeded', attempts: 1, activation: 'act_1' }));
    await store.update(delivery('trg_outage', 2, { status: 'running', attempts: 1 }));
    await assert.rejects(store.updateNow(delivery('trg_outage', 3, { status: 'running', attempts: 1, activation: 'act_3' })), {
      code: 'UNAVAILABLE',
    });
    await assert.rejects(store.open('trg_outage'), { code: 'UNAVAILABLE' });
    // A newer state given during the outage replaces the one waiting, never the other way round.
    await store.update(delivery('trg_outage', 2, { status: 'dead', attempts: 5, lastError: 'gave up' }));
    await sleep(500);
    assert.ok(warnings.length > 0, 'the failed batch is reported');

    await pgServer.restart();
    const peer = new PgTriggerStore(peerPool);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const counts = await peer.counts('trg_outage').catch(() => undefined);
      if (counts?.succeeded === 1 && counts.dead === 1) break;
      assert.ok(Date.now() < deadline, `the buffered updates were not written: ${JSON.stringify(counts)}`);
      await sleep(100);
    }
    assert.deepEqual(
      (await peer.open('trg_outage')).map((d) => [d.event, d.status, d.activation]),
      [[3, 'running', 'act_3']],
      'the update refused to its caller was kept all the same',
    );
    assert.deepEqual(
      (await peer.deadLetters('trg_outage', 10)).map((d) => [d.event, d.lastError]),
      [[2, 'gave up']],
    );
  } finally {
    await store.close().catch(() => undefined);
    await Promise.all([pool.end(), peerPool.end()]);
    await pgServer.stop();
  }
});
