// The dCache-compatible namespace REST API over HTTP: shapes, actions, scopes and bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { startServer, authed, json, rawRequest, type RunningServer } from './support/server.js';
import { normalizePath } from '../src/storage/paths.js';

let server: RunningServer;
let api: ReturnType<typeof authed>;
before(async () => {
  server = await startServer();
  api = authed(server);
});
after(async () => server.stop());

const post = (path: string, body: unknown, token?: string) =>
  authed(server, token)(`/api/v1/namespace${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

async function putFile(path: string, data: string) {
  const core = server.core!;
  await core.namespace.put(core.tokens.authenticate(server.token), normalizePath(path), Readable.from([Buffer.from(data)]), {
    createParents: true,
  });
}

async function tokenFor(subject: string, scopes: string[]) {
  const res = await api('/api/v1/tokens', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subject, scopes }),
  });
  return ((await json(res)) as { secret: string }).secret;
}

test('mkdir, stat with children and checksums, labels, xattrs, mv, rm', async () => {
  const created = await post('/', { action: 'mkdir', name: 'beamtime' });
  assert.equal(created.status, 201);
  assert.deepEqual(await json(created), { status: 'success' });
  await putFile('/beamtime/scan.nxs', 'hello');

  const dir = await json(await api('/api/v1/namespace/beamtime?children=true&checksum=true&locality=true&qos=true'));
  assert.equal(dir.fileType, 'DIR');
  assert.equal(dir.fileMimeType, 'application/vnd.dcache.folder');
  assert.match(dir.pnfsId, /^[0-9A-F]{36}$/);
  assert.equal(dir.children.length, 1);
  const child = dir.children[0];
  assert.equal(child.fileName, 'scan.nxs');
  assert.equal(child.fileType, 'REGULAR');
  assert.equal(child.size, 5);
  assert.deepEqual(child.checksums, [{ type: 'ADLER32', value: '062c0215' }]);
  assert.equal(child.fileLocality, 'ONLINE');
  assert.equal(child.currentQos, 'disk');

  assert.equal((await post('/beamtime/scan.nxs', { action: 'set-label', label: 'raw' })).status, 201);
  assert.equal((await post('/beamtime/scan.nxs', { action: 'set-xattr', attributes: { sample: 'lysozyme' } })).status, 201);
  const conflict = await post('/beamtime/scan.nxs', { action: 'set-xattr', mode: 'CREATE', attributes: { sample: 'x' } });
  assert.equal(conflict.status, 409);
  const f = await json(await api('/api/v1/namespace/beamtime/scan.nxs?labels=true&xattr=true'));
  assert.deepEqual(f.labels, ['raw']);
  assert.deepEqual(f.extendedAttributes, { sample: 'lysozyme' });
  assert.equal((await post('/beamtime/scan.nxs', { action: 'rm-xattr', names: 'sample' })).status, 201);
  assert.equal((await post('/beamtime/scan.nxs', { action: 'rm-xattr', names: ['sample'] })).status, 409);

  assert.equal((await post('/beamtime/scan.nxs', { action: 'mv', destination: 'scan-1.nxs' })).status, 201);
  assert.equal((await api('/api/v1/namespace/beamtime/scan-1.nxs')).status, 200);
  assert.equal((await api('/api/v1/namespace/beamtime/scan.nxs')).status, 404);

  const notEmpty = await api('/api/v1/namespace/beamtime', { method: 'DELETE' });
  assert.equal(notEmpty.status, 409);
  assert.equal((await post('/beamtime', { action: 'rm', recursive: true })).status, 201);
  assert.equal((await api('/api/v1/namespace/beamtime')).status, 404);
});

test('errors are RFC 7807 problems that dCache clients can read too', async () => {
  const res = await api('/api/v1/namespace/does/not/exist');
  assert.equal(res.status, 404);
  assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  const body = await json(res);
  assert.equal(body.status, 404);
  assert.equal(body.title, 'Not Found');
  assert.match(body.detail, /does not exist/);
  assert.deepEqual(body.errors, [{ message: 'Not Found', status: '404' }]);
});

test('bad input gets a precise 4xx and changes nothing', async () => {
  await post('/', { action: 'mkdir', name: 'keep' });
  const head = server.core!.eventLog.headSync();
  const raw = async (path: string) => {
    const r = await rawRequest(server, 'GET', path);
    return { status: r.status, detail: (JSON.parse(r.body) as { detail: string }).detail };
  };
  const viaFetch = async (pending: Promise<Response>) => {
    const res = await pending;
    return { status: res.status, detail: ((await json(res)) as { detail: string }).detail };
  };
  const cases: [{ status: number; detail: string }, number, RegExp][] = [
    [await raw('/api/v1/namespace/a/%2e%2e/keep'), 400, /not allowed/],
    [await raw('/api/v1/namespace/a/../keep'), 400, /not allowed/],
    [await raw('/api/v1/namespace/a%00b'), 400, /control character/],
    [await raw('/api/v1/namespace/%E0%A4%A'), 400, /percent-encoding/],
    [await viaFetch(api('/api/v1/namespace/keep?childern=true')), 400, /additional properties/],
    [await viaFetch(post('/', { action: 'mkdir', name: '../etc' })), 400, /must not contain|not allowed/],
    [await viaFetch(post('/', { action: 'mkdir', name: 'api' })), 403, /reserved/],
    [await viaFetch(post('/', { action: 'explode' })), 400, /action/],
    [await viaFetch(post('/keep', { action: 'mv', destination: '/api/v1/x' })), 403, /reserved/],
    [
      await viaFetch(
        api('/api/v1/namespace/keep', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"action":' }),
      ),
      400,
      /JSON/i,
    ],
    [
      await viaFetch(api('/api/v1/namespace/keep', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'mkdir' })),
      415,
      /.*/,
    ],
  ];
  cases.forEach(([got, status, detail], i) => {
    assert.equal(got.status, status, `case ${i}: ${got.detail}`);
    assert.match(got.detail ?? '', detail, `case ${i}`);
  });
  const big = await rawRequest(server, 'GET', '/api/v1/namespace/keep', { 'x-padding': 'x'.repeat(20 * 1024) });
  assert.equal(big.status, 431);
  assert.equal(server.core!.eventLog.headSync(), head, 'refused requests must not change the namespace');
});

test('scopes: a token for another path gets 403 and nothing changes', async () => {
  await post('/', { action: 'mkdir', name: 'alice' });
  await post('/', { action: 'mkdir', name: 'bob' });
  const alice = await tokenFor('alice', ['storage.read:/alice', 'storage.modify:/alice']);
  assert.equal((await authed(server, alice)('/api/v1/namespace/alice')).status, 200);
  assert.equal((await authed(server, alice)('/api/v1/namespace/bob')).status, 403);
  const head = server.core!.eventLog.headSync();
  assert.equal((await post('/bob', { action: 'mkdir', name: 'x' }, alice)).status, 403);
  assert.equal((await post('/bob', { action: 'rm', recursive: true }, alice)).status, 403);
  assert.equal((await post('/alice', { action: 'mv', destination: '/bob/alice' }, alice)).status, 403);
  assert.equal(server.core!.eventLog.headSync(), head);
  assert.equal((await post('/alice', { action: 'mkdir', name: 'x' }, alice)).status, 201);
  const reader = await tokenFor('carol', ['storage.read:/alice']);
  assert.equal((await post('/alice/x', { action: 'set-label', label: 'l' }, reader)).status, 403);
});
