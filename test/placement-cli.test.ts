// `sluice se|rule|transfers|qos|replicas` as operators run them: the real bin/sluice.js as a child
// process against a real `sluice serve` child with a local and a tape SE in temporary directories,
// files uploaded through the WebDAV door, and the server's retries and repair pass made fast
// through DATA/sluice.json.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { authed, startChildServer, tempDir, type RunningServer } from './support/server.js';
import { cliFails, cliOk, runCli, until, type Run } from './support/cli.js';
import { parseDuration, type FilePlacement, type StorageElement } from '../src/cli/placement.js';
import type { Lock, QosClass, Rule, Transfer } from '../src/placement/types.js';

let server: RunningServer;
let work: string;
let archiveRule: Rule;

/** Nothing listens here: a command refused by its own flag checks never gets that far. */
const NOWHERE = 'http://127.0.0.1:9';

const sluice = (args: string[]): Promise<Run> => runCli(server, args);
const ok = (args: string[]): Promise<Run> => cliOk(server, args);
const fails = (args: string[], url?: string): Promise<Run> => cliFails(server, args, url ? { url } : {});

async function okJson<T>(args: string[]): Promise<T> {
  const out = (await ok([...args, '--json'])).stdout;
  try {
    return JSON.parse(out) as T;
  } catch {
    assert.fail(`sluice ${args.join(' ')} --json printed no JSON:\n${out}`);
  }
}

async function upload(path: string, content: string | Buffer): Promise<void> {
  const res = await authed(server)(path, { method: 'PUT', body: content });
  assert.ok(res.status === 201 || res.status === 204, `PUT ${path}: ${res.status}`);
}

/** Every regular file below a directory. */
async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  }
  return out;
}

before(async () => {
  work = await tempDir('sluice-placement-cli-');
  const dataDir = join(work, 'data');
  await mkdir(dataDir);
  await writeFile(
    join(dataDir, 'sluice.json'),
    JSON.stringify({ placement: { retryBaseSeconds: 0.1, repairIntervalSeconds: 1, maxTransferAttempts: 2, stageWaitSeconds: 1 } }),
  );
  server = await startChildServer({ dataDir, extraArgs: ['--no-fsync'] });
  for (const dir of ['/beam/raw', '/qos', '/verify', '/stuck', '/slow']) await ok(['mkdir', '-p', dir]);
});

after(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('storage elements', () => {
  test('se add (local with attributes and a capacity, tape with delays); list and show report the space', async () => {
    const disk = await okJson<StorageElement>([
      'se',
      'add',
      'disk1',
      '--kind',
      'local',
      '--path',
      join(work, 'disk1'),
      '--attr',
      'site=hamburg',
      'tier=1',
      '--capacity',
      '10M',
      '--max-active',
      '4',
    ]);
    assert.equal(disk.kind, 'local');
    assert.deepEqual(disk.attributes, { medium: 'disk', site: 'hamburg', tier: '1' });
    assert.equal(disk.spec.capacityBytes, 10_000_000);
    assert.equal(disk.spec.maxActiveTransfers, 4);
    assert.deepEqual(disk.space, { total: 10_000_000, free: 10_000_000, used: 0, files: 0 });

    const added = await ok([
      'se',
      'add',
      'tape1',
      '--kind',
      'tape',
      '--path',
      join(work, 'tape1'),
      '--flush-delay',
      '0.2',
      '--attr',
      'site=hamburg',
    ]);
    assert.equal(added.stdout, 'added storage element tape1 (tape, medium=tape,site=hamburg)\n');
    assert.match(added.stderr, /^space: 0 B used by 0 replica\(s\), .* free of /);

    const list = (await ok(['se', 'list'])).stdout.split('\n');
    assert.match(list[0]!, /^NAME\s+KIND\s+ATTRIBUTES\s+USED\s+TOTAL\s+FILES$/);
    assert.ok(
      list.some((l) => /^disk1\s+local\s+medium=disk,site=hamburg,tier=1\s+0 B\s+10\.0 MB\s+0$/.test(l)),
      list.join('\n'),
    );
    assert.ok(
      list.some((l) => /^local \(landing\)\s+local\s+medium=disk,site=local\s+/.test(l)),
      list.join('\n'),
    );
    assert.ok(
      list.some((l) => /^tape1\s+tape\s+medium=tape,site=hamburg\s+0 B\s+\S+ [kMGTP]?B\s+0$/.test(l)),
      list.join('\n'),
    );
    const all = await okJson<StorageElement[]>(['se', 'list']);
    assert.deepEqual(
      all.map((s) => [s.name, s.kind, s.landing]),
      [
        ['disk1', 'local', false],
        ['local', 'local', true],
        ['tape1', 'tape', false],
      ],
    );

    const show = (await ok(['se', 'show', 'tape1'])).stdout;
    assert.match(show, /^name:\s+tape1$/m);
    assert.match(show, /^kind:\s+tape$/m);
    assert.match(show, new RegExp(`^path:\\s+${join(work, 'tape1')}$`, 'm'));
    assert.match(show, /^flush delay:\s+0\.2 s$/m);
    assert.match(show, /^stage delay:\s+30 s$/m, 'the backend default');
    assert.match(show, /^space:\s+0 B used by 0 replica\(s\), /m);
    assert.match((await ok(['se', 'show', 'disk1'])).stdout, /^capacity:\s+10000000 \(10\.0 MB\)$/m);
  });

  test('se set-attr sets and removes attributes', async () => {
    assert.equal(
      (await ok(['se', 'set-attr', 'disk1', 'region=eu', '--unset', 'tier'])).stdout,
      'disk1: medium=disk,region=eu,site=hamburg\n',
    );
    const s = await okJson<StorageElement>(['se', 'set-attr', 'disk1', 'region=us']);
    assert.deepEqual(s.attributes, { medium: 'disk', region: 'us', site: 'hamburg' });
    assert.deepEqual((await okJson<StorageElement>(['se', 'show', 'disk1'])).attributes, s.attributes);
  });

  test('se disable and enable take an SE out of service and back', async () => {
    assert.equal((await ok(['se', 'disable', 'disk1'])).stdout, 'disk1 is out of service\n');
    assert.match((await ok(['se', 'list'])).stdout, /^disk1 \(out of service\)\s+local\s+/m);
    assert.match((await ok(['se', 'show', 'disk1'])).stdout, /^status:\s+out of service /m);
    assert.equal((await okJson<StorageElement>(['se', 'enable', 'disk1'])).available, true);
    assert.match((await ok(['se', 'show', 'disk1'])).stdout, /^status:\s+in service$/m);
    assert.equal((await fails(['se', 'disable', 'local'])).stderr, 'sluice: CONFLICT: the landing SE cannot be taken out of service\n');
  });

  test('se rm removes an empty SE', async () => {
    await ok(['se', 'add', 'spare', '--kind', 'local', '--path', join(work, 'spare')]);
    assert.equal((await ok(['se', 'rm', 'spare'])).stderr, 'removed storage element spare\n');
    assert.equal((await fails(['se', 'show', 'spare'])).stderr, 'sluice: NOT_FOUND: no storage element spare\n');
  });
});

describe('rules, transfers and replicas', () => {
  test('rule create → rule wait OK → transfers DONE → two replicas of each file', async () => {
    await upload('/beam/raw/scan_1.nxs', 'first scan');
    await upload('/beam/raw/scan_2.nxs', 'second scan, longer');
    await upload('/beam/raw/notes.txt', 'not matched by the glob');
    archiveRule = await okJson<Rule>([
      'rule',
      'create',
      '--path',
      '/beam',
      '--glob',
      '**/*.nxs',
      '--copies',
      '1',
      '--expression',
      'medium=tape',
      '--source',
      'local',
      '--priority',
      '4',
      '--lifetime',
      '7d',
      '--comment',
      'archive',
    ]);
    assert.equal(archiveRule.path, '/beam');
    assert.equal(archiveRule.glob, '**/*.nxs');
    assert.equal(archiveRule.grouping, 'DATASET', 'the server default');
    assert.equal(archiveRule.priority, 4);
    assert.equal(archiveRule.source, 'local');
    assert.ok(Math.abs(archiveRule.expires! - archiveRule.created - 7 * 86400_000) < 1000);

    // A prefix of the id is enough, as `rule list` shows ids.
    const waited = await ok(['rule', 'wait', archiveRule.id.slice(0, 8), '--timeout', '30']);
    assert.equal(waited.stdout, `rule ${archiveRule.id} is OK: 2 OK, 0 replicating, 0 stuck\n`);

    const transfers = await okJson<Transfer[]>(['transfers', 'list', '--rule', archiveRule.id]);
    assert.deepEqual(transfers.map((t) => [t.path, t.state, t.destination, t.bytesDone === t.size]).sort(), [
      ['/beam/raw/scan_1.nxs', 'DONE', 'tape1', true],
      ['/beam/raw/scan_2.nxs', 'DONE', 'tape1', true],
    ]);
    const table = (await ok(['transfers', 'list', '--state', 'done', '--path', '/beam'])).stdout.split('\n');
    assert.match(table[0]!, /^ID\s+STATE\s+PATH\s+FROM\s+TO\s+SIZE\s+DONE\s+ATTEMPTS\s+MODE\s+ERROR$/);
    assert.ok(
      table.some((l) => /^\S+\s+DONE\s+\/beam\/raw\/scan_1\.nxs\s+local\s+tape1\s+10 B\s+100%\s+1\/2\s+local$/.test(l)),
      table.join('\n'),
    );
    const shown = (await ok(['transfers', 'show', transfers[0]!.id])).stdout;
    assert.match(shown, /^state:\s+DONE$/m);
    assert.match(shown, /^progress:\s+100% \(\d+ bytes\)$/m);
    assert.match(shown, new RegExp(`^rule:\\s+${archiveRule.id}$`, 'm'));
    assert.equal(
      (await fails(['transfers', 'cancel', transfers[0]!.id])).stderr,
      `sluice: CONFLICT: transfer ${transfers[0]!.id} is already DONE\n`,
    );

    const replicas = await okJson<FilePlacement>(['replicas', '/beam/raw/scan_1.nxs']);
    assert.deepEqual(replicas.replicas.map((r) => [r.se, r.state, r.online]).sort(), [
      ['local', 'AVAILABLE', true],
      ['tape1', 'NEARLINE', false],
    ]);
    assert.equal(replicas.fileLocality, 'ONLINE_AND_NEARLINE');
    const human = await ok(['replicas', 'beam/raw/scan_2.nxs']);
    assert.match(human.stdout, /^SE\s+STATE\s+ONLINE\s+CREATED\s+VERIFIED\s+PINNED UNTIL\s+REASON$/m);
    assert.match(human.stdout, /^local\s+AVAILABLE\s+yes\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+-\s+-$/m);
    assert.match(human.stdout, /^tape1\s+NEARLINE\s+no\s+/m);
    assert.equal(human.stderr, '/beam/raw/scan_2.nxs: ONLINE_AND_NEARLINE, QoS disk+tape\n');
    assert.equal((await okJson<FilePlacement>(['replicas', '/beam/raw/notes.txt'])).replicas.length, 1, 'outside the glob');

    const show = (await ok(['rule', 'show', archiveRule.id, '--locks'])).stdout;
    assert.match(show, /^state:\s+OK$/m);
    assert.match(show, /^files:\s+\/beam, matching \*\*\/\*\.nxs$/m);
    assert.match(show, /^locks:\s+2 OK, 0 replicating, 0 stuck$/m);
    assert.match(show, /^ {2}\/beam\/raw\/scan_1\.nxs\s+tape1\s+OK$/m);
    assert.match(show, /^comment:\s+archive$/m);
    assert.match(show, /^source:\s+local$/m);
    const withLocks = await okJson<{ rule: Rule; locks: Lock[] }>(['rule', 'show', archiveRule.id, '--locks', '--limit', '1']);
    assert.equal(withLocks.rule.state, 'OK');
    assert.equal(withLocks.locks.length, 1);

    const list = (await ok(['rule', 'list'])).stdout;
    assert.match(list, /^ID\s+STATE\s+PATH\s+COPIES\s+EXPRESSION\s+LOCKS OK\/REPL\/STUCK\s+EXPIRES\s+NOTE$/m);
    assert.match(
      list,
      new RegExp(`^${archiveRule.id}\\s+OK\\s+/beam \\(\\*\\*/\\*\\.nxs\\)\\s+1\\s+medium=tape\\s+2/0/0\\s+\\d{4}-.*archive$`, 'm'),
    );
  });

  test('rule suspend and resume; rule wait refuses a suspended rule', async () => {
    assert.equal((await ok(['rule', 'suspend', archiveRule.id])).stdout, `rule ${archiveRule.id} is SUSPENDED\n`);
    assert.equal(
      (await fails(['rule', 'wait', archiveRule.id])).stderr,
      `sluice: CONFLICT: rule ${archiveRule.id} is SUSPENDED; \`sluice rule resume ${archiveRule.id}\` first\n`,
    );
    assert.equal((await okJson<Rule>(['rule', 'resume', archiveRule.id])).state, 'OK');
  });

  test('qos PATH disk+tape: the transition runs until qos PATH reports disk+tape', async () => {
    await upload('/qos/file.dat', 'bytes for QoS');
    const before = (await ok(['qos', '/qos/file.dat'])).stdout;
    assert.match(before, /^qos:\s+disk$/m);
    assert.match(before, /^locality:\s+ONLINE$/m);

    await ok(['qos', '/qos/file.dat', 'disk+tape']);
    await until('qos disk+tape', async () => {
      const q = await okJson<{ currentQos: string; targetQos?: string }>(['qos', '/qos/file.dat']);
      return q.currentQos === 'disk+tape' && q.targetQos === undefined ? q : undefined;
    });
    const after = (await ok(['qos', '/qos/file.dat'])).stdout;
    assert.equal(after, 'path:      /qos/file.dat\nqos:       disk+tape\nlocality:  ONLINE_AND_NEARLINE\n');

    const classes = await okJson<QosClass[]>(['qos']);
    assert.deepEqual(
      classes.map((c) => c.name),
      ['disk', 'tape', 'disk+tape'],
    );
    assert.match((await ok(['qos'])).stdout, /^disk\+tape\s+1 on medium=disk \+ 1 on medium=tape$/m);
    assert.match(
      (await fails(['qos', '/qos/file.dat', 'fast'])).stderr,
      /^sluice: BAD_REQUEST: unknown QoS class "fast"; one of: disk, tape, disk\+tape\n$/,
    );
    assert.match((await fails(['qos', '/qos', 'tape'])).stderr, /is not a file/);
  });

  test('se verify finds a corrupted replica, marks it BAD and exits 1', async () => {
    await upload('/verify/x.dat', 'verify me please');
    const clean = await ok(['se', 'verify', 'local']);
    assert.match(clean.stdout, /^local: checked \d+ replica\(s\), 0 bad, 0 skipped/);

    const landing = join(server.dataDir, 'se', 'local');
    let corrupted = 0;
    for (const f of await filesBelow(landing)) {
      if ((await readFile(f, 'utf8')) === 'verify me please') {
        await writeFile(f, 'verify me PLEASE');
        corrupted++;
      }
    }
    assert.equal(corrupted, 1, 'the replica file on the landing SE');
    const found = await runCli(server, ['se', 'verify', 'local']);
    assert.equal(found.code, 1, found.stderr);
    assert.match(found.stdout, /^local: checked \d+ replica\(s\), 1 bad, 0 skipped/);
    assert.match(found.stdout, /^BAD \/verify\/x\.dat$/m);
    const r = await okJson<FilePlacement>(['replicas', '/verify/x.dat']);
    assert.equal(r.replicas[0]!.state, 'BAD');
    assert.match(r.replicas[0]!.reason!, /verification failed/);
  });

  test('se rm is refused while the SE holds replicas; rule rm', async () => {
    assert.match((await fails(['se', 'rm', 'tape1'])).stderr, /^sluice: CONFLICT: storage element tape1 still holds \d+ replicas\n$/);
    assert.equal((await ok(['rule', 'rm', archiveRule.id])).stderr, `removed rule ${archiveRule.id}\n`);
    assert.equal((await fails(['rule', 'show', archiveRule.id])).stderr, `sluice: NOT_FOUND: no rule ${archiveRule.id}\n`);
    assert.equal((await fails(['rule', 'show', 'abcdef12'])).stderr, 'sluice: NOT_FOUND: no rule abcdef12\n');
  });

  test('rule wait exits 1 on timeout while replicas are still on their way', async () => {
    // A tape SE with a long flush delay: the copy waits in its disk buffer, the lock stays REPLICATING.
    await ok(['se', 'add', 'slowtape', '--kind', 'tape', '--path', join(work, 'slowtape'), '--flush-delay', '1h', '--attr', 'medium=slow']);
    assert.match((await ok(['se', 'show', 'slowtape'])).stdout, /^flush delay:\s+3600 s$/m);
    await upload('/slow/a.dat', 'slow');
    const r = await okJson<Rule>(['rule', 'create', '--path', '/slow', '--copies', '1', '--expression', 'slowtape']);
    const waited = await sluice(['rule', 'wait', r.id, '--timeout', '1']);
    assert.equal(waited.code, 1);
    assert.match(
      waited.stderr,
      new RegExp(`^sluice: UNAVAILABLE: rule ${r.id} is still REPLICATING after 1 s \\(locks 0 OK, 1 replicating, 0 stuck\\)\\n$`),
    );
  });

  test('rule wait exits 1 with the reason once the rule is STUCK', async () => {
    const dir = join(work, 'flaky');
    await ok(['se', 'add', 'flaky', '--kind', 'local', '--path', dir, '--attr', 'medium=flaky']);
    // The SE's disk is gone: a file where its directory was makes every write fail.
    await rm(dir, { recursive: true });
    await writeFile(dir, 'not a directory');
    await upload('/stuck/a.dat', 'never arrives');
    const r = await okJson<Rule>([
      'rule',
      'create',
      '--path',
      '/stuck',
      '--copies',
      '1',
      '--expression',
      'medium=flaky',
      '--grouping',
      'none',
    ]);
    assert.equal(r.grouping, 'NONE');
    const waited = await sluice(['rule', 'wait', r.id, '--timeout', '30']);
    assert.equal(waited.code, 1, waited.stdout);
    assert.match(waited.stderr, new RegExp(`^sluice: CONFLICT: rule ${r.id} is STUCK: .+ \\(locks 0 OK, 0 replicating, 1 stuck\\)\\n$`));
    const failed = await okJson<Transfer[]>(['transfers', 'list', '--rule', r.id, '--state', 'FAILED']);
    assert.ok(failed.length >= 1);
    assert.ok(failed[0]!.error, 'a failed transfer says why');
  });
});

/** Each command fails on its flags with the message, without reaching a server (run side by side: nothing is shared). */
async function refusedHere(cases: [string[], RegExp][]): Promise<void> {
  const runs = await Promise.all(cases.map(([args]) => runCli(server, args, { url: NOWHERE })));
  runs.forEach((r, i) => {
    const [args, message] = cases[i]!;
    assert.equal(r.code, 1, `sluice ${args.join(' ')} should have failed:\n${r.stdout}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.doesNotMatch(r.stderr, /cannot reach sluice/, args.join(' '));
  });
}

describe('flags checked before anything is sent', () => {
  test('SE flags', async () => {
    const cases: [string[], RegExp][] = [
      [['se', 'add', 'x', '--kind', 'nope'], /argument 'nope' is invalid\. Allowed choices are local, webdav, tape\./],
      [['se', 'add', 'x', '--path', '/tmp/x'], /required option '--kind <kind>' not specified/],
      [['se', 'add', 'x', '--kind', 'local'], /^sluice: BAD_REQUEST: a local SE needs --path DIR/],
      [['se', 'add', 'x', '--kind', 'local', '--path', 'rel/dir'], /--path rel\/dir: give an absolute path/],
      [['se', 'add', 'x', '--kind', 'webdav'], /a webdav SE needs --endpoint URL/],
      [['se', 'add', 'x', '--kind', 'tape', '--path', '/t', '--endpoint', 'http://e'], /--endpoint cannot be used with --kind tape/],
      [['se', 'add', 'x', '--kind', 'local', '--path', '/t', '--flush-delay', '1'], /--flush-delay cannot be used with --kind local/],
      [['se', 'add', 'x', '--kind', 'local', '--path', '/t', '--no-tpc'], /--no-tpc cannot be used with --kind local/],
      [['se', 'add', 'x', '--kind', 'local', '--path', '/t', '--capacity', '10Q'], /expected a size in bytes, e\.g\. .*; got 10Q/],
      [['se', 'add', 'x', '--kind', 'local', '--path', '/t', '--attr', 'site'], /expected KEY=VALUE for --attr, got site/],
      [['se', 'add', 'x', '--kind', 'tape', '--path', '/t', '--flush-delay', 'soon'], /expected a duration such as 30, 0\.5, 30s/],
      [['se', 'add', 'x', '--kind', 'local', '--path', '/t', '--max-active', '0'], /expected a positive whole number, got 0/],
      [
        ['se', 'add', 'x', '--kind', 'webdav', '--endpoint', 'http://e', '--token-file', '/nonexistent/t'],
        /--token-file \/nonexistent\/t: no such file/,
      ],
      [['se', 'set-attr', 'disk1'], /nothing to change: give KEY=VALUE pairs to set and\/or --unset KEY/],
      [['se', 'set-attr', 'disk1', 'site'], /attribute "site": expected KEY=VALUE/],
    ];
    await refusedHere(cases);
  });

  test('rule and transfer flags', async () => {
    const rule = ['rule', 'create', '--path', '/beam', '--copies', '1', '--expression', 'medium=tape'];
    const cases: [string[], RegExp][] = [
      [['rule', 'create', '--copies', '1', '--expression', 'medium=tape'], /required option '--path <dir>' not specified/],
      [['rule', 'create', '--path', '/', '--copies', '0', '--expression', 'x'], /expected a positive whole number, got 0/],
      [[...rule, '--grouping', 'some'], /expected all, dataset or none/],
      [[...rule, '--lifetime', '1.5s'], /a lifetime is a whole number of seconds ≥ 1; got 1\.5s/],
      [[...rule, '--lifetime', 'forever'], /expected a duration/],
      [[...rule, '--priority', '6'], /expected a priority from 1 to 5/],
      [[...rule, '--xattr', 'k='], /expected KEY=VALUE for --xattr, got k=/],
      [['rule', 'wait', 'x', '--timeout', 'long'], /expected a duration/],
      [['transfers', 'list', '--state', 'nope'], /expected one of QUEUED, STAGING, ACTIVE, DONE, FAILED, CANCELLED/],
      [['transfers', 'list', '--offset', '-1'], /expected a whole number ≥ 0/],
    ];
    await refusedHere(cases);
  });

  test('a bad SE expression: the server’s error, with its position pointed at', async () => {
    assert.equal(
      (await fails(['rule', 'create', '--path', '/beam', '--copies', '1', '--expression', 'medium=tape&'])).stderr,
      'sluice: BAD_REQUEST: SE expression "medium=tape&": unexpected end of expression at position 12\n' +
        '  medium=tape&\n' +
        '              ^\n',
    );
    assert.match(
      (await fails(['rule', 'create', '--path', '/beam', '--copies', '1', '--expression', 'medium=tape|nosuch'])).stderr,
      /^sluice: BAD_REQUEST: SE expression "medium=tape\|nosuch": unknown SE "nosuch" at position 12\n {2}medium=tape\|nosuch\n {14}\^\n$/,
    );
    assert.equal(
      (await fails(['rule', 'create', '--path', '/beam', '--copies', '1', '--expression', 'medium=tape', '--source', 'site=(x'])).stderr,
      'sluice: BAD_REQUEST: SE expression "site=(x": missing value after "=" at position 5\n' + '  site=(x\n' + '       ^\n',
    );
    assert.match(
      (await fails(['rule', 'create', '--path', '/beam', '--copies', '9', '--expression', 'medium=disk'])).stderr,
      /^sluice: BAD_REQUEST: expression "medium=disk" selects \d+ storage elements? \(.*\) for 9 copies\n$/,
    );
  });

  test('server refusals as other commands print them', async () => {
    assert.equal((await fails(['se', 'show', 'ghost'])).stderr, 'sluice: NOT_FOUND: no storage element ghost\n');
    assert.match(
      (await fails(['se', 'add', 'disk1', '--kind', 'local', '--path', join(work, 'again')])).stderr,
      /^sluice: CONFLICT: storage element disk1 already exists\n$/,
    );
    assert.equal((await fails(['se', 'rm', 'local'])).stderr, 'sluice: CONFLICT: the landing SE cannot be removed\n');
    assert.match((await fails(['transfers', 'show', 'nope'])).stderr, /^sluice: NOT_FOUND: no transfer nope\n$/);
    assert.match((await fails(['replicas', '/no/such/file'])).stderr, /^sluice: NOT_FOUND: /);
  });
});

test('parseDuration: seconds, fractions and units', () => {
  assert.equal(parseDuration('30'), 30);
  assert.equal(parseDuration('0.2'), 0.2);
  assert.equal(parseDuration('15m'), 900);
  assert.equal(parseDuration('12h'), 43200);
  assert.equal(parseDuration('7d'), 604800);
  assert.equal(parseDuration('2W'), 1209600);
  assert.throws(() => parseDuration('-1'), /expected a duration/);
  assert.throws(() => parseDuration('1y'), /expected a duration/);
});
