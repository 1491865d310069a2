// The WLCG tape REST API against a real server with a real tape SE (emulated tape in a temp dir):
// discovery, archiveinfo, stage requests through SUBMITTED/STARTED to COMPLETED after the stage
// delay, release and eviction, cancel, delete, errors and ownership; and reads of NEARLINE files
// through the WebDAV door, which stage them (or answer 503 with Retry-After when that takes too long).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { startServer, authed, json, tempDir, type RunningServer } from './support/server.js';
import { until } from './support/cli.js';
import { parseIsoDuration } from '../src/api/routes/tape.js';

const FLUSH_DELAY = 0.1;
const STAGE_DELAY = 0.5;

interface Env {
  server: RunningServer;
  api: ReturnType<typeof authed>;
  tapeDir: string;
}

async function startWithTape(placement: Record<string, number>, stageDelaySeconds = STAGE_DELAY): Promise<Env> {
  const server = await startServer({
    placement: { retryBaseSeconds: 0.2, repairIntervalSeconds: 1, stageWaitSeconds: 5, pinSeconds: 60, ...placement },
  });
  const api = authed(server);
  const tapeDir = await tempDir('sluice-tape-');
  const res = await api(
    '/api/v1/storage-elements',
    post({
      name: 'tape1',
      kind: 'tape',
      path: tapeDir,
      attributes: { site: 'local', medium: 'tape' },
      flushDelaySeconds: FLUSH_DELAY,
      stageDelaySeconds,
    }),
  );
  assert.equal(res.status, 201, await res.text());
  return { server, api, tapeDir };
}

async function stopEnv(env: Env | undefined): Promise<void> {
  if (!env) return;
  await env.server.stop();
  await rm(env.tapeDir, { recursive: true, force: true });
}

const post = (body: unknown, method = 'POST'): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

async function locality(env: Env, path: string): Promise<string> {
  const res = await env.api(`/api/v1/namespace${path}?locality=true&qos=true&replicas=true`);
  assert.equal(res.status, 200);
  return ((await json(res)) as { fileLocality: string }).fileLocality;
}

/** Uploads through the door, moves the file to the tape QoS class and waits until it is only on tape. */
async function fileOnTape(env: Env, path: string, data: string): Promise<void> {
  const parts = path.split('/').slice(1, -1);
  for (let i = 1; i <= parts.length; i++) {
    const dir = '/' + parts.slice(0, i).join('/');
    const mk = await env.api(dir, { method: 'MKCOL' });
    assert.ok(mk.status === 201 || mk.status === 405, `MKCOL ${dir}: ${mk.status}`);
  }
  const put = await env.api(path, { method: 'PUT', body: data });
  assert.equal(put.status, 201, await put.text());
  const qos = await env.api(`/api/v1/namespace${path}`, post({ action: 'qos', target: 'tape' }));
  assert.equal(qos.status, 201, await qos.text());
  await until(`${path} NEARLINE`, async () => ((await locality(env, path)) === 'NEARLINE' ? true : undefined), 15_000);
}

async function stage(env: Env, files: unknown[], token?: string): Promise<Response> {
  return authed(env.server, token)('/api/v1/tape/stage', post({ files }));
}

async function stageId(env: Env, files: unknown[], token?: string): Promise<string> {
  const res = await stage(env, files, token);
  assert.equal(res.status, 201, await res.clone().text());
  const body = (await json(res)) as { requestId: string };
  assert.equal(res.headers.get('location'), `${env.server.url}/api/v1/tape/stage/${body.requestId}`);
  return body.requestId;
}

interface StageStatus {
  id: string;
  createdAt: number;
  startedAt?: number;
  completedAt?: number;
  files: { path: string; state: string; error?: string; onDisk?: boolean }[];
}

async function status(env: Env, id: string, token?: string): Promise<StageStatus> {
  const res = await authed(env.server, token)(`/api/v1/tape/stage/${id}`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await json(res)) as StageStatus;
}

/** Every file in a final state, and the request marked completed (a moment after its last file). */
const finished = (s: StageStatus) =>
  s.completedAt !== undefined && s.files.every((f) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(f.state));

async function archiveInfo(env: Env, paths: string[], token?: string) {
  const res = await authed(env.server, token)('/api/v1/tape/archiveinfo', post({ paths }));
  assert.equal(res.status, 200, await res.clone().text());
  return (await json(res)) as { path: string; locality?: string; error?: string }[];
}

async function tokenFor(env: Env, subject: string, scopes: string[]): Promise<string> {
  const res = await env.api('/api/v1/tokens', post({ subject, scopes }));
  assert.equal(res.status, 201, await res.clone().text());
  return ((await json(res)) as { secret: string }).secret;
}

test('parseIsoDuration: ISO 8601 durations to seconds; years, months and junk refused', () => {
  assert.equal(parseIsoDuration('PT1H'), 3600);
  assert.equal(parseIsoDuration('P1D'), 86_400);
  assert.equal(parseIsoDuration('PT30M'), 1800);
  assert.equal(parseIsoDuration('P1DT12H'), 129_600);
  assert.equal(parseIsoDuration('P2W'), 1_209_600);
  assert.equal(parseIsoDuration('PT1.5S'), 2);
  assert.equal(parseIsoDuration('pt10s'), 10);
  for (const bad of ['', 'P', 'PT', '1h', 'PT1H30', 'P1Y', 'P1M', 'PT-1H', 'PT0S', 'P1H', 'PT1D', 'P1DT']) {
    assert.throws(
      () => parseIsoDuration(bad),
      (e: { code?: string }) => e.code === 'BAD_REQUEST',
      bad,
    );
  }
});

describe('tape REST API', () => {
  let env: Env;
  before(async () => {
    env = await startWithTape({});
  });
  after(() => stopEnv(env));

  test('discovery at /.well-known/wlcg-tape-rest-api, without a token, not taken by the WebDAV door', async () => {
    const res = await fetch(`${env.server.url}/.well-known/wlcg-tape-rest-api`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await json(res)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['description', 'endpoints', 'sitename']);
    assert.equal(typeof body.sitename, 'string');
    assert.deepEqual(body.endpoints, [{ uri: `${env.server.url}/api/v1/tape`, version: 'v1', metadata: {} }]);

    // A namespace directory of the same name does not shadow it; its other paths stay the door's.
    assert.equal((await env.api('/.well-known', { method: 'MKCOL' })).status, 201);
    assert.equal((await env.api('/.well-known/other.txt', { method: 'PUT', body: 'x' })).status, 201);
    assert.equal(await (await env.api('/.well-known/other.txt')).text(), 'x');
    assert.equal((await fetch(`${env.server.url}/.well-known/wlcg-tape-rest-api`)).status, 200);
    assert.equal((await env.api('/.well-known/nothing-here')).status, 404);
  });

  test('archiveinfo says TAPE; a stage completes after the stage delay; the bytes read back; release evicts', async () => {
    const path = '/beam/run1/scan_0001.nxs';
    const data = 'tape bytes 0123456789';
    await fileOnTape(env, path, data);
    assert.deepEqual(await archiveInfo(env, [path]), [{ path, locality: 'TAPE' }]);

    const t0 = Date.now();
    const id = await stageId(env, [{ path, diskLifetime: 'PT1H', targetedMetadata: { [env.server.url]: { activity: 'x' } } }]);
    const first = await status(env, id);
    assert.equal(first.id, id);
    assert.ok(['SUBMITTED', 'STARTED'].includes(first.files[0]!.state), first.files[0]!.state);
    assert.equal(first.files[0]!.onDisk, false);
    assert.equal(first.completedAt, undefined);
    assert.ok(Number.isInteger(first.createdAt) && Math.abs(first.createdAt - Date.now() / 1000) < 5, 'createdAt in seconds');

    const done = await until('stage COMPLETED', async () => {
      const s = await status(env, id);
      return finished(s) ? s : undefined;
    });
    const took = Date.now() - t0;
    assert.ok(took >= STAGE_DELAY * 1000, `stage took ${took} ms, less than the stage delay`);
    assert.deepEqual(done.files, [{ path, state: 'COMPLETED', onDisk: true }]);
    assert.ok(Number.isInteger(done.startedAt) && done.startedAt! >= done.createdAt);
    assert.ok(Number.isInteger(done.completedAt) && done.completedAt! >= done.startedAt!);
    assert.ok(Object.keys(done).every((k) => ['id', 'createdAt', 'startedAt', 'completedAt', 'files'].includes(k)));

    assert.equal(await locality(env, path), 'ONLINE_AND_NEARLINE');
    assert.deepEqual(await archiveInfo(env, [path]), [{ path, locality: 'DISK_AND_TAPE' }]);
    const get = await env.api(path);
    assert.equal(get.status, 200);
    assert.equal(await get.text(), data);

    const rel = await env.api(`/api/v1/tape/release/${id}`, post({ paths: [path] }));
    assert.equal(rel.status, 200, await rel.clone().text());
    await until('evicted after release', async () => ((await locality(env, path)) === 'NEARLINE' ? true : undefined), 10_000);
    assert.deepEqual(await archiveInfo(env, [path]), [{ path, locality: 'TAPE' }]);
    // The request still reports the file's COMPLETED stage, now no longer on disk.
    assert.deepEqual((await status(env, id)).files, [{ path, state: 'COMPLETED', onDisk: false }]);
  });

  test('diskLifetime is the pin: a staged copy with PT1S is evicted without a release', async () => {
    const path = '/beam/run1/short_pin.nxs';
    await fileOnTape(env, path, 'short pin');
    const id = await stageId(env, [{ path, diskLifetime: 'PT1S' }]);
    await until('stage COMPLETED', async () => (finished(await status(env, id)) ? true : undefined));
    const staged = Date.now();
    await until('evicted when the pin lapses', async () => ((await locality(env, path)) === 'NEARLINE' ? true : undefined), 10_000);
    assert.ok(Date.now() - staged <= 5_000);
  });

  test('a request of several files; a missing one FAILS with an error, the others complete', async () => {
    const a = '/beam/run2/a.nxs';
    const b = '/beam/run2/b.nxs';
    await fileOnTape(env, a, 'aaa');
    await fileOnTape(env, b, 'bbb');
    const id = await stageId(env, [{ path: a }, { path: '/beam/run2/missing.nxs' }, { path: '//beam//run2/b.nxs' }]);
    const s = await until('stage finished', async () => {
      const st = await status(env, id);
      return finished(st) ? st : undefined;
    });
    const byPath = new Map(s.files.map((f) => [f.path, f]));
    assert.deepEqual(byPath.get(a), { path: a, state: 'COMPLETED', onDisk: true });
    assert.deepEqual(byPath.get(b), { path: b, state: 'COMPLETED', onDisk: true });
    const missing = byPath.get('/beam/run2/missing.nxs')!;
    assert.equal(missing.state, 'FAILED');
    assert.match(missing.error ?? '', /does not exist/);
    assert.equal(missing.onDisk, undefined);
    const info = await archiveInfo(env, [a, '/beam/run2/missing.nxs']);
    assert.deepEqual(info[0], { path: a, locality: 'DISK_AND_TAPE' });
    assert.equal(info[1]!.path, '/beam/run2/missing.nxs');
    assert.equal(info[1]!.locality, undefined);
    assert.match(info[1]!.error ?? '', /does not exist/);
  });

  test('a file already on disk completes at once; archiveinfo says DISK', async () => {
    assert.equal((await env.api('/disk-only', { method: 'MKCOL' })).status, 201);
    assert.equal((await env.api('/disk-only/f.txt', { method: 'PUT', body: 'on disk' })).status, 201);
    assert.deepEqual(await archiveInfo(env, ['/disk-only/f.txt']), [{ path: '/disk-only/f.txt', locality: 'DISK' }]);
    const id = await stageId(env, [{ path: '/disk-only/f.txt' }]);
    const s = await until('stage finished', async () => {
      const st = await status(env, id);
      return finished(st) ? st : undefined;
    });
    assert.deepEqual(s.files, [{ path: '/disk-only/f.txt', state: 'COMPLETED', onDisk: true }]);
  });

  test('cancel of a running stage: the file is CANCELLED and stays so; unknown paths are refused', async () => {
    const a = '/beam/run3/a.nxs';
    const b = '/beam/run3/b.nxs';
    await fileOnTape(env, a, 'aaa');
    await fileOnTape(env, b, 'bbb');
    const id = await stageId(env, [{ path: a }, { path: b }]);
    await until('both files STARTED', async () => ((await status(env, id)).files.every((f) => f.state === 'STARTED') ? true : undefined));

    const unknown = await env.api(`/api/v1/tape/stage/${id}/cancel`, post({ paths: ['/beam/run3/c.nxs'] }));
    assert.equal(unknown.status, 400);
    assert.match((await json(unknown)).detail, /not in stage request/);
    assert.equal((await env.api(`/api/v1/tape/stage/${id}/cancel`, post({}))).status, 400);
    assert.equal((await env.api(`/api/v1/tape/stage/${id}/cancel`, post({ paths: [] }))).status, 400);

    const cancel = await env.api(`/api/v1/tape/stage/${id}/cancel`, post({ paths: [a] }));
    assert.equal(cancel.status, 200, await cancel.clone().text());
    const s = await status(env, id);
    assert.deepEqual(
      s.files.find((f) => f.path === a),
      { path: a, state: 'CANCELLED' },
    );
    const end = await until('the rest of the request finished', async () => {
      const st = await status(env, id);
      return finished(st) ? st : undefined;
    });
    assert.equal(end.files.find((f) => f.path === a)!.state, 'CANCELLED');
    assert.equal(end.files.find((f) => f.path === b)!.state, 'COMPLETED');
    assert.ok(Number.isInteger(end.completedAt));
    await new Promise((r) => setTimeout(r, STAGE_DELAY * 1000 + 300));
    assert.equal((await status(env, id)).files.find((f) => f.path === a)!.state, 'CANCELLED');
  });

  test('DELETE cancels a request and forgets it', async () => {
    const path = '/beam/run4/a.nxs';
    await fileOnTape(env, path, 'aaa');
    const id = await stageId(env, [{ path }]);
    const del = await env.api(`/api/v1/tape/stage/${id}`, { method: 'DELETE' });
    assert.equal(del.status, 200, await del.clone().text());
    assert.equal((await env.api(`/api/v1/tape/stage/${id}`)).status, 404);
    assert.equal((await env.api(`/api/v1/tape/stage/${id}`, { method: 'DELETE' })).status, 404);
    assert.equal((await env.api(`/api/v1/tape/stage/${id}/cancel`, post({ paths: [path] }))).status, 404);
    // Still gone once the recall that was under way has finished.
    await new Promise((r) => setTimeout(r, STAGE_DELAY * 1000 + 300));
    assert.equal((await env.api(`/api/v1/tape/stage/${id}`)).status, 404);
  });

  test('errors: unknown request 404, bad bodies and diskLifetime 400, RFC 7807 bodies', async () => {
    const unknown = await env.api('/api/v1/tape/stage/00000000-0000-0000-0000-000000000000');
    assert.equal(unknown.status, 404);
    assert.match(unknown.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const problem = await json(unknown);
    assert.equal(problem.status, 404);
    assert.equal(typeof problem.title, 'string');
    assert.match(problem.detail, /no stage request/);
    assert.equal((await env.api('/api/v1/tape/release/nope', post({ paths: ['/x'] }))).status, 404);

    for (const diskLifetime of ['1h', 'P1Y', 'PT', 'forever']) {
      const res = await stage(env, [{ path: '/beam/run1/scan_0001.nxs', diskLifetime }]);
      assert.equal(res.status, 400, diskLifetime);
      assert.match((await json(res)).detail, /diskLifetime/);
    }
    assert.equal((await stage(env, [])).status, 400);
    assert.equal((await env.api('/api/v1/tape/stage', post({}))).status, 400);
    assert.equal((await stage(env, [{ diskLifetime: 'PT1H' }])).status, 400);
    assert.equal((await stage(env, [{ path: 'relative/path' }])).status, 400);
    assert.equal((await env.api('/api/v1/tape/archiveinfo', post({ paths: [] }))).status, 400);
    assert.equal((await fetch(`${env.server.url}/api/v1/tape/archiveinfo`, post({ paths: ['/x'] }))).status, 401);
  });

  test('another user cannot see or change a request (404); a token without read rights cannot stage (403)', async () => {
    const path = '/beam/run5/a.nxs';
    await fileOnTape(env, path, 'aaa');
    const alice = await tokenFor(env, 'alice', ['storage.read:/beam']);
    const bob = await tokenFor(env, 'bob', ['storage.read:/beam']);
    const carol = await tokenFor(env, 'carol', ['storage.read:/elsewhere']);
    const stager = await tokenFor(env, 'dave', ['storage.stage:/beam/run5']);

    const id = await stageId(env, [{ path }], alice);
    assert.equal((await status(env, id, alice)).id, id);
    const asBob = authed(env.server, bob);
    assert.equal((await asBob(`/api/v1/tape/stage/${id}`)).status, 404);
    assert.equal((await asBob(`/api/v1/tape/stage/${id}/cancel`, post({ paths: [path] }))).status, 404);
    assert.equal((await asBob(`/api/v1/tape/release/${id}`, post({ paths: [path] }))).status, 404);
    assert.equal((await asBob(`/api/v1/tape/stage/${id}`, { method: 'DELETE' })).status, 404);
    // The admin sees every request.
    assert.equal((await status(env, id)).id, id);

    const forbidden = await stage(env, [{ path }], carol);
    assert.equal(forbidden.status, 403);
    assert.match((await json(forbidden)).detail, /read of \/beam\/run5\/a.nxs/);
    // storage.stage is enough to stage, not to read.
    const staged = await stageId(env, [{ path }], stager);
    assert.equal((await status(env, staged, stager)).id, staged);
    const info = await archiveInfo(env, [path], carol);
    assert.equal(info[0]!.locality, undefined);
    assert.match(info[0]!.error ?? '', /no scope allowing read/);
    await until('alice request finished', async () => (finished(await status(env, id, alice)) ? true : undefined));
  });

  test('as curl -d sends them: a form-encoded body is read as JSON, and a trailing slash is accepted', async () => {
    const res = await env.api('/api/v1/tape/archiveinfo/', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: JSON.stringify({ paths: ['/beam/run1/scan_0001.nxs'] }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal((await json(res))[0].locality, 'TAPE');
    const notJson = await env.api('/api/v1/tape/archiveinfo', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'paths=/a',
    });
    assert.equal(notJson.status, 400);

    const id = (await json(await env.api('/api/v1/tape/stage/', post({ files: [{ path: '/beam/run1/scan_0001.nxs' }] })))) as {
      requestId: string;
    };
    assert.equal((await env.api(`/api/v1/tape/stage/${id.requestId}/`)).status, 200);
    assert.equal((await env.api(`/api/v1/tape/stage/${id.requestId}/`, { method: 'DELETE' })).status, 200);

    // The aliases stay out of the OpenAPI document.
    const paths = Object.keys(((await json(await env.api('/api/v1/openapi.json'))) as { paths: object }).paths);
    assert.ok(paths.includes('/api/v1/tape/stage'));
    assert.ok(paths.includes('/.well-known/wlcg-tape-rest-api'));
    assert.ok(!paths.includes('/api/v1/tape/stage/'));
  });

  test('a plain GET of a NEARLINE file stages it: waits about the stage delay, then returns the bytes', async () => {
    const path = '/beam/run6/read_me.nxs';
    const data = 'read through the door';
    await fileOnTape(env, path, data);
    const t0 = Date.now();
    const res = await env.api(path);
    const took = Date.now() - t0;
    assert.equal(res.status, 200);
    assert.equal(await res.text(), data);
    assert.ok(took >= STAGE_DELAY * 1000, `GET took ${took} ms, less than the stage delay`);
    assert.equal(await locality(env, path), 'ONLINE_AND_NEARLINE');
  });
});

describe('tape REST API: a stage longer than a read may wait', () => {
  let env: Env;
  before(async () => {
    env = await startWithTape({ stageWaitSeconds: 0.2 }, 1.5);
  });
  after(() => stopEnv(env));

  test('a GET answers 503 with Retry-After while the file stages, then the bytes', async () => {
    const path = '/slow/f.bin';
    await fileOnTape(env, path, 'slow tape');
    const res = await env.api(path);
    assert.equal(res.status, 503);
    assert.ok(Number(res.headers.get('retry-after')) >= 1, `Retry-After: ${res.headers.get('retry-after')}`);
    await res.text();
    const ok = await until(
      'the file staged',
      async () => {
        const r = await env.api(path);
        if (r.status === 200) return r.text();
        await r.text();
        assert.equal(r.status, 503);
        return undefined;
      },
      10_000,
      100,
    );
    assert.equal(ok, 'slow tape');
  });
});
