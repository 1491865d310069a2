// Runs the catalogue store contract against the PostgreSQL adapter (one server for the file, a fresh
// database per test), and checks what only a shared database has: several nodes writing at once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { catalogStoreContract } from './contract/catalog-store.contract.js';
import { startPostgres, type RunningPostgres } from './support/postgres.js';
import { migratePg, openPool, type PgPool } from '../src/backends/postgres/database.js';
import { PgCatalogStore, ftsTokens, isoInstant, tsvector } from '../src/backends/postgres/catalog-store.js';
import { pgCatalogMigrations } from '../src/backends/postgres/catalog-tables.js';
import { parseQuery } from '../src/catalog/query.js';
import type { NewFile, PlaceholderFor } from '../src/catalog/catalog-store.js';

let server: Promise<RunningPostgres> | undefined;
let databases = 0;
after(async () => (await server)?.stop());

/** A fresh, migrated database on the file's server. */
async function freshDatabase(): Promise<string> {
  server ??= startPostgres({ fsync: false });
  const url = await (await server).createDatabase(`catalog_${++databases}`);
  const pool = openPool(url, { max: 2 });
  try {
    await migratePg(pool, pgCatalogMigrations);
  } finally {
    await pool.end();
  }
  return url;
}

catalogStoreContract('postgres', async () => {
  const pool = openPool(await freshDatabase());
  return { store: new PgCatalogStore(pool), close: () => pool.end() };
});

const T0 = Date.parse('2024-03-01T12:00:00Z');
const file = (path: string, extra: Partial<NewFile> = {}): NewFile => ({
  path,
  type: 'raw',
  owner: 'alice',
  size: 1,
  checksums: [{ type: 'adler32', value: '0000aaaa' }],
  created: T0,
  ...extra,
});
const stubs: PlaceholderFor = (path) => ({ path, type: 'raw', owner: '', size: 0, checksums: [], gone: false });
const annotation = (path: string, key: string, metadata: Record<string, unknown>) => ({
  path,
  key,
  metadata,
  replace: false,
  source: {},
  maxBytes: 1 << 20,
});

/** Two stores on one database, as two nodes would have. */
async function twoNodes(fn: (a: PgCatalogStore, b: PgCatalogStore) => Promise<void>): Promise<void> {
  const url = await freshDatabase();
  const pools: PgPool[] = [openPool(url), openPool(url)];
  try {
    await fn(new PgCatalogStore(pools[0]!), new PgCatalogStore(pools[1]!));
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
}

test('postgres: two nodes seeing a new file at once make one record', async () => {
  await twoNodes(async (a, b) => {
    const made = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).upsertFile(file('/n/x', { size: i }), T0 + i)));
    assert.equal(new Set(made.map((r) => r.id)).size, 1);
    const both = await Promise.all([
      a.recordDerivation(
        { path: '/n/out1', inputs: [{ path: '/n/in' }], function: 'f', version: 'v', activation: 'a', parameters: null },
        stubs,
        T0,
      ),
      b.recordDerivation(
        { path: '/n/out2', inputs: [{ path: '/n/in' }], function: 'f', version: 'v', activation: 'b', parameters: null },
        stubs,
        T0,
      ),
    ]);
    assert.equal(both[0].provenance?.inputs[0]?.id, both[1].provenance?.inputs[0]?.id, 'one record for the input both created');
  });
});

test('postgres: concurrent annotations of one record all stay', async () => {
  await twoNodes(async (a, b) => {
    await a.upsertFile(file('/n/x'), T0);
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).annotate(annotation('/n/x', 'user', { [`k${i}`]: i }), undefined, T0)),
    );
    const r = await a.atPath('/n/x');
    assert.equal(Object.keys(r?.metadata.user as object).length, 12);
    assert.deepEqual(
      (await b.search(parseQuery('user.k7:7'), { kind: 'all' }, { limit: 10, offset: 0 })).map((x) => x.path),
      ['/n/x'],
    );
  });
});

test('postgres: concurrent datasets at one path: one is made, the other is a CONFLICT', async () => {
  await twoNodes(async (a, b) => {
    const dataset = { path: '/n/d', type: 'raw' as const, owner: 'alice', metadata: {}, source: {}, maxBytes: 1000 };
    const results = await Promise.allSettled([a.createDataset(dataset, T0), b.createDataset(dataset, T0)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const refused = results.find((r) => r.status === 'rejected');
    assert.equal((refused?.reason as { code?: string }).code, 'CONFLICT');
  });
});

test('postgres: metadata PostgreSQL text cannot hold, and more words than a tsvector holds, are still stored', async () => {
  await twoNodes(async (a) => {
    await a.upsertFile(file('/n/x'), T0);
    const words = Array.from({ length: 150_000 }, (_, i) => `w${i}`).join(' ');
    const metadata = { nul: 'a\u0000b', words, long: 'x'.repeat(5000) };
    const r = await a.annotate({ ...annotation('/n/x', 'user', metadata), maxBytes: 8 << 20 }, undefined, T0);
    assert.equal((r.metadata.user as { nul: string }).nul, 'a\u0000b');
    const found = async (q: string) => (await a.search(parseQuery(q), { kind: 'all' }, { limit: 10, offset: 0 })).length;
    assert.equal(await found('nul:ab'), 1);
    assert.equal(await found('w7'), 1);
    assert.equal(await found('x'.repeat(3000)), 0, 'a word too long for a lexeme is not indexed, and its query matches nothing');
  });
});

test('postgres: tokens are FTS5 unicode61 tokens, locale-independent', () => {
  assert.deepEqual(ftsTokens('/b/scan_0001.nxs'), ['b', 'scan', '0001', 'nxs']);
  assert.deepEqual(ftsTokens('Ålice Crème 12.4 SiO2'), ['alice', 'creme', '12', '4', 'sio2']);
  assert.equal(tsvector(['a', 'b', 'a']), "'a':1,3 'b':2");
  assert.equal(tsvector(["it's"]), "'it\\'s':1");
});

test('postgres: metadata dates are instants as SQLite reads them: microseconds, blanks, 24:00, day overflow', async () => {
  assert.equal(isoInstant('2024-03-01T10:00:00.123456Z'), Date.parse('2024-03-01T10:00:00.123Z'));
  assert.equal(isoInstant('2024-03-01 10:00 +01:00'), Date.parse('2024-03-01T09:00Z'));
  assert.equal(isoInstant('2024-03-01T24:00'), Date.parse('2024-03-02T00:00Z'));
  assert.equal(isoInstant('2023-02-30'), Date.parse('2023-03-02T00:00Z'));
  assert.equal(isoInstant('0050-01-01'), Date.parse('0050-01-01T00:00Z'));
  for (const text of ['2024-03', '2024-03-01t10:00', '2024-03-01T10:00:00+0100', '2024-13-01', '2024-03-01Z', '10000-01-01']) {
    assert.equal(isoInstant(text), null, text);
  }
  await twoNodes(async (a) => {
    await a.upsertFile(file('/n/x'), T0);
    await a.annotate(annotation('/n/x', 'nexus', { start_time: '2024-03-01T10:00:00.123456' }), undefined, T0);
    const found = async (q: string) => (await a.search(parseQuery(q), { kind: 'all' }, { limit: 10, offset: 0 })).length;
    assert.equal(await found('start_time:2024-03-01T10:00:00.123Z'), 1);
    assert.equal(await found('start_time>2024-03-01T10:00:00.123Z'), 0);
  });
});

test('postgres: a database that cannot be reached is UNAVAILABLE', async () => {
  const pool = openPool('postgres://sluice@127.0.0.1:1/none', { max: 1 });
  try {
    const store = new PgCatalogStore(pool);
    await assert.rejects(store.search(parseQuery('wafer'), { kind: 'all' }, { limit: 1, offset: 0 }), { code: 'UNAVAILABLE' });
    await assert.rejects(store.upsertFile(file('/n/x'), T0), { code: 'UNAVAILABLE' });
  } finally {
    await pool.end();
  }
});
