// The catalogue follows the namespace by itself: uploads become raw records, files written by a
// function become derived records with provenance (inputs with checksums, function and exact version,
// activation, parameters), a trigger can store a function's metadata, renames and deletions are
// followed, and the indexer resumes from its saved position after a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, authed, json, type RunningServer } from './support/server.js';
import { until } from './support/cli.js';
import { deploy, fixtureCopy } from './support/functions.js';

let server: RunningServer;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function get(path: string): Promise<{ status: number; body: Json }> {
  const res = await authed(server)(`/api/v1${path}`);
  return { status: res.status, body: await json(res) };
}

async function post(path: string, body: unknown): Promise<Json> {
  const res = await authed(server)(`/api/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return json(res);
}

before(async () => {
  server = await startServer();
  await deploy(server, 'derive-node');
  const dir = await fixtureCopy('faults-node');
  await writeFile(join(dir, 'sluice.function.json'), JSON.stringify({ name: 'describe', runtime: 'node', handler: 'main.handler' }));
  await writeFile(
    join(dir, 'main.mjs'),
    'export function handler(e) { return { path: e.subject, metadata: { size: e.data.size, kind: "scan", beamline: e.beamline } }; }\n',
  );
  await deploy(server, dir);
  assert.equal((await authed(server)('/bt', { method: 'MKCOL' })).status, 201);
});

after(async () => {
  await server.stop();
});

test('an upload is a raw record with its checksum; a file a function writes is derived, with provenance', async () => {
  await post('/triggers', {
    name: 'derive',
    filter: { path: '/bt', glob: '*.txt' },
    target: { function: 'derive-node' },
    params: { note: 'upper' },
  });
  assert.equal((await authed(server)('/bt/scan.txt', { method: 'PUT', body: 'counts 7\n' })).status, 201);
  const raw = await until('the raw record', async () => {
    const r = await get('/catalog/files/bt/scan.txt');
    return r.status === 200 ? r.body : undefined;
  });
  assert.equal(raw.type, 'raw');
  assert.equal(raw.size, 9);
  assert.equal(raw.owner, 'admin');
  assert.ok(raw.checksums.some((c: Json) => c.type === 'adler32'));

  const derived = await until('the derived record', async () => {
    const r = await get('/catalog/files/bt/scan.txt.upper');
    return r.status === 200 && r.body.provenance ? r.body : undefined;
  });
  assert.equal(derived.type, 'derived');
  const fn = (await get('/functions/derive-node')).body;
  assert.equal(derived.provenance.function, 'derive-node');
  assert.equal(derived.provenance.version, fn.latest.version);
  const activation = (await get(`/activations/${derived.provenance.activation}`)).body;
  assert.equal(activation.cause, 'trigger:derive');
  assert.equal(derived.provenance.inputs[0].id, raw.id);
  assert.equal(derived.provenance.inputs[0].path, '/bt/scan.txt');
  assert.equal(derived.provenance.inputs[0].checksum, `adler32:${raw.checksums.find((c: Json) => c.type === 'adler32').value}`);
  assert.equal(derived.provenance.parameters.note, 'upper');

  const up = (await get('/catalog/lineage/bt/scan.txt.upper?direction=up')).body;
  assert.deepEqual(
    up.edges.map((e: Json) => [e.from, e.to, e.function]),
    [[raw.id, derived.id, 'derive-node']],
  );
  const down = (await get('/catalog/lineage/bt/scan.txt?direction=down')).body;
  assert.ok(down.nodes.some((n: Json) => n.id === derived.id));
});

test('a trigger stores a function’s metadata in the record, noting which version produced it', async () => {
  await post('/triggers', {
    name: 'describe',
    filter: { path: '/bt', glob: '*.dat' },
    target: { function: 'describe' },
    params: { beamline: 'p11' },
    catalog: { annotate: 'scan' },
  });
  await authed(server)('/bt/frame.dat', { method: 'PUT', body: 'x'.repeat(100) });
  const record = await until('the metadata', async () => {
    const r = await get('/catalog/files/bt/frame.dat');
    return r.status === 200 && r.body.metadata.scan ? r.body : undefined;
  });
  assert.deepEqual(record.metadata.scan, { size: 100, kind: 'scan', beamline: 'p11' });
  assert.equal(record.metadataSources.scan.producedBy.function, 'describe');
  const found = (await get('/catalog/search?q=scan.beamline:p11')).body;
  assert.deepEqual(
    found.map((r: Json) => r.path),
    ['/bt/frame.dat'],
  );
});

test('renames and deletions are followed; lineage survives them; the indexer resumes after a restart', async () => {
  const before = (await get('/catalog/files/bt/scan.txt')).body;
  assert.equal(
    (await authed(server)('/bt/scan.txt', { method: 'MOVE', headers: { destination: `${server.url}/bt/scan-renamed.txt` } })).status,
    201,
  );
  const moved = await until('the move', async () => {
    const r = await get('/catalog/files/bt/scan-renamed.txt');
    return r.status === 200 ? r.body : undefined;
  });
  assert.equal(moved.id, before.id);
  assert.equal((await authed(server)('/bt/scan-renamed.txt', { method: 'DELETE' })).status, 204);
  const gone = await until('the deletion', async () => {
    const r = await get(`/catalog/records/${before.id}`);
    return r.body.deleted ? r.body : undefined;
  });
  assert.equal(gone.path, '/bt/scan-renamed.txt');
  const up = (await get('/catalog/lineage/bt/scan.txt.upper?direction=up')).body;
  assert.ok(
    up.nodes.some((n: Json) => n.id === before.id && n.deleted),
    'lineage keeps the deleted input',
  );

  // Stop the indexer, change the namespace, start it again: it takes up from its saved position.
  await server.core!.catalogIndexer.stop();
  const { CatalogIndexer } = await import('../src/catalog/indexer.js');
  assert.equal((await authed(server)('/bt/late.bin', { method: 'PUT', body: 'late' })).status, 201);
  assert.equal((await get('/catalog/files/bt/late.bin')).status, 404);
  const core = server.core!;
  const indexer = new CatalogIndexer({ catalog: core.catalog, eventLog: core.eventLog, invoker: core.invoker, log: core.log });
  await indexer.start();
  await indexer.caughtUp();
  assert.equal((await get('/catalog/files/bt/late.bin')).body.size, 4);
  await indexer.stop();
});
