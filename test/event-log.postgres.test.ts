// The PostgreSQL event log beyond the namespace contract: ids dense and visible in commit order
// under many concurrent writers, wake-ups across nodes (LISTEN/NOTIFY, also after the listening
// connection is lost), positions, pruning, and a server crash losing no acknowledged commit.
// The server runs with fsync on: the crash test needs it, and the commit rate measured is real.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type RunningPostgres } from './support/postgres.js';
import { openPgNamespace, type PgNamespace } from '../src/backends/postgres/namespace-store.js';
import { normalizePath as P } from '../src/storage/paths.js';
import type { NewFile } from '../src/storage/namespace-store.js';
import type { StorageEvent } from '../src/events/types.js';

let server: Promise<RunningPostgres> | undefined;
let databases = 0;
after(async () => (await server)?.stop());

async function freshDatabase(): Promise<string> {
  server ??= startPostgres();
  return (await server).createDatabase(`events_${++databases}`);
}

const file = (path: string, location = path): NewFile => ({
  path: P(path),
  owner: 'alice',
  mode: 0o644,
  size: 3,
  checksums: { adler32: '024d0127' },
  contentType: undefined,
  replica: { se: 'local', location },
});

/** Resolves with the first head at least `atLeast` that listener sees, or rejects after ms. */
function woken(ns: PgNamespace, atLeast: number, ms = 5_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no wake-up with head >= ${atLeast} within ${ms} ms`));
    }, ms);
    const off = ns.log.onAppend((head) => {
      if (head < atLeast) return;
      clearTimeout(timer);
      off();
      resolve(head);
    });
  });
}

test('postgres event log: concurrent writers; a polling reader sees every id once, in order, with no gap', async (t) => {
  const WRITERS = 20;
  const url = await freshDatabase();
  const ns = await openPgNamespace(url, { poolSize: WRITERS + 4 });
  try {
    for (let w = 0; w < WRITERS; w++) await ns.store.mkdir(P(`/w${w}`), 'alice', 0o755);
    const start = await ns.log.head();
    let stop = false;
    let commits = 0;
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        // New files and overwrites: 5 and 4 events per commit.
        await ns.store.commitFile(file(`/w${w}/f${i % 50}`, `w${w}-${i}`));
        commits++;
      }
    });
    let writersDone = false;
    let position = start;
    let reads = 0;
    const reader = (async () => {
      for (;;) {
        const done = writersDone;
        const batch: StorageEvent[] = await ns.log.read(position, 500);
        reads++;
        for (const e of batch) {
          // Exactly the next id: a gap here is an id the reader would never come back for.
          assert.equal(e.id, position + 1, `after ${position} the reader saw ${e.id}`);
          position = e.id;
        }
        if (done && batch.length === 0) return;
      }
    })();
    const began = performance.now();
    await new Promise((r) => setTimeout(r, 3_000));
    stop = true;
    await Promise.all(writers);
    writersDone = true;
    const seconds = (performance.now() - began) / 1000;
    await reader;
    const head = await ns.log.head();
    assert.equal(position, head, 'the reader reached the head');
    assert.ok(commits > WRITERS, `${commits} commits`);
    const count = await ns.pool.query<{ n: number }>('SELECT COUNT(*)::bigint AS n FROM events WHERE id > $1', [start]);
    assert.equal(count.rows[0]!.n, head - start, 'ids are dense');
    t.diagnostic(
      `${WRITERS} writers: ${commits} commits (${Math.round(commits / seconds)}/s, ${Math.round((head - start) / seconds)} events/s, fsync on); reader polled ${reads} times`,
    );
  } finally {
    await ns.close();
  }
});

test('postgres event log: a commit on one node wakes the consumers of another, after commit', async () => {
  const url = await freshDatabase();
  const a = await openPgNamespace(url);
  const b = await openPgNamespace(url);
  try {
    const seenByB = woken(b, 1);
    await a.store.mkdir(P('/from-a'), 'alice', 0o755);
    const head = await seenByB;
    assert.equal(head, await a.log.head());
    // Woken only after the commit: the event is readable when the listener runs.
    assert.deepEqual(
      (await b.log.read(head - 1, 10)).map((e) => `${e.type} ${e.path}`),
      ['IN_CREATE /from-a'],
    );
    const seenByA = woken(a, head + 1);
    await b.store.commitFile(file('/from-b'));
    assert.equal(await seenByA, await b.log.head());
    // A rolled-back change wakes no one.
    const calls: number[] = [];
    const off = a.log.onAppend((h) => calls.push(h));
    await assert.rejects(b.store.mkdir(P('/from-a'), 'alice', 0o755), { code: 'EXISTS' });
    await new Promise((r) => setTimeout(r, 200));
    off();
    assert.deepEqual(calls, []);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('postgres event log: a lost listening connection is reopened, and consumers are woken with the head', async () => {
  const url = await freshDatabase();
  const a = await openPgNamespace(url);
  const b = await openPgNamespace(url);
  try {
    await b.store.mkdir(P('/before'), 'alice', 0o755);
    const head = await a.log.head();
    // Drop every LISTENing connection: no commit happens, yet consumers must hear the current head.
    const wake = woken(a, head);
    await b.pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()");
    assert.equal(await wake, head);
    // And the new connection listens again: a commit on another node reaches it.
    await new Promise((r) => setTimeout(r, 100));
    const next = woken(a, head + 1);
    await b.store.mkdir(P('/after'), 'alice', 0o755);
    assert.equal(await next, await b.log.head());
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('postgres event log: positions never move back; prune drops by time and keeps the head', async () => {
  const ns = await openPgNamespace(await freshDatabase());
  try {
    const { log, store } = ns;
    assert.equal(await log.head(), 0);
    assert.equal(await log.oldest(), 1, 'empty log: head + 1');
    assert.equal(await log.position('indexer'), 0);
    await log.savePosition('indexer', 7);
    await log.savePosition('indexer', 3);
    assert.equal(await log.position('indexer'), 7);
    await log.savePosition('indexer', 9);
    assert.equal(await log.position('indexer'), 9);
    assert.equal(await log.position('other'), 0);

    await store.mkdir(P('/old'), 'alice', 0o755);
    await new Promise((r) => setTimeout(r, 20));
    const cut = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    await store.commitFile(file('/new'));
    const head = await log.head();
    assert.equal(head, 6);
    assert.equal(await log.prune(cut), 1);
    assert.equal(await log.oldest(), 2);
    assert.deepEqual(
      (await log.read(0, 10)).map((e) => e.id),
      [2, 3, 4, 5, 6],
    );
    assert.equal(await log.prune(Date.now() + 1), 5);
    assert.equal(await log.head(), head, 'the head survives pruning');
    assert.equal(await log.oldest(), head + 1);
    await store.mkdir(P('/next'), 'alice', 0o755);
    assert.deepEqual(
      (await log.read(0, 10)).map((e) => e.id),
      [head + 1],
      'ids are never reused',
    );
  } finally {
    await ns.close();
  }
});

test('postgres event log: event fields round-trip (cookie, data, directories)', async () => {
  const ns = await openPgNamespace(await freshDatabase());
  try {
    await ns.store.mkdir(P('/a'), 'alice', 0o755);
    const head = await ns.log.head();
    await ns.store.move(P('/a'), P('/b'), { overwrite: false });
    const [from, to] = await ns.log.read(head, 10);
    assert.equal(from?.type, 'IN_MOVED_FROM');
    assert.equal(from?.isDir, true);
    assert.ok(from?.cookie && from.cookie === to?.cookie);
    assert.deepEqual(to?.data, { fileId: (await ns.store.get(P('/b')))!.fileId, from: '/a' });
    assert.ok(Math.abs(from.time - Date.now()) < 5_000);
  } finally {
    await ns.close();
  }
});

test('postgres event log: a server crash loses no acknowledged commit; queries fail meanwhile and the pool recovers', async () => {
  const running = await (server ??= startPostgres());
  const url = await freshDatabase();
  const a = await openPgNamespace(url);
  const b = await openPgNamespace(url);
  try {
    // Writers keep committing while the server is killed (immediate mode: no shutdown checkpoint).
    const acknowledged: string[] = [];
    const failures: unknown[] = [];
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; ; i++) {
        const path = `/f${w}-${i}`;
        try {
          await a.store.commitFile(file(path));
        } catch (e) {
          failures.push(e);
          return;
        }
        acknowledged.push(path);
      }
    });
    while (acknowledged.length < 40) await new Promise((r) => setTimeout(r, 5));
    await running.kill();
    await Promise.all(writers);
    for (const e of failures) assert.equal((e as { code?: string }).code, 'UNAVAILABLE', String(e));
    // While the server is down, calls fail promptly instead of hanging.
    const began = Date.now();
    await assert.rejects(a.store.get(P('/f0-0')), { code: 'UNAVAILABLE' });
    await assert.rejects(a.store.mkdir(P('/down'), 'alice', 0o755), { code: 'UNAVAILABLE' });
    await assert.rejects(a.log.read(0, 1), { code: 'UNAVAILABLE' });
    assert.ok(Date.now() - began < 5_000);
    await running.restart();

    for (const path of acknowledged) assert.ok(await a.store.get(P(path)), `${path} survived the crash`);
    // A file is there with its events or not at all (a commit cut by the crash may have made it).
    const files = (await a.store.children(P('/'))).map((e) => e.path);
    const closes = (await a.log.read(0, 10_000)).filter((e) => e.type === 'IN_CLOSE_WRITE').map((e) => e.path);
    assert.deepEqual(closes.sort(), files.sort());
    assert.ok(files.length >= acknowledged.length);
    // Both nodes listen again: a commit on one wakes the other.
    const head = await a.log.head();
    const wake = woken(b, head + 1, 10_000);
    await a.store.mkdir(P('/after-restart'), 'alice', 0o755);
    assert.equal(await wake, head + 1);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
