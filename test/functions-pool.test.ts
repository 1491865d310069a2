// The instance pool with real processes: scale to zero and back, a burst grows the pool to max and
// not beyond, bounded queues answer 429, and accepted async calls survive a kill -9 of the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startChildServer, authed, json, type RunningServer } from './support/server.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { call, deploy, fixtureCopy, invoke, waitForActivation } from './support/functions.js';

let server: RunningServer;

before(async () => {
  server = await startServer({ functions: { maxQueuedPerFunction: 20 } } as never);
  await deploy(server, 'scale-node');
});

after(async () => {
  await server.stop();
});

interface PoolStatus {
  instances: { pid: number; state: string }[];
  ready: number;
  starting: number;
  coldStarts: number;
}

const pools = (): PoolStatus[] => server.core!.invoker.poolStatus('scale-node') as PoolStatus[];
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('scale to zero and back: no process is left after the idle timeout, the next call is cold', async () => {
  const first = await call(server, 'scale-node', {});
  assert.equal(first.cold, true);
  const warm = await call(server, 'scale-node', {});
  assert.equal(warm.cold, false);
  const pids = pools().flatMap((p) => p.instances.map((i) => i.pid));
  assert.equal(pids.length, 1);
  assert.ok(alive(pids[0]!));

  // idleTimeoutSeconds is 0.6 in the fixture.
  const until = Date.now() + 5000;
  while (pools().some((p) => p.instances.length > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(
    pools().map((p) => p.instances.length),
    [0],
  );
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(alive(pids[0]!), false, 'the instance process is gone');

  const again = await call(server, 'scale-node', {});
  assert.equal(again.status, 'success');
  assert.equal(again.cold, true);
  assert.notEqual(again.instance, first.instance);
});

test('a burst grows the pool to max (3) and not beyond', async () => {
  let peak = 0;
  const watch = setInterval(() => {
    for (const p of pools()) peak = Math.max(peak, p.instances.length);
  }, 5);
  const results = await Promise.all(Array.from({ length: 15 }, () => call(server, 'scale-node', { ms: 150 })));
  clearInterval(watch);
  for (const r of results) assert.equal(r.status, 'success', JSON.stringify(r.error));
  const servedBy = new Set(results.map((r) => r.instance));
  assert.equal(servedBy.size, 3, `instances used: ${[...servedBy].join(', ')}`);
  assert.equal(peak, 3);
  assert.ok(
    results.some((r) => r.waitMs >= 100),
    'calls beyond the pool size queued',
  );
});

test('a full queue answers 429 with Retry-After, and loses none of the calls it accepted', async () => {
  const responses = await Promise.all(Array.from({ length: 40 }, () => invoke(server, 'scale-node', { ms: 300 }, { blocking: false })));
  const accepted = responses.filter((r) => r.status === 202);
  const refused = responses.filter((r) => r.status === 429);
  assert.equal(accepted.length + refused.length, 40);
  assert.ok(refused.length > 0, 'some calls were refused');
  assert.equal(refused[0]!.body.code, 'TOO_MANY_REQUESTS');
  assert.equal(refused[0]!.headers.get('retry-after'), '1');
  assert.match(refused[0]!.body.detail, /queue of scale-node is full/);
  for (const r of accepted) assert.equal((await waitForActivation(server, r.body.activationId, 30_000)).status, 'success');
});

test('an async call accepted before a kill -9 runs after the restart', async () => {
  const child = await startChildServer();
  try {
    await deploy(child, 'scale-node');
    const accepted = [];
    for (let i = 0; i < 5; i++) {
      const r = await invoke(child, 'scale-node', { ms: 2000, i }, { blocking: false });
      assert.equal(r.status, 202);
      accepted.push(r.body.activationId as string);
    }
    child.proc!.kill('SIGKILL');
    await new Promise((r) => child.proc!.once('exit', r));
    const restarted = await startChildServer({ dataDir: child.dataDir });
    try {
      for (const id of accepted) {
        const a = await waitForActivation(restarted, id, 30_000);
        assert.equal(a.status, 'success', JSON.stringify(a.error));
        assert.deepEqual(Object.keys(a.result).sort(), ['entered', 'pid', 'started']);
      }
    } finally {
      await restarted.stop();
    }
  } finally {
    await child.stop();
  }
});

test('scaling.min keeps instances warm for the aliased version only; a new deploy moves them', async () => {
  const dir = await fixtureCopy('scale-node');
  const manifest = { name: 'warm-node', runtime: 'node', handler: 'main.handler', scaling: { min: 1, max: 2, idleTimeoutSeconds: 0.2 } };
  await writeFile(join(dir, 'sluice.function.json'), JSON.stringify(manifest));
  const v1 = await deploy(server, dir);
  const status = () => server.core!.invoker.poolStatus('warm-node');
  const readyOf = (version: string) => status().find((p) => p.version === version)?.ready ?? 0;
  const until = Date.now() + 10_000;
  while (readyOf(v1.version) < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.equal(readyOf(v1.version), 1, 'an instance is started without any call');
  const first = await call(server, 'warm-node', {});
  assert.equal(first.cold, false, 'the first call finds a warm instance');
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(readyOf(v1.version), 1, 'min instances outlive the idle timeout');

  await writeFile(join(dir, 'extra.txt'), 'v2');
  const v2 = await deploy(server, dir);
  const until2 = Date.now() + 10_000;
  while ((readyOf(v2.version) < 1 || status().find((p) => p.version === v1.version)!.instances.length > 0) && Date.now() < until2) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(readyOf(v2.version), 1);
  assert.equal(status().find((p) => p.version === v1.version)!.instances.length, 0, 'the old version scaled to zero');
});

test('pool status is visible on the function', async () => {
  const res = await authed(server)('/api/v1/functions/scale-node');
  assert.equal(res.status, 200);
  const body = await json(res);
  assert.equal(body.name, 'scale-node');
  assert.equal(body.pools.length, 1);
  assert.equal(body.pools[0].version, body.latest.version);
  assert.equal(body.pools[0].max, 3);
  assert.ok(body.pools[0].coldStarts >= 2, 'cold starts are counted');
});
