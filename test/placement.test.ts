// Placement end to end, with real parts: a sluice server with two more local SEs, a tape SE and two
// other sluice servers as remote WebDAV SEs (plus nginx), rules with SE expressions, QoS
// transitions, staging, corruption found by verification and repaired, third-party copy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile, readdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, tempDir, authed, json, type RunningServer } from './support/server.js';
import { startNginxDav, type NginxDav } from './support/nginx.js';
import { until } from './support/cli.js';
import type { StorageEvent } from '../src/events/types.js';
import { LocalStorageElement } from '../src/storage/local-se.js';

const PLACEMENT = {
  retryBaseSeconds: 0.2,
  repairIntervalSeconds: 0.5,
  stageWaitSeconds: 10,
  pinSeconds: 60,
  qosClasses: { 'eu-twice': [{ copies: 2, expression: 'region=eu' }] },
};
const STAGE_DELAY = 0.6;

let a: RunningServer;
let b: RunningServer;
let c: RunningServer;
let nginx: NginxDav;
let api: ReturnType<typeof authed>;
let seRoot: string;

/** Loosely typed JSON from the API, for assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const sha = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await api(path, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function ok(method: string, path: string, body?: unknown): Promise<Json> {
  const r = await call(method, path, body);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function put(path: string, data: Buffer): Promise<void> {
  const res = await api(path, { method: 'PUT', body: data });
  assert.ok(res.status === 201 || res.status === 204, `PUT ${path}: ${res.status}`);
}

async function mkcol(path: string): Promise<void> {
  const res = await api(path, { method: 'MKCOL' });
  assert.equal(res.status, 201, `MKCOL ${path}`);
}

async function waitRule(id: string, state = 'OK', timeoutMs = 20_000): Promise<Json> {
  return until(
    `rule ${id} ${state}`,
    async () => {
      const r = await ok('GET', `/api/v1/rules/${id}`);
      return r.state === state ? r : undefined;
    },
    timeoutMs,
  );
}

async function fileInfo(path: string): Promise<Json> {
  return ok('GET', `/api/v1/namespace${path}?locality=true&qos=true&replicas=true&locations=true`);
}

/** The replicas of a file as the namespace store holds them (with their locations). */
async function replicasOf(path: string) {
  return a.core!.namespace.replicas({ subject: 'admin', scopes: [{ kind: 'admin' }], tokenId: 't' } as never, path as never);
}

/** The bytes of a replica, read straight from its SE's backend. */
async function replicaBytes(se: string, location: string): Promise<Buffer> {
  const stream = await a.core!.placement.registry.backend(se)!.read(location);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function eventsOf(type: string, path: string): Promise<StorageEvent[]> {
  return (await a.core!.eventLog.read(0, 100_000)).filter((e) => e.type === type && e.path === path);
}

before(async () => {
  seRoot = await tempDir('sluice-se-');
  b = await startServer();
  c = await startServer();
  nginx = await startNginxDav();
  a = await startServer({ placement: PLACEMENT, logLevel: (process.env.SLUICE_TEST_LOG as never) ?? 'silent' });
  api = authed(a);
  await ok('PATCH', '/api/v1/storage-elements/local', { set: { site: 'origin' } });
  await ok('POST', '/api/v1/storage-elements', {
    name: 'disk-desy',
    kind: 'local',
    path: join(seRoot, 'disk-desy'),
    attributes: { site: 'desy', region: 'eu' },
  });
  await ok('POST', '/api/v1/storage-elements', {
    name: 'disk-cern',
    kind: 'local',
    path: join(seRoot, 'disk-cern'),
    attributes: { site: 'cern', region: 'eu' },
  });
  await ok('POST', '/api/v1/storage-elements', {
    name: 'tape-desy',
    kind: 'tape',
    path: join(seRoot, 'tape-desy'),
    attributes: { site: 'desy' },
    flushDelaySeconds: 0.2,
    stageDelaySeconds: STAGE_DELAY,
  });
  await ok('POST', '/api/v1/storage-elements', {
    name: 'remote-b',
    kind: 'webdav',
    url: `${b.url}/replicas/a`,
    token: b.token,
    attributes: { site: 'remote' },
  });
  await ok('POST', '/api/v1/storage-elements', {
    name: 'remote-c',
    kind: 'webdav',
    url: `${c.url}/replicas/a`,
    token: c.token,
    attributes: { site: 'faraway' },
  });
  await ok('POST', '/api/v1/storage-elements', {
    name: 'nginx',
    kind: 'webdav',
    url: `${nginx.url}/sluice`,
    attributes: { site: 'nginx' },
  });
});

after(async () => {
  await a?.stop();
  await b?.stop();
  await c?.stop();
  await nginx?.stop();
});

test('storage elements: attributes, kinds, space, secrets never shown, bad specs refused', async () => {
  const list = await ok('GET', '/api/v1/storage-elements');
  const names = list.map((s: Json) => s.name);
  assert.deepEqual(names, ['disk-cern', 'disk-desy', 'local', 'nginx', 'remote-b', 'remote-c', 'tape-desy']);
  const tape = list.find((s: Json) => s.name === 'tape-desy');
  assert.equal(tape.attributes.medium, 'tape');
  assert.equal(list.find((s: Json) => s.name === 'local').landing, true);
  const remote = await ok('GET', '/api/v1/storage-elements/remote-b');
  assert.equal(remote.spec.token, '[set]');
  assert.ok(!JSON.stringify(list).includes(b.token), 'no SE token in Json response');
  assert.ok(remote.space.total > 0 && remote.space.free >= 0);

  const dup = await call('POST', '/api/v1/storage-elements', { name: 'disk-desy', kind: 'local', path: join(seRoot, 'x') });
  assert.equal(dup.status, 409);
  const badKind = await call('POST', '/api/v1/storage-elements', { name: 'x', kind: 'ftp', path: '/tmp' });
  assert.equal(badKind.status, 400);
  assert.match(badKind.body.detail, /kind/);
  const relative = await call('POST', '/api/v1/storage-elements', { name: 'rel', kind: 'local', path: 'relative/dir' });
  assert.equal(relative.status, 400);
  const unreachable = await call('POST', '/api/v1/storage-elements', { name: 'gone', kind: 'webdav', url: 'http://127.0.0.1:1/x' });
  assert.equal(unreachable.status, 400);
  assert.match(unreachable.body.detail, /cannot be initialised/);

  // Only admins manage SEs.
  const { secret } = await ok('POST', '/api/v1/tokens', { scopes: ['storage.read:/', 'storage.modify:/'] });
  const user = authed(a, secret);
  const refused = await user('/api/v1/storage-elements', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'mine', kind: 'local', path: join(seRoot, 'mine') }),
  });
  assert.equal(refused.status, 403);
});

test('a rule copies=2, site!=origin makes two verified replicas, for files there before and after it', async () => {
  await mkcol('/exp1');
  const data = new Map<string, Buffer>();
  for (let i = 0; i < 3; i++) data.set(`/exp1/before-${i}.bin`, randomBytes(50_000 + i));
  for (const [p, d] of data) await put(p, d);

  const bad = await call('POST', '/api/v1/rules', { path: '/exp1', copies: 2, expression: 'site!=origin&(medium=disk' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.detail, /position/);
  const tooMany = await call('POST', '/api/v1/rules', { path: '/exp1', copies: 3, expression: 'region=eu' });
  assert.equal(tooMany.status, 400);
  assert.match(tooMany.body.detail, /selects 2 storage elements/);

  const rule = await ok('POST', '/api/v1/rules', { path: '/exp1', copies: 2, expression: 'site!=origin' });
  for (let i = 0; i < 2; i++) {
    const p = `/exp1/after-${i}.bin`;
    data.set(p, randomBytes(70_000 + i));
    await put(p, data.get(p)!);
  }
  const done = await waitRule(rule.id);
  assert.deepEqual(done.locks, { ok: 10, replicating: 0, stuck: 0 });

  let pair: string | undefined;
  for (const [p, d] of data) {
    const replicas = (await replicasOf(p)).filter((r) => r.se !== 'local');
    const good = replicas.filter((r) => r.state === 'AVAILABLE' || r.state === 'NEARLINE');
    assert.equal(good.length, 2, `${p}: ${JSON.stringify(replicas)}`);
    for (const r of good) {
      assert.notEqual(r.se, 'local');
      // Read back from wherever the copy went (a local directory, another sluice, nginx); a tape copy only once staged.
      if (r.online) assert.equal(sha(await replicaBytes(r.se, r.location)), sha(d), `${p} on ${r.se}`);
    }
    // Grouped by dataset: every file of the directory sits on the same SEs.
    const ses = good
      .map((r) => r.se)
      .sort()
      .join(',');
    pair ??= ses;
    assert.equal(ses, pair);
    assert.equal((await eventsOf('REPLICA_AVAILABLE', p)).length, 2);
  }
  const ruleEvents = (await a.core!.eventLog.read(0, 100_000)).filter((e) => e.type === 'RULE_STATE' && e.data?.rule === rule.id);
  assert.equal(ruleEvents.at(-1)!.data!.state, 'OK');
  const transfers = await ok('GET', `/api/v1/transfers?rule=${rule.id}`);
  assert.ok(transfers.length >= 10 && transfers.every((t: Json) => t.state === 'DONE' && t.bytesDone === t.size));

  // A replica a rule protects is never cleaned up; removing the rule makes them deletable.
  const protectedOne = (await replicasOf('/exp1/before-0.bin')).find((r) => r.se !== 'local')!;
  assert.equal(await a.core!.placement.store.isProtected(await entryIdOf('/exp1/before-0.bin'), protectedOne.se), true);
  const del = await api(`/api/v1/rules/${rule.id}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal(await a.core!.placement.store.isProtected(await entryIdOf('/exp1/before-0.bin'), protectedOne.se), false);
});

async function entryIdOf(path: string): Promise<number> {
  const file = await a.core!.placement.store.fileByPath(path);
  return file!.entryId;
}

test('disk+tape: the transition flushes to tape; reported dCache-style with targetQos while it runs', async () => {
  await mkcol('/exp2');
  const d = randomBytes(200_000);
  await put('/exp2/scan.nxs', d);
  assert.equal((await fileInfo('/exp2/scan.nxs')).currentQos, 'disk');
  const r = await call('POST', '/api/v1/namespace/exp2/scan.nxs', { action: 'qos', target: 'disk+tape' });
  assert.equal(r.status, 201);
  assert.deepEqual(r.body, { status: 'success' });
  const during = await fileInfo('/exp2/scan.nxs');
  assert.equal(during.targetQos, 'disk+tape');
  const afterwards = await until('disk+tape', async () => {
    const info = await fileInfo('/exp2/scan.nxs');
    return info.currentQos === 'disk+tape' && info.targetQos === undefined ? info : undefined;
  });
  assert.equal(afterwards.fileLocality, 'ONLINE_AND_NEARLINE');
  assert.equal((await eventsOf('REPLICA_FLUSHED', '/exp2/scan.nxs')).length, 1);
  // The transition is recorded as done once the judge has seen the flush (a moment after the replicas show it).
  const qosEvents = await until('QOS_CHANGED', async () => {
    const e = await eventsOf('QOS_CHANGED', '/exp2/scan.nxs');
    return e.length > 0 ? e : undefined;
  });
  assert.deepEqual(
    qosEvents.map((e) => [e.data!.previous, e.data!.qos]),
    [['disk', 'disk+tape']],
  );
  // The bytes are on the emulated tape.
  const tapeReplica = (await replicasOf('/exp2/scan.nxs')).find((x) => x.se === 'tape-desy')!;
  assert.equal(tapeReplica.state, 'NEARLINE');
  const onTape = await readFile(join(seRoot, 'tape-desy', 'tape', tapeReplica.location.slice(0, 2), tapeReplica.location));
  assert.equal(sha(onTape), sha(d));

  const unknown = await call('POST', '/api/v1/namespace/exp2/scan.nxs', { action: 'qos', target: 'platinum' });
  assert.equal(unknown.status, 400);
  assert.match(unknown.body.detail, /unknown QoS class "platinum"; one of: disk, tape, disk\+tape/);
  const dir = await call('POST', '/api/v1/namespace/exp2', { action: 'qos', target: 'tape' });
  assert.equal(dir.status, 404);
});

test('an operator-defined QoS class: its rules place the copies, then the file is reported in that class', async () => {
  const classes = await ok('GET', '/api/v1/qos');
  assert.deepEqual(
    classes.map((c: Json) => c.name),
    ['disk', 'tape', 'disk+tape', 'eu-twice'],
  );
  await mkcol('/exp2b');
  const d = randomBytes(30_000);
  await put('/exp2b/a.bin', d);
  await ok('POST', '/api/v1/namespace/exp2b/a.bin', { action: 'qos', target: 'eu-twice' });
  const done = await until('eu-twice', async () => {
    const info = await fileInfo('/exp2b/a.bin');
    return info.currentQos === 'eu-twice' ? info : undefined;
  });
  assert.deepEqual(done.locations.sort(), ['disk-cern', 'disk-desy'], 'the landing copy no class rule needs was released');
  const qosEvents = await until('QOS_CHANGED', async () => {
    const e = await eventsOf('QOS_CHANGED', '/exp2b/a.bin');
    return e.length > 0 ? e : undefined;
  });
  assert.deepEqual(
    qosEvents.map((e) => e.data!.qos),
    ['eu-twice'],
  );
});

test('reading a NEARLINE file stages it (after the stage delay), then it is ONLINE_AND_NEARLINE', async () => {
  await mkcol('/exp3');
  const d = randomBytes(120_000);
  await put('/exp3/raw.h5', d);
  await ok('POST', '/api/v1/namespace/exp3/raw.h5', { action: 'qos', target: 'tape' });
  const nearline = await until('NEARLINE only', async () => {
    const info = await fileInfo('/exp3/raw.h5');
    return info.fileLocality === 'NEARLINE' && info.currentQos === 'tape' ? info : undefined;
  });
  assert.deepEqual(nearline.locations, ['tape-desy']);
  assert.equal((await eventsOf('REPLICA_REMOVED', '/exp3/raw.h5')).length, 1, 'the disk copy left');

  const t0 = Date.now();
  const res = await api('/exp3/raw.h5');
  assert.equal(res.status, 200);
  assert.equal(sha(Buffer.from(await res.arrayBuffer())), sha(d));
  assert.ok(Date.now() - t0 >= STAGE_DELAY * 1000 - 50, `the read waited for the stage (${Date.now() - t0} ms)`);
  assert.equal((await eventsOf('REPLICA_STAGED', '/exp3/raw.h5')).length, 1);
  assert.equal((await fileInfo('/exp3/raw.h5')).fileLocality, 'ONLINE_AND_NEARLINE');
  // A second read is served from the staged copy at once.
  const t1 = Date.now();
  assert.equal(sha(Buffer.from(await (await api('/exp3/raw.h5')).arrayBuffer())), sha(d));
  assert.ok(Date.now() - t1 < STAGE_DELAY * 1000);
});

test('a corrupted replica is found by verification, marked BAD and replicated again', async () => {
  await mkcol('/exp4');
  const d = randomBytes(300_000);
  await put('/exp4/frame.tif', d);
  const rule = await ok('POST', '/api/v1/rules', { path: '/exp4', copies: 1, expression: 'disk-cern' });
  await waitRule(rule.id);
  const replica = (await replicasOf('/exp4/frame.tif')).find((r) => r.se === 'disk-cern')!;
  const file = (a.core!.placement.registry.backend('disk-cern') as LocalStorageElement).pathOf(replica.location);
  // Flip bytes on disk, as a failing disk would.
  const fh = await open(file, 'r+');
  await fh.write(Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, 1000);
  await fh.close();

  const report = await ok('POST', '/api/v1/storage-elements/disk-cern/verify', {});
  assert.deepEqual(report.bad, ['/exp4/frame.tif']);
  assert.equal((await eventsOf('REPLICA_BAD', '/exp4/frame.tif')).length, 1);
  await until('replaced', async () => {
    const r = (await replicasOf('/exp4/frame.tif')).find((x) => x.se === 'disk-cern');
    return r?.state === 'AVAILABLE' && r.location !== replica.location ? r : undefined;
  });
  await waitRule(rule.id);
  const fresh = (await replicasOf('/exp4/frame.tif')).find((x) => x.se === 'disk-cern')!;
  assert.equal(sha(await replicaBytes('disk-cern', fresh.location)), sha(d));
  const again = await ok('POST', '/api/v1/storage-elements/disk-cern/verify', {});
  assert.deepEqual(again.bad, []);
  // The corrupt bytes are gone from the SE.
  await assert.rejects(readFile(file));
});

test('WebDAV SEs: streamed to another sluice and to nginx, pulled by third-party copy between two sluice servers', async () => {
  await mkcol('/exp5');
  const d = randomBytes(1_500_000);
  await put('/exp5/big.bin', d);
  const toB = await ok('POST', '/api/v1/rules', { path: '/exp5', copies: 1, expression: 'remote-b' });
  await waitRule(toB.id);
  const toNginx = await ok('POST', '/api/v1/rules', { path: '/exp5', copies: 1, expression: 'nginx' });
  await waitRule(toNginx.id);
  const toC = await ok('POST', '/api/v1/rules', { path: '/exp5', copies: 1, expression: 'remote-c', source: 'remote-b' });
  await waitRule(toC.id);

  const modes = async (rule: string) =>
    (await ok('GET', `/api/v1/transfers?rule=${rule}`)).map((t: Json) => `${t.source}>${t.destination}:${t.mode}`);
  assert.deepEqual(await modes(toB.id), ['local>remote-b:stream']);
  assert.deepEqual(await modes(toNginx.id), ['local>nginx:stream']);
  assert.deepEqual(await modes(toC.id), ['remote-b>remote-c:tpc']);

  // The bytes are at each endpoint, as each one serves them.
  const replicas = await replicasOf('/exp5/big.bin');
  for (const [se, server] of [
    ['remote-b', b],
    ['remote-c', c],
  ] as const) {
    const r = replicas.find((x) => x.se === se)!;
    const res = await authed(server)(`/replicas/a/${r.location}`);
    assert.equal(res.status, 200);
    assert.equal(sha(Buffer.from(await res.arrayBuffer())), sha(d), se);
  }
  const onNginx = replicas.find((x) => x.se === 'nginx')!;
  assert.equal(sha(await readFile(join(nginx.root, 'sluice', onNginx.location))), sha(d));

  // Reads fall back to a remote replica when no local one is left.
  await ok('POST', '/api/v1/namespace/exp5/big.bin', { action: 'qos', target: 'disk' });
  const res = await api('/exp5/big.bin', { headers: { range: 'bytes=1000-1999' } });
  assert.equal(res.status, 206);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), d.subarray(1000, 2000));
});

test('rules: suspend, lifetime expiry, bad SE expression at evaluation, transfers listing and cancel', async () => {
  await mkcol('/exp6');
  await put('/exp6/a.bin', randomBytes(10_000));
  const rule = await ok('POST', '/api/v1/rules', { path: '/exp6', copies: 1, expression: 'disk-desy', lifetimeSeconds: 1 });
  await waitRule(rule.id);
  // Expired rules lapse in the repair pass.
  await until('expired', async () => ((await call('GET', `/api/v1/rules/${rule.id}`)).status === 404 ? true : undefined));

  const suspended = await ok('POST', '/api/v1/rules', { path: '/exp6', copies: 1, expression: 'disk-cern' });
  await waitRule(suspended.id);
  const s = await ok('POST', `/api/v1/rules/${suspended.id}/suspend`);
  assert.equal(s.state, 'SUSPENDED');
  await put('/exp6/b.bin', randomBytes(10_000));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await ok('GET', `/api/v1/transfers?path=/exp6/b.bin`)).length, 0, 'a suspended rule makes no transfers');
  await ok('POST', `/api/v1/rules/${suspended.id}/resume`);
  await waitRule(suspended.id);

  const missing = await call('GET', '/api/v1/transfers/00000000-0000-0000-0000-000000000000');
  assert.equal(missing.status, 404);
  const done = (await ok('GET', `/api/v1/transfers?rule=${suspended.id}&state=DONE`))[0];
  const cancelDone = await call('POST', `/api/v1/transfers/${done.id}/cancel`);
  assert.equal(cancelDone.status, 409);

  // A user sees only rules and transfers of paths they may read.
  const { secret } = await ok('POST', '/api/v1/tokens', { scopes: ['storage.read:/exp1'] });
  const user = authed(a, secret);
  assert.deepEqual(await json(await user('/api/v1/rules')), []);
  assert.equal((await user(`/api/v1/rules/${suspended.id}`)).status, 404);
  const create = await user('/api/v1/rules', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: '/exp6', copies: 1, expression: 'disk-cern' }),
  });
  assert.equal(create.status, 403);
});

test('an SE taken out of service: its copies are made again elsewhere; back in service it is usable again', async () => {
  await mkcol('/exp7');
  const d = randomBytes(40_000);
  await put('/exp7/x.bin', d);
  const rule = await ok('POST', '/api/v1/rules', { path: '/exp7', copies: 1, expression: 'region=eu' });
  await waitRule(rule.id);
  const first = (await ok('GET', `/api/v1/rules/${rule.id}/locks`))[0].se as string;
  const other = first === 'disk-desy' ? 'disk-cern' : 'disk-desy';
  const down = await ok('PATCH', `/api/v1/storage-elements/${first}`, { available: false });
  assert.equal(down.available, false);
  await until('moved', async () => {
    const locks = await ok('GET', `/api/v1/rules/${rule.id}/locks`);
    return locks.length === 1 && locks[0].se === other && locks[0].state === 'OK' ? locks : undefined;
  });
  await waitRule(rule.id);
  const moved = (await replicasOf('/exp7/x.bin')).find((r) => r.se === other)!;
  assert.equal(sha(await replicaBytes(other, moved.location)), sha(d));
  // New rules do not select it while it is out of service.
  const refused = await call('POST', '/api/v1/rules', { path: '/exp7', copies: 1, expression: first });
  assert.equal(refused.status, 400);
  await ok('PATCH', `/api/v1/storage-elements/${first}`, { available: true });
  const back = await ok('POST', '/api/v1/rules', { path: '/exp7', copies: 1, expression: first });
  await waitRule(back.id);
  await ok('DELETE', `/api/v1/rules/${back.id}`);
  await ok('DELETE', `/api/v1/rules/${rule.id}`);
  const landing = await call('PATCH', '/api/v1/storage-elements/local', { available: false });
  assert.equal(landing.status, 409);
});

test('a nearly full SE sheds replicas no rule protects, oldest first, never protected ones', async () => {
  await ok('POST', '/api/v1/storage-elements', {
    name: 'small',
    kind: 'local',
    path: join(seRoot, 'small'),
    attributes: { site: 'small' },
    capacityBytes: 1_000_000,
  });
  await mkcol('/exp8');
  for (let i = 0; i < 5; i++) await put(`/exp8/f${i}.bin`, randomBytes(190_000));
  const fill = await ok('POST', '/api/v1/rules', { path: '/exp8', copies: 1, expression: 'small' });
  await waitRule(fill.id);
  const keep = await ok('POST', '/api/v1/rules', { path: '/exp8', glob: 'f4.bin', copies: 1, expression: 'small' });
  await waitRule(keep.id);
  assert.equal((await ok('GET', '/api/v1/storage-elements/small')).space.used, 950_000);
  const createdOnSmall = new Map<number, number>();
  for (let i = 0; i < 5; i++) createdOnSmall.set(i, (await replicasOf(`/exp8/f${i}.bin`)).find((r) => r.se === 'small')!.created);
  // The rule lapses: its replicas are no longer protected, and the SE is 95 % full.
  await ok('DELETE', `/api/v1/rules/${fill.id}`);
  const after = await until('cleaned', async () => {
    const se = await ok('GET', '/api/v1/storage-elements/small');
    return se.space.free / se.space.total >= 0.2 ? se : undefined;
  });
  assert.ok(after.space.used <= 800_000);
  const left: number[] = [];
  for (let i = 0; i < 5; i++) if ((await replicasOf(`/exp8/f${i}.bin`)).some((r) => r.se === 'small')) left.push(i);
  assert.ok(left.includes(4), 'the protected replica stays');
  const gone = [0, 1, 2, 3].filter((i) => !left.includes(i));
  const kept = [0, 1, 2, 3].filter((i) => left.includes(i));
  assert.ok(gone.length > 0);
  for (const g of gone)
    for (const k of kept) assert.ok(createdOnSmall.get(g)! <= createdOnSmall.get(k)!, 'the oldest unprotected went first');
  const removed = await eventsOf('REPLICA_REMOVED', `/exp8/f${gone[0]}.bin`);
  assert.match(String(removed[0]!.data!.reason), /space cleanup/);
  // Every file still has its landing replica: cleanup never takes a last copy.
  for (let i = 0; i < 5; i++) assert.ok((await replicasOf(`/exp8/f${i}.bin`)).some((r) => r.se === 'local'));
});

test('a copy that keeps failing makes the rule STUCK with the reason; the repairer moves it to a new SE', async () => {
  await ok('POST', '/api/v1/storage-elements', {
    name: 'tiny',
    kind: 'local',
    path: join(seRoot, 'tiny'),
    attributes: { site: 'tiny', pool: 'overflow' },
    capacityBytes: 100_000,
  });
  await mkcol('/exp9');
  const d = randomBytes(250_000);
  await put('/exp9/large.bin', d);
  const rule = await ok('POST', '/api/v1/rules', { path: '/exp9', copies: 1, expression: 'pool=overflow' });
  const stuck = await waitRule(rule.id, 'STUCK');
  assert.match(stuck.reason, /tiny has no room for 250000 bytes/);
  const failed = (await ok('GET', `/api/v1/transfers?rule=${rule.id}`))[0];
  assert.equal(failed.state, 'FAILED');
  assert.equal(failed.attempts, 5);
  const stuckEvents = (await a.core!.eventLog.read(0, 100_000)).filter((e) => e.type === 'RULE_STATE' && e.data?.rule === rule.id);
  assert.equal(stuckEvents.at(-1)!.data!.state, 'STUCK');

  // A new SE the expression selects: the repairer tries the stuck copy there.
  await ok('POST', '/api/v1/storage-elements', {
    name: 'roomy',
    kind: 'local',
    path: join(seRoot, 'roomy'),
    attributes: { pool: 'overflow' },
  });
  await waitRule(rule.id);
  const locks = await ok('GET', `/api/v1/rules/${rule.id}/locks`);
  assert.deepEqual(
    locks.map((l: Json) => `${l.se}:${l.state}`),
    ['roomy:OK'],
  );
  const placed = (await replicasOf('/exp9/large.bin')).find((r) => r.se === 'roomy')!;
  assert.equal(sha(await replicaBytes('roomy', placed.location)), sha(d));
  assert.equal(
    (await replicasOf('/exp9/large.bin')).find((r) => r.se === 'tiny'),
    undefined,
    'nothing left on the full SE',
  );
  await ok('DELETE', `/api/v1/rules/${rule.id}`);
});

test('overwriting files while they replicate: the rule ends OK with the newest content everywhere', async () => {
  await mkcol('/exp10');
  const rule = await ok('POST', '/api/v1/rules', { path: '/exp10', copies: 1, expression: 'disk-desy' });
  let last = Buffer.alloc(0);
  for (let round = 0; round < 6; round++) {
    last = randomBytes(3_000_000 + round);
    await put('/exp10/moving.bin', last);
  }
  await until('newest content replicated', async () => {
    const r = (await replicasOf('/exp10/moving.bin')).find((x) => x.se === 'disk-desy');
    return r?.state === 'AVAILABLE' && sha(await replicaBytes('disk-desy', r.location)) === sha(last) ? r : undefined;
  });
  await waitRule(rule.id);
  const transfers = await ok('GET', `/api/v1/transfers?path=/exp10/moving.bin`);
  assert.equal(transfers.filter((t: Json) => t.state === 'DONE').length >= 1, true);
  assert.ok(
    transfers.every((t: Json) => ['DONE', 'CANCELLED'].includes(t.state)),
    JSON.stringify(transfers.map((t: Json) => t.state)),
  );
  await ok('DELETE', `/api/v1/rules/${rule.id}`);
});

test('a rule whose first evaluation was cut short is evaluated again at the next start', async () => {
  const dataDir = await tempDir('sluice-reeval-');
  const first = await startServer({ dataDir, placement: PLACEMENT });
  const firstApi = authed(first);
  assert.equal((await firstApi('/data', { method: 'MKCOL' })).status, 201);
  for (let i = 0; i < 3; i++) assert.equal((await firstApi(`/data/f${i}`, { method: 'PUT', body: randomBytes(1000) })).status, 201);
  await firstApi('/api/v1/storage-elements', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'second', kind: 'local', path: join(dataDir, 'second-se') }),
  });
  // Stored as POST /api/v1/rules stores it, but stopped before the judge looked at a single file.
  const now = Date.now();
  await first.core!.placement.store.insertRule({
    id: 'cut-short',
    owner: 'admin',
    path: '/data',
    glob: undefined,
    labels: [],
    xattrs: {},
    copies: 1,
    expression: 'second',
    source: undefined,
    grouping: 'DATASET',
    expires: undefined,
    priority: 3,
    activity: 'test',
    comment: undefined,
    fileId: undefined,
    qos: undefined,
    completed: undefined,
    state: 'REPLICATING',
    reason: undefined,
    locks: { ok: 0, replicating: 0, stuck: 0 },
    created: now,
    updated: now,
  });
  await first.stop();
  const again = await startServer({ dataDir, placement: PLACEMENT });
  try {
    const rule = await until('rule OK after the restart', async () => {
      const r = await json(await authed(again)('/api/v1/rules/cut-short'));
      return r.state === 'OK' ? r : undefined;
    });
    assert.deepEqual(rule.locks, { ok: 3, replicating: 0, stuck: 0 });
  } finally {
    await again.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('no partial replica is ever visible: the tmp directories of the local SEs are empty at rest', async () => {
  await until('transfers at rest', async () => ((await ok('GET', '/api/v1/transfers?state=ACTIVE')).length === 0 ? true : undefined));
  for (const se of ['disk-desy', 'disk-cern']) {
    assert.deepEqual(await readdir(join(seRoot, se, 'tmp')), [], se);
  }
  await writeFile(join(seRoot, 'probe'), 'x'); // the SE root stays writable for operators' tools
});
