// Functions end to end with real processes: deploy node, python, exec and custom (bash) functions
// through the API, invoke them blocking and async, and watch every failure mode stay contained.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, authed, json, type RunningServer } from './support/server.js';
import { call, deploy, fixtureCopy, invoke, waitForActivation } from './support/functions.js';

let server: RunningServer;

/** A plain call that must succeed: the function (and the server) survived what came before. */
async function succeeds(name: string): Promise<void> {
  const a = await call(server, name, {});
  assert.equal(a.status, 'success', JSON.stringify(a.error));
}

before(async () => {
  server = await startServer();
  for (const fixture of ['faults-node', 'faults-python', 'exec-tool', 'custom-bash']) await deploy(server, fixture);
});

after(async () => {
  await server.stop();
});

describe('each runtime answers', () => {
  test('node: blocking call returns the result; the first call is cold, the next warm', async () => {
    const first = await call(server, 'faults-node', { hello: 'world' });
    assert.equal(first.status, 'success');
    assert.deepEqual(first.result.echo, { hello: 'world' });
    assert.equal(first.result.activation, first.id);
    assert.equal(first.result.version, first.version);
    assert.equal(first.cold, true);
    assert.ok(first.initMs > 0, 'a cold call records the instance start time');
    assert.ok(
      first.logs.some((l: string) => l.includes('echoing {"hello":"world"}')),
      JSON.stringify(first.logs),
    );
    const second = await call(server, 'faults-node', { n: 2 });
    assert.equal(second.cold, false);
    assert.equal(second.instance, first.instance);
  });

  test('python: blocking call returns the result and keeps print() output as logs', async () => {
    const a = await call(server, 'faults-python', { x: [1, 2, 3] });
    assert.equal(a.status, 'success', JSON.stringify(a.error));
    assert.deepEqual(a.result.echo, { x: [1, 2, 3] });
    assert.equal(a.result.activation, a.id);
    assert.ok(
      a.logs.some((l: string) => l.includes('echoing')),
      JSON.stringify(a.logs),
    );
  });

  test('exec: one process per call, event on stdin, result on stdout, stderr kept as logs', async () => {
    const a = await call(server, 'exec-tool', { some: 'input' });
    assert.equal(a.status, 'success', JSON.stringify(a.error));
    assert.equal(a.result.bytes, JSON.stringify({ some: 'input' }).length);
    assert.equal(a.result.activation, a.id);
    assert.equal(a.result.function, 'exec-tool');
    assert.ok(
      a.logs.some((l: string) => l.includes('got 16 bytes')),
      JSON.stringify(a.logs),
    );
  });

  test('custom: a bash program speaking the instance protocol hosts a warm instance', async () => {
    const a = await call(server, 'custom-bash', { from: 'bash' });
    assert.equal(a.status, 'success', JSON.stringify(a.error));
    const b = await call(server, 'custom-bash', { again: true });
    assert.equal(b.status, 'success');
    assert.equal(b.result.pid, a.result.pid, 'the same warm process served both calls');
    assert.equal(b.cold, false);
  });

  test('async: 202 with the activation id and Location, then the record has result and logs', async () => {
    const r = await invoke(server, 'faults-node', { mode: 'sleep', ms: 100 }, { blocking: false });
    assert.equal(r.status, 202);
    assert.match(r.body.activationId, /^[0-9a-f]{32}$/);
    assert.equal(r.headers.get('location'), `/api/v1/activations/${r.body.activationId}`);
    const a = await waitForActivation(server, r.body.activationId);
    assert.equal(a.status, 'success');
    assert.deepEqual(a.result, { slept: 100, instance: 'faults-node' });
    assert.equal(a.blocking, false);
    const logs = await json(await authed(server)(`/api/v1/activations/${a.id}/logs`));
    assert.ok(Array.isArray(logs.logs));
    const list = await json(await authed(server)(`/api/v1/activations?function=faults-node&limit=5`));
    assert.ok(list.some((x: { id: string }) => x.id === a.id));
    assert.equal(list[0].logs, undefined, 'the listing leaves out logs');
  });
});

describe('failures are precise and contained', () => {
  test('a handler that throws: APPLICATION_ERROR with its type and message; the instance keeps serving', async () => {
    const r = await invoke(server, 'faults-node', { mode: 'throw', detail: 'no scan number' });
    assert.equal(r.status, 502);
    assert.equal(r.body.code, 'FUNCTION_FAILED');
    const a = r.body.activation;
    assert.equal(a.error.code, 'APPLICATION_ERROR');
    assert.equal(a.error.name, 'TypeError');
    assert.equal(a.error.message, 'bad input: no scan number');
    const next = await call(server, 'faults-node', {});
    assert.equal(next.status, 'success');
    assert.equal(next.instance, a.instance, 'a thrown error does not cost the instance');

    const py = await call(server, 'faults-python', { mode: 'throw', detail: 'bad' });
    assert.equal(py.error.code, 'APPLICATION_ERROR');
    assert.equal(py.error.name, 'ValueError');
  });

  test('a handler that exits: INSTANCE_EXITED; the next call gets a new instance', async () => {
    const a = await call(server, 'faults-node', { mode: 'exit' });
    assert.equal(a.error.code, 'INSTANCE_EXITED');
    assert.match(a.error.message, /exited with code 3/);
    const next = await call(server, 'faults-node', {});
    assert.equal(next.status, 'success');
    assert.notEqual(next.instance, a.instance);
    assert.equal(next.cold, true);

    const py = await call(server, 'faults-python', { mode: 'exit' });
    assert.equal(py.error.code, 'INSTANCE_EXITED');
    assert.match(py.error.message, /exited with code 4/);
  });

  test('an endless loop is killed at its timeout while other functions keep answering', async () => {
    const started = Date.now();
    const loop = call(server, 'faults-node', { mode: 'loop' });
    const others: Promise<{ status: string }>[] = [];
    for (let i = 0; i < 20; i++) {
      others.push(call(server, 'faults-python', { i }));
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const o of await Promise.all(others)) assert.equal(o.status, 'success', JSON.stringify(o));
    const a = await loop;
    const took = Date.now() - started;
    assert.equal(a.error.code, 'TIMEOUT');
    assert.match(a.error.message, /limits\.timeoutSeconds \(5 s\)/);
    assert.ok(took >= 5000 && took < 9000, `killed after ${took} ms`);
    await succeeds('faults-node');

    const py = await call(server, 'faults-python', { mode: 'loop' });
    assert.equal(py.error.code, 'TIMEOUT');
    const ex = await call(server, 'exec-tool', { mode: 'loop' });
    assert.equal(ex.error.code, 'TIMEOUT');
  });

  test('allocating without bound is stopped at the memory limit', async () => {
    for (const mode of ['alloc', 'heap']) {
      const a = await call(server, 'faults-node', { mode });
      assert.equal(a.error.code, 'MEMORY_LIMIT', `${mode}: ${JSON.stringify(a.error)}`);
      assert.match(a.error.message, /128 MiB/);
    }
    const py = await call(server, 'faults-python', { mode: 'alloc' });
    assert.ok(['MEMORY_LIMIT', 'APPLICATION_ERROR'].includes(py.error.code), JSON.stringify(py.error));
    if (py.error.code === 'APPLICATION_ERROR') assert.equal(py.error.name, 'MemoryError');
    await succeeds('faults-node');
  });

  test('a result past maxOutputBytes fails with OUTPUT_LIMIT; megabytes of logs are cut, the call succeeds', async () => {
    const big = await call(server, 'faults-node', { mode: 'big', bytes: 200_000 });
    assert.equal(big.error.code, 'OUTPUT_LIMIT');
    assert.match(big.error.message, /65536/);
    const pyBig = await call(server, 'faults-python', { mode: 'big', bytes: 200_000 });
    assert.equal(pyBig.error.code, 'OUTPUT_LIMIT');
    const flood = await call(server, 'exec-tool', { mode: 'flood' });
    assert.equal(flood.error.code, 'OUTPUT_LIMIT');

    const printed = await call(server, 'faults-node', { mode: 'print', lines: 3000 });
    assert.equal(printed.status, 'success');
    assert.deepEqual(printed.result, { printed: 3000 });
    const bytes = printed.logs.reduce((n: number, l: string) => n + Buffer.byteLength(l) + 1, 0);
    assert.ok(bytes < 65536 + 1024, `kept ${bytes} bytes of logs`);
    assert.match(printed.logs.at(-1), /logs cut at limits\.maxLogBytes \(65536 bytes\)/);
    await succeeds('faults-node');
  });

  test('an instance that cannot start fails its calls with INIT_FAILED instead of leaving them queued', async () => {
    const broken = await fixtureCopy('faults-node');
    await writeFile(
      join(broken, 'sluice.function.json'),
      JSON.stringify({ name: 'broken-import', runtime: 'node', handler: 'main.handler' }),
    );
    await writeFile(join(broken, 'main.mjs'), 'throw new Error("cannot load calibration table");\n');
    await deploy(server, broken);
    const a = await call(server, 'broken-import', {});
    assert.equal(a.error.code, 'INIT_FAILED');
    assert.match(a.error.message, /cannot load calibration table/);

    const dies = await fixtureCopy('exec-tool');
    await writeFile(join(dies, 'sluice.function.json'), JSON.stringify({ name: 'dies-at-start', runtime: 'custom', handler: 'run.sh' }));
    await writeFile(join(dies, 'run.sh'), '#!/bin/sh\necho "missing license file" >&2\nexit 1\n', { mode: 0o755 });
    await deploy(server, dies);
    const b = await call(server, 'dies-at-start', {});
    assert.equal(b.error.code, 'INIT_FAILED');
    assert.match(b.error.message, /exited with code 1.*missing license file/);
    const status = server.core!.invoker.poolStatus('dies-at-start');
    assert.equal(status[0]!.queued, 0);
  });

  test('exec: a failing exit code and non-JSON output are reported as such', async () => {
    const fail = await call(server, 'exec-tool', { mode: 'fail' });
    assert.equal(fail.error.code, 'APPLICATION_ERROR');
    assert.match(fail.error.message, /exited with code 7: .*refusing: asked to fail/);
    const text = await call(server, 'exec-tool', { mode: 'text' });
    assert.equal(text.error.code, 'PROTOCOL_ERROR');
    assert.match(text.error.message, /not JSON: this is not json/);
  });
});

describe('versions, aliases and bad input', () => {
  test('each deploy is an immutable version; aliases and old versions stay invocable', async () => {
    const dir = await fixtureCopy('exec-tool');
    await writeFile(join(dir, 'sluice.function.json'), JSON.stringify({ name: 'versioned', runtime: 'exec', handler: 'run.sh' }));
    const v1 = await deploy(server, dir);
    await writeFile(join(dir, 'run.sh'), '#!/bin/sh\ncat >/dev/null\necho \'{"v":2}\'\n', { mode: 0o755 });
    const v2 = await deploy(server, dir);
    assert.equal(v2.seq, v1.seq + 1);
    assert.notEqual(v2.version, v1.version);

    assert.deepEqual((await call(server, 'versioned', {})).result, { v: 2 });
    const old = await call(server, 'versioned', {}, { version: String(v1.seq) });
    assert.equal(old.version, v1.version);
    assert.equal(typeof old.result.bytes, 'number');

    const aliased = await authed(server)(`/api/v1/functions/versioned/aliases/prod`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ version: v1.version.slice(0, 10) }),
    });
    assert.equal(aliased.status, 200);
    assert.equal((await call(server, 'versioned', {}, { version: 'prod' })).version, v1.version);
    assert.equal((await invoke(server, 'versioned', {}, { version: 'nosuch' })).status, 404);
  });

  test('unknown function 404, oversized input 413, missing scope 403, non-JSON 415', async () => {
    assert.equal((await invoke(server, 'nope', {})).status, 404);
    const huge = await invoke(server, 'faults-node', { blob: 'x'.repeat(1024 * 1024 + 10) });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.code, 'PAYLOAD_TOO_LARGE');

    const created = await json(
      await authed(server)('/api/v1/tokens', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ scopes: ['storage.read:/'] }),
      }),
    );
    const denied = await invoke(server, 'faults-node', {}, { token: created.secret });
    assert.equal(denied.status, 403);
    assert.match(denied.body.detail, /function\.invoke/);

    const res = await authed(server)('/api/v1/functions/faults-node/invocations', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
    });
    assert.equal(res.status, 415);
  });
});
