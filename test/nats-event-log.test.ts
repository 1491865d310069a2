// The event log on NATS JetStream, against a real PostgreSQL (the outbox) and a real nats-server
// on loopback: the relay copies every committed event into the stream exactly once and in order,
// through relay failover and crashes of PostgreSQL and NATS, and consumers on another "node" are
// woken and read them back. Prints the relay's throughput and the append → wake-up latency.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { migratePg, openPool } from '../src/backends/postgres/database.js';
import type { PgPool } from '../src/backends/postgres/database.js';
import { PgEventLog, transactWithEvents } from '../src/backends/postgres/event-log.js';
import { PgNamespaceStore } from '../src/backends/postgres/namespace-store.js';
import { pgEventLogMigrations, pgStorageMigrations } from '../src/backends/postgres/tables.js';
import { normalizePath } from '../src/storage/paths.js';
import { connectNats } from '../src/backends/nats/connection.js';
import { EVENT_STREAM, EVENT_SUBJECT, NatsEventLog, eventIdOf, natsEventLogMigrations } from '../src/backends/nats/event-log.js';
import { EventRelay, RELAY_LOCK } from '../src/backends/nats/event-relay.js';
import type { NewStorageEvent, StorageEvent } from '../src/events/types.js';
import { startNats, type RunningNats } from './support/nats.js';
import { startPostgres, type RunningPostgres } from './support/postgres.js';

const RETENTION_MS = 24 * 3600_000;

let pgServer: RunningPostgres;
let natsServer: RunningNats;
let dbCount = 0;
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  [pgServer, natsServer] = await Promise.all([startPostgres({ fsync: false }), startNats()]);
});

// Nodes left running by a failed test would go on relaying into the next test's stream.
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

after(async () => {
  await Promise.all([pgServer?.stop(), natsServer?.stop()]);
});

/** One "node": its own pool, outbox log and NATS connection, on a database shared by the test. */
interface Node {
  pool: PgPool;
  outbox: PgEventLog;
  nc: NatsConnection;
  relay: EventRelay;
  log: NatsEventLog;
  close(): Promise<void>;
}

async function freshDatabase(): Promise<string> {
  const url = await pgServer.createDatabase(`relay${++dbCount}`);
  const pool = openPool(url, { max: 2 });
  await migratePg(pool, [...pgStorageMigrations, ...pgEventLogMigrations, ...natsEventLogMigrations]);
  await pool.end();
  // Each test starts from a stream that does not exist (only one stream may own the subject).
  const nc = await connectNats({ servers: natsServer.url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(EVENT_STREAM).catch(() => undefined);
  await nc.close();
  return url;
}

async function startNode(url: string, opts: { relay?: Partial<ConstructorParameters<typeof EventRelay>[0]> } = {}): Promise<Node> {
  const pool = openPool(url, { max: 4 });
  const outbox = await PgEventLog.open(pool);
  const nc = await connectNats({ servers: natsServer.url, reconnectWaitMs: 100 });
  const relay = new EventRelay({ nc, pool, outbox, retentionMs: RETENTION_MS, retryMs: 250, pollMs: 500, ...opts.relay });
  const log = await NatsEventLog.open({ nc, pool, positions: outbox });
  let closed = false;
  const node: Node = {
    pool,
    outbox,
    nc,
    relay,
    log,
    async close() {
      if (closed) return;
      closed = true;
      await relay.stop();
      await log.close();
      await outbox.close();
      await nc.close().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
  cleanups.push(() => node.close());
  return node;
}

let seq = 0;
function sampleEvents(n: number): NewStorageEvent[] {
  const events: NewStorageEvent[] = [];
  for (let i = 0; i < n; i++) {
    const k = ++seq;
    events.push(
      k % 3 === 0
        ? { type: 'IN_MOVED_TO', path: `/beamtime/raw/scan_${k}.nxs`, isDir: false, cookie: `c${k}`, data: { from: `/tmp/${k}` } }
        : { type: 'IN_CLOSE_WRITE', path: `/beamtime/raw/scan_${k}.nxs`, isDir: false, data: { size: k, adler32: 'deadbeef' } },
    );
  }
  return events;
}

/** Appends through the outbox: `txs` transactions of `perTx` events each, `parallel` at a time. */
async function append(node: Node, txs: number, perTx = 1, parallel = 4): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < txs) {
      next++;
      await transactWithEvents(node.pool, node.outbox, async (_c, events) => {
        events.push(...sampleEvents(perTx));
      });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return node.outbox.head();
}

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every event id in the stream, in sequence order (direct gets over first..last seq). */
async function streamIds(jsm: JetStreamManager): Promise<number[]> {
  const { state } = await jsm.streams.info(EVENT_STREAM);
  const ids: number[] = [];
  for (let s = state.first_seq; s <= state.last_seq; s += 256) {
    const gets = [];
    for (let q = s; q <= Math.min(state.last_seq, s + 255); q++) gets.push(jsm.direct.getMessage(EVENT_STREAM, { seq: q }));
    for (const m of await Promise.all(gets)) if (m) ids.push(eventIdOf(m.header, m.seq));
  }
  return ids;
}

/** The id of the stream's last message, 0 when there is none (or no stream: a direct get to a
 * missing stream is never answered, so look it up first). */
async function streamLastId(jsm: JetStreamManager): Promise<number> {
  try {
    const { state } = await jsm.streams.info(EVENT_STREAM);
    if (state.messages === 0) return 0;
    const m = await jsm.direct.getMessage(EVENT_STREAM, { last_by_subj: EVENT_SUBJECT });
    return m ? eventIdOf(m.header, m.seq) : 0;
  } catch {
    return 0;
  }
}

function assertExactlyOnce(ids: number[], n: number): void {
  assert.equal(ids.length, n, `the stream holds ${ids.length} messages for ${n} events`);
  for (let i = 0; i < n; i++) if (ids[i] !== i + 1) assert.fail(`stream message ${i + 1} holds event ${ids[i]}`);
}

async function readAll(log: NatsEventLog, after = 0, limit = 1000): Promise<StorageEvent[]> {
  const out: StorageEvent[] = [];
  for (;;) {
    const batch = await log.read(after, limit);
    if (batch.length === 0) return out;
    out.push(...batch);
    after = batch.at(-1)!.id;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

test('relayed events read back from the stream exactly as the outbox holds them', async () => {
  const url = await freshDatabase();
  const node = await startNode(url);
  assert.equal(await node.log.head(), 0);
  assert.equal(await node.log.oldest(), 1);
  assert.deepEqual(await node.log.read(0, 10), []);

  // Throughput: events already in the outbox when the relay starts.
  const n = 20_000;
  await append(node, n / 100, 100);
  const t0 = performance.now();
  node.relay.start();
  const jsm = await jetstreamManager(node.nc);
  await until('the relay to catch up', async () => (await streamLastId(jsm)) === n, 60_000);
  const seconds = (performance.now() - t0) / 1000;
  console.log(`# relay throughput: ${n} events outbox → stream in ${seconds.toFixed(2)} s = ${Math.round(n / seconds)} events/s`);

  // Namespace changes through the PostgreSQL namespace store come out of the stream as well.
  const store = await PgNamespaceStore.open(node.pool, node.outbox);
  await store.mkdir(normalizePath('/beamtime'), 'alice', 0o755);
  await store.mkdir(normalizePath('/beamtime/11012345'), 'alice', 0o755);
  const head = await node.outbox.head();
  assert.ok(head > n);
  await until('the namespace events relayed', async () => (await streamLastId(jsm)) === head);
  const created = await node.log.read(n, 10);
  assert.deepEqual(created, await node.outbox.read(n, 10));
  assert.ok(created.some((e) => e.type === 'IN_CREATE' && e.path === '/beamtime/11012345' && e.isDir));

  const expected = await node.outbox.read(0, head);
  const t1 = performance.now();
  const got = await readAll(node.log);
  const readSeconds = (performance.now() - t1) / 1000;
  assert.deepEqual(got, expected);
  console.log(`# NatsEventLog.read (direct gets, limit 1000): ${Math.round(head / readSeconds)} events/s`);
  assert.equal(await node.log.head(), head);
  assert.equal(await node.log.oldest(), 1);
  assert.deepEqual(await node.log.read(head, 10), []);
  assert.deepEqual(
    (await node.log.read(4_999, 3)).map((e) => e.id),
    [5_000, 5_001, 5_002],
  );
  assertExactlyOnce(await streamIds(jsm), head);

  // Positions live in the PostgreSQL event log's table and never move back.
  await node.log.savePosition('indexer', 50);
  await node.log.savePosition('indexer', 40);
  assert.equal(await node.log.position('indexer'), 50);
  assert.equal(await node.outbox.position('indexer'), 50);
  assert.equal(await node.log.prune(Date.now()), 0);
  await node.close();
});

test('two relays: one publishes; when its connection is killed the other takes over without a gap', async () => {
  const url = await freshDatabase();
  const a = await startNode(url);
  const b = await startNode(url);
  a.relay.start();
  await until('a to lead', () => a.relay.isLeader);
  b.relay.start();
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(b.relay.isLeader, false);

  const jsm = await jetstreamManager(a.nc);
  // Appends keep coming from both nodes while the leader's connection is killed.
  const appending = Promise.all([append(a, 300, 2, 2), append(b, 300, 2, 2)]);
  await until('some events relayed', async () => (await streamLastId(jsm)) >= 200);
  const admin = openPool(url, { max: 1 });
  const { rows } = await admin.query<{ pid: number }>(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = $1 AND granted",
    [RELAY_LOCK],
  );
  assert.equal(rows.length, 1);
  const killedAt = performance.now();
  await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
  await until('b to lead', () => b.relay.isLeader, 10_000);
  console.log(`# failover: the second relay led ${Math.round(performance.now() - killedAt)} ms after the leader's connection was killed`);
  await appending;
  const n = await a.outbox.head();
  assert.equal(n, 1200);
  await until('everything relayed', async () => (await streamLastId(jsm)) === n);
  assertExactlyOnce(await streamIds(jsm), n);

  // The old leader reconnected and competes again, but stays a follower.
  assert.equal(a.relay.isLeader, false);
  // Stopping the leader hands over too (its session ends, and with it the lock).
  await b.relay.stop();
  await until('a to lead again', () => a.relay.isLeader, 10_000);
  await append(b, 10);
  await until('the last events relayed', async () => (await streamLastId(jsm)) === n + 10);
  assertExactlyOnce(await streamIds(jsm), n + 10);
  await admin.end();
  await a.close();
  await b.close();
});

test('split brain: two relays leading at once (two outboxes with the same ids) still store each id once, in order', async () => {
  // Each database has its own advisory lock, so both relays lead and publish into the one stream
  // at the same time: the expected-last-sequence check and the msg-id dedup alone keep it right.
  const one = await startNode(await freshDatabase());
  const two = await startNode(await freshDatabase());
  one.relay.start();
  two.relay.start();
  await until('both to lead', () => one.relay.isLeader && two.relay.isLeader);
  await Promise.all([append(one, 300, 3, 3), append(two, 300, 3, 3)]);
  const n = 900;
  const jsm = await jetstreamManager(one.nc);
  await until('everything relayed', async () => (await streamLastId(jsm)) === n);
  assertExactlyOnce(await streamIds(jsm), n);
  console.log(`# split brain: relay one stored ${one.relay.relayed}, relay two ${two.relay.relayed} of ${n}`);
  assert.equal(one.relay.relayed + two.relay.relayed, n);
});

test('nats-server killed mid-stream: after its restart the stream holds every event exactly once', async () => {
  const url = await freshDatabase();
  const node = await startNode(url, { relay: { ackTimeoutMs: 1000 } });
  node.relay.start();
  const jsm = await jetstreamManager(node.nc);
  const appending = append(node, 2000, 1, 4);
  await until('some events relayed', async () => (await streamLastId(jsm)) >= 300);
  let wakeups = 0;
  node.log.onAppend(() => wakeups++);
  await natsServer.kill();
  wakeups = 0;
  await new Promise((r) => setTimeout(r, 500));
  await natsServer.restart();
  const n = await appending;
  assert.equal(n, 2000);
  await until('everything relayed after the restart', async () => (await streamLastId(jsm)) === n, 30_000);
  assertExactlyOnce(await streamIds(jsm), n);
  assert.deepEqual(await readAll(node.log), await node.outbox.read(0, n));
  assert.ok(wakeups > 0, 'consumers are woken after the reconnect');
  await node.close();
});

test('a consumer on another node is woken by onAppend and reads everything', async () => {
  const url = await freshDatabase();
  const writer = await startNode(url);
  const reader = await startNode(url);
  writer.relay.start();
  reader.relay.start();

  // A consumer as the indexer or judge runs it: read from its position when woken, save it.
  let position = await reader.log.position('judge');
  const seen: number[] = [];
  let draining = false;
  let again = false;
  const drain = async () => {
    if (draining) {
      again = true;
      return;
    }
    draining = true;
    do {
      again = false;
      for (;;) {
        const events = await reader.log.read(position, 100);
        if (events.length === 0) break;
        seen.push(...events.map((e) => e.id));
        position = events.at(-1)!.id;
        await reader.log.savePosition('judge', position);
      }
    } while (again);
    draining = false;
  };
  const wakeups: number[] = [];
  const off = reader.log.onAppend((head) => {
    wakeups.push(head);
    void drain();
  });

  // Latency: one event at a time, append → onAppend on the other node.
  const latencies: number[] = [];
  const commits: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    const woken = new Promise<number>((resolve) => {
      const offOnce = reader.log.onAppend(() => {
        offOnce();
        resolve(performance.now());
      });
    });
    await transactWithEvents(writer.pool, writer.outbox, async (_c, events) => {
      events.push(...sampleEvents(1));
    });
    commits.push(performance.now() - t0);
    latencies.push((await woken) - t0);
  }
  const ms = (xs: number[], p: number) =>
    percentile(
      [...xs].sort((x, y) => x - y),
      p,
    ).toFixed(2);
  console.log(
    `# append → onAppend on another node: p50 ${ms(latencies, 50)} ms, p99 ${ms(latencies, 99)} ms; of which the commit: p50 ${ms(commits, 50)} ms, p99 ${ms(commits, 99)} ms (${latencies.length} single-event commits)`,
  );

  await append(writer, 500, 3, 4);
  const n = await writer.outbox.head();
  await until('the consumer to have read everything', () => position === n);
  assert.deepEqual(
    seen,
    Array.from({ length: n }, (_, i) => i + 1),
  );
  assert.equal(await reader.log.position('judge'), n);
  assert.ok(wakeups.length < n, `wake-ups are coalesced (${wakeups.length} for ${n} events)`);
  off();
  await writer.close();
  await reader.close();
});

test('PostgreSQL killed and restarted: the relay resumes', async () => {
  const url = await freshDatabase();
  const node = await startNode(url);
  node.relay.start();
  const jsm = await jetstreamManager(node.nc);
  await append(node, 100);
  await until('the first events relayed', async () => (await streamLastId(jsm)) === 100);
  await pgServer.kill();
  await until('the relay to notice', () => !node.relay.isLeader, 10_000);
  await pgServer.restart();
  await until('the relay to lead again', () => node.relay.isLeader, 15_000);
  let n = 0;
  await until('appends to work again', async () => {
    try {
      await append(node, 100, 1, 1);
      n = await node.outbox.head();
      return true;
    } catch {
      return false;
    }
  });
  await until('the new events relayed', async () => (await streamLastId(jsm)) === n);
  assertExactlyOnce(await streamIds(jsm), n);
  await node.close();
});

test('ids apart from sequences: a stream made over a pruned outbox, and events lost before they were relayed', async () => {
  const url = await freshDatabase();
  const node = await startNode(url);
  await append(node, 10);
  // The outbox lost 1..5 before any relay ran (as if pruned): the stream starts at id 6, seq 1.
  await node.pool.query('DELETE FROM events WHERE id <= 5');
  node.relay.start();
  const jsm = await jetstreamManager(node.nc);
  await until('6..10 relayed', async () => (await streamLastId(jsm)) === 10);
  assert.deepEqual(await streamIds(jsm), [6, 7, 8, 9, 10]);
  assert.deepEqual(
    (await readAll(node.log)).map((e) => e.id),
    [6, 7, 8, 9, 10],
  );
  assert.deepEqual(
    (await node.log.read(7, 2)).map((e) => e.id),
    [8, 9],
  );
  assert.equal(await node.log.head(), 10);
  assert.equal(await node.log.oldest(), 6);

  // 11..15 vanish from the outbox before the relay takes them (a long NATS outage outlived the
  // retention): the relay says so and goes on with 16..20, which land at sequences 11..15.
  await node.relay.stop();
  await append(node, 5);
  await node.pool.query('DELETE FROM events WHERE id BETWEEN 11 AND 15');
  await append(node, 5);
  node.relay.start();
  await until('16..20 relayed', async () => (await streamLastId(jsm)) === 20);
  assert.deepEqual(await streamIds(jsm), [6, 7, 8, 9, 10, 16, 17, 18, 19, 20]);
  const expected = await node.outbox.read(0, 100);
  assert.deepEqual(await readAll(node.log), expected);
  assert.deepEqual(
    (await node.log.read(12, 3)).map((e) => e.id),
    [16, 17, 18],
  );
  assert.deepEqual(
    (await node.log.read(9, 3)).map((e) => e.id),
    [10, 16, 17],
  );
  assert.deepEqual(await node.log.read(20, 3), []);
  await node.close();
});

test('every message aged out: head and the relay carry on from the relay mark', async () => {
  const url = await freshDatabase();
  const node = await startNode(url, { relay: { retentionMs: 1500 } });
  node.relay.start();
  const jsm = await jetstreamManager(node.nc);
  await append(node, 5);
  await until('1..5 relayed', async () => (await streamLastId(jsm)) === 5);
  await until('the stream to age out', async () => (await jsm.streams.info(EVENT_STREAM)).state.messages === 0, 10_000);
  // The outbox still holds 1..5 (pruned on its own schedule), yet they are not relayed again.
  assert.equal(await node.log.head(), 5);
  assert.equal(await node.log.oldest(), 6);
  assert.deepEqual(await node.log.read(0, 10), []);
  await node.relay.stop();
  node.relay.start();
  await append(node, 3);
  await until('6..8 relayed', async () => (await streamLastId(jsm)) === 8);
  assert.deepEqual(await streamIds(jsm), [6, 7, 8]);
  assert.deepEqual(
    (await node.log.read(0, 10)).map((e) => e.id),
    [6, 7, 8],
  );
  await node.close();
});

test('reads: pipelined direct gets against an ordered consumer on this nats-server (timings printed)', async () => {
  const url = await freshDatabase();
  const node = await startNode(url);
  const n = 10_000;
  await append(node, n / 100, 100);
  node.relay.start();
  const jsm = await jetstreamManager(node.nc);
  await until('the relay to catch up', async () => (await streamLastId(jsm)) === n, 60_000);

  // The alternative NatsEventLog.read does not take: an ordered consumer from afterId + 1.
  const js = jetstream(node.nc);
  const orderedRead = async (afterId: number, limit: number): Promise<StorageEvent[]> => {
    const c = await js.consumers.get(EVENT_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterId + 1 });
    const out: StorageEvent[] = [];
    try {
      for await (const m of await c.fetch({ max_messages: limit, expires: 5_000 })) {
        out.push(m.json<StorageEvent>());
        if (out.length === limit || m.info.pending === 0) break;
      }
    } finally {
      await c.delete().catch(() => undefined);
    }
    return out;
  };
  const meanMs = async (read: (after: number, limit: number) => Promise<StorageEvent[]>, limit: number, rounds: number) => {
    let after = 0;
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) {
      const got = await read(after, limit);
      assert.equal(got.length, limit);
      assert.equal(got[0]!.id, after + 1);
      after = (after + limit) % (n - limit);
    }
    return (performance.now() - t0) / rounds;
  };
  for (const limit of [1, 10, 100, 1000, 2000]) {
    const rounds = Math.max(6, Math.min(200, 20_000 / limit));
    // Interleaved, so that a busy host slows both alike.
    let direct = 0;
    let ordered = 0;
    for (let r = 0; r < 2; r++) {
      direct += await meanMs((a, l) => node.log.read(a, l), limit, rounds / 2);
      ordered += await meanMs(orderedRead, limit, rounds / 2);
    }
    console.log(
      `# read of ${limit}: NatsEventLog (pipelined direct gets) ${(direct / 2).toFixed(2)} ms, ordered consumer ${(ordered / 2).toFixed(2)} ms`,
    );
  }
  await node.close();
});
