// `sluice trigger …` and `sluice pipeline …` as users run them: the real bin/sluice.js as a child
// process with SLUICE_URL and SLUICE_TOKEN, against a real server running real fixture functions, with
// files uploaded through the WebDAV door; and the pure parsers behind the flags.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { authed, startChildServer, startServer, tempDir, type RunningServer } from './support/server.js';
import { FIXTURES, fixtureCopy } from './support/functions.js';
import { cliFails, cliOk, runCli, type Run } from './support/cli.js';
import { parseParam, parseSize, parseStep } from '../src/cli/triggers.js';
import type { Activation } from '../src/functions/types.js';
import type { Delivery, Pipeline, PipelineRun, Trigger, TriggerStatus } from '../src/cli/client.js';

let server: RunningServer;
let work: string;

interface RunOptions {
  stdin?: string;
  /** Another server (default: the shared one). */
  on?: RunningServer;
}

const sluice = (args: string[], opts: RunOptions = {}): Promise<Run> => runCli(opts.on ?? server, args, opts);
const ok = (args: string[], opts: RunOptions = {}): Promise<Run> => cliOk(opts.on ?? server, args, opts);
const fails = (args: string[], opts: RunOptions = {}): Promise<Run> => cliFails(opts.on ?? server, args, opts);

async function okJson<T>(args: string[], opts?: RunOptions): Promise<T> {
  return JSON.parse((await ok([...args, '--json'], opts)).stdout) as T;
}

async function upload(path: string, content: string): Promise<void> {
  const res = await authed(server)(path, { method: 'PUT', body: content });
  assert.ok(res.status === 201 || res.status === 204, `PUT ${path}: ${res.status}`);
}

/** `trigger show NAME --json` until `done` holds for it. */
async function showUntil(what: string, name: string, done: (t: TriggerStatus) => boolean, on?: RunningServer): Promise<TriggerStatus> {
  const end = Date.now() + 30_000;
  for (;;) {
    const t = await okJson<TriggerStatus>(['trigger', 'show', name], { ...(on ? { on } : {}) });
    if (done(t)) return t;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(t.deliveries)} lag ${t.lag}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function activationsBy(cause: string, fn: string): Promise<Activation[]> {
  const list = await okJson<Activation[]>(['activations', 'list', '--function', fn, '--limit', '1000']);
  return list.filter((a) => a.cause === cause);
}

before(async () => {
  server = await startServer();
  work = await tempDir('sluice-trigger-cli-');
  for (const f of ['faults-node', 'flaky-node']) await ok(['fn', 'deploy', join(FIXTURES, f)]);
  for (const dir of ['/beam/raw', '/beam/other']) await ok(['mkdir', '-p', dir]);
});

after(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('trigger commands', () => {
  test('create with glob and params; a matching upload reaches `succeeded 1` in trigger show', async () => {
    const created = await okJson<Trigger>([
      'trigger',
      'create',
      'echo-nxs',
      '--function',
      'faults-node@latest',
      '--path',
      '/beam',
      '--glob',
      '**/*.nxs',
      '--param',
      'beamline=p11',
      'n=3',
      'tags=["a","b"]',
      'flag=true',
      'zip=007',
      '--description',
      'echo NeXus files',
    ]);
    assert.deepEqual(created.target, { function: 'faults-node@latest' });
    assert.deepEqual(created.filter, {
      events: ['IN_CLOSE_WRITE', 'IN_MOVED_TO'],
      path: '/beam',
      recursive: true,
      directories: false,
      glob: '**/*.nxs',
    });
    assert.deepEqual(created.params, { beamline: 'p11', n: 3, tags: ['a', 'b'], flag: true, zip: '007' });
    assert.equal(created.delivery.maxAttempts, 5, 'the server’s defaults');
    assert.equal(created.enabled, true);

    await upload('/beam/raw/scan_1.nxs', 'nexus bytes');
    await upload('/beam/raw/scan_1.txt', 'not matched');
    await upload('/beam-other.nxs', 'not below the path');

    const t = await showUntil('the delivery', 'echo-nxs', (s) => s.deliveries.succeeded === 1 && s.lag === 0);
    assert.deepEqual(t.deliveries, { pending: 0, running: 0, succeeded: 1, dead: 0 });
    assert.ok(t.position > created.position);

    const human = (await ok(['trigger', 'show', 'echo-nxs'])).stdout;
    assert.match(human, /^target:\s+function faults-node@latest$/m);
    assert.match(human, /^filter:\s+IN_CLOSE_WRITE,IN_MOVED_TO of files below \/beam, matching \*\*\/\*\.nxs$/m);
    assert.match(human, /^params:\s+\{"beamline":"p11","n":3,"tags":\["a","b"\],"flag":true,"zip":"007"\}$/m);
    assert.match(human, new RegExp(`^position:\\s+event ${t.position}$`, 'm'));
    assert.match(human, /^lag:\s+0 event\(s\)$/m);
    assert.match(human, /^deliveries:\s+succeeded 1, pending 0, running 0, dead 0; in flight 0$/m);

    // What the function received: a CloudEvent with the params at the top level.
    const [a] = await activationsBy('trigger:echo-nxs', 'faults-node');
    const full = await okJson<Activation>(['activations', 'show', a!.id]);
    const input = full.input as Record<string, unknown> & { data: Record<string, unknown> };
    assert.equal(input.specversion, '1.0');
    assert.equal(input.type, 'org.sluice.storage.IN_CLOSE_WRITE');
    assert.equal(input.subject, '/beam/raw/scan_1.nxs');
    assert.match(String(input.source), /^sluice:\/\//);
    assert.equal(input.data.size, 11);
    assert.equal(input.beamline, 'p11');
    assert.equal(input.n, 3);

    const list = (await ok(['trigger', 'list'])).stdout;
    assert.match(list, /^NAME\s+ENABLED\s+TARGET\s+PATH\s+GLOB\s+PENDING\s+RUNNING\s+SUCCEEDED\s+DEAD\s+LAG$/m);
    assert.match(list, /^echo-nxs\s+yes\s+faults-node@latest\s+\/beam\s+\*\*\/\*\.nxs\s+0\s+0\s+1\s+0\s+\d+$/m);
    assert.ok((await okJson<TriggerStatus[]>(['trigger', 'list'])).some((x) => x.name === 'echo-nxs'));

    // Disabled, it takes nothing; enabled again, it goes on from its position.
    assert.match((await ok(['trigger', 'disable', 'echo-nxs'])).stdout, /^echo-nxs disabled; \d+ event\(s\) not read yet\n$/);
    await upload('/beam/raw/scan_2.nxs', 'while disabled');
    const off = await okJson<TriggerStatus>(['trigger', 'show', 'echo-nxs']);
    assert.equal(off.enabled, false);
    assert.ok(off.lag > 0, 'events wait in the log');
    assert.equal((await okJson<TriggerStatus>(['trigger', 'enable', 'echo-nxs'])).enabled, true);
    await showUntil('the delivery after enable', 'echo-nxs', (s) => s.deliveries.succeeded === 2 && s.lag === 0);

    assert.deepEqual(await okJson(['trigger', 'rm', 'echo-nxs']), { removed: 'echo-nxs' });
    assert.match((await fails(['trigger', 'show', 'echo-nxs'])).stderr, /^sluice: NOT_FOUND: no trigger echo-nxs\n$/);
  });

  test('filter and policy flags become the request body; --from-beginning takes earlier events', async () => {
    await upload('/beam/other/early.dat', 'before the trigger existed');
    const paramsFile = join(work, 'params.json');
    await writeFile(paramsFile, JSON.stringify({ beamline: 'p11', mode: 'file' }));
    const t = await okJson<Trigger>([
      'trigger',
      'create',
      'flags',
      '--function',
      'faults-node',
      '--path',
      'beam/other/',
      '--events',
      'in_close_write',
      '--no-recursive',
      '--min-size',
      '1kB',
      '--max-size',
      '2GiB',
      '--label',
      'raw,calibrated',
      '--label',
      'p11',
      '--xattr',
      'sample=lysozyme',
      'run=7',
      '--params-file',
      paramsFile,
      '--param',
      'mode="cli"',
      '--max-attempts',
      '3',
      '--backoff',
      '0.5',
      '--max-backoff',
      '10',
      '--concurrency',
      '2',
      '--ordered',
      '--catalog-annotate',
      'echo',
      '--disabled',
    ]);
    assert.deepEqual(t.filter, {
      events: ['IN_CLOSE_WRITE'],
      path: '/beam/other',
      recursive: false,
      directories: false,
      minSize: 1000,
      maxSize: 2 * 1024 ** 3,
      labels: ['raw', 'calibrated', 'p11'],
      xattrs: { sample: 'lysozyme', run: '7' },
    });
    assert.deepEqual(t.params, { beamline: 'p11', mode: 'cli' }, '--param overrides --params-file');
    assert.deepEqual(t.delivery, { maxAttempts: 3, backoffSeconds: 0.5, maxBackoffSeconds: 10, concurrency: 2, ordered: true });
    assert.deepEqual(t.catalog, { annotate: 'echo' });
    assert.equal(t.enabled, false);
    assert.match(
      (await ok(['trigger', 'show', 'flags'])).stdout,
      /^delivery:\s+3 attempt\(s\), backoff 0\.5 s doubling up to 10 s, concurrency 2, ordered by path$/m,
    );
    await ok(['trigger', 'rm', 'flags']);

    // From the beginning: the file uploaded before the trigger is delivered.
    await ok(['trigger', 'create', 'early', '--function', 'faults-node', '--path', '/beam/other', '--glob', 'early.*', '--from-beginning']);
    await showUntil('the earlier event', 'early', (s) => s.deliveries.succeeded === 1 && s.lag === 0);
    await ok(['trigger', 'rm', 'early']);
  });

  test('retries with backoff; --ordered keeps the events of one path in log order across retries', async () => {
    await ok([
      'trigger',
      'create',
      'ordered',
      '--function',
      'flaky-node',
      '--path',
      '/beam',
      '--glob',
      '*.ord',
      '--param',
      'failures=1',
      '--backoff',
      '0.3',
      '--ordered',
    ]);
    // Two events of one path: the first fails once and waits 0.3 s; the second must not overtake it.
    await upload('/beam/a.ord', 'first');
    await upload('/beam/a.ord', 'second');
    await showUntil('both deliveries', 'ordered', (s) => s.deliveries.succeeded === 2);
    const runs = (await activationsBy('trigger:ordered', 'flaky-node')).reverse(); // oldest first
    const inputs = await Promise.all(
      runs.map(async (a) => (await okJson<Activation>(['activations', 'show', a.id])).input as { id: string }),
    );
    assert.deepEqual(
      runs.map((a) => a.status),
      ['error', 'success', 'success'],
    );
    const [first, retry, second] = inputs.map((i) => Number(i.id));
    assert.equal(first, retry, 'the retry of the first event comes before anything else for the path');
    assert.ok(second! > first!, `the second event (${second}) after the first (${first})`);
    await ok(['trigger', 'rm', 'ordered']);
  });

  test('dead letters, then replay after a fixed version is deployed', async () => {
    const dir = await fixtureCopy('flaky-node');
    await writeFile(join(dir, 'sluice.function.json'), JSON.stringify({ name: 'always-fails', runtime: 'node', handler: 'main.handler' }));
    await ok(['fn', 'deploy', dir]);
    await ok([
      'trigger',
      'create',
      'doomed',
      '--function',
      'always-fails',
      '--path',
      '/beam',
      '--glob',
      '*.doomed',
      '--param',
      'failures=-1',
      '--max-attempts',
      '2',
      '--backoff',
      '0.05',
    ]);
    await upload('/beam/b.doomed', 'x');
    await showUntil('a dead letter', 'doomed', (s) => s.deliveries.dead === 1);
    const [dead] = await okJson<Delivery[]>(['trigger', 'dead-letters', 'doomed']);
    assert.equal(dead!.attempts, 2);
    assert.equal(dead!.path, '/beam/b.doomed');
    assert.match(dead!.lastError!, /APPLICATION_ERROR: attempt 2 for \/beam\/b\.doomed fails on purpose/);
    const table = (await ok(['trigger', 'dead-letters', 'doomed'])).stdout;
    assert.match(table, /^EVENT\s+PATH\s+ATTEMPTS\s+UPDATED\s+ACTIVATION\s+ERROR$/m);
    assert.match(table, new RegExp(`^${dead!.event}\\s+/beam/b\\.doomed\\s+2\\s+.*APPLICATION_ERROR: attempt 2`, 'm'));

    // An event that is not a dead letter is named and left alone.
    const notDead = await ok(['trigger', 'replay', 'doomed', '--event', String(dead!.event + 100000)]);
    assert.match(notDead.stderr, new RegExp(`not dead letters of doomed, so not replayed: ${dead!.event + 100000}\\nnothing replayed\\n`));

    // The fix: a new version that succeeds (the trigger follows `latest`).
    await writeFile(join(dir, 'main.mjs'), 'export function handler(e) { return { fixed: e.subject }; }\n');
    await ok(['fn', 'deploy', dir]);
    const replayed = await ok(['trigger', 'replay', 'doomed', '--event', String(dead!.event)]);
    assert.equal(replayed.stdout, `replayed 1 delivery: event ${dead!.event}\n`);
    await showUntil('the replayed delivery', 'doomed', (s) => s.deliveries.succeeded === 1 && s.deliveries.dead === 0);
    assert.deepEqual(await okJson(['trigger', 'dead-letters', 'doomed']), []);
    assert.match((await ok(['trigger', 'dead-letters', 'doomed'])).stderr, /^no dead letters for doomed\n$/);
    assert.deepEqual(await okJson(['trigger', 'replay', 'doomed']), { replayed: 0, events: [] });
  });

  test('refusals exit 1 with the server’s message', async () => {
    const badRef = await fails(['trigger', 'create', 'bad-ref', '--function', 'Echo@']);
    assert.equal(
      badRef.stderr,
      'sluice: BAD_REQUEST: "Echo@" does not name a function: expected NAME or NAME@REF with a lower-case NAME\n',
    );
    const emptyRef = await fails(['trigger', 'create', 'bad-ref', '--function', 'echo@']);
    assert.match(emptyRef.stderr, /^sluice: BAD_REQUEST: "echo@": nothing after @/);
    assert.equal((await fails(['trigger', 'create', 'no-pipe', '--pipeline', 'nope'])).stderr, 'sluice: NOT_FOUND: no pipeline nope\n');
    assert.match(
      (await fails(['trigger', 'create', 'Upper', '--function', 'faults-node'])).stderr,
      /^sluice: BAD_REQUEST: trigger\/name: Expected string to match/,
    );
    assert.match(
      (await fails(['trigger', 'create', 'no-target'])).stderr,
      /give the target: either --function NAME\[@REF\] or --pipeline NAME/,
    );
    assert.match((await fails(['trigger', 'create', 'both', '--function', 'a', '--pipeline', 'b'])).stderr, /give the target/);
    assert.match(
      (await fails(['trigger', 'create', 'ev', '--function', 'a', '--events', 'IN_CLOSE_WRITE,IN_NOPE'])).stderr,
      /unknown: IN_NOPE; expected some of IN_ACCESS, /,
    );
    assert.match((await fails(['trigger', 'create', 'sz', '--function', 'a', '--min-size', '1.5B'])).stderr, /not a whole number of bytes/);
    assert.match(
      (await fails(['trigger', 'create', 'kv', '--function', 'a', '--param', 'novalue'])).stderr,
      /--param "novalue": expected KEY=VALUE/,
    );
    assert.match(
      (await fails(['trigger', 'create', 'sizes', '--function', 'a', '--min-size', '2k', '--max-size', '1k'])).stderr,
      /^sluice: BAD_REQUEST: filter\.minSize is larger than filter\.maxSize\n$/,
    );
    await ok(['trigger', 'create', 'twice', '--function', 'faults-node', '--path', '/beam/other', '--disabled']);
    assert.equal(
      (await fails(['trigger', 'create', 'twice', '--function', 'faults-node'])).stderr,
      'sluice: CONFLICT: a trigger named twice exists\n',
    );
    await ok(['trigger', 'rm', 'twice']);
    for (const cmd of ['show', 'enable', 'disable', 'rm', 'dead-letters', 'replay']) {
      assert.equal((await fails(['trigger', cmd, 'ghost'])).stderr, 'sluice: NOT_FOUND: no trigger ghost\n', cmd);
    }
  });
});

describe('pipeline commands', () => {
  before(async () => {
    const dir = await fixtureCopy('faults-node');
    await writeFile(join(dir, 'sluice.function.json'), JSON.stringify({ name: 'add-one', runtime: 'node', handler: 'main.handler' }));
    await writeFile(
      join(dir, 'main.mjs'),
      'export function handler(e) { return { n: (e.n ?? 0) + (e.step ?? 1), path: e.subject ?? e.path }; }\n',
    );
    await ok(['fn', 'deploy', dir]);
  });

  test('put with --step, show, run, runs and run-show', async () => {
    const saved = await okJson<Pipeline>([
      'pipeline',
      'put',
      'count',
      '--step',
      'add-one',
      'add-one@latest:{"step":10}',
      'flaky-node:{"failures":1}:2',
      '--description',
      'adds, then flakes once',
    ]);
    assert.deepEqual(
      saved.steps.map((s) => [s.function, s.params, s.maxAttempts]),
      [
        ['add-one', {}, 1],
        ['add-one@latest', { step: 10 }, 1],
        ['flaky-node', { failures: 1 }, 2],
      ],
    );
    assert.match(
      (await ok(['pipeline', 'put', 'count', '--file', '-'], { stdin: JSON.stringify(saved) })).stdout,
      /^saved pipeline count: /,
    );
    const shown = (await ok(['pipeline', 'show', 'count'])).stdout;
    assert.match(shown, /^description:\s+adds, then flakes once$/m);
    assert.match(shown, /^\s+2\s+add-one@latest\s+1\s+\{"step":10\}$/m);
    assert.match(shown, /^\s+3\s+flaky-node\s+2\s+\{"failures":1\}$/m);
    assert.match((await ok(['pipeline', 'list'])).stdout, /^count\s+add-one → add-one@latest → flaky-node\s+admin\s+/m);

    const run = await okJson<PipelineRun>(['pipeline', 'run', 'count', '--data', '{"n":1,"path":"/by/hand"}']);
    assert.equal(run.status, 'succeeded');
    assert.equal(run.cause, 'api');
    assert.deepEqual(run.steps[1]!.result, { n: 12, path: '/by/hand' });
    assert.equal(run.steps[2]!.attempts, 2);
    assert.equal(run.steps.flatMap((s) => s.activations).length, 4);
    assert.equal((run.result as { path: string }).path, '/by/hand');

    const human = await ok(['pipeline', 'run', 'count', '--data-file', '-'], { stdin: '{"n":5,"path":"/by/stdin"}' });
    assert.match(human.stdout, /^run:\s+run_[0-9a-f]{16}$/m);
    assert.match(human.stdout, /^status:\s+succeeded$/m);
    assert.match(human.stdout, /^\s+3\s+flaky-node\s+succeeded\s+2\s+[0-9a-f]{32},[0-9a-f]{32}$/m);
    assert.match(human.stdout, /^result:\n {2}\{\n/m);

    const runs = await okJson<PipelineRun[]>(['pipeline', 'runs', 'count']);
    assert.equal(runs.length, 2);
    assert.ok(runs.some((r) => r.id === run.id));
    assert.match((await ok(['pipeline', 'runs', 'count'])).stdout, new RegExp(`^${run.id}\\s+succeeded\\s+api\\s+.*\\s3/3$`, 'm'));
    assert.deepEqual(await okJson<PipelineRun>(['pipeline', 'run-show', run.id]), run);
    const activation = run.steps[0]!.activations[0]!;
    assert.match(
      (await ok(['pipeline', 'run-show', run.id])).stdout,
      new RegExp(`^\\s+1\\s+add-one\\s+succeeded\\s+1\\s+${activation}$`, 'm'),
    );
  });

  test('a failed run prints the run and exits 1; a trigger may target a pipeline, which then stays', async () => {
    const file = join(work, 'fails.json');
    await writeFile(
      file,
      JSON.stringify({
        name: 'fails',
        steps: [{ function: 'add-one' }, { function: 'flaky-node', params: { failures: 5 }, maxAttempts: 2 }],
      }),
    );
    await ok(['pipeline', 'put', 'fails', '--file', file]);
    const failed = await sluice(['pipeline', 'run', 'fails', '--data', '{"path":"/will/fail"}', '--json']);
    assert.equal(failed.code, 1, failed.stderr);
    const run = JSON.parse(failed.stdout) as PipelineRun;
    assert.equal(run.status, 'failed');
    assert.deepEqual(
      run.steps.map((s) => [s.status, s.attempts]),
      [
        ['succeeded', 1],
        ['failed', 2],
      ],
    );
    assert.match(
      failed.stderr,
      /^pipeline fails failed: step 2 \(flaky-node\) failed after 2 attempt\(s\): APPLICATION_ERROR: attempt 2 for \/will\/fail fails on purpose\n$/,
    );
    const human = await sluice(['pipeline', 'run', 'fails', '--data', '{"path":"/will/fail/too"}']);
    assert.equal(human.code, 1);
    assert.match(human.stdout, /^status:\s+failed$/m);
    assert.match(human.stdout, /^error: step 2 \(flaky-node\) failed after 2 attempt\(s\)/m);

    await ok(['trigger', 'create', 'counted', '--pipeline', 'count', '--path', '/beam', '--glob', '*.count']);
    await upload('/beam/c.count', 'x');
    await showUntil('the pipeline run by the trigger', 'counted', (s) => s.deliveries.succeeded === 1);
    const byTrigger = (await okJson<PipelineRun[]>(['pipeline', 'runs', 'count'])).find((r) => r.cause === 'trigger:counted');
    assert.equal(byTrigger?.status, 'succeeded');
    assert.equal((byTrigger!.result as { path: string }).path, '/beam/c.count');
    assert.equal(
      (await fails(['pipeline', 'rm', 'count'])).stderr,
      'sluice: CONFLICT: pipeline count is the target of trigger(s) counted\n',
      'a pipeline in use stays',
    );
    await ok(['trigger', 'rm', 'counted']);
    assert.deepEqual(await okJson(['pipeline', 'rm', 'count']), { removed: 'count' });
    assert.equal((await fails(['pipeline', 'show', 'count'])).stderr, 'sluice: NOT_FOUND: no pipeline count\n');
  });

  test('a step whose call is refused fails the run, and a trigger on it dead-letters', async () => {
    await ok(['pipeline', 'put', 'ghost', '--step', 'add-one', 'no-such-function:2']);
    const failed = await sluice(['pipeline', 'run', 'ghost', '--json']);
    assert.equal(failed.code, 1, failed.stderr);
    const run = JSON.parse(failed.stdout) as PipelineRun;
    assert.equal(run.status, 'failed');
    assert.deepEqual(run.steps[1], {
      function: 'no-such-function',
      status: 'failed',
      attempts: 2,
      activations: [],
      error: 'NOT_FOUND: no function no-such-function',
    });
    await ok([
      'trigger',
      'create',
      'ghostly',
      '--pipeline',
      'ghost',
      '--path',
      '/beam',
      '--glob',
      '*.ghost',
      '--max-attempts',
      '2',
      '--backoff',
      '0.05',
    ]);
    await upload('/beam/g.ghost', 'x');
    await showUntil('the dead letter', 'ghostly', (s) => s.deliveries.dead === 1);
    const [dead] = await okJson<Delivery[]>(['trigger', 'dead-letters', 'ghostly']);
    assert.match(dead!.lastError!, /^step 2 \(no-such-function\) failed after 2 attempt\(s\): NOT_FOUND: no function no-such-function$/);
    const runs = await okJson<PipelineRun[]>(['pipeline', 'runs', 'ghost']);
    assert.deepEqual(
      runs.map((r) => r.status),
      ['failed', 'failed', 'failed'],
      'no run is left running',
    );
    await ok(['trigger', 'rm', 'ghostly']);
    await ok(['pipeline', 'rm', 'ghost']);
  });

  test('refusals exit 1 with the server’s message, or the step syntax named', async () => {
    assert.equal((await fails(['pipeline', 'run', 'nope'])).stderr, 'sluice: NOT_FOUND: no pipeline nope\n');
    assert.equal((await fails(['pipeline', 'runs', 'nope'])).stderr, 'sluice: NOT_FOUND: no pipeline nope\n');
    assert.equal((await fails(['pipeline', 'rm', 'nope'])).stderr, 'sluice: NOT_FOUND: no pipeline nope\n');
    assert.equal(
      (await fails(['pipeline', 'put', 'p', '--step', 'Fit@x'])).stderr,
      'sluice: BAD_REQUEST: "Fit@x" does not name a function: expected NAME or NAME@REF with a lower-case NAME\n',
    );
    assert.match(
      (await fails(['pipeline', 'put', 'p', '--step', 'fit:{"a":1'])).stderr,
      /--step "fit:\{"a":1": .* expected FUNCTION\[@REF\]\[:PARAMS\]\[:ATTEMPTS\]/,
    );
    assert.match((await fails(['pipeline', 'put', 'p', '--step', 'fit:0'])).stderr, /ATTEMPTS is at least 1/);
    assert.match(
      (await fails(['pipeline', 'put', 'p', '--step', 'fit:30'])).stderr,
      /^sluice: BAD_REQUEST: body\/steps\/0\/maxAttempts must be <= 20\n$/,
    );
    assert.match((await fails(['pipeline', 'put', 'p'])).stderr, /give the steps: either --step/);
    assert.match((await fails(['pipeline', 'run-show', 'run_nope'])).stderr, /a run id is run_ and 16 hex digits/);
    assert.equal(
      (await fails(['pipeline', 'run-show', 'run_0123456789abcdef'])).stderr,
      'sluice: NOT_FOUND: no pipeline run run_0123456789abcdef\n',
    );
    assert.match((await fails(['pipeline', 'run', 'nope', '--data', '{'])).stderr, /--data is not JSON/);
  });
});

describe('flag syntax', () => {
  test('--step FUNCTION[@REF][:PARAMS][:ATTEMPTS]', () => {
    assert.deepEqual(parseStep('fit'), { function: 'fit' });
    assert.deepEqual(parseStep('fit@prod'), { function: 'fit@prod' });
    assert.deepEqual(parseStep('fit@3:4'), { function: 'fit@3', maxAttempts: 4 });
    assert.deepEqual(parseStep('fit:{"a":"x:1"}'), { function: 'fit', params: { a: 'x:1' } });
    assert.deepEqual(parseStep('fit@prod:{"k":1}:3'), { function: 'fit@prod', params: { k: 1 }, maxAttempts: 3 });
    assert.throws(() => parseStep(':3'), /no function/);
    assert.throws(() => parseStep('fit:[1]'), /neither a JSON object/);
    assert.throws(() => parseStep('fit:{"k":1}:x'), /neither a JSON object/);
  });

  test('--param values are JSON when they parse, else strings', () => {
    assert.deepEqual(parseParam('n=3'), ['n', 3]);
    assert.deepEqual(parseParam('s=p11'), ['s', 'p11']);
    assert.deepEqual(parseParam('s="3"'), ['s', '3']);
    assert.deepEqual(parseParam('eq=a=b'), ['eq', 'a=b']);
    assert.deepEqual(parseParam('o={"a":[1,null]}'), ['o', { a: [1, null] }]);
    assert.deepEqual(parseParam('empty='), ['empty', '']);
    assert.throws(() => parseParam('=x'), /KEY=VALUE/);
  });

  test('sizes in bytes, decimal and binary units', () => {
    assert.equal(parseSize('0'), 0);
    assert.equal(parseSize('1500'), 1500);
    assert.equal(parseSize('10k'), 10_000);
    assert.equal(parseSize('5MB'), 5_000_000);
    assert.equal(parseSize('1.5kB'), 1500);
    assert.equal(parseSize('2GiB'), 2 * 1024 ** 3);
    assert.throws(() => parseSize('5 parsecs'));
    assert.throws(() => parseSize('-1'));
  });
});

test('kill -9 while a trigger’s pipeline runs: the run resumes at its unfinished step; finished steps do not run again', async () => {
  const child = await startChildServer();
  let restarted: RunningServer | undefined;
  try {
    const on = child;
    await ok(['fn', 'deploy', join(FIXTURES, 'faults-node')], { on });
    await ok(['mkdir', '/crash'], { on });
    await ok(['pipeline', 'put', 'slow', '--step', 'faults-node', 'faults-node:{"mode":"sleep","ms":2500}'], { on });
    await ok(['trigger', 'create', 'slow', '--pipeline', 'slow', '--path', '/crash'], { on });
    assert.equal((await authed(child)('/crash/x.dat', { method: 'PUT', body: 'x' })).status, 201);

    let cut: PipelineRun | undefined;
    for (const end = Date.now() + 20_000; !cut; await new Promise((r) => setTimeout(r, 50))) {
      const [run] = await okJson<PipelineRun[]>(['pipeline', 'runs', 'slow'], { on });
      if (run?.steps[1]?.status === 'running' && run.steps[1].activations.length === 1) cut = run;
      else if (Date.now() > end) assert.fail(`step 2 never ran: ${JSON.stringify(run)}`);
    }
    const exited = new Promise((r) => child.proc!.once('exit', r));
    child.proc!.kill('SIGKILL');
    await exited;

    restarted = await startChildServer({ dataDir: child.dataDir });
    await showUntil('the resumed delivery', 'slow', (t) => t.deliveries.succeeded === 1, restarted);
    const runs = await okJson<PipelineRun[]>(['pipeline', 'runs', 'slow'], { on: restarted });
    assert.deepEqual(
      runs.map((r) => [r.id, r.status]),
      [[cut.id, 'succeeded']],
      'the interrupted run was resumed, not replaced',
    );
    const [run] = runs;
    assert.deepEqual(run!.steps[0], cut.steps[0], 'step 1 ran once');
    assert.equal(run!.steps[1]!.attempts, 1, 'the attempt the kill cut off does not count');
    assert.equal(run!.steps[1]!.activations.length, 2);
    assert.equal(run!.steps[1]!.activations[0], cut.steps[1]!.activations[0]);
    const interrupted = await okJson<Activation>(['activations', 'show', cut.steps[1]!.activations[0]!], { on: restarted });
    assert.equal(interrupted.status, 'error');
  } finally {
    await restarted?.stop();
    await child.stop();
  }
});
