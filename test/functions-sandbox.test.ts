// The sandbox as a function sees it, through the real server: no data directory, no token file, no
// other bundle, no network unless allowed, a clean environment; and ctx.storage with a token that
// can do what the caller may and nothing more.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, authed, json, type RunningServer } from './support/server.js';
import { call, deploy, fixtureCopy } from './support/functions.js';

let server: RunningServer;
let tcp: Server;
let port: number;

before(async () => {
  process.env.SLUICE_CANARY_SECRET = 'must-not-leak';
  server = await startServer({ functions: { sandbox: 'bubblewrap' } } as never);
  tcp = createServer((s) => s.end());
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  port = (tcp.address() as { port: number }).port;
  await deploy(server, 'probe-sandbox');
  await deploy(server, 'derive-node');
});

after(async () => {
  delete process.env.SLUICE_CANARY_SECRET;
  tcp.close();
  await server.stop();
});

/** Waits for a prewarmed instance of `runtime` and returns its pid. */
async function prewarmedPid(runtime: string): Promise<number> {
  const until = Date.now() + 15_000;
  for (;;) {
    const cell = server.core!.invoker.prewarmStatus().find((c) => c.runtime === runtime && c.ready);
    if (cell?.pid) return cell.pid;
    if (Date.now() > until) throw new Error(`no prewarmed ${runtime} instance: ${JSON.stringify(server.core!.invoker.prewarmStatus())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a cold start adopts a prewarmed sandbox that shows only this function’s bundle', async () => {
  const cellPid = await prewarmedPid('node');
  const a = await call(server, 'probe-sandbox', { paths: [join(server.dataDir, 'admin.token')], port });
  assert.equal(a.status, 'success', JSON.stringify(a.error));
  assert.equal(a.cold, true);
  const pool = server.core!.invoker.poolStatus('probe-sandbox')[0]!;
  assert.equal(pool.instances.find((i) => i.id === a.instance)?.pid, cellPid, 'the call ran in the prewarmed process');
  assert.deepEqual(a.result.ownBundle, ['main.mjs', 'sluice.function.json']);
  assert.equal(a.result.files[join(server.dataDir, 'admin.token')], 'ENOENT');
  const replacement = await prewarmedPid('node');
  assert.notEqual(replacement, cellPid, 'a new prewarmed instance replaces the adopted one');
});

test('a function cannot read the data directory, the token file or another bundle, nor open a connection', async () => {
  const other = await server.core!.functions.resolve('derive-node');
  const otherBundle = server.core!.functions.bundleDir(other);
  const paths = [join(server.dataDir, 'admin.token'), join(server.dataDir, 'state.sqlite'), join(otherBundle, 'main.mjs'), '/etc/shadow'];
  const a = await call(server, 'probe-sandbox', { paths, port });
  assert.equal(a.status, 'success', JSON.stringify(a.error));
  for (const p of paths) assert.notEqual(a.result.files[p], 'readable', `${p} must not be readable`);
  assert.deepEqual(a.result.ownBundle, ['main.mjs', 'sluice.function.json']);
  assert.notEqual(a.result.writeBundle, 'written', 'the bundle is read-only');
  assert.equal(a.result.writeTmp, 'written', 'a private /tmp is writable');
  assert.notEqual(a.result.connect, 'connected');
  assert.ok(!a.result.env.includes('SLUICE_CANARY_SECRET'), 'the server environment does not leak');
  assert.notEqual(a.result.uid, 0, 'not root inside');
});

test('with "network": true in the manifest the same function may connect', async () => {
  const dir = await fixtureCopy('probe-sandbox');
  await writeFile(
    join(dir, 'sluice.function.json'),
    JSON.stringify({ name: 'probe-network', runtime: 'node', handler: 'main.handler', network: true }),
  );
  await deploy(server, dir);
  const a = await call(server, 'probe-network', { paths: [join(server.dataDir, 'admin.token')], port });
  assert.equal(a.status, 'success', JSON.stringify(a.error));
  assert.equal(a.result.connect, 'connected');
  assert.notEqual(a.result.files[join(server.dataDir, 'admin.token')], 'readable');
});

async function tokenFor(scopes: string[]): Promise<string> {
  const res = await authed(server)('/api/v1/tokens', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subject: 'scientist', scopes }),
  });
  return (await json(res)).secret as string;
}

test('ctx.storage reads the input and writes derived data with the caller’s rights, no more', async () => {
  const api = authed(server);
  assert.equal((await api('/beamtime', { method: 'MKCOL' })).status, 201);
  assert.equal((await api('/elsewhere', { method: 'MKCOL' })).status, 201);
  assert.equal((await api('/beamtime/scan.txt', { method: 'PUT', body: 'counts 42\n' })).status, 201);

  const token = await tokenFor(['function.invoke', 'storage.read:/beamtime', 'storage.create:/beamtime']);
  const ok = await call(server, 'derive-node', { path: '/beamtime/scan.txt' }, { token });
  assert.equal(ok.status, 'success', JSON.stringify(ok.error));
  assert.deepEqual(ok.result, { target: '/beamtime/scan.txt.upper', size: 10 });
  assert.deepEqual(ok.scopes, ['storage.read:/beamtime', 'storage.create:/beamtime']);
  assert.equal(await (await api('/beamtime/scan.txt.upper')).text(), 'COUNTS 42\n');
  assert.ok(ok.logs.some((l: string) => l.includes('derived /beamtime/scan.txt.upper')));

  const denied = await call(server, 'derive-node', { path: '/beamtime/scan.txt', target: '/elsewhere/stolen.txt' }, { token });
  assert.equal(denied.error.code, 'APPLICATION_ERROR');
  assert.match(denied.error.message, /403/);
  assert.equal((await api('/elsewhere/stolen.txt')).status, 404);
});
