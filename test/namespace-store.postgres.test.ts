// Runs the namespace store contract against the PostgreSQL adapter (one server for the file, a
// fresh database per test), and checks what only a shared database has: writers on several nodes
// racing on one path or one tree, and a database whose default collation is not byte order.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { namespaceStoreContract } from './contract/namespace-store.contract.js';
import { startPostgres, type RunningPostgres } from './support/postgres.js';
import { openPgNamespace, type PgNamespace } from '../src/backends/postgres/namespace-store.js';
import { normalizePath as P } from '../src/storage/paths.js';
import type { NewFile } from '../src/storage/namespace-store.js';

let server: Promise<RunningPostgres> | undefined;
let databases = 0;
after(async () => (await server)?.stop());

async function freshDatabase(): Promise<string> {
  server ??= startPostgres({ fsync: false });
  return (await server).createDatabase(`namespace_${++databases}`);
}

namespaceStoreContract('postgres', async () => {
  const ns = await openPgNamespace(await freshDatabase());
  return { store: ns.store, log: ns.log, close: () => ns.close() };
});

const file = (path: string, location: string, extra: Partial<NewFile> = {}): NewFile => ({
  path: P(path),
  owner: 'alice',
  mode: 0o644,
  size: 3,
  checksums: { adler32: '024d0127' },
  contentType: undefined,
  replica: { se: 'local', location },
  ...extra,
});

/** Several nodes (each its own pool, log and store) on one database. */
async function nodes(n: number, url?: string): Promise<PgNamespace[]> {
  const at = url ?? (await freshDatabase());
  const opened: PgNamespace[] = [];
  // Sequentially: the first creates the schema and the root, the others find them.
  for (let i = 0; i < n; i++) opened.push(await openPgNamespace(at));
  return opened;
}

const closeAll = (ns: PgNamespace[]) => Promise.all(ns.map((x) => x.close()));

test('postgres: nodes opening one new database at once migrate it once and make one root', async () => {
  const url = await freshDatabase();
  const ns = await Promise.all(Array.from({ length: 4 }, () => openPgNamespace(url)));
  try {
    const roots = await ns[0]!.pool.query("SELECT file_id FROM ns_entries WHERE path = '/'");
    assert.equal(roots.rowCount, 1);
    assert.equal((await ns[3]!.store.get(P('/')))?.fileId, roots.rows[0].file_id);
  } finally {
    await closeAll(ns);
  }
});

test('postgres: concurrent creations of one path from several nodes make one file and overwrite it', async () => {
  const ns = await nodes(4);
  try {
    const results = await Promise.all(ns.map((x, i) => x.store.commitFile(file('/same', `l${i}`))));
    assert.equal(results.filter((r) => r.created).length, 1, 'exactly one writer created it');
    // Every replica but the last written was released by the overwrite after it.
    const released = results.flatMap((r) => r.released.map((x) => x.location));
    const kept = (await ns[0]!.store.replicas(P('/same'))).map((r) => r.location);
    assert.equal(kept.length, 1);
    assert.deepEqual([...released, ...kept].sort(), ['l0', 'l1', 'l2', 'l3']);
    const events = (await ns[0]!.log.read(0, 100)).filter((e) => e.path === '/same').map((e) => e.type);
    assert.equal(events.filter((t) => t === 'IN_CREATE').length, 1);
    assert.equal(events.filter((t) => t === 'IN_CLOSE_WRITE').length, 4);
    const exclusive = await Promise.allSettled(ns.map((x, i) => x.store.commitFile(file('/once', `m${i}`, { mustNotExist: true }))));
    assert.equal(exclusive.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of exclusive) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'EXISTS');
    const dirs = await Promise.allSettled(ns.map((x) => x.store.mkdir(P('/d'), 'alice', 0o755)));
    assert.equal(dirs.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of dirs) if (r.status === 'rejected') assert.equal((r.reason as { code: string }).code, 'EXISTS');
  } finally {
    await closeAll(ns);
  }
});

test('postgres: a tree removed or renamed while other nodes write into it leaves no orphan', async () => {
  const ns = await nodes(3);
  const [a, b, c] = ns as [PgNamespace, PgNamespace, PgNamespace];
  try {
    for (let round = 0; round < 8; round++) {
      const top = P(`/t${round}`);
      await a.store.mkdir(top, 'alice', 0o755);
      await a.store.mkdir(P(`${top}/d`), 'alice', 0o755);
      let stop = false;
      const writer = async (store: PgNamespace['store'], tag: string) => {
        for (let i = 0; !stop; i++) {
          try {
            if (i % 5 === 0) await store.mkdir(P(`${top}/d/${tag}${i}`), 'alice', 0o755);
            else await store.commitFile(file(`${top}/d/${tag}${i}`, `${tag}${round}-${i}`));
          } catch (e) {
            const code = (e as { code?: string }).code;
            // The tree went away under the writer: refused as SQLite would, never half-done.
            if (code === 'CONFLICT') return;
            throw e;
          }
        }
      };
      const writers = [writer(b.store, 'b'), writer(c.store, 'c'), writer(b.store, 'x')];
      await new Promise((r) => setTimeout(r, 30));
      if (round % 2 === 0) await a.store.remove(top);
      else await a.store.move(top, P(`/moved${round}`), { overwrite: false });
      stop = true;
      await Promise.all(writers);
    }
    const orphans = await a.pool.query(
      "SELECT path FROM ns_entries e WHERE path <> '/' AND NOT EXISTS (SELECT 1 FROM ns_entries p WHERE p.path = e.parent)",
    );
    assert.deepEqual(orphans.rows, []);
    const stray = await a.pool.query("SELECT path FROM ns_entries WHERE path LIKE '/t%'");
    assert.deepEqual(stray.rows, []);
  } finally {
    await closeAll(ns);
  }
});

test('postgres: subtree scans compare bytes even when the database collates by locale, and use the path index', async () => {
  const running = await (server ??= startPostgres({ fsync: false }));
  const admin = new pg.Client({ connectionString: running.url });
  await admin.connect();
  const name = `icu_${++databases}`;
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
  } finally {
    await admin.end();
  }
  const [ns] = await nodes(1, running.url.replace(/\/[^/]+$/, `/${name}`));
  try {
    // Under en-US, '~' sorts between '/' and '0', and 'B' after 'a': a byte-wise range scan in the
    // database's collation would take /t~x for a child of /t.
    for (const d of ['/t', '/t/a', '/t/B', '/t~x', '/tt']) await ns!.store.mkdir(P(d), 'alice', 0o755);
    assert.deepEqual(
      (await ns!.store.descendants(P('/t'))).map((e) => e.path),
      ['/t/B', '/t/a'],
    );
    assert.deepEqual(
      (await ns!.store.children(P('/t'))).map((e) => e.name),
      ['B', 'a'],
    );
    await ns!.store.remove(P('/t'));
    assert.ok(await ns!.store.get(P('/t~x')));
    const client = await ns!.pool.connect();
    try {
      await client.query('SET enable_seqscan = off');
      const plan = await client.query("EXPLAIN SELECT * FROM ns_entries WHERE path >= '/t/' AND path < '/t0' ORDER BY path");
      const text = plan.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
      assert.match(text, /Index Scan using ns_entries_path_key/);
    } finally {
      client.release();
    }
  } finally {
    await ns!.close();
  }
});
