// The catalogue over a real in-process server: files written to the namespace and recorded as the
// trigger dispatcher records them (raw scans, a derived chain two deep), then read, searched,
// annotated and traced through the HTTP API and the CLI commands, with tokens of narrower scopes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config.js';
import { createCore, ensureAdminToken, createLogger, type Core } from '../src/app.js';
import { buildServer } from '../src/api/server.js';
import { migrate } from '../src/backends/sqlite/database.js';
import { SqliteCatalogStore } from '../src/backends/sqlite/catalog-store.js';
import { catalogMigrations } from '../src/catalog/tables.js';
import { CatalogService, fileFactsOf } from '../src/catalog/service.js';
import { catalogRoutes } from '../src/api/routes/catalog.js';
import { normalizePath } from '../src/storage/paths.js';
import type { Principal } from '../src/auth/scopes.js';
import type { CatalogRecord, LineageGraph } from '../src/catalog/types.js';
import { metadataFromAssignments } from '../src/cli/catalog.js';
import { authed, json, tempDir, REPO_ROOT } from './support/server.js';

const execFileP = promisify(execFile);

const TRUSTED: Principal = { subject: 'test', tokenId: 'test', scopes: [{ kind: 'admin' }] };
const REDUCE = 'a'.repeat(64);
const PLOT = 'b'.repeat(64);

let core: Core;
let catalog: CatalogService;
let url: string;
let adminToken: string;
let dataDir: string;
let close: () => Promise<void>;

/** Writes a file to the namespace, as an upload would. */
async function put(path: string, data: string): Promise<void> {
  await core.namespace.put(TRUSTED, normalizePath(path), Readable.from([Buffer.from(data)]), { createParents: true });
}

/** Records a file as the dispatcher does on IN_CLOSE_WRITE. */
async function record(path: string, type: 'raw' | 'derived', created?: string): Promise<CatalogRecord> {
  const facts = fileFactsOf(await core.namespace.find(TRUSTED, normalizePath(path)))!;
  return catalog.upsertFile({
    path: facts.path,
    size: facts.size,
    checksums: facts.checksums,
    type,
    owner: path.startsWith('/b') ? 'bob' : 'alice',
    ...(created ? { created } : {}),
  });
}

before(async () => {
  dataDir = await tempDir();
  const config = loadConfig({ port: 0, logLevel: 'silent', dataDir }, {});
  core = await createCore(config, createLogger(config.logLevel));
  await ensureAdminToken(core);
  migrate(core.db, catalogMigrations);
  catalog = new CatalogService({
    store: new SqliteCatalogStore(core.db),
    lookupFile: async (p) => fileFactsOf(await core.namespace.find(TRUSTED, normalizePath(p))),
  });
  const testCore = { ...core, catalog };
  const app = await buildServer(testCore);
  if (!app.hasRoute({ method: 'GET', url: '/api/v1/catalog/search' })) {
    await app.register(catalogRoutes, { prefix: '/api/v1', core: testCore });
  }
  url = await app.listen({ host: '127.0.0.1', port: 0 });
  // This suite seeds the catalogue by hand (owners, times, derivations): the indexer, which would
  // record the same uploads from the namespace's point of view, is stopped (test/catalog-indexer.test.ts covers it).
  await core.catalogIndexer.stop();
  adminToken = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  close = async () => {
    await core.channels.stop();
    await app.close();
    await core.close();
    await rm(dataDir, { recursive: true, force: true });
  };

  // Raw scans in /a (alice) and /b (bob), with NeXus metadata from an extractor.
  await put('/a/raw/scan_0001.nxs', 'scan one data');
  await put('/a/raw/scan_0002.nxs', 'scan two, a longer body of data');
  await put('/b/raw/other.nxs', 'bob');
  await record('/a/raw/scan_0001.nxs', 'raw', '2024-03-01T08:00:00Z');
  await record('/a/raw/scan_0002.nxs', 'raw', '2024-03-02T08:00:00Z');
  await record('/b/raw/other.nxs', 'raw', '2024-04-01T08:00:00Z');
  const nx = { function: 'nexus-metadata', version: 'c'.repeat(64), activation: 'act-nx' };
  await catalog.annotate(
    '/a/raw/scan_0001.nxs',
    'nexus',
    { entry: { title: 'Silicon wafer tomography', start_time: '2024-03-01T08:00:00Z', instrument: { energy_keV: 12.4 } } },
    nx,
  );
  await catalog.annotate('/a/raw/scan_0002.nxs', 'nexus', { entry: { title: 'Germanium powder', instrument: { energy_keV: 30 } } }, nx);
  await catalog.annotate('/b/raw/other.nxs', 'nexus', { entry: { title: 'Secret sample of bob' } }, nx);

  // A chain two deep: both scans → reduced (reduce), reduced → map (plot); and bob derives from alice's map.
  await put('/a/proc/reduced_0001.h5', 'reduced');
  await record('/a/proc/reduced_0001.h5', 'derived', '2024-03-03T08:00:00Z');
  await catalog.recordDerivation({
    path: '/a/proc/reduced_0001.h5',
    inputs: [{ path: '/a/raw/scan_0001.nxs' }, { path: '/a/raw/scan_0002.nxs', checksum: 'adler32:00000000' }],
    function: 'reduce',
    version: REDUCE,
    activation: 'act-reduce',
    parameters: { binning: 4 },
  });
  await put('/a/proc/map.h5', 'map of the reduced data');
  // The derivation arrives before the file's own record: the record is made from the namespace.
  await catalog.recordDerivation({
    path: '/a/proc/map.h5',
    inputs: [{ path: '/a/proc/reduced_0001.h5' }],
    function: 'plot',
    version: PLOT,
    activation: 'act-plot',
    parameters: {},
  });
  await put('/b/proc/cross.h5', 'bob uses alice');
  await catalog.recordDerivation({
    path: '/b/proc/cross.h5',
    inputs: [{ path: '/a/proc/map.h5' }, { path: '/b/raw/other.nxs' }],
    function: 'plot',
    version: PLOT,
    activation: 'act-cross',
    parameters: { mode: 'overlay' },
  });
});
after(async () => close());

const api = (path: string, init: RequestInit = {}, token = adminToken) =>
  authed({ url, token: adminToken, dataDir, stop: close }, token)(`/api/v1${path}`, init);
const get = async (path: string, token?: string) => {
  const res = await api(path, {}, token);
  return { status: res.status, body: await json(res) };
};
const search = async (q: string, token?: string) => {
  const res = await get(`/catalog/search?q=${encodeURIComponent(q)}`, token);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body as CatalogRecord[]).map((r) => r.path);
};
const patch = async (path: string, body: unknown, token?: string) => {
  const res = await api(
    `/catalog/files${path}`,
    { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    token,
  );
  return { status: res.status, body: await json(res) };
};
const lineage = async (path: string, query: string, token?: string) => {
  const res = await get(`/catalog/lineage${path}?${query}`, token);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body as LineageGraph;
};
async function tokenFor(scopes: string[]): Promise<string> {
  const res = await api('/tokens', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subject: 'carol', scopes }),
  });
  return ((await json(res)) as { secret: string }).secret;
}
/** Paths of a lineage's nodes with their distance, hidden ones by "(hidden)". */
const nodesOf = (g: LineageGraph) => g.nodes.map((n) => `${n.distance} ${n.hidden ? '(hidden)' : n.path}`).sort();

test('a record by path and by id: facts from the namespace, metadata with its producer, provenance', async () => {
  const byPath = await get('/catalog/files/a/proc/reduced_0001.h5');
  assert.equal(byPath.status, 200, JSON.stringify(byPath.body));
  const r = byPath.body as CatalogRecord;
  assert.match(r.id, /^rec_[0-9a-f]{24}$/);
  assert.equal(r.type, 'derived');
  assert.equal(r.owner, 'alice');
  assert.equal(r.size, 'reduced'.length);
  assert.equal(r.created, '2024-03-03T08:00:00.000Z');
  assert.equal(r.checksums[0]?.type, 'adler32');
  assert.equal(r.deleted, false);
  assert.equal(r.provenance?.function, 'reduce');
  assert.equal(r.provenance?.version, REDUCE);
  assert.equal(r.provenance?.activation, 'act-reduce');
  assert.deepEqual(r.provenance?.parameters, { binning: 4 });
  const scan1 = (await get('/catalog/files/a/raw/scan_0001.nxs')).body as CatalogRecord;
  assert.deepEqual(r.provenance?.inputs, [
    { id: scan1.id, path: '/a/raw/scan_0001.nxs', checksum: `adler32:${scan1.checksums[0]?.value}` },
    { id: (await get('/catalog/files/a/raw/scan_0002.nxs')).body.id, path: '/a/raw/scan_0002.nxs', checksum: 'adler32:00000000' },
  ]);
  assert.deepEqual(scan1.metadataSources.nexus?.producedBy, { function: 'nexus-metadata', version: 'c'.repeat(64), activation: 'act-nx' });
  assert.equal((scan1.metadata.nexus as { entry: { title: string } }).entry.title, 'Silicon wafer tomography');

  const byId = await get(`/catalog/records/${r.id}`);
  assert.deepEqual(byId.body, r);

  // Recorded before its own upsert: the record was made from the namespace entry, complete.
  const map = (await get('/catalog/files/a/proc/map.h5')).body as CatalogRecord;
  assert.equal(map.type, 'derived');
  assert.equal(map.size, 'map of the reduced data'.length);
  assert.equal(map.owner, TRUSTED.subject, 'the namespace owner of the file');
  assert.equal(map.checksums.length, 1);

  const missing = await get('/catalog/files/a/none.h5');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.code, 'NOT_FOUND');
  assert.equal((await get('/catalog/records/rec_000000000000000000000000')).status, 404);
  const badId = await get('/catalog/records/nope');
  assert.equal(badId.status, 400);

  const openapi = (await get('/openapi.json')).body as { paths: Record<string, unknown> };
  for (const route of [
    '/api/v1/catalog/search',
    '/api/v1/catalog/records/{id}',
    '/api/v1/catalog/files/{*}',
    '/api/v1/catalog/lineage/{*}',
  ]) {
    assert.ok(openapi.paths[route], `${route} in the OpenAPI document`);
  }
});

test('search by field, range, date, metadata path and suffix, full text; newest first; pages', async () => {
  assert.deepEqual(await search('owner:alice type:raw'), ['/a/raw/scan_0002.nxs', '/a/raw/scan_0001.nxs']);
  assert.deepEqual(await search('type:derived path~/a/'), ['/a/proc/map.h5', '/a/proc/reduced_0001.h5']);
  assert.deepEqual(await search('size>20 path~/a/'), ['/a/proc/map.h5', '/a/raw/scan_0002.nxs']);
  assert.deepEqual(await search('created:2024-03-02'), ['/a/raw/scan_0002.nxs']);
  assert.deepEqual(await search('created>=2024-03-01 created<2024-03-03'), ['/a/raw/scan_0002.nxs', '/a/raw/scan_0001.nxs']);
  assert.deepEqual(await search('metadata.nexus.entry.title~silicon'), ['/a/raw/scan_0001.nxs']);
  assert.deepEqual(await search('entry.title~"germanium powder"'), ['/a/raw/scan_0002.nxs']);
  assert.deepEqual(await search('instrument.energy_keV>=12 instrument.energy_keV<20'), ['/a/raw/scan_0001.nxs']);
  assert.deepEqual(await search('start_time<2024-03-02'), ['/a/raw/scan_0001.nxs']);
  assert.deepEqual(await search('tomography'), ['/a/raw/scan_0001.nxs']);
  assert.deepEqual(await search('proc -map'), ['/b/proc/cross.h5', '/a/proc/reduced_0001.h5']);
  assert.deepEqual(await search('function:plot'), ['/b/proc/cross.h5', '/a/proc/map.h5']);
  assert.deepEqual(await search('provenance.inputs.path:/a/proc/map.h5'), ['/b/proc/cross.h5']);
  const page = await get('/catalog/search?q=path~.nxs&limit=2&offset=1');
  assert.deepEqual(
    (page.body as CatalogRecord[]).map((r) => r.path),
    ['/a/raw/scan_0002.nxs', '/a/raw/scan_0001.nxs'],
  );
});

test('malformed queries and parameters are 400 problems that name the term', async () => {
  const bad = await get(`/catalog/search?q=${encodeURIComponent('type:raw size>huge')}`);
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'BAD_REQUEST');
  assert.equal(bad.body.detail, 'term "size>huge": size takes a number of bytes, not "huge"');
  assert.equal(bad.body.term, 'size>huge');
  const quote = await get(`/catalog/search?q=${encodeURIComponent('title~"open')}`);
  assert.match(quote.body.detail, /term "title~\\"open": the quote is not closed/);
  assert.equal((await get('/catalog/search?q=x&limit=0')).status, 400);
  assert.equal((await get('/catalog/search?q=x&limit=5000')).status, 400);
  assert.equal((await get('/catalog/lineage/a/proc/map.h5?direction=sideways')).status, 400);
  assert.equal((await get('/catalog/lineage/a/proc/map.h5?depth=0')).status, 400);
  assert.equal((await get('/catalog/search?q=x&extra=1')).status, 400);
});

test('a token with storage.read:/a sees only records under /a, in search, by path, by id and in provenance', async () => {
  const onlyA = await tokenFor(['storage.read:/a']);
  assert.deepEqual((await search('', onlyA)).sort(), [
    '/a/proc/map.h5',
    '/a/proc/reduced_0001.h5',
    '/a/raw/scan_0001.nxs',
    '/a/raw/scan_0002.nxs',
  ]);
  assert.deepEqual(await search('bob', onlyA), [], 'full text too');
  assert.deepEqual(await search('bob'), ['/b/raw/other.nxs'], 'while admin finds it');
  const byPath = await get('/catalog/files/b/raw/other.nxs', onlyA);
  assert.equal(byPath.status, 403);
  const cross = (await get('/catalog/files/b/proc/cross.h5')).body as CatalogRecord;
  assert.equal((await get(`/catalog/records/${cross.id}`, onlyA)).status, 403);

  // bob's token reads /b: cross.h5's input from /a shows as its id only.
  const onlyB = await tokenFor(['storage.read:/b']);
  const seen = (await get('/catalog/files/b/proc/cross.h5', onlyB)).body as CatalogRecord;
  const map = (await get('/catalog/files/a/proc/map.h5')).body as CatalogRecord;
  assert.deepEqual(seen.provenance?.inputs[0], { id: map.id, hidden: true });
  assert.equal(seen.provenance?.inputs[1]?.path, '/b/raw/other.nxs');

  const none = await tokenFor(['function.invoke']);
  assert.deepEqual(await search('', none), []);
  assert.equal((await get('/catalog/search?q=', 'not-a-token')).status, 401);
});

test('lineage up, down and both, limited by depth; unreadable records hidden or left out', async () => {
  const up1 = await lineage('/a/proc/map.h5', 'direction=up&depth=1');
  assert.deepEqual(nodesOf(up1), ['-1 /a/proc/reduced_0001.h5', '0 /a/proc/map.h5']);
  assert.equal(up1.edges.length, 1);
  const map = (await get('/catalog/files/a/proc/map.h5')).body as CatalogRecord;
  const reduced = (await get('/catalog/files/a/proc/reduced_0001.h5')).body as CatalogRecord;
  assert.equal(up1.root, map.id);
  assert.deepEqual(up1.edges[0], {
    from: reduced.id,
    to: map.id,
    function: 'plot',
    version: PLOT,
    activation: 'act-plot',
    inputPath: '/a/proc/reduced_0001.h5',
    inputChecksum: `adler32:${reduced.checksums[0]?.value}`,
  });
  assert.equal(up1.truncated, false);

  const up = await lineage('/a/proc/map.h5', 'direction=up&depth=5');
  assert.deepEqual(nodesOf(up), ['-1 /a/proc/reduced_0001.h5', '-2 /a/raw/scan_0001.nxs', '-2 /a/raw/scan_0002.nxs', '0 /a/proc/map.h5']);
  assert.equal(up.edges.length, 3);
  assert.ok(up.edges.every((e) => e.to === map.id || e.to === reduced.id));

  const down = await lineage('/a/raw/scan_0001.nxs', 'direction=down&depth=1');
  assert.deepEqual(nodesOf(down), ['0 /a/raw/scan_0001.nxs', '1 /a/proc/reduced_0001.h5']);
  const downAll = await lineage('/a/raw/scan_0001.nxs', 'direction=down&depth=3');
  assert.deepEqual(nodesOf(downAll), ['0 /a/raw/scan_0001.nxs', '1 /a/proc/reduced_0001.h5', '2 /a/proc/map.h5', '3 /b/proc/cross.h5']);

  const both = await lineage('/a/proc/reduced_0001.h5', 'direction=both&depth=1');
  assert.deepEqual(nodesOf(both), ['-1 /a/raw/scan_0001.nxs', '-1 /a/raw/scan_0002.nxs', '0 /a/proc/reduced_0001.h5', '1 /a/proc/map.h5']);
  assert.equal(both.direction, 'both');
  assert.equal((await lineage('/a/proc/reduced_0001.h5', '')).direction, 'up', 'up by default');

  // Downstream, what the caller may not read is left out; upstream, it is a hidden leaf.
  const onlyA = await tokenFor(['storage.read:/a']);
  const downA = await lineage('/a/raw/scan_0001.nxs', 'direction=down&depth=3', onlyA);
  assert.deepEqual(nodesOf(downA), ['0 /a/raw/scan_0001.nxs', '1 /a/proc/reduced_0001.h5', '2 /a/proc/map.h5']);
  const onlyB = await tokenFor(['storage.read:/b']);
  const upB = await lineage('/b/proc/cross.h5', 'direction=up&depth=5', onlyB);
  assert.deepEqual(nodesOf(upB), ['-1 (hidden)', '-1 /b/raw/other.nxs', '0 /b/proc/cross.h5']);
  const hiddenEdge = upB.edges.find((e) => e.from === map.id)!;
  assert.equal(hiddenEdge.inputPath, undefined, 'the hidden input’s path is not shown');
  assert.equal((await get('/catalog/lineage/a/proc/map.h5', onlyB)).status, 403);
});

test('annotate through the API: storage.modify needed, RFC 7396 merge, replace, records made for files without one', async () => {
  const reader = await tokenFor(['storage.read:/a']);
  const refused = await patch('/a/raw/scan_0001.nxs', { key: 'user', metadata: { x: 1 } }, reader);
  assert.equal(refused.status, 403);
  assert.equal(refused.body.code, 'FORBIDDEN');

  const writer = await tokenFor(['storage.read:/a', 'storage.modify:/a/raw']);
  let res = await patch(
    '/a/raw/scan_0001.nxs',
    { key: 'user', metadata: { sample: { name: 'Si', temperature_K: 300 }, operator: 'carol' } },
    writer,
  );
  assert.equal(res.status, 200, JSON.stringify(res.body));
  res = await patch('/a/raw/scan_0001.nxs', { key: 'user', metadata: { sample: { temperature_K: 77 }, operator: null } }, writer);
  const r = res.body as CatalogRecord;
  assert.deepEqual(r.metadata.user, { sample: { name: 'Si', temperature_K: 77 } });
  assert.equal(r.metadataSources.user?.by, 'carol');
  assert.ok(r.metadata.nexus, 'other keys stay');
  assert.deepEqual(await search('sample.temperature_K<100', writer), ['/a/raw/scan_0001.nxs']);
  res = await patch('/a/raw/scan_0001.nxs', { key: 'user', metadata: { only: true }, replace: true }, writer);
  assert.deepEqual((res.body as CatalogRecord).metadata.user, { only: true });

  // A file in the namespace without a record gets one; a path without a file is 404.
  await put('/a/raw/notes.txt', 'some notes');
  res = await patch('/a/raw/notes.txt', { key: 'user', metadata: { kind: 'notes' } }, writer);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal((res.body as CatalogRecord).size, 'some notes'.length);
  assert.equal((res.body as CatalogRecord).type, 'raw');
  assert.equal((await patch('/a/raw/none.txt', { key: 'user', metadata: {} }, writer)).status, 404);

  // Paths travel percent-encoded, segment by segment.
  await put('/a/raw/my notes ü.txt', 'spaces');
  res = await patch(encodeURI('/a/raw/my notes ü.txt'), { key: 'user', metadata: { kind: 'spaced' } }, writer);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal((res.body as CatalogRecord).path, '/a/raw/my notes ü.txt');
  assert.equal((await get(`/catalog/files${encodeURI('/a/raw/my notes ü.txt')}`, writer)).body.id, res.body.id);
  assert.deepEqual(await search('kind:spaced', writer), ['/a/raw/my notes ü.txt']);

  assert.equal((await patch('/a/raw/notes.txt', { key: 'bad.key', metadata: {} }, writer)).status, 400);
  assert.equal((await patch('/a/raw/notes.txt', { key: 'user', metadata: [1] }, writer)).status, 400);
  assert.equal((await patch('/a/raw/notes.txt', { key: 'user' }, writer)).status, 400);
});

test('a rename keeps the record and its lineage; a removal keeps the record, marked deleted', async () => {
  const before = (await get('/catalog/files/a/proc/reduced_0001.h5')).body as CatalogRecord;
  await core.namespace.move(TRUSTED, normalizePath('/a/proc/reduced_0001.h5'), normalizePath('/a/proc/reduced.h5'), { overwrite: false });
  await catalog.moved('/a/proc/reduced_0001.h5', '/a/proc/reduced.h5');
  const after = (await get('/catalog/files/a/proc/reduced.h5')).body as CatalogRecord;
  assert.equal(after.id, before.id);
  assert.deepEqual(after.provenance, before.provenance);
  assert.equal((await get('/catalog/files/a/proc/reduced_0001.h5')).status, 404);
  const up = await lineage('/a/proc/map.h5', 'direction=up&depth=2');
  assert.ok(nodesOf(up).includes('-1 /a/proc/reduced.h5'));
  assert.equal(up.edges.find((e) => e.from === before.id)?.inputPath, '/a/proc/reduced_0001.h5', 'the path it was read at');
  assert.deepEqual(await search('reduced'), ['/a/proc/reduced.h5']);

  const scan2 = (await get('/catalog/files/a/raw/scan_0002.nxs')).body as CatalogRecord;
  await core.namespace.remove(TRUSTED, normalizePath('/a/raw/scan_0002.nxs'));
  await catalog.removed('/a/raw/scan_0002.nxs');
  const gone = await get('/catalog/files/a/raw/scan_0002.nxs');
  assert.equal(gone.status, 200);
  assert.equal(gone.body.id, scan2.id);
  assert.equal(gone.body.deleted, true);
  assert.ok(gone.body.deletedAt);
  assert.equal((gone.body as CatalogRecord).metadata.nexus !== undefined, true, 'metadata stays');
  assert.deepEqual(await search('germanium'), [], 'search leaves deleted records out');
  assert.deepEqual(await search('germanium deleted:true'), ['/a/raw/scan_0002.nxs']);
  const upAgain = await lineage('/a/proc/map.h5', 'direction=up&depth=2');
  const node = upAgain.nodes.find((n) => n.id === scan2.id);
  assert.equal(node?.deleted, true, 'lineage runs through the deleted record');
  assert.equal((await lineage('/a/raw/scan_0002.nxs', 'direction=down&depth=2')).nodes.length, 3);
  assert.equal((await patch('/a/raw/scan_0002.nxs', { key: 'user', metadata: { late: 1 } })).status, 404, 'no annotating a deleted file');
});

test('the CLI: show, search, lineage, annotate', async () => {
  // The commands in a process of their own (as `sluice catalog …` runs them), so stdout is theirs alone.
  const run = async (...args: string[]): Promise<string> => {
    const script = [
      `import { Command } from 'commander';`,
      `import { addConnectionOptions } from ${JSON.stringify(new URL('../src/cli/connect.js', import.meta.url).href)};`,
      `import { registerCatalogCommands } from ${JSON.stringify(new URL('../src/cli/catalog.js', import.meta.url).href)};`,
      `const program = new Command();`,
      `addConnectionOptions(program);`,
      `registerCatalogCommands(program);`,
      `await program.parseAsync(process.argv.slice(1), { from: 'user' });`,
    ].join('\n');
    const { stdout } = await execFileP(
      process.execPath,
      ['--input-type=module', '-e', script, '--', '--url', url, '--token', adminToken, 'catalog', ...args],
      {
        cwd: REPO_ROOT,
      },
    );
    return stdout;
  };
  const shown = JSON.parse(await run('show', '/a/proc/map.h5', '--json')) as CatalogRecord;
  assert.equal(shown.path, '/a/proc/map.h5');
  assert.deepEqual(JSON.parse(await run('show', shown.id, '--json')), shown);
  const text = await run('show', 'a/proc/map.h5');
  assert.match(text, /derived by\s+plot@bbbbbbbbbbbb, activation act-plot/);
  assert.match(text, /from\s+\/a\/proc\/reduced_0001\.h5/);

  const found = JSON.parse(await run('search', 'type:derived', 'path~/a/', '--json')) as CatalogRecord[];
  assert.deepEqual(
    found.map((r) => r.path),
    ['/a/proc/map.h5', '/a/proc/reduced.h5'],
  );
  assert.match(await run('search', '--limit', '1', '--', '-type:derived', 'tomography'), /scan_0001\.nxs/);

  const tree = await run('lineage', '/a/proc/map.h5', '--direction', 'up', '--depth', '2');
  assert.match(
    tree,
    /^\/a\/proc\/map\.h5 \[derived\]\n {2}← \/a\/proc\/reduced\.h5 \[derived\] {2}via plot@bbbbbbbbbbbb \(act-plot\)\n {4}← \/a\/raw\/scan_0001\.nxs \[raw\] {2}via reduce@aaaaaaaaaaaa/,
  );
  assert.match(tree, /scan_0002\.nxs \[raw, deleted\]/);

  await run('annotate', '/a/proc/map.h5', '--key', 'review', '--set', 'status=approved', 'score=4.5', 'by.name=carol');
  const annotated = JSON.parse(await run('show', '/a/proc/map.h5', '--json')) as CatalogRecord;
  assert.deepEqual(annotated.metadata.review, { status: 'approved', score: 4.5, by: { name: 'carol' } });
  assert.deepEqual(metadataFromAssignments(['a.b=[1,2]', 'a.c="7"', 'd=']), { a: { b: [1, 2], c: '7' }, d: '' });
});
