// `sluice fn …` and `sluice activations …` as users run them (a child process with SLUICE_URL and
// SLUICE_TOKEN), and the client methods behind them. The registry commands run against a real server;
// invocations and activations against a stub that answers with the API's documented shapes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT, tempDir } from './support/server.js';
import { startRegistryServer, type RegistryServer } from './support/registry-server.js';
import { SluiceClient } from '../src/cli/client.js';
import type { Activation } from '../src/functions/types.js';

const CLI = join(REPO_ROOT, 'dist', 'test', 'support', 'fn-cli.js');

let server: RegistryServer;
let stub: Stub;
let work: string;

before(async () => {
  server = await startRegistryServer();
  stub = await startStub();
  work = await tempDir('sluice-fn-cli-');
});
after(async () => {
  await server.stop();
  await stub.close();
  await rm(work, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function sluice(args: string[], url = server.url, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, SLUICE_URL: url, SLUICE_TOKEN: server.token } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(input);
  });
}

async function ok(args: string[], url?: string): Promise<Run> {
  const r = await sluice(args, url);
  assert.equal(r.code, 0, `sluice ${args.join(' ')} failed:\n${r.stderr}`);
  return r;
}

async function functionDir(name: string, code: string, manifest: Record<string, unknown> = {}): Promise<string> {
  const dir = join(work, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, '.git'), { recursive: true });
  await writeFile(join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  await writeFile(join(dir, 'sluice.function.json'), JSON.stringify({ name, runtime: 'node', handler: 'main.handler', ...manifest }));
  await writeFile(join(dir, 'main.mjs'), code);
  return dir;
}

test('fn deploy packs, uploads and reports; the same content again is unchanged', async () => {
  const dir = await functionDir('cli-echo', 'export const handler = (e) => e;\n', { description: 'from the CLI' });
  const first = await ok(['fn', 'deploy', dir, '--alias', 'prod']);
  assert.match(first.stdout, /^deployed cli-echo@1 \([0-9a-f]{12}\), aliases: latest, prod\n$/);
  const again = await ok(['fn', 'deploy', dir, '--json']);
  const parsed = JSON.parse(again.stdout) as { created: boolean; version: { seq: number; manifest: { description: string } } };
  assert.equal(parsed.created, false);
  assert.equal(parsed.version.seq, 1);
  assert.equal(parsed.version.manifest.description, 'from the CLI');
  // .git was left out of the bundle.
  const bundle = server.functions.bundleDir(await server.functions.resolve('cli-echo'));
  assert.ok(existsSync(join(bundle, 'main.mjs')) && !existsSync(join(bundle, '.git')));
});

test('fn deploy refuses mistakes before uploading, with the field or file named', async () => {
  const bad = await functionDir('cli-bad', '', { limits: { timeoutSeconds: -1 } });
  let r = await sluice(['fn', 'deploy', bad], 'http://127.0.0.1:9'); // nothing listens there: never contacted
  assert.equal(r.code, 1);
  assert.match(r.stderr, /sluice: BAD_REQUEST: sluice\.function\.json: limits\.timeoutSeconds must be > 0/);

  const leaky = await functionDir('cli-leaky', 'export const handler = () => 1;\n');
  await symlink('/etc/passwd', join(leaky, 'passwd'));
  r = await sluice(['fn', 'deploy', leaky], 'http://127.0.0.1:9');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /passwd is a symbolic link to \/etc\/passwd, outside .*cli-leaky/);

  r = await sluice(['fn', 'deploy', join(work, 'missing')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no manifest|no such/);
});

test('fn list, show, versions, alias and rm', async () => {
  await ok(['fn', 'deploy', await functionDir('cli-many', 'export const handler = () => 1;\n')]);
  const v2 = JSON.parse(
    (await ok(['fn', 'deploy', await functionDir('cli-many', 'export const handler = () => 2;\n'), '--json'])).stdout,
  ) as {
    version: { version: string };
  };

  const list = await ok(['fn', 'list']);
  assert.match(list.stdout, /^NAME\s+RUNTIME\s+LATEST\s+VERSION\s+VERSIONS\s+ALIASES\s+DEPLOYED\s+DESCRIPTION/);
  assert.match(list.stdout, /\ncli-many\s+node\s+2\s+[0-9a-f]{12}\s+2\s+-\s/);
  const listed = JSON.parse((await ok(['fn', 'list', '--json'])).stdout) as { name: string }[];
  assert.ok(listed.some((f) => f.name === 'cli-many'));

  const shown = await ok(['fn', 'show', 'cli-many']);
  assert.match(shown.stdout, /^name:\s+cli-many\nversions:\s+2\naliases:\s+latest → [0-9a-f]{12}\n/);
  assert.match(shown.stdout, /latest:\nname:\s+cli-many\nseq:\s+2\n/);
  assert.match(shown.stdout, /limits:\s+timeout 60 s, memory 256 MB/);
  const one = JSON.parse((await ok(['fn', 'show', 'cli-many@1', '--json'])).stdout) as { seq: number };
  assert.equal(one.seq, 1);
  const byPrefix = await ok(['fn', 'show', `cli-many@${v2.version.version.slice(0, 12)}`]);
  assert.match(byPrefix.stdout, /seq:\s+2/);

  const versions = await ok(['fn', 'versions', 'cli-many']);
  assert.match(versions.stdout, /^SEQ\s+VERSION\s+DEPLOYED\s+BY\s+SIZE\s+ALIASES\n2\s.*latest\n1\s.*-\n$/);

  const alias = await ok(['fn', 'alias', 'cli-many', 'prod', '1']);
  assert.match(alias.stdout, /^cli-many@prod → cli-many@1 \([0-9a-f]{12}\)\n$/);
  const held = await sluice(['fn', 'rm', 'cli-many@1']);
  assert.equal(held.code, 1);
  assert.match(held.stderr, /sluice: CONFLICT: version 1 of cli-many is still aliased as prod/);
  await ok(['fn', 'alias', 'cli-many', 'prod', '--rm']);
  const missingRef = await sluice(['fn', 'alias', 'cli-many', 'prod']);
  assert.match(missingRef.stderr, /which version should prod point at/);
  const removedOne = await ok(['fn', 'rm', 'cli-many@1']);
  assert.match(removedOne.stderr, /removed cli-many@1/);
  await ok(['fn', 'rm', 'cli-many']);
  const gone = await sluice(['fn', 'show', 'cli-many']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /sluice: NOT_FOUND: no function cli-many/);
  const badRef = await sluice(['fn', 'show', 'Cli@1']);
  assert.match(badRef.stderr, /does not name a function/);
});

// ---- invocations and activations, against a stub of their API ---------------------------------

const VERSION = 'ab'.repeat(32);

function activation(over: Partial<Activation> = {}): Activation {
  return {
    id: 'act-1',
    function: 'echo',
    version: VERSION,
    seq: 3,
    status: 'success',
    subject: 'admin',
    cause: 'api',
    input: { x: 1 },
    result: { x: 1 },
    logs: ['hello from echo'],
    cold: true,
    queuedAt: '2025-01-01T00:00:00.000Z',
    startedAt: '2025-01-01T00:00:00.010Z',
    endedAt: '2025-01-01T00:00:00.020Z',
    waitMs: 1,
    durationMs: 9,
    initMs: 40,
    attempts: 1,
    ...over,
  } as Activation;
}

interface Stub {
  url: string;
  requests: { method: string; url: string; body: string; type: string | undefined }[];
  close(): Promise<void>;
}

async function startStub(): Promise<Stub> {
  const requests: Stub['requests'] = [];
  const read = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks).toString('utf8');
  };
  const srv: Server = createServer((req, res) => {
    void read(req).then((body) => {
      requests.push({ method: req.method!, url: req.url!, body, type: req.headers['content-type'] });
      const url = new URL(req.url!, 'http://stub');
      const send = (status: number, value: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json', ...headers });
        res.end(JSON.stringify(value));
      };
      const invocation = /^\/api\/v1\/functions\/([^/]+)\/invocations$/.exec(url.pathname);
      if (req.method === 'POST' && invocation) {
        if (url.searchParams.get('blocking') === 'false') {
          return send(202, { activationId: 'act-2', status: 'queued' }, { location: '/api/v1/activations/act-2' });
        }
        if (invocation[1] === 'fail') {
          const failed = activation({
            function: 'fail',
            status: 'error',
            result: undefined,
            error: { code: 'APPLICATION_ERROR', message: 'boom', stack: 'Error: boom\n    at handler' },
          });
          return send(502, { status: 502, title: 'Bad Gateway', detail: 'fail failed', code: 'FUNCTION_FAILED', activation: failed });
        }
        if (invocation[1] === 'down')
          return send(502, { status: 502, title: 'Bad Gateway', detail: 'upstream gone', code: 'REMOTE_DESTINATION' });
        return send(200, activation({ input: JSON.parse(body), result: JSON.parse(body), cold: false, initMs: undefined }));
      }
      if (req.method === 'GET' && url.pathname === '/api/v1/activations') {
        const { input: _i, result: _r, logs: _l, ...light } = activation();
        return send(200, [light, { ...light, id: 'act-0', status: 'error', error: { code: 'TIMEOUT', message: 'too slow' } }]);
      }
      if (req.method === 'GET' && url.pathname === '/api/v1/activations/act-1') return send(200, activation());
      if (req.method === 'GET' && url.pathname === '/api/v1/activations/act-1/logs') return send(200, { logs: ['line 1', 'line 2'] });
      return send(404, { status: 404, title: 'Not Found', detail: `no activation ${url.pathname.split('/').pop()}`, code: 'NOT_FOUND' });
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => srv.close(() => r())) };
}

test('client.invoke: completed, failed (502 with the activation), accepted, and other errors', async () => {
  const client = new SluiceClient({ url: stub.url, token: 't' });
  try {
    stub.requests.length = 0;
    const done = await client.invoke('echo', 'prod', { a: 1 }, { blocking: true });
    assert.equal(done.kind, 'completed');
    assert.deepEqual(done.kind === 'completed' && done.activation.result, { a: 1 });
    assert.equal(stub.requests[0]!.url, '/api/v1/functions/echo/invocations?blocking=true&version=prod');
    assert.equal(stub.requests[0]!.type, 'application/json');
    assert.equal(stub.requests[0]!.body, '{"a":1}');

    const failed = await client.invoke('fail', undefined, {}, { blocking: true });
    assert.equal(failed.kind, 'completed');
    assert.equal(failed.kind === 'completed' && failed.activation.error?.code, 'APPLICATION_ERROR');
    assert.equal(stub.requests[1]!.url, '/api/v1/functions/fail/invocations?blocking=true');

    const queued = await client.invoke('echo', undefined, null, { blocking: false });
    assert.deepEqual(queued, {
      kind: 'accepted',
      activationId: 'act-2',
      status: 'queued',
      location: `${stub.url}/api/v1/activations/act-2`,
    });

    await assert.rejects(client.invoke('down', undefined, {}, { blocking: true }), {
      code: 'REMOTE_DESTINATION',
      message: 'upstream gone',
    });
    await assert.rejects(client.getActivation('nope'), { code: 'NOT_FOUND', message: 'no activation nope' });

    stub.requests.length = 0;
    assert.equal((await client.listActivations({ function: 'echo', status: 'error', limit: 5 })).length, 2);
    assert.equal(stub.requests[0]!.url, '/api/v1/activations?function=echo&status=error&limit=5');
    await client.listActivations();
    assert.equal(stub.requests[1]!.url, '/api/v1/activations');
    assert.equal((await client.getActivation('act-1')).id, 'act-1');
    assert.deepEqual(await client.activationLogs('act-1'), { logs: ['line 1', 'line 2'] });
  } finally {
    client.close();
  }
});

test('fn invoke prints the result on stdout and the activation on stderr; a failure exits 1', async () => {
  const r = await ok(['fn', 'invoke', 'echo@prod', '--data', '{"x": 2}'], stub.url);
  assert.deepEqual(JSON.parse(r.stdout), { x: 2 });
  assert.match(r.stderr, /^activation act-1 echo@3 success warm, ran 9 ms, waited 1 ms\n$/);

  const fromFile = join(work, 'event.json');
  await writeFile(fromFile, '{"from": "file"}');
  assert.deepEqual(JSON.parse((await ok(['fn', 'invoke', 'echo', '--data-file', fromFile], stub.url)).stdout), { from: 'file' });
  const piped = await new Promise<Run>((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, 'fn', 'invoke', 'echo', '--data-file', '-'],
      { env: { ...process.env, SLUICE_URL: stub.url } },
      (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
    );
    child.stdin!.end('[1, 2]');
  });
  assert.deepEqual(JSON.parse(piped.stdout), [1, 2]);

  const failed = await sluice(['fn', 'invoke', 'fail'], stub.url);
  assert.equal(failed.code, 1);
  assert.equal(failed.stdout, '');
  assert.match(failed.stderr, /activation act-1 fail@3 error cold \(init 40 ms\)/);
  assert.match(failed.stderr, /error: APPLICATION_ERROR: boom\nError: boom/);
  assert.match(failed.stderr, /logs \(sluice activations logs act-1\):\n {2}hello from echo/);
  const failedJson = await sluice(['fn', 'invoke', 'fail', '--json'], stub.url);
  assert.equal(failedJson.code, 1);
  assert.equal((JSON.parse(failedJson.stdout) as Activation).status, 'error');

  const queued = await ok(['fn', 'invoke', 'echo', '--async'], stub.url);
  assert.equal(queued.stdout, 'act-2\n');
  const badData = await sluice(['fn', 'invoke', 'echo', '--data', '{nope'], stub.url);
  assert.equal(badData.code, 1);
  assert.match(badData.stderr, /--data is not JSON/);
});

test('activations list, show and logs', async () => {
  const list = await ok(['activations', 'list', '--function', 'echo', '--status', 'error', '--limit', '5'], stub.url);
  assert.match(
    list.stdout,
    /^ID\s+FUNCTION\s+STATUS\s+START\s+DURATION\s+CAUSE\s+QUEUED\s+ERROR\nact-1\s+echo@3\s+success\s+cold\s+9 ms\s+api\s/,
  );
  assert.match(list.stdout, /\nact-0\s+echo@3\s+error\s.*TIMEOUT\n$/);
  assert.equal(stub.requests.at(-1)!.url, '/api/v1/activations?function=echo&status=error&limit=5');
  assert.equal((JSON.parse((await ok(['activations', 'list', '--json'], stub.url)).stdout) as unknown[]).length, 2);
  const badStatus = await sluice(['activations', 'list', '--status', 'done'], stub.url);
  assert.equal(badStatus.code, 1);
  assert.match(badStatus.stderr, /expected one of queued, running, success, error/);

  const shown = await ok(['activations', 'show', 'act-1'], stub.url);
  assert.match(shown.stdout, /^id:\s+act-1\nfunction:\s+echo@3 \(abababababab\)\nstatus:\s+success\n/);
  assert.match(shown.stdout, /input:\n {2}\{\n {4}"x": 1\n {2}\}\nresult:\n/);
  assert.equal((JSON.parse((await ok(['activations', 'show', 'act-1', '--json'], stub.url)).stdout) as Activation).id, 'act-1');
  const missing = await sluice(['activations', 'show', 'nope'], stub.url);
  assert.match(missing.stderr, /sluice: NOT_FOUND: no activation nope/);

  assert.equal((await ok(['activations', 'logs', 'act-1'], stub.url)).stdout, 'line 1\nline 2\n');
  assert.deepEqual(JSON.parse((await ok(['activations', 'logs', 'act-1', '--json'], stub.url)).stdout), { logs: ['line 1', 'line 2'] });
});

test('exec bits survive packing: an exec function deploys from the CLI', async () => {
  const dir = join(work, 'cli-exec');
  await mkdir(join(dir, 'bin'), { recursive: true });
  await writeFile(join(dir, 'sluice.function.yaml'), 'name: cli-exec\nruntime: exec\nhandler: bin/run\n');
  await writeFile(join(dir, 'bin', 'run'), '#!/bin/sh\ncat\n');
  await chmod(join(dir, 'bin', 'run'), 0o755);
  const r = await ok(['fn', 'deploy', dir]);
  assert.match(r.stdout, /^deployed cli-exec@1 /);
});
