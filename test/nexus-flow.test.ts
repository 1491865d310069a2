// The photon-science flow end to end, with nobody asking: a NeXus file written by h5py is uploaded;
// triggers run the built-in nexus-metadata and thumbnail functions; the catalogue then holds the
// file's metadata as h5dump reports it, the PNG preview exists beside the data and decodes to the
// right size, and lineage links the preview to the file through the exact function version.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServer, authed, json, tempDir, REPO_ROOT, type RunningServer } from './support/server.js';
import { until } from './support/cli.js';
import { deploy } from './support/functions.js';
import { ddlAt, ddlGroups, ddlText, h5dumpHeader, makeNexus } from './support/nexus.js';

const { PNG } = createRequire(import.meta.url)('pngjs') as { PNG: { sync: { read(buf: Buffer): { width: number; height: number } } } };
const run = promisify(execFile);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

let server: RunningServer;
let work: string;
const RAW = '/beamtime/11012345/raw';

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await authed(server)(`/api/v1${path}`, {
    method,
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: await json(res) };
}

before(async () => {
  await run(process.execPath, [join(REPO_ROOT, 'scripts', 'build-functions.mjs')]);
  work = await tempDir('sluice-nexus-flow-');
  server = await startServer();
  for (const name of ['nexus-metadata', 'thumbnail']) await deploy(server, join(REPO_ROOT, 'functions', name));
  for (const dir of ['/beamtime', '/beamtime/11012345', RAW]) assert.equal((await authed(server)(dir, { method: 'MKCOL' })).status, 201);
  const metadata = await api('POST', '/triggers', {
    name: 'nexus-metadata',
    filter: { path: '/beamtime', glob: '**/*.nxs' },
    target: { function: 'nexus-metadata' },
    catalog: { annotate: 'nexus' },
  });
  assert.equal(metadata.status, 201, JSON.stringify(metadata.body));
  const previews = await api('POST', '/triggers', {
    name: 'thumbnail',
    filter: { path: '/beamtime', glob: '**/*.nxs' },
    target: { function: 'thumbnail' },
    params: { size: 64 },
  });
  assert.equal(previews.status, 201, JSON.stringify(previews.body));
});

after(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('an uploaded NeXus file reaches the catalogue with its metadata, a preview and its lineage', async () => {
  const local = join(work, 'scan_0001.nxs');
  await makeNexus(local, { frames: 5, height: 96, width: 128, dtype: 'uint16' });
  const put = await authed(server)(`${RAW}/scan_0001.nxs`, { method: 'PUT', body: await readFile(local) });
  assert.equal(put.status, 201);

  const record = await until(
    'the NeXus metadata in the catalogue',
    async () => {
      const r = await api('GET', `/catalog/files${RAW}/scan_0001.nxs`);
      return r.status === 200 && r.body.metadata.nexus ? r.body : undefined;
    },
    60_000,
  );
  assert.equal(record.type, 'raw');
  const md = record.metadata.nexus;
  const root = await h5dumpHeader(local);
  // The NX_class tree as h5dump lists it.
  const groups = ddlGroups(root);
  assert.deepEqual(Object.keys(md.tree).sort(), groups.map(([p]) => p).sort());
  for (const [path, node] of groups) assert.equal(md.tree[path], ddlText(node, 'NX_class') ?? null, path);
  // Each NXentry's title and times as h5dump prints the datasets' values.
  const entries = groups.filter(([, n]) => ddlText(n, 'NX_class') === 'NXentry');
  assert.ok(entries.length >= 1);
  const fields = await run('h5dump', ['-d', `${entries[0]![0]}/title`, local]).then((r) => r.stdout);
  const title = /\(0\): "([^"]*)"/.exec(fields)?.[1];
  const entryName = entries[0]![0].slice(1);
  assert.equal(md.entries[entryName].title, title);
  assert.ok(ddlAt(root, `${entries[0]![0]}/start_time`), 'the file has a start_time');
  assert.equal(typeof md.entries[entryName].start_time, 'string');
  assert.equal(record.metadataSources.nexus.producedBy.function, 'nexus-metadata');

  // The preview beside the data, as a derived record pointing at the NeXus file.
  const previewPath = `${RAW}/scan_0001.preview.png`;
  const preview = await until(
    'the preview record',
    async () => {
      const r = await api('GET', `/catalog/files${previewPath}`);
      return r.status === 200 && r.body.provenance ? r.body : undefined;
    },
    60_000,
  );
  const png = PNG.sync.read(Buffer.from(await (await authed(server)(previewPath)).arrayBuffer()));
  assert.deepEqual([png.width, png.height], [64, 48], 'a 128×96 frame fits 64 px keeping its aspect');
  assert.equal(preview.type, 'derived');
  assert.equal(preview.provenance.function, 'thumbnail');
  const fn = (await api('GET', '/functions/thumbnail')).body;
  assert.equal(preview.provenance.version, fn.latest.version);
  assert.equal(preview.provenance.inputs[0].id, record.id);
  assert.equal(preview.provenance.parameters.size, 64);

  // Lineage both ways.
  const down = (await api('GET', `/catalog/lineage${RAW}/scan_0001.nxs?direction=down`)).body;
  assert.deepEqual(
    down.edges.map((e: Json) => [e.from, e.to, e.function]),
    [[record.id, preview.id, 'thumbnail']],
  );
  const up = (await api('GET', `/catalog/lineage${previewPath}?direction=up`)).body;
  assert.ok(up.nodes.some((n: Json) => n.id === record.id));

  // Searchable by its metadata: the entry's title (any metadata path ending in `<entry>.title`).
  const query = `${entryName}.title~${title!.split(' ')[0]!} type:raw`;
  const found = (await api('GET', `/catalog/search?q=${encodeURIComponent(query)}`)).body;
  assert.ok(
    found.some((r: Json) => r.id === record.id),
    JSON.stringify(found.map((r: Json) => r.path)),
  );
});
