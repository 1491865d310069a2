// `sluice fn …` and `sluice activations …` as users run them: the real bin/sluice.js as a child process
// with SLUICE_URL and SLUICE_TOKEN, against a real server running real fixture functions (node,
// python, exec) in their sandbox; and the client methods behind the commands, against the same server.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, tempDir, type RunningServer } from './support/server.js';
import { FIXTURES, call, deploy, fixtureCopy, invoke, waitForActivation } from './support/functions.js';
import { cliFails, cliOk, runCli, type Run } from './support/cli.js';
import { SluiceClient } from '../src/cli/client.js';
import type { Activation } from '../src/functions/types.js';

let server: RunningServer;
let work: string;

before(async () => {
  server = await startServer();
  work = await tempDir('sluice-fn-cli-');
});
after(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface RunOptions {
  /** Another server (default: the shared one). */
  on?: RunningServer;
  /** A URL instead of the server's: e.g. one where nothing listens, to prove nothing was sent. */
  url?: string;
  stdin?: string;
}

const sluice = (args: string[], opts: RunOptions = {}): Promise<Run> => runCli(opts.on ?? server, args, opts);
const ok = (args: string[], opts: RunOptions = {}): Promise<Run> => cliOk(opts.on ?? server, args, opts);
const fails = (args: string[], opts: RunOptions = {}): Promise<Run> => cliFails(opts.on ?? server, args, opts);

/** `fn invoke … --json`: the activation, whether it succeeded (exit 0) or failed (exit 1). */
async function invokeJson(target: string, data: unknown, opts?: RunOptions): Promise<Activation> {
  const r = await sluice(['fn', 'invoke', target, '--data', JSON.stringify(data), '--json'], opts);
  const a = JSON.parse(r.stdout) as Activation;
  assert.equal(r.code, a.status === 'error' ? 1 : 0, r.stderr);
  return a;
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

const ID = '[0-9a-f]{32}';

/** Polls an activation until it has the status (queued stays queued while nothing frees a slot). */
async function waitForStatus(on: RunningServer, id: string, status: string): Promise<void> {
  const client = new SluiceClient({ url: on.url, token: on.token });
  try {
    for (const until = Date.now() + 10_000; ;) {
      const a = await client.getActivation(id);
      if (a.status === status) return;
      if (Date.now() > until) assert.fail(`activation ${id} is ${a.status}, not ${status}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    client.close();
  }
}

describe('the registry commands', () => {
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
    const registry = server.core!.functions;
    const bundle = registry.bundleDir(await registry.resolve('cli-echo'));
    assert.ok(existsSync(join(bundle, 'main.mjs')) && !existsSync(join(bundle, '.git')));
  });

  test('fn deploy refuses mistakes before uploading, with the field or file named', async () => {
    const nowhere = 'http://127.0.0.1:9'; // nothing listens there: never contacted
    const bad = await functionDir('cli-bad', '', { limits: { timeoutSeconds: -1 } });
    const leaky = await functionDir('cli-leaky', 'export const handler = () => 1;\n');
    await symlink('/etc/passwd', join(leaky, 'passwd'));
    const [badRun, leakyRun, missingRun] = await Promise.all([
      fails(['fn', 'deploy', bad], { url: nowhere }),
      fails(['fn', 'deploy', leaky], { url: nowhere }),
      fails(['fn', 'deploy', join(work, 'missing')]),
    ]);
    assert.match(badRun.stderr, /sluice: BAD_REQUEST: sluice\.function\.json: limits\.timeoutSeconds must be > 0/);
    assert.match(leakyRun.stderr, /passwd is a symbolic link to \/etc\/passwd, outside .*cli-leaky/);
    assert.match(missingRun.stderr, /no manifest|no such/);
  });

  test('fn list, show, versions, alias and rm', async () => {
    await ok(['fn', 'deploy', await functionDir('cli-many', 'export const handler = () => 1;\n')]);
    const v2 = JSON.parse(
      (await ok(['fn', 'deploy', await functionDir('cli-many', 'export const handler = () => 2;\n'), '--json'])).stdout,
    ) as { version: { version: string } };

    const [list, shown, one, byPrefix, versions] = await Promise.all([
      ok(['fn', 'list']),
      ok(['fn', 'show', 'cli-many']),
      ok(['fn', 'show', 'cli-many@1', '--json']),
      ok(['fn', 'show', `cli-many@${v2.version.version.slice(0, 12)}`]),
      ok(['fn', 'versions', 'cli-many']),
    ]);
    assert.match(list.stdout, /^NAME\s+RUNTIME\s+LATEST\s+VERSION\s+VERSIONS\s+ALIASES\s+DEPLOYED\s+DESCRIPTION/);
    assert.match(list.stdout, /\ncli-many\s+node\s+2\s+[0-9a-f]{12}\s+2\s+-\s/);
    assert.match(shown.stdout, /^name:\s+cli-many\nversions:\s+2\naliases:\s+latest → [0-9a-f]{12}\ninstances:\s+none\n/);
    assert.match(shown.stdout, /latest:\nname:\s+cli-many\nseq:\s+2\n/);
    assert.match(shown.stdout, /\nlimits:\s+timeout 60 s, memory 256 MiB, output 1 MiB, logs 256 KiB, open files 1024\n/);
    assert.match(shown.stdout, /\nparams:\s+-\nscopes:\s+the caller's storage scopes\nretries:\s+0\n/);
    assert.equal((JSON.parse(one.stdout) as { seq: number }).seq, 1);
    assert.match(byPrefix.stdout, /seq:\s+2/);
    assert.match(versions.stdout, /^SEQ\s+VERSION\s+DEPLOYED\s+BY\s+SIZE\s+ALIASES\n2\s.*latest\n1\s.*-\n$/);

    const alias = await ok(['fn', 'alias', 'cli-many', 'prod', '1']);
    assert.match(alias.stdout, /^cli-many@prod → cli-many@1 \([0-9a-f]{12}\)\n$/);
    const held = await fails(['fn', 'rm', 'cli-many@1']);
    assert.match(held.stderr, /sluice: CONFLICT: version 1 of cli-many is still aliased as prod/);
    await ok(['fn', 'alias', 'cli-many', 'prod', '--rm']);
    const missingRef = await fails(['fn', 'alias', 'cli-many', 'prod']);
    assert.match(missingRef.stderr, /which version should prod point at/);
    const removedOne = await ok(['fn', 'rm', 'cli-many@1']);
    assert.match(removedOne.stderr, /removed cli-many@1/);
    await ok(['fn', 'rm', 'cli-many']);
    const [gone, badRef] = await Promise.all([fails(['fn', 'show', 'cli-many']), fails(['fn', 'show', 'Cli@1'])]);
    assert.match(gone.stderr, /sluice: NOT_FOUND: no function cli-many/);
    assert.match(badRef.stderr, /does not name a function/);
  });

  test('exec bits survive packing: an exec function deploys from the CLI', async () => {
    const dir = join(work, 'cli-exec');
    await mkdir(join(dir, 'bin'), { recursive: true });
    await writeFile(join(dir, 'sluice.function.yaml'), 'name: cli-exec\nruntime: exec\nhandler: bin/run\n');
    await writeFile(join(dir, 'bin', 'run'), '#!/bin/sh\ncat\n');
    await chmod(join(dir, 'bin', 'run'), 0o755);
    const r = await ok(['fn', 'deploy', dir]);
    assert.match(r.stdout, /^deployed cli-exec@1 /);
    assert.deepEqual(JSON.parse((await ok(['fn', 'invoke', 'cli-exec', '--data', '{"cat": true}'])).stdout), { cat: true });
  });
});

describe('invocations and activations', () => {
  before(async () => {
    // Deployed the way users do it, from the fixture directories.
    await Promise.all(
      ['faults-node', 'exec-tool'].map((f) => ok(['fn', 'deploy', join(FIXTURES, f)]).then((r) => assert.match(r.stdout, /^deployed /))),
    );
  });

  test('fn invoke NAME --data: the result on stdout, the activation and its timings on stderr; cold, then warm', async () => {
    const cold = await ok(['fn', 'invoke', 'faults-node', '--data', '{"hello": "cli"}']);
    const result = JSON.parse(cold.stdout) as { echo: unknown; activation: string; version: string };
    assert.deepEqual(result.echo, { hello: 'cli' });
    assert.match(
      cold.stderr,
      new RegExp(`^activation ${result.activation} faults-node@1 success cold \\(init \\d+ ms\\), ran \\d+ ms, waited \\d+ ms\\n$`),
    );

    const warm = await ok(['fn', 'invoke', 'faults-node', '--data', '[1, "two", null]']);
    const again = JSON.parse(warm.stdout) as { echo: unknown; activation: string; version: string };
    assert.deepEqual(again.echo, [1, 'two', null]);
    assert.equal(again.version, result.version);
    assert.match(warm.stderr, new RegExp(`^activation ${again.activation} faults-node@1 success warm, ran \\d+ ms, waited \\d+ ms\\n$`));

    // No --data: the event is {}; --json: the whole activation on stdout.
    const whole = JSON.parse((await ok(['fn', 'invoke', 'faults-node', '--json'])).stdout) as Activation;
    assert.equal(whole.status, 'success');
    assert.deepEqual(whole.input, {});
    assert.equal(whole.cold, false);
    assert.equal(whole.cause, 'api');
    assert.equal(whole.subject, 'admin');
    assert.ok(
      whole.logs.some((l) => l.endsWith('info: echoing {}')),
      JSON.stringify(whole.logs),
    );

    // One instance served the three calls one after another, and stays warm for the next.
    const shown = await ok(['fn', 'show', 'faults-node']);
    assert.match(shown.stdout, /\ninstances:\s+@1: 1 ready, 0 starting, 0 busy, 0 queued \(min 0, max 2, 1 started\)\n/);
  });

  test('fn invoke --data-file reads the event from a file, or from stdin with -', async () => {
    const file = join(work, 'event.json');
    await writeFile(file, '{"from": "file", "n": [1, 2, 3]}\n');
    const [fromFile, fromStdin] = await Promise.all([
      ok(['fn', 'invoke', 'faults-node', '--data-file', file]),
      ok(['fn', 'invoke', 'exec-tool', '--data-file', '-'], { stdin: '{"from": "stdin"}' }),
    ]);
    assert.deepEqual((JSON.parse(fromFile.stdout) as { echo: unknown }).echo, { from: 'file', n: [1, 2, 3] });
    const exec = JSON.parse(fromStdin.stdout) as { bytes: number; function: string };
    assert.equal(exec.bytes, JSON.stringify({ from: 'stdin' }).length, 'the exec tool got the event on its stdin');
    assert.equal(exec.function, 'exec-tool');
  });

  test('NAME@ALIAS, NAME@SEQ and NAME@DIGEST-PREFIX invoke that version; NAME the latest', async () => {
    await ok(['fn', 'deploy', join(FIXTURES, 'python-echo'), '--alias', 'prod']);
    const changed = await fixtureCopy('python-echo');
    const manifestFile = join(changed, 'sluice.function.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { env: Record<string, string> };
    manifest.env.ECHO_GREETING = 'bonjour';
    await writeFile(manifestFile, JSON.stringify(manifest));
    const v2 = JSON.parse((await ok(['fn', 'deploy', changed, '--json'])).stdout) as { version: { version: string; seq: number } };
    assert.equal(v2.version.seq, 2);

    type Echo = { event: unknown; greeting: string; version: string; functionName: string };
    const [prod, latest, first, byDigest] = await Promise.all(
      ['python-echo@prod', 'python-echo', 'python-echo@1', `python-echo@${v2.version.version.slice(0, 7)}`].map(async (target) => {
        const r = await ok(['fn', 'invoke', target, '--data', '{"who": "alias"}']);
        return { result: JSON.parse(r.stdout) as Echo, stderr: r.stderr };
      }),
    );
    assert.equal(prod!.result.greeting, 'hello');
    assert.match(prod!.stderr, / python-echo@1 success /);
    assert.deepEqual(prod!.result.event, { who: 'alias' });
    assert.equal(latest!.result.greeting, 'bonjour');
    assert.equal(latest!.result.version, v2.version.version);
    assert.match(latest!.stderr, / python-echo@2 success /);
    assert.equal(first!.result.version, prod!.result.version);
    assert.equal(byDigest!.result.version, v2.version.version);

    const [noAlias, noFunction] = await Promise.all([fails(['fn', 'invoke', 'python-echo@nope']), fails(['fn', 'invoke', 'nope'])]);
    assert.match(noAlias.stderr, /^sluice: NOT_FOUND: function python-echo has no alias "nope"\n$/);
    assert.match(noFunction.stderr, /^sluice: NOT_FOUND: no function nope\n$/);
  });

  test('a failing activation: its error, stack and logs on stderr, nothing on stdout, exit 1; --json prints it', async () => {
    const thrown = await fails(['fn', 'invoke', 'faults-node', '--data', '{"mode": "throw", "detail": "no scan number"}']);
    assert.equal(thrown.stdout, '');
    assert.match(thrown.stderr, new RegExp(`^activation ${ID} faults-node@1 error (cold|warm)`));
    assert.match(
      thrown.stderr,
      /\nerror: APPLICATION_ERROR: bad input: no scan number\nTypeError: bad input: no scan number\n\s+at handler /,
    );

    const exited = await fails(['fn', 'invoke', 'exec-tool', '--data', '{"mode":"fail"}']);
    const id = new RegExp(`^activation (${ID}) exec-tool@1 error cold`).exec(exited.stderr)?.[1];
    assert.ok(id, exited.stderr);
    assert.match(exited.stderr, /\nerror: APPLICATION_ERROR: exited with code 7: got 15 bytes \| refusing: asked to fail\n/);
    assert.match(exited.stderr, new RegExp(`\\nlogs \\(sluice activations logs ${id}\\):\\n {2}\\S+Z stderr: got 15 bytes\\n`));
    assert.match(exited.stderr, / {2}\S+Z stderr: refusing: asked to fail\n$/);

    const a = await invokeJson('faults-node', { mode: 'throw', detail: 'as json' });
    assert.equal(a.status, 'error');
    assert.equal(a.error?.code, 'APPLICATION_ERROR');
    assert.equal(a.error?.name, 'TypeError');
    assert.equal(a.error?.message, 'bad input: as json');
  });

  test('--async prints the activation id at once; activations show later shows the success', async () => {
    const queued = await ok(['fn', 'invoke', 'faults-node', '--async', '--data', '{"mode": "sleep", "ms": 300}']);
    assert.match(queued.stdout, new RegExp(`^${ID}\\n$`));
    assert.equal(queued.stderr, '');
    const id = queued.stdout.trim();
    await waitForActivation(server, id);

    const shown = await ok(['activations', 'show', id]);
    assert.match(
      shown.stdout,
      new RegExp(`^id:\\s+${id}\\nfunction:\\s+faults-node@1 \\([0-9a-f]{12}\\)\\nstatus:\\s+success\\ncause:\\s+api\\n`),
    );
    assert.match(shown.stdout, /\nstart:\s+(warm|cold, init \d+ ms)\n/);
    assert.match(shown.stdout, /\nran:\s+\d+ ms\nattempts:\s+1\ninstance:\s+[0-9a-f]{12}\n/);
    assert.match(shown.stdout, /\ninput:\n {2}\{\n {4}"mode": "sleep",\n {4}"ms": 300\n {2}\}\nresult:\n {2}\{\n {4}"slept": 300,/);
    const a = JSON.parse((await ok(['activations', 'show', id, '--json'])).stdout) as Activation;
    assert.equal(a.status, 'success');
    assert.equal(a.blocking, false);
    assert.ok(a.durationMs! >= 300);

    const asJson = JSON.parse((await ok(['fn', 'invoke', 'exec-tool', '--async', '--json'])).stdout) as Record<string, string>;
    assert.match(asJson.activationId!, new RegExp(`^${ID}$`));
    assert.match(asJson.status!, /^(queued|running)$/);
    assert.equal(asJson.location, `${server.url}/api/v1/activations/${asJson.activationId}`);
    assert.equal((await waitForActivation(server, asJson.activationId!)).status, 'success');
  });

  test('activations list --function --status --limit, and activations logs with the real logs', async () => {
    // The activations to look at come straight from the API: the listing is under test here.
    const good1 = await call(server, 'exec-tool', { n: 1 });
    const bad = await call(server, 'exec-tool', { mode: 'fail' });
    const good2 = await call(server, 'exec-tool', { n: 2 });
    const echoed = await call(server, 'faults-node', { logged: 'yes' });

    const [newestSuccess, errors, all, badStatus] = await Promise.all([
      ok(['activations', 'list', '--function', 'exec-tool', '--status', 'success', '--limit', '1']),
      ok(['activations', 'list', '--function', 'exec-tool', '--status', 'error', '--limit', '50']),
      ok(['activations', 'list', '--function', 'exec-tool', '--json']),
      fails(['activations', 'list', '--status', 'done']),
    ]);
    assert.match(
      newestSuccess.stdout,
      new RegExp(
        `^ID\\s+FUNCTION\\s+STATUS\\s+START\\s+DURATION\\s+CAUSE\\s+QUEUED\\s+ERROR\\n${good2.id}\\s+exec-tool@1\\s+success\\s+cold\\s+\\d+ ms\\s+api\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\n$`,
      ),
    );
    const errorRows = errors.stdout.trim().split('\n').slice(1);
    assert.ok(errorRows.length >= 1);
    for (const row of errorRows) assert.match(row, /^[0-9a-f]{32}\s+exec-tool@1\s+error\s.*APPLICATION_ERROR$/);
    assert.ok(errorRows.some((row) => row.startsWith(bad.id)));
    const listed = JSON.parse(all.stdout) as Activation[];
    assert.equal(bad.error.code, 'APPLICATION_ERROR');
    const ids = listed.map((a) => a.id);
    assert.ok(ids.indexOf(good2.id) < ids.indexOf(bad.id) && ids.indexOf(bad.id) < ids.indexOf(good1.id), 'newest first');
    assert.ok(listed.every((a) => a.function === 'exec-tool' && a.logs === undefined && a.result === undefined));
    assert.match(badStatus.stderr, /expected one of queued, running, success, error/);

    const [nodeLogs, execLogs, execLogsJson] = await Promise.all([
      ok(['activations', 'logs', echoed.id]),
      ok(['activations', 'logs', bad.id]),
      ok(['activations', 'logs', bad.id, '--json']),
    ]);
    assert.match(nodeLogs.stdout, /^\d{4}-\d\d-\d\dT\S+Z info: echoing \{"logged":"yes"\}\n$/);
    assert.match(execLogs.stdout, /^\S+Z stderr: got 15 bytes\n\S+Z stderr: refusing: asked to fail\n$/);
    assert.deepEqual(JSON.parse(execLogsJson.stdout), { logs: execLogs.stdout.trim().split('\n') });

    const [malformed, unknown] = await Promise.all([
      fails(['activations', 'show', 'nope']),
      fails(['activations', 'logs', '0123456789abcdef0123456789abcdef']),
    ]);
    assert.match(malformed.stderr, /an activation id is 32 hex digits/);
    assert.match(unknown.stderr, /^sluice: NOT_FOUND: no activation 0123456789abcdef0123456789abcdef\n$/);
  });

  test('a bad --data or --data-file is refused before any request is sent', async () => {
    const nowhere = { url: 'http://127.0.0.1:9' };
    const file = join(work, 'not-json.txt');
    await writeFile(file, 'scan_0001.nxs\n');
    const [bad, badFile, both] = await Promise.all([
      fails(['fn', 'invoke', 'faults-node', '--data', '{nope'], nowhere),
      fails(['fn', 'invoke', 'faults-node', '--data-file', file], nowhere),
      fails(['fn', 'invoke', 'faults-node', '--data', '{}', '--data-file', file], nowhere),
    ]);
    assert.match(bad.stderr, /^sluice: BAD_REQUEST: --data is not JSON: /);
    assert.match(badFile.stderr, new RegExp(`^sluice: BAD_REQUEST: ${file} is not JSON: `));
    assert.match(both.stderr, /give --data or --data-file, not both/);
    for (const r of [bad, badFile, both]) assert.doesNotMatch(r.stderr, /cannot reach/);
  });
});

describe('past the server limits', () => {
  let small: RunningServer;
  before(async () => {
    small = await startServer({ functions: { blockingTimeoutSeconds: 0.3, maxQueuedPerFunction: 1 } });
    await ok(['fn', 'deploy', join(FIXTURES, 'faults-node')], { on: small });
  });
  after(async () => {
    await small?.stop();
  });

  test('a blocking call past functions.blockingTimeoutSeconds prints the id and says it still runs', async () => {
    const r = await ok(['fn', 'invoke', 'faults-node', '--data', '{"mode": "sleep", "ms": 1000}'], { on: small });
    const id = r.stdout.trim();
    assert.match(id, new RegExp(`^${ID}$`));
    assert.match(
      r.stderr,
      new RegExp(`^activation ${id} is still (queued|running) after the server's blocking timeout; see sluice activations show ${id}\\n$`),
    );
    assert.deepEqual((await waitForActivation(small, id)).result, { slept: 1000, instance: 'faults-node' });
  });

  test('a full queue: TOO_MANY_REQUESTS with the server detail', async () => {
    // One instance at most and one waiting call: a running call and a queued one fill it.
    const dir = await fixtureCopy('faults-node');
    const manifest = { name: 'queue-node', runtime: 'node', handler: 'main.handler', limits: { timeoutSeconds: 10 }, scaling: { max: 1 } };
    await writeFile(join(dir, 'sluice.function.json'), JSON.stringify(manifest));
    await deploy(small, dir);
    const sleep = { mode: 'sleep', ms: 2000 };
    const running = (await invoke(small, 'queue-node', sleep, { blocking: false })).body.activationId as string;
    await waitForStatus(small, running, 'running');
    const queued = (await invoke(small, 'queue-node', sleep, { blocking: false })).body.activationId as string;
    await waitForStatus(small, queued, 'queued');
    const refused = await fails(['fn', 'invoke', 'queue-node', '--async', '--data', JSON.stringify(sleep)], { on: small });
    assert.match(refused.stderr, /^sluice: TOO_MANY_REQUESTS: queue of queue-node is full \(1 calls waiting\); retry later\n$/);
    for (const id of [running, queued]) assert.equal((await waitForActivation(small, id)).status, 'success');
  });
});

test('client: invoke (completed, failed with its activation, accepted), listActivations, getActivation, activationLogs', async () => {
  const client = new SluiceClient({ url: server.url, token: server.token });
  try {
    const done = await client.invoke('faults-node', undefined, { a: 1 }, { blocking: true });
    assert.equal(done.kind, 'completed');
    const activation = done.kind === 'completed' ? done.activation : undefined;
    assert.deepEqual((activation?.result as { echo: unknown }).echo, { a: 1 });

    const failed = await client.invoke('exec-tool', 'latest', { mode: 'fail' }, { blocking: true });
    assert.equal(failed.kind, 'completed');
    assert.equal(failed.kind === 'completed' && failed.activation.error?.code, 'APPLICATION_ERROR');

    const queued = await client.invoke('faults-node', '1', null, { blocking: false });
    assert.equal(queued.kind, 'accepted');
    if (queued.kind !== 'accepted') return;
    assert.equal(queued.location, `${server.url}/api/v1/activations/${queued.activationId}`);
    await waitForActivation(server, queued.activationId);

    await assert.rejects(client.invoke('faults-node', 'nope', {}, { blocking: true }), { code: 'NOT_FOUND' });
    await assert.rejects(client.getActivation('0'.repeat(32)), { code: 'NOT_FOUND', message: `no activation ${'0'.repeat(32)}` });

    const newest = await client.listActivations({ function: 'faults-node', status: 'success', limit: 2 });
    assert.deepEqual(
      newest.map((a) => a.id),
      [queued.activationId, activation!.id],
    );
    assert.equal((await client.getActivation(activation!.id)).id, activation!.id);
    const { logs } = await client.activationLogs(activation!.id);
    assert.ok(
      logs.some((l) => l.endsWith('info: echoing {"a":1}')),
      JSON.stringify(logs),
    );
  } finally {
    client.close();
  }
});
