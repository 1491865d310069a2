// The function registry over the real HTTP API: deploys of real bundles (packed like `sluice fn deploy`
// packs them), versions, aliases, references, removal, and every refusal with its status and message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { authed, json, tempDir } from './support/server.js';
import { startRegistryServer, type RegistryServer } from './support/registry-server.js';
import { nodeBundle, tarGz } from './support/tar.js';
import { packBundle } from '../src/cli/bundle-pack.js';
import type { FunctionRemoved } from '../src/functions/registry.js';
import type { VersionId } from '../src/functions/types.js';
import { validateManifest } from '../src/functions/manifest.js';

const MAX_BUNDLE = 256 * 1024;
let server: RegistryServer;
let work: string;
const removedEvents: FunctionRemoved[] = [];

before(async () => {
  server = await startRegistryServer({ maxBundleBytes: MAX_BUNDLE });
  server.functions.on('removed', (e) => removedEvents.push(e));
  work = await tempDir('sluice-fn-src-');
});
after(async () => {
  await server.stop();
  await rm(work, { recursive: true, force: true });
});

/** Writes a function directory; returns its path. */
async function functionDir(dirName: string, files: Record<string, string | { text: string; mode: number }>): Promise<string> {
  const dir = join(work, dirName);
  await rm(dir, { recursive: true, force: true });
  for (const [path, content] of Object.entries(files)) {
    const file = join(dir, path);
    await mkdir(join(file, '..'), { recursive: true });
    const { text, mode } = typeof content === 'string' ? { text: content, mode: 0o644 } : content;
    await writeFile(file, text);
    await chmod(file, mode);
  }
  return dir;
}

const echoDir = (name: string, code = 'export const handler = (e) => e;\n', manifest: Record<string, unknown> = {}) =>
  functionDir(name, {
    'sluice.function.json': JSON.stringify({ name, runtime: 'node', handler: 'main.handler', description: 'echoes', ...manifest }),
    'main.mjs': code,
  });

async function post(archive: Buffer, query = '', token = server.token, contentType = 'application/gzip') {
  const res = await authed(server, token)(`/api/v1/functions${query}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: archive,
  });
  return { status: res.status, location: res.headers.get('location'), body: await json(res) };
}

const api = (path: string, init: RequestInit = {}, token = server.token) => authed(server, token)(`/api/v1${path}`, init);
const putAlias = (name: string, alias: string, version: string, token = server.token) =>
  api(
    `/functions/${name}/aliases/${alias}`,
    { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version }) },
    token,
  );

async function issue(scopes: string[]): Promise<string> {
  const res = await api('/tokens', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subject: 'dev', scopes }),
  });
  return (await json(res)).secret as string;
}

test('deploy answers 201 with the version and its Location; identical content answers 200 with the same digest', async () => {
  const dir = await echoDir('echo');
  const first = await post(await packBundle(dir));
  assert.equal(first.status, 201, JSON.stringify(first.body));
  assert.match(first.body.version, /^[0-9a-f]{64}$/);
  assert.equal(first.body.seq, 1);
  assert.equal(first.body.name, 'echo');
  assert.equal(first.body.createdBy, 'admin');
  assert.deepEqual(first.body.aliases, ['latest']);
  assert.equal(first.body.manifest.limits.timeoutSeconds, 60, 'defaults are filled in');
  assert.equal(first.location, `/api/v1/functions/echo/versions/${first.body.version}`);
  const bundle = join(server.dataDir, 'functions', 'echo', first.body.version);
  assert.equal(server.functions.bundleDir(first.body), bundle);
  assert.equal((await stat(join(bundle, 'main.mjs'))).mode & 0o222, 0, 'bundle files are read-only');

  // Packed again (new archive bytes, same content): the same version.
  await writeFile(join(dir, 'main.mjs'), 'export const handler = (e) => e;\n');
  const again = await post(await packBundle(dir));
  assert.equal(again.status, 200);
  assert.equal(again.body.version, first.body.version);
  assert.equal(again.body.seq, 1);

  const shown = await json(await api(first.location!.slice('/api/v1'.length)));
  assert.equal(shown.version, first.body.version);
});

test('changed content becomes seq 2 and latest; redeploying the old content moves latest back', async () => {
  const v1 = await post(await packBundle(await echoDir('counter', 'export const handler = () => 1;\n')));
  const v2 = await post(await packBundle(await echoDir('counter', 'export const handler = () => 2;\n')));
  assert.equal(v2.status, 201);
  assert.equal(v2.body.seq, 2);
  assert.notEqual(v2.body.version, v1.body.version);
  let fn = await json(await api('/functions/counter'));
  assert.equal(fn.latest.seq, 2);
  assert.equal(fn.versions, 2);

  const back = await post(await packBundle(await echoDir('counter', 'export const handler = () => 1;\n')));
  assert.equal(back.status, 200);
  assert.equal(back.body.seq, 1);
  assert.deepEqual(back.body.aliases, ['latest']);
  fn = await json(await api('/functions/counter'));
  assert.equal(fn.latest.seq, 1);
  const versions = await json(await api('/functions/counter/versions'));
  assert.deepEqual(
    versions.map((v: { seq: number }) => v.seq),
    [2, 1],
    'newest first',
  );
});

test('aliases: set at deploy, set, move, remove; latest cannot be touched', async () => {
  const v1 = (await post(await packBundle(await echoDir('aliased', 'export const handler = () => "a";\n')), '?alias=prod&alias=beta')).body;
  assert.deepEqual(v1.aliases, ['beta', 'latest', 'prod']);
  const v2 = (await post(await packBundle(await echoDir('aliased', 'export const handler = () => "b";\n')))).body;

  let res = await putAlias('aliased', 'beta', '2');
  assert.equal(res.status, 200);
  assert.deepEqual((await json(res)).aliases, ['beta', 'latest']);
  res = await putAlias('aliased', 'canary', v2.version.slice(0, 8));
  assert.equal((await json(res)).seq, 2);
  const fn = await json(await api('/functions/aliased'));
  assert.deepEqual(fn.aliases, { beta: v2.version, canary: v2.version, latest: v2.version, prod: v1.version });

  res = await api('/functions/aliased/aliases/canary', { method: 'DELETE' });
  assert.equal(res.status, 204);
  res = await api('/functions/aliased/aliases/canary', { method: 'DELETE' });
  assert.equal(res.status, 404);
  assert.match((await json(res)).detail, /function aliased has no alias "canary"/);

  for (const attempt of [putAlias('aliased', 'latest', '1'), api('/functions/aliased/aliases/latest', { method: 'DELETE' })]) {
    const r = await attempt;
    assert.equal(r.status, 400);
    assert.match((await json(r)).detail, /"latest" always points at the newest deploy/);
  }
  res = await putAlias('aliased', 'Prod', '1');
  assert.equal(res.status, 400);
  assert.match((await json(res)).detail, /alias "Prod" must be lower-case/);
  res = await putAlias('aliased', 'deadbeef', '1');
  assert.match((await json(res)).detail, /looks like a version digest/);
  res = await putAlias('aliased', 'prod', '7');
  assert.equal(res.status, 404);
  assert.match((await json(res)).detail, /function aliased has no version 7/);
  const deployLatest = await post(await packBundle(await echoDir('aliased')), '?alias=latest');
  assert.equal(deployLatest.status, 400);
});

test('references resolve by alias, seq and digest prefix; bad ones get precise errors', async () => {
  const v1 = (await post(await packBundle(await echoDir('refs', 'export const handler = () => 1;\n')), '?alias=prod')).body;
  const v2 = (await post(await packBundle(await echoDir('refs', 'export const handler = () => 2;\n')))).body;
  const get = async (ref: string) => {
    const res = await api(`/functions/refs/versions/${ref}`);
    return { status: res.status, body: await json(res) };
  };
  assert.equal((await get('prod')).body.version, v1.version);
  assert.equal((await get('latest')).body.version, v2.version);
  assert.equal((await get('1')).body.version, v1.version);
  assert.equal((await get(v2.version.slice(0, 7))).body.seq, 2);
  assert.equal((await get(v2.version.toUpperCase())).body.seq, 2);
  assert.equal((await server.functions.resolve('refs')).seq, 2, 'the default is latest');

  assert.equal((await get('9')).status, 404);
  assert.match((await get('9')).body.detail, /function refs has no version 9/);
  assert.match((await get('nope')).body.detail, /function refs has no alias "nope"/);
  assert.match((await get('abcdef0')).body.detail, /function refs has no version abcdef0/);
  const bad = await get('x.y');
  assert.equal(bad.status, 400);
  assert.match(bad.body.detail, /not a version reference/);
  const unknown = await api('/functions/ghost/versions/1');
  assert.equal(unknown.status, 404);
  assert.match((await json(unknown)).detail, /no function ghost/);
});

test('an ambiguous digest prefix is a 409', async () => {
  // Two real digests sharing 7 hex digits would take ~2^28 deploys; record two such versions directly.
  const manifest = validateManifest({ name: 'twins', runtime: 'node', handler: 'main.handler' });
  for (const tail of ['1', '2']) {
    await server.store.recordDeploy(
      { name: 'twins', version: ('abcdef1' + tail.repeat(57)) as VersionId, manifest, size: 1, createdBy: 'test' },
      [],
    );
  }
  const res = await api('/functions/twins/versions/abcdef1');
  assert.equal(res.status, 409);
  assert.match((await json(res)).detail, /version prefix abcdef1 of twins is ambiguous \(seq 2, 1\); give more digits/);
  assert.equal((await api('/functions/twins/versions/abcdef12')).status, 200);
});

test('a version held by an alias cannot be removed; removing versions and functions', async () => {
  const v1 = (await post(await packBundle(await echoDir('doomed', 'export const handler = () => 1;\n')), '?alias=prod')).body;
  const v2 = (await post(await packBundle(await echoDir('doomed', 'export const handler = () => 2;\n')))).body;
  let res = await api('/functions/doomed/versions/1', { method: 'DELETE' });
  assert.equal(res.status, 409);
  assert.match((await json(res)).detail, /version 1 of doomed is still aliased as prod/);

  removedEvents.length = 0;
  res = await api('/functions/doomed/versions/latest', { method: 'DELETE' });
  assert.equal(res.status, 204);
  assert.deepEqual(removedEvents, [{ name: 'doomed', version: v2.version }]);
  assert.ok(!existsSync(join(server.dataDir, 'functions', 'doomed', v2.version)), 'the bundle is gone');
  assert.deepEqual((await json(await api('/functions/doomed'))).latest.aliases, ['latest', 'prod'], 'latest fell back to seq 1');

  res = await api('/functions/doomed', { method: 'DELETE' });
  assert.equal(res.status, 204);
  assert.deepEqual(removedEvents.at(-1), { name: 'doomed' });
  assert.ok(!existsSync(join(server.dataDir, 'functions', 'doomed')));
  for (const path of ['/functions/doomed', '/functions/doomed/versions', `/functions/doomed/versions/${v1.version}`]) {
    const r = await api(path);
    assert.equal(r.status, 404, path);
    assert.match((await json(r)).detail, /no function doomed/);
  }
  assert.equal((await api('/functions/doomed', { method: 'DELETE' })).status, 404);
  const list = (await json(await api('/functions'))) as { name: string }[];
  assert.ok(!list.some((f) => f.name === 'doomed'));
});

test('the function list summarizes each function', async () => {
  await post(await packBundle(await echoDir('listed', undefined, { description: 'for the list' })), '?alias=prod');
  const list = (await json(await api('/functions'))) as {
    name: string;
    description: string;
    runtime: string;
    latest: { version: string; seq: number; created: string };
    versions: number;
    aliases: Record<string, string>;
  }[];
  const item = list.find((f) => f.name === 'listed')!;
  assert.equal(item.description, 'for the list');
  assert.equal(item.runtime, 'node');
  assert.equal(item.latest.seq, 1);
  assert.equal(item.versions, 1);
  assert.deepEqual(item.aliases, { latest: item.latest.version, prod: item.latest.version });
  assert.deepEqual(
    list.map((f) => f.name),
    [...list.map((f) => f.name)].sort(),
  );
});

test('invalid manifests are refused with a message naming the field', async () => {
  const cases: [Record<string, unknown> | string, Record<string, string | { text: string; mode: number }>, RegExp][] = [
    [{ limits: { timeoutSeconds: 0 } }, {}, /limits\.timeoutSeconds must be > 0/],
    [{ limts: {} }, {}, /unknown field "limts"/],
    [{ name: 'Bad_Name' }, {}, /name "Bad_Name" must be lower-case/],
    [{ runtime: 'ruby' }, {}, /runtime must be one of node, python, exec, custom/],
    [{ scaling: { min: 5, max: 2 } }, {}, /scaling\.min \(5\) must be <= scaling\.max \(2\)/],
    [{ handler: 'main' }, {}, /handler "main" must be module\.function/],
    [{ handler: 'other.handler' }, {}, /handler "other\.handler" needs other\.mjs, other\.js, other\.cjs/],
    [{ runtime: 'exec', handler: 'run.sh' }, { 'run.sh': '#!/bin/sh\n' }, /handler "run\.sh" is not executable/],
    [{ runtime: 'exec', handler: '/bin/sh' }, {}, /handler "\/bin\/sh" must be a path relative to the bundle root/],
    [{ runtime: 'custom', handler: '../x' }, {}, /handler "\.\.\/x" must not contain "\.\."/],
    ['{"name": ', {}, /sluice\.function\.json: not valid JSON/],
  ];
  for (const [manifest, extra, detail] of cases) {
    const text =
      typeof manifest === 'string' ? manifest : JSON.stringify({ name: 'invalid', runtime: 'node', handler: 'main.handler', ...manifest });
    const dir = await functionDir('invalid', { 'sluice.function.json': text, 'main.mjs': '', ...extra });
    const res = await post(await packBundle(dir));
    assert.equal(res.status, 400, String(detail));
    assert.match(res.body.detail, detail);
  }
  const yaml = await functionDir('invalid', { 'sluice.function.yaml': 'name: invalid\nruntime: node\nhandler: main.handler\nlimits: 3\n' });
  const res = await post(await packBundle(yaml));
  assert.match(res.body.detail, /sluice\.function\.yaml: limits must be an object/);
  assert.equal((await api('/functions/invalid')).status, 404, 'nothing was recorded');
});

test('malicious archives are refused with 400 and leave nothing behind', async () => {
  const cases: [Parameters<typeof tarGz>[0], RegExp][] = [
    [[...nodeBundle('evil'), { path: '../evil', body: 'x' }], /"\.\.\/evil" leaves the bundle/],
    [[...nodeBundle('evil'), { path: '/tmp/evil', body: 'x' }], /"\/tmp\/evil" has an absolute path/],
    [[...nodeBundle('evil'), { path: 'passwd', type: 'SymbolicLink', linkpath: '/etc/passwd' }], /"passwd" is a symbolic link/],
    [[...nodeBundle('evil'), { path: 'hard', type: 'Link', linkpath: '/etc/passwd' }], /"hard" is a hard link/],
  ];
  for (const [entries, detail] of cases) {
    const res = await post(tarGz(entries));
    assert.equal(res.status, 400, String(detail));
    assert.match(res.body.detail, detail);
  }
  assert.equal((await api('/functions/evil')).status, 404);
  const left = await readdir(join(server.dataDir, 'functions'));
  assert.ok(!left.includes('evil'), 'no bundle directory');
  assert.deepEqual(await readdir(join(server.dataDir, 'functions', '.staging')), [], 'no staging leftovers');
  assert.ok(!existsSync(join(server.dataDir, 'evil')) && !existsSync('/tmp/evil'));
});

test('oversized archives are refused with 413, whether announced or streamed', async () => {
  const big = tarGz([...nodeBundle('big'), { path: 'noise', body: (await import('node:crypto')).randomBytes(MAX_BUNDLE + 1) }]);
  const announced = await authed(server)('/api/v1/functions', {
    method: 'POST',
    headers: { 'content-type': 'application/gzip' },
    body: big,
  });
  assert.equal(announced.status, 413);
  assert.equal(announced.headers.get('connection'), 'close', 'an announced oversize is not read at all');
  assert.match((await json(announced)).detail, /larger than 262144 bytes/);

  // Streamed without a Content-Length: the unpacker counts the bytes itself.
  const res = await fetch(server.url + '/api/v1/functions', {
    method: 'POST',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/gzip' },
    body: new Blob([big]).stream(),
    duplex: 'half',
  } as RequestInit);
  assert.equal(res.status, 413);
  // Inflating past the cap (content well compressible) is refused too.
  const inflated = await post(tarGz([...nodeBundle('big'), { path: 'zeros', body: Buffer.alloc(MAX_BUNDLE + 1) }]));
  assert.equal(inflated.status, 413);
  assert.match(inflated.body.detail, /unpacks to more than 262144 bytes/);
  assert.equal((await api('/functions/big')).status, 404);
});

test('a deploy needs a tar.gz body: other media types are 415', async () => {
  const archive = tarGz(nodeBundle('typed'));
  for (const type of ['application/json', 'text/plain', 'application/zip']) {
    const res = await post(type === 'application/json' ? Buffer.from('{}') : archive, '', server.token, type);
    assert.equal(res.status, 415, type);
  }
  assert.equal((await post(archive, '', server.token, 'application/x-gzip')).status, 201);
});

test('scopes: function.deploy deploys and removes; function.invoke may only look', async () => {
  const invoker = await issue(['function.invoke']);
  const deployer = await issue(['function.deploy']);
  const storageOnly = await issue(['storage.read:/']);
  const archive = await packBundle(await echoDir('scoped'));

  const refused = await post(archive, '', invoker);
  assert.equal(refused.status, 403);
  assert.match(refused.body.detail, /function\.deploy/);
  assert.equal((await api('/functions/scoped')).status, 404, 'nothing was deployed');

  const deployed = await post(archive, '', deployer);
  assert.equal(deployed.status, 201);
  assert.equal(deployed.body.createdBy, 'dev');

  for (const path of ['/functions', '/functions/scoped', '/functions/scoped/versions', '/functions/scoped/versions/latest']) {
    assert.equal((await api(path, {}, invoker)).status, 200, path);
    assert.equal((await api(path, {}, deployer)).status, 200, path);
    const none = await api(path, {}, storageOnly);
    assert.equal(none.status, 403, path);
    assert.match((await json(none)).detail, /function\.invoke or function\.deploy/);
  }
  assert.equal((await putAlias('scoped', 'prod', '1', invoker)).status, 403);
  assert.equal((await api('/functions/scoped/versions/1', { method: 'DELETE' }, invoker)).status, 403);
  assert.equal((await api('/functions/scoped', { method: 'DELETE' }, invoker)).status, 403);
  assert.equal((await putAlias('scoped', 'prod', '1', deployer)).status, 200);
  assert.equal((await api('/functions/scoped/aliases/prod', { method: 'DELETE' }, deployer)).status, 204);
  assert.equal((await api('/functions/scoped', { method: 'DELETE' }, deployer)).status, 204);
  assert.equal((await fetch(server.url + '/api/v1/functions')).status, 401);
});

test('the OpenAPI document describes the function routes', async () => {
  const doc = await json(await api('/openapi.json'));
  assert.ok(doc.paths['/api/v1/functions'].post);
  assert.ok(doc.paths['/api/v1/functions/{name}/versions/{ref}'].get);
});
