// Runs the function store contract against the PostgreSQL adapter (one server for the file, a fresh
// database per test), and checks what only a shared database has: several nodes deploying at once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { digest, functionStoreContract } from './contract/function-store.contract.js';
import { startPostgres, type RunningPostgres } from './support/postgres.js';
import { migratePg, openPool, type PgPool } from '../src/backends/postgres/database.js';
import { PgFunctionStore } from '../src/backends/postgres/function-store.js';
import { pgFunctionMigrations } from '../src/backends/postgres/function-tables.js';
import { validateManifest } from '../src/functions/manifest.js';
import type { NewVersion } from '../src/functions/function-store.js';

let server: Promise<RunningPostgres> | undefined;
let databases = 0;
after(async () => (await server)?.stop());

/** A fresh, migrated database on the file's server. */
async function freshDatabase(): Promise<string> {
  server ??= startPostgres({ fsync: false });
  const url = await (await server).createDatabase(`functions_${++databases}`);
  const pool = openPool(url, { max: 2 });
  try {
    await migratePg(pool, pgFunctionMigrations);
  } finally {
    await pool.end();
  }
  return url;
}

functionStoreContract('postgres', async () => {
  const pool = openPool(await freshDatabase());
  return { store: new PgFunctionStore(pool), close: () => pool.end() };
});

const version = (name: string, d: string): NewVersion => ({
  name,
  version: digest(d),
  manifest: validateManifest({ name, runtime: 'node', handler: 'main.handler' }),
  size: 1,
  createdBy: 'alice',
});

test('postgres: concurrent deploys of one function through separate nodes get distinct seq numbers', async () => {
  const url = await freshDatabase();
  const pools: PgPool[] = Array.from({ length: 4 }, () => openPool(url, { max: 4 }));
  try {
    const stores = pools.map((p) => new PgFunctionStore(p));
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => stores[i % stores.length]!.recordDeploy(version('busy', `e${i.toString(16)}`), [`a${i % 3}`])),
    );
    assert.deepEqual(
      results.map((r) => r.version.seq).sort((a, b) => a - b),
      Array.from({ length: 16 }, (_, i) => i + 1),
    );
    assert.ok(results.every((r) => r.created));
    const summary = await stores[0]!.summary('busy');
    assert.equal(summary?.versions, 16);
    assert.equal(summary?.latest.seq, 16, 'seq order is commit order, so latest is the highest seq');
    // The same content deployed by two nodes at once is one version.
    const [a, b] = await Promise.all([
      stores[0]!.recordDeploy(version('twice', 'ab'), []),
      stores[1]!.recordDeploy(version('twice', 'ab'), []),
    ]);
    assert.equal(a.version.seq, 1);
    assert.equal(b.version.seq, 1);
    assert.deepEqual([a.created, b.created].sort(), [false, true]);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test('postgres: removals racing deploys and alias moves leave a consistent function', async () => {
  const url = await freshDatabase();
  const pools: PgPool[] = [openPool(url), openPool(url)];
  try {
    const [s1, s2] = pools.map((p) => new PgFunctionStore(p)) as [PgFunctionStore, PgFunctionStore];
    await s1.recordDeploy(version('race', 'a1'), []);
    await Promise.allSettled([
      s1.removeFunction('race'),
      s2.recordDeploy(version('race', 'b2'), []),
      s2.setAlias('race', 'prod', digest('a1')),
    ]);
    const versions = await s1.versions('race');
    const summary = await s1.summary('race');
    if (versions.length === 0) assert.equal(summary, undefined);
    else {
      assert.ok(summary, 'a function with versions has a summary');
      assert.ok(
        versions.some((v) => v.version === summary.aliases.latest),
        'latest points at an existing version',
      );
      for (const target of Object.values(summary.aliases)) assert.ok(versions.some((v) => v.version === target));
    }
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test('postgres: a database that cannot be reached is UNAVAILABLE', async () => {
  const pool = openPool('postgres://sluice@127.0.0.1:1/none', { max: 1 });
  try {
    const store = new PgFunctionStore(pool);
    await assert.rejects(store.get('echo', digest('a1')), { code: 'UNAVAILABLE' });
    await assert.rejects(store.recordDeploy(version('echo', 'a1'), []), { code: 'UNAVAILABLE' });
  } finally {
    await pool.end();
  }
});
