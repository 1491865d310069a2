// Datasets over a real in-process server: a directory's record grouping the files below it, created,
// read with its current files and totals (as the indexer records uploads and deletions), annotated,
// searched, filtered by what a token may read, removed without touching its files, and the CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, authed, tempDir, type RunningServer } from './support/server.js';
import { cliOk, cliFails } from './support/cli.js';

let server: RunningServer;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const api = (path: string, init: RequestInit = {}, token = server.token) => authed(server, token)(`/api/v1${path}`, init);
const send = async (method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: Json }> => {
  const res = await api(
    path,
    body === undefined ? { method } : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    token,
  );
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as Json) };
};
const search = async (q: string, token?: string): Promise<Json[]> => {
  const r = await send('GET', `/catalog/search?q=${encodeURIComponent(q)}`, undefined, token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as Json[];
};
async function tokenFor(scopes: string[]): Promise<string> {
  const r = await send('POST', '/tokens', { subject: 'carol', scopes });
  return (r.body as { secret: string }).secret;
}
async function upload(path: string, data: string): Promise<void> {
  assert.equal((await authed(server)(path, { method: 'PUT', body: data })).status, 201);
}
const indexed = () => server.core!.catalogIndexer.caughtUp();

before(async () => {
  server = await startServer();
  for (const dir of ['/bt', '/bt/raw', '/bt/raw/a', '/bt/raw/b', '/bt/other']) {
    assert.equal((await authed(server)(dir, { method: 'MKCOL' })).status, 201);
  }
  await upload('/bt/raw/a/scan_1.h5', 'aaaa');
  await upload('/bt/raw/a/scan_2.h5', 'bbbbbb');
  await upload('/bt/raw/b/scan_3.h5', 'cc');
  await upload('/bt/other/x.txt', 'not in the dataset');
  await indexed();
});

after(async () => {
  await server.stop();
});

test('a dataset is created for a directory, 409 a second time, 404 for a missing directory or a file', async () => {
  const made = await send('POST', '/catalog/datasets', {
    path: '/bt/raw',
    type: 'raw',
    metadata: { scicat: { proposal: '11012345', sample: 'silicon wafer' } },
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  assert.equal(made.body.kind, 'dataset');
  assert.equal(made.body.path, '/bt/raw');
  assert.equal(made.body.type, 'raw');
  assert.match(made.body.id, /^rec_/);
  assert.deepEqual(made.body.metadata, { scicat: { proposal: '11012345', sample: 'silicon wafer' } });
  assert.equal(made.body.metadataSources.scicat.by, 'admin');

  assert.equal((await send('POST', '/catalog/datasets', { path: '/bt/raw' })).status, 409);
  assert.equal((await send('POST', '/catalog/datasets', { path: '/bt/nothing' })).status, 404);
  assert.equal((await send('POST', '/catalog/datasets', { path: '/bt/other/x.txt' })).status, 404);
  assert.equal((await send('POST', '/catalog/datasets', { path: '/bt/other', metadata: { 'a.b': {} } })).status, 400);

  // A token without modify there may not create one.
  const reader = await tokenFor(['storage.read:/bt']);
  assert.equal((await send('POST', '/catalog/datasets', { path: '/bt/other' }, reader)).status, 403);
});

test('a dataset shows its current files with count and total size; a deleted file drops out', async () => {
  const d = await send('GET', '/catalog/datasets/bt/raw');
  assert.equal(d.status, 200, JSON.stringify(d.body));
  assert.equal(d.body.kind, 'dataset');
  assert.deepEqual(
    d.body.files.map((f: Json) => f.path),
    ['/bt/raw/a/scan_1.h5', '/bt/raw/a/scan_2.h5', '/bt/raw/b/scan_3.h5'],
  );
  assert.equal(d.body.fileCount, 3);
  assert.equal(d.body.totalSize, 12);
  const first = d.body.files[0];
  assert.match(first.id, /^rec_/);
  assert.equal(first.type, 'raw');
  assert.equal(first.size, 4);
  assert.ok(first.checksums.length > 0);

  await upload('/bt/raw/b/scan_4.h5', '12345678');
  assert.equal((await authed(server)('/bt/raw/a/scan_2.h5', { method: 'DELETE' })).status, 204);
  await indexed();
  const after = await send('GET', '/catalog/datasets/bt/raw');
  assert.deepEqual(
    after.body.files.map((f: Json) => f.path),
    ['/bt/raw/a/scan_1.h5', '/bt/raw/b/scan_3.h5', '/bt/raw/b/scan_4.h5'],
  );
  assert.equal(after.body.fileCount, 3);
  assert.equal(after.body.totalSize, 14);

  assert.equal((await send('GET', '/catalog/datasets/bt/other')).status, 404);
  // The file route is for files, but the record is the same one.
  assert.equal((await send('GET', '/catalog/files/bt/raw')).body.id, d.body.id);
});

test('a token that reads part of the dataset sees only those files; one that reads none of it is refused', async () => {
  const partial = await tokenFor(['storage.read:/bt/raw/a']);
  const d = await send('GET', '/catalog/datasets/bt/raw', undefined, partial);
  assert.equal(d.status, 200, JSON.stringify(d.body));
  assert.deepEqual(
    d.body.files.map((f: Json) => f.path),
    ['/bt/raw/a/scan_1.h5'],
  );
  assert.equal(d.body.fileCount, 1);
  assert.equal(d.body.totalSize, 4);

  const elsewhere = await tokenFor(['storage.read:/bt/other']);
  assert.equal((await send('GET', '/catalog/datasets/bt/raw', undefined, elsewhere)).status, 403);
  // Search shows the dataset only to whoever may read its directory.
  assert.deepEqual(await search('kind:dataset', elsewhere), []);
});

test('annotation, search by kind and by dataset metadata', async () => {
  const annotated = await send('PATCH', '/catalog/datasets/bt/raw', { key: 'user', metadata: { temperature: 80 } });
  assert.equal(annotated.status, 200, JSON.stringify(annotated.body));
  assert.deepEqual(annotated.body.metadata.user, { temperature: 80 });
  assert.equal(annotated.body.kind, 'dataset');
  assert.equal((await send('PATCH', '/catalog/datasets/bt/other', { key: 'user', metadata: { t: 1 } })).status, 404);

  const datasets = await search('kind:dataset');
  assert.deepEqual(
    datasets.map((r) => r.path),
    ['/bt/raw'],
  );
  const files = await search('kind:file');
  assert.ok(files.length >= 4 && files.every((r) => r.kind === 'file'));
  const both = await search('path~/bt/raw');
  assert.ok(both.some((r) => r.kind === 'dataset') && both.some((r) => r.kind === 'file'));
  assert.deepEqual(
    (await search('proposal:11012345')).map((r) => r.path),
    ['/bt/raw'],
  );
  assert.deepEqual(
    (await search('temperature>50 -kind:file')).map((r) => r.path),
    ['/bt/raw'],
  );
  assert.deepEqual(
    (await search('"silicon wafer"')).map((r) => r.path),
    ['/bt/raw'],
  );
  // Any other kind term is the metadata shorthand, as before records had kinds.
  assert.deepEqual(await search('kind:folder'), []);
});

test('the CLI creates, shows and removes a dataset; removal leaves the files', async () => {
  const dir = await tempDir();
  const metaFile = join(dir, 'meta.json');
  await writeFile(metaFile, JSON.stringify({ scicat: { proposal: '999' } }));
  const created = await cliOk(server, ['catalog', 'dataset', 'create', '/bt/raw/b', '--type', 'derived', '--metadata-file', metaFile]);
  assert.match(created.stderr + created.stdout, /created dataset \/bt\/raw\/b/);
  const shown = await cliOk(server, ['catalog', 'dataset', 'show', '/bt/raw/b']);
  assert.match(shown.stdout, /files: 2/);
  assert.match(shown.stdout, /\/bt\/raw\/b\/scan_3\.h5/);
  assert.match(shown.stdout, /\/bt\/raw\/b\/scan_4\.h5/);
  const asJson = JSON.parse((await cliOk(server, ['catalog', 'dataset', 'show', '/bt/raw/b', '--json'])).stdout) as Json;
  assert.equal(asJson.type, 'derived');
  assert.equal(asJson.totalSize, 10);
  assert.deepEqual(asJson.metadata, { scicat: { proposal: '999' } });
  await cliFails(server, ['catalog', 'dataset', 'create', '/bt/raw/b']);

  await cliOk(server, ['catalog', 'dataset', 'rm', '/bt/raw/b']);
  assert.equal((await send('GET', '/catalog/datasets/bt/raw/b')).status, 404);
  assert.equal((await send('DELETE', '/catalog/datasets/bt/raw/b')).status, 404);
  assert.equal((await send('GET', '/catalog/files/bt/raw/b/scan_3.h5')).body.deleted, false);
  // Removed, a dataset can be made again.
  assert.equal((await send('POST', '/catalog/datasets', { path: '/bt/raw/b' })).status, 201);
});
