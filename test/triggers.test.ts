// Triggers end to end with real uploads and real function processes: filtering, CloudEvents input,
// retries with backoff, dead letters and replay, pipelines, chaining by derived data, and a kill -9
// of the server in the middle of a burst of uploads.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, startChildServer, authed, json, type RunningServer } from './support/server.js';
import { until } from './support/cli.js';
import { deploy, fixtureCopy } from './support/functions.js';

let server: RunningServer;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function api(s: RunningServer, method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await authed(s)(`/api/v1${path}`, {
    method,
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: res.status === 204 ? null : await json(res) };
}

async function put(s: RunningServer, path: string, content: string): Promise<number> {
  return (await authed(s)(path, { method: 'PUT', body: content })).status;
}

async function activationsOf(s: RunningServer, fn: string): Promise<Json[]> {
  return (await api(s, 'GET', `/activations?function=${fn}&limit=1000`)).body;
}

before(async () => {
  server = await startServer();
  for (const f of ['faults-node', 'flaky-node', 'derive-node']) await deploy(server, f);
  for (const dir of ['/incoming', '/incoming/raw', '/other']) assert.equal((await authed(server)(dir, { method: 'MKCOL' })).status, 201);
});

after(async () => {
  await server.stop();
});

describe('triggers', () => {
  test('a matching upload runs the function with a CloudEvent and the trigger params; others do not', async () => {
    const created = await api(server, 'POST', '/triggers', {
      name: 'echo-nxs',
      filter: { path: '/incoming', glob: '**/*.nxs' },
      target: { function: 'faults-node' },
      params: { beamline: 'p11' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.filter.events.join(), 'IN_CLOSE_WRITE,IN_MOVED_TO');
    assert.equal(await put(server, '/incoming/raw/scan_1.nxs', 'nexus bytes'), 201);
    assert.equal(await put(server, '/incoming/raw/scan_1.txt', 'not matched'), 201);
    assert.equal(await put(server, '/other/scan_2.nxs', 'not below the path'), 201);

    const t = await until('the delivery', async () => {
      const r = await api(server, 'GET', '/triggers/echo-nxs');
      return r.body.deliveries.succeeded === 1 && r.body.lag === 0 ? r.body : undefined;
    });
    assert.equal(t.deliveries.pending + t.deliveries.running + t.deliveries.dead, 0);
    const [a] = (await activationsOf(server, 'faults-node')).filter((x: Json) => x.cause === 'trigger:echo-nxs');
    const full = (await api(server, 'GET', `/activations/${a.id}`)).body;
    const input = full.input;
    assert.equal(input.specversion, '1.0');
    assert.equal(input.type, 'org.sluice.storage.IN_CLOSE_WRITE');
    assert.equal(input.subject, '/incoming/raw/scan_1.nxs');
    assert.match(input.source, /^sluice:\/\//);
    assert.equal(input.data.size, 11);
    assert.equal(input.beamline, 'p11');
    assert.equal(full.result.echo.subject, '/incoming/raw/scan_1.nxs');
    assert.equal((await api(server, 'POST', '/triggers/echo-nxs/disable')).body.enabled, false);
  });

  test('a function that fails twice then succeeds is retried with backoff', async () => {
    const created = await api(server, 'POST', '/triggers', {
      name: 'flaky',
      filter: { path: '/incoming', glob: '*.flaky' },
      target: { function: 'flaky-node' },
      params: { failures: 2 },
      delivery: { maxAttempts: 5, backoffSeconds: 0.1 },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const started = Date.now();
    await put(server, '/incoming/a.flaky', 'x');
    await until('success after retries', async () =>
      (await api(server, 'GET', '/triggers/flaky')).body.deliveries.succeeded === 1 ? true : undefined,
    );
    assert.ok(Date.now() - started >= 300, 'backoff of 0.1 s then 0.2 s between the attempts');
    const runs = (await activationsOf(server, 'flaky-node')).filter((x: Json) => x.cause === 'trigger:flaky');
    assert.deepEqual(runs.map((x: Json) => x.status).sort(), ['error', 'error', 'success']);
  });

  test('a function that always fails is dead-lettered, and replayed after a fix', async () => {
    const dir = await fixtureCopy('flaky-node');
    await writeFile(join(dir, 'sluice.function.json'), JSON.stringify({ name: 'always-fails', runtime: 'node', handler: 'main.handler' }));
    await deploy(server, dir);
    await api(server, 'POST', '/triggers', {
      name: 'doomed',
      filter: { path: '/incoming', glob: '*.doomed' },
      target: { function: 'always-fails' },
      params: { failures: -1 },
      delivery: { maxAttempts: 2, backoffSeconds: 0.05 },
    });
    await put(server, '/incoming/b.doomed', 'x');
    const dead = await until('a dead letter', async () => {
      const r = await api(server, 'GET', '/triggers/doomed/dead-letters');
      return r.body.length === 1 ? r.body[0] : undefined;
    });
    assert.equal(dead.attempts, 2);
    assert.equal(dead.path, '/incoming/b.doomed');
    assert.match(dead.lastError, /APPLICATION_ERROR: attempt 2 for \/incoming\/b\.doomed fails on purpose/);

    // The fix: a new version that succeeds (the trigger follows `latest`).
    await writeFile(join(dir, 'main.mjs'), 'export function handler(e) { return { fixed: e.subject }; }\n');
    await deploy(server, dir);
    const replay = await api(server, 'POST', '/triggers/doomed/replay', {});
    assert.deepEqual(replay.body, { replayed: 1, events: [dead.event] });
    await until('the replayed delivery', async () =>
      (await api(server, 'GET', '/triggers/doomed')).body.deliveries.succeeded === 1 ? true : undefined,
    );
    assert.equal((await api(server, 'GET', '/triggers/doomed/dead-letters')).body.length, 0);
  });

  test('pipelines: each step’s result is the next step’s input, and the run links its activations', async () => {
    const dir = await fixtureCopy('faults-node');
    await writeFile(join(dir, 'sluice.function.json'), JSON.stringify({ name: 'add-one', runtime: 'node', handler: 'main.handler' }));
    await writeFile(
      join(dir, 'main.mjs'),
      'export function handler(e) { return { n: (e.n ?? 0) + (e.step ?? 1), path: e.subject ?? e.path }; }\n',
    );
    await deploy(server, dir);
    const saved = await api(server, 'PUT', '/pipelines/count', {
      steps: [
        { function: 'add-one' },
        { function: 'add-one', params: { step: 10 } },
        { function: 'flaky-node', params: { failures: 1 }, maxAttempts: 2 },
      ],
    });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    const run = await api(server, 'POST', '/pipelines/count/runs', { n: 1, path: '/by/hand' });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.equal(run.body.status, 'succeeded');
    assert.deepEqual(run.body.steps[1].result, { n: 12, path: '/by/hand' });
    assert.equal(run.body.steps[2].attempts, 2);
    assert.equal(run.body.steps.flatMap((s: Json) => s.activations).length, 4);
    assert.equal(run.body.result.path, '/by/hand');
    const first = (await api(server, 'GET', `/activations/${run.body.steps[0].activations[0]}`)).body;
    assert.match(first.cause, new RegExp(`^pipeline:count:${run.body.id}:1$`));

    // A trigger may target the pipeline; the delivery names the run.
    await api(server, 'POST', '/triggers', {
      name: 'counted',
      filter: { path: '/incoming', glob: '*.count' },
      target: { pipeline: 'count' },
    });
    await put(server, '/incoming/c.count', 'x');
    await until('the pipeline run by the trigger', async () =>
      (await api(server, 'GET', '/triggers/counted')).body.deliveries.succeeded === 1 ? true : undefined,
    );
    const runs = (await api(server, 'GET', '/pipelines/count/runs')).body;
    const byTrigger = runs.find((r: Json) => r.cause === 'trigger:counted');
    assert.equal(byTrigger.status, 'succeeded');
    assert.equal(byTrigger.result.path, '/incoming/c.count');
    assert.equal((await api(server, 'DELETE', '/pipelines/count')).status, 409, 'a pipeline in use stays');
  });

  test('pipelines chain by data: a derived file is an event another trigger takes', async () => {
    await api(server, 'POST', '/triggers', {
      name: 'derive',
      filter: { path: '/incoming', glob: '*.raw' },
      target: { function: 'derive-node' },
    });
    await api(server, 'POST', '/triggers', {
      name: 'after-derive',
      filter: { path: '/incoming', glob: '*.upper' },
      target: { function: 'faults-node' },
    });
    await put(server, '/incoming/d.raw', 'photons\n');
    await until('the second trigger', async () =>
      (await api(server, 'GET', '/triggers/after-derive')).body.deliveries.succeeded === 1 ? true : undefined,
    );
    assert.equal(await (await authed(server)('/incoming/d.raw.upper')).text(), 'PHOTONS\n');
    // The derived file's event names the activation that wrote it: provenance starts there.
    const derive = (await activationsOf(server, 'derive-node')).find((x: Json) => x.cause === 'trigger:derive');
    const next = (await activationsOf(server, 'faults-node')).find((x: Json) => x.cause === 'trigger:after-derive');
    const input = (await api(server, 'GET', `/activations/${next.id}`)).body.input;
    assert.equal(input.subject, '/incoming/d.raw.upper');
    assert.equal(input.data.activation, derive.id);
  });

  test('bad triggers are refused with the field named', async () => {
    const bad = await api(server, 'POST', '/triggers', { name: 'x', filter: { events: ['IN_NOPE'] }, target: { function: 'faults-node' } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.detail, /^trigger\/filter\/events\/0: .*one of IN_ACCESS, .*got "IN_NOPE"/);
    const noFunction = await api(server, 'POST', '/triggers', { name: 'z', target: { function: 'nope' } });
    assert.equal(noFunction.status, 404);
    assert.equal(noFunction.body.detail, 'no function nope');
    const noPipe = await api(server, 'POST', '/triggers', { name: 'y', target: { pipeline: 'nope' } });
    assert.equal(noPipe.status, 404);
    const dup = await api(server, 'POST', '/triggers', { name: 'flaky', target: { function: 'faults-node' } });
    assert.equal(dup.status, 409);
  });
});

test('kill -9 in the middle of a burst of 200 uploads: every event processed, no successful activation repeated', async () => {
  const child = await startChildServer();
  try {
    await deploy(child, 'faults-node');
    assert.equal((await authed(child)('/burst', { method: 'MKCOL' })).status, 201);
    await api(child, 'POST', '/triggers', { name: 'burst', filter: { path: '/burst' }, target: { function: 'faults-node' } });
    const acked: string[] = [];
    let killed = false;
    const uploads = Array.from({ length: 200 }, (_, i) => `/burst/f${i}.dat`);
    const workers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = w; i < uploads.length; i += 8) {
        if (killed) return;
        try {
          if ((await put(child, uploads[i]!, `file ${i}`)) === 201) acked.push(uploads[i]!);
        } catch {
          return; // the server is gone
        }
        if (acked.length === 100 && !killed) {
          killed = true;
          child.proc!.kill('SIGKILL');
        }
      }
    });
    await Promise.all(workers);
    await new Promise((r) => (child.proc!.exitCode !== null || child.proc!.signalCode !== null ? r(null) : child.proc!.once('exit', r)));
    const restarted = await startChildServer({ dataDir: child.dataDir });
    try {
      // Every file the namespace holds (acknowledged or committed just before the kill) gets processed.
      const listing = (await api(restarted, 'GET', '/namespace/burst?children=true')).body.children as Json[];
      const stored = listing.map((c) => `/burst/${c.fileName}`).sort();
      for (const p of acked) assert.ok(stored.includes(p), `${p} was acknowledged`);
      await until(
        'all deliveries',
        async () => {
          const t = (await api(restarted, 'GET', '/triggers/burst')).body;
          return t.deliveries.succeeded === stored.length && t.lag === 0 ? t : undefined;
        },
        60_000,
      );
      const successes = (await activationsOf(restarted, 'faults-node')).filter(
        (a: Json) => a.cause === 'trigger:burst' && a.status === 'success',
      );
      const subjects: string[] = [];
      for (const a of successes) subjects.push((await api(restarted, 'GET', `/activations/${a.id}`)).body.input.subject);
      assert.deepEqual([...subjects].sort(), stored, 'exactly one successful activation per stored file');
    } finally {
      await restarted.stop();
    }
  } finally {
    await child.stop();
  }
});
