// Runs the placement store contract against the PostgreSQL adapter (one server for the file, a fresh
// database per test), with the namespace store and the event log on the same database, as a
// scale-out node builds them; then checks what only a shared database brings: replica changes of
// several nodes racing each other and the namespace, and transfers claimed by several nodes at once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { placementStoreContract } from './contract/placement-store.contract.js';
import { startPostgres, type RunningPostgres } from './support/postgres.js';
import { migratePg, openPool, type PgPool } from '../src/backends/postgres/database.js';
import { PgEventLog } from '../src/backends/postgres/event-log.js';
import { PgNamespaceStore } from '../src/backends/postgres/namespace-store.js';
import { PgPlacementStore } from '../src/backends/postgres/placement-store.js';
import { pgPlacementMigrations } from '../src/backends/postgres/placement-tables.js';
import { pgEventLogMigrations, pgStorageMigrations } from '../src/backends/postgres/tables.js';
import { normalizePath as P } from '../src/storage/paths.js';
import type { FileRef } from '../src/placement/placement-store.js';

let server: Promise<RunningPostgres> | undefined;
let databases = 0;
after(async () => (await server)?.stop());

async function freshDatabase(): Promise<string> {
  server ??= startPostgres({ fsync: false });
  return (await server).createDatabase(`placement_${++databases}`);
}

interface Node {
  pool: PgPool;
  log: PgEventLog;
  namespace: PgNamespaceStore;
  store: PgPlacementStore;
  close(): Promise<void>;
}

/** One node on the database: pool, event log, namespace and placement store. */
async function node(url: string): Promise<Node> {
  const pool = openPool(url);
  // One call for every domain: 'placement' sorts before 'storage', whose ns_entries it references;
  // migratePg applies domains in the order given.
  await migratePg(pool, [...pgStorageMigrations, ...pgEventLogMigrations, ...pgPlacementMigrations]);
  const log = await PgEventLog.open(pool);
  const namespace = await PgNamespaceStore.open(pool, log);
  return {
    pool,
    log,
    namespace,
    store: new PgPlacementStore(pool, log),
    async close() {
      await log.close();
      await pool.end();
    },
  };
}

placementStoreContract('postgres', async () => node(await freshDatabase()));

const location = () => randomBytes(16).toString('hex');

async function file(n: Node, path: string): Promise<FileRef> {
  await n.namespace.commitFile({
    path: P(path),
    owner: 'alice',
    mode: 0o644,
    size: 3,
    checksums: { adler32: '024d0127' },
    contentType: undefined,
    replica: { se: 'local', location: location() },
  });
  return (await n.store.fileByPath(path))!;
}

async function nodes(count: number): Promise<Node[]> {
  const url = await freshDatabase();
  const opened: Node[] = [];
  for (let i = 0; i < count; i++) opened.push(await node(url));
  return opened;
}

const closeAll = (ns: Node[]) => Promise.all(ns.map((n) => n.close()));

test('postgres: a replica committed while another node overwrites the file is either stale or released by the overwrite', async (t) => {
  const [a, b] = (await nodes(2)) as [Node, Node];
  try {
    let stale = 0;
    for (let i = 0; i < 30; i++) {
      const f = await file(a, `/f${i}`);
      await a.store.beginReplica(f.entryId, 'disk2');
      const loc = location();
      const head = await a.log.head();
      const [committed, overwrite] = await Promise.all([
        a.store.commitReplica(f.entryId, f.entry.etag, { se: 'disk2', location: loc, state: 'AVAILABLE', online: true }, {}),
        b.namespace.commitFile({
          path: P(`/f${i}`),
          owner: 'alice',
          mode: 0o644,
          size: 5,
          checksums: {},
          contentType: undefined,
          replica: { se: 'local', location: location() },
        }),
      ]);
      const replicas = await a.store.replicasOf(f.entryId);
      assert.deepEqual(
        replicas.map((r) => r.se),
        ['local'],
        'no copy of the old content is left as a replica of the new one',
      );
      const available = (await a.log.read(head, 100)).filter((e) => e.type === 'REPLICA_AVAILABLE');
      if (committed === 'stale') {
        stale++;
        assert.equal(available.length, 0);
      } else {
        assert.ok(
          overwrite.released.some((r) => r.location === loc),
          'committed first: the overwrite released its bytes',
        );
        assert.equal(available.length, 1);
      }
    }
    t.diagnostic(`${stale} of 30 commits came after the overwrite (stale)`);
  } finally {
    await closeAll([a, b]);
  }
});

test('postgres: nodes marking one replica bad at once send one REPLICA_BAD', async () => {
  const ns = await nodes(4);
  try {
    const f = await file(ns[0]!, '/bad');
    const head = await ns[0]!.log.head();
    await Promise.all(
      ns.flatMap((n) => [
        n.store.markReplicaBad(f.entryId, 'local', 'checksum mismatch'),
        n.store.markReplicaBad(f.entryId, 'local', 'checksum mismatch'),
      ]),
    );
    const events = await ns[0]!.log.read(head, 100);
    assert.deepEqual(
      events.map((e) => e.type),
      ['REPLICA_BAD'],
    );
    assert.equal((await ns[1]!.store.replicasOf(f.entryId))[0]!.state, 'BAD');
  } finally {
    await closeAll(ns);
  }
});

test('postgres: claimDueTransfers gives each due transfer to one node, best first', async () => {
  const ns = await nodes(4);
  try {
    const f = await file(ns[0]!, '/queued');
    const t0 = Date.now();
    const inserted = [];
    for (let i = 0; i < 60; i++) {
      inserted.push(
        await ns[0]!.store.insertTransfer({
          id: randomUUID(),
          file: f,
          source: undefined,
          destination: `se-${i}`,
          priority: i % 5,
          activity: 'User Subscriptions',
          ruleId: undefined,
          maxAttempts: 3,
        }),
      );
    }
    const later = inserted[0]!;
    await ns[0]!.store.updateTransfer(later.id, { nextAttempt: t0 + 3_600_000 });
    const done = inserted[1]!;
    await ns[0]!.store.updateTransfer(done.id, { state: 'DONE' });
    const now = Date.now();

    const first = await ns[0]!.store.claimDueTransfers(now, 5);
    const expected = (await ns[1]!.store.dueTransfers(now, 100)).map((t) => t.id);
    assert.equal(first.length, 5);
    assert.ok(first.every((t) => t.state === 'ACTIVE' && t.entryId === f.entryId));
    assert.ok(
      first.every((t, i) => i === 0 || first[i - 1]!.priority >= t.priority),
      'best first',
    );
    assert.ok(first[0]!.priority === 4);

    // The rest, claimed by every node at once, a few at a time.
    const claimed = new Map<string, number>(first.map((t) => [t.id, 0]));
    await Promise.all(
      ns.map(async (n, i) => {
        for (;;) {
          const got = await n.store.claimDueTransfers(now, 3);
          if (got.length === 0) return;
          for (const t of got) {
            assert.ok(!claimed.has(t.id), `${t.id} claimed twice`);
            claimed.set(t.id, i);
          }
        }
      }),
    );
    assert.equal(claimed.size, 58, 'every due transfer, not the later or the finished one');
    assert.equal(expected.length, 53);
    assert.ok(!claimed.has(later.id) && !claimed.has(done.id));
    assert.deepEqual(await ns[2]!.store.dueTransfers(now, 100), []);
    assert.equal((await ns[3]!.store.listTransfers({ state: 'ACTIVE', limit: 100, offset: 0 })).length, 58);
  } finally {
    await closeAll(ns);
  }
});

test('postgres: a database that cannot be reached is UNAVAILABLE', async () => {
  const pool = openPool('postgres://sluice@127.0.0.1:1/none', { max: 1 });
  try {
    const store = new PgPlacementStore(pool, undefined as unknown as PgEventLog);
    await assert.rejects(store.listSes(), { code: 'UNAVAILABLE' });
    await assert.rejects(store.dueTransfers(Date.now(), 10), { code: 'UNAVAILABLE' });
    await assert.rejects(store.markReplicaBad(1, 'disk2', 'x'), { code: 'UNAVAILABLE' });
  } finally {
    await pool.end();
  }
});
