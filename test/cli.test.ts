// The CLI as users run it: the real `bin/sluice.js` against a child `sluice serve`, configured
// through SLUICE_URL and SLUICE_TOKEN.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startChildServer, tempDir, SLUICE_BIN, type RunningServer } from './support/server.js';
import { adler32, adler32Hex } from '../src/storage/checksums.js';

let server: RunningServer;
let work: string;

before(async () => {
  server = await startChildServer();
  work = await tempDir('sluice-cli-');
});

after(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function sluice(args: string[], token = server.token): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SLUICE_BIN, ...args],
      { env: { ...process.env, SLUICE_URL: server.url, SLUICE_TOKEN: token }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function ok(args: string[], token?: string): Promise<string> {
  const r = await sluice(args, token);
  assert.equal(r.code, 0, `sluice ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

test('token create, list, revoke; a revoked token is refused with the server detail', async () => {
  const created = JSON.parse(
    await ok(['token', 'create', '--subject', 'bob', '--scope', 'storage.read:/', '--description', 'cli test', '--json']),
  ) as {
    secret: string;
    token: { id: string; subject: string; scopes: string[] };
  };
  assert.equal(created.token.subject, 'bob');
  assert.deepEqual(created.token.scopes, ['storage.read:/']);

  const plain = (await ok(['token', 'create', '--scope', 'storage.read:/x'])).trim();
  assert.match(plain, /^\S+$/, 'plain `token create` prints only the secret on stdout');

  assert.match(await ok(['whoami'], created.secret), /^bob /);
  const listed = await ok(['token', 'list']);
  assert.match(listed, new RegExp(`${created.token.id}\\s+bob\\s+active`));

  await ok(['token', 'revoke', created.token.id]);
  assert.match(await ok(['token', 'list']), new RegExp(`${created.token.id}\\s+bob\\s+revoked`));
  const refused = await sluice(['whoami'], created.secret);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /^sluice: UNAUTHORIZED: \S.*/);
});

test('a bad token exits non-zero with the server problem detail', async () => {
  const r = await sluice(['ls', '/'], 'not-a-token');
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^sluice: UNAUTHORIZED: \S.*\n$/);
});

test('mkdir, ls, stat, mv, rm', async () => {
  await ok(['mkdir', '/cli-ns']);
  await ok(['mkdir', '-p', '/cli-ns/a/b']);
  await ok(['mkdir', '-p', '/cli-ns/a/b']);
  const again = await sluice(['mkdir', '/cli-ns']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /EXISTS/);

  assert.equal(await ok(['ls', '/cli-ns']), 'a/\n');
  assert.match(await ok(['ls', '-l', '/cli-ns']), /^d\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+a\/\n$/);
  const listing = JSON.parse(await ok(['ls', '/cli-ns/a', '--json'])) as { children: { fileName: string; fileType: string }[] };
  assert.deepEqual(
    listing.children.map((c) => [c.fileName, c.fileType]),
    [['b', 'DIR']],
  );

  const stat = await ok(['stat', '/cli-ns/a']);
  assert.match(stat, /^path:\s+\/cli-ns\/a$/m);
  assert.match(stat, /^type:\s+DIR$/m);

  await ok(['mv', '/cli-ns/a', 'renamed']);
  assert.equal(await ok(['ls', '/cli-ns']), 'renamed/\n');
  await ok(['mv', '/cli-ns/renamed/b', '/cli-ns/b']);
  assert.equal(await ok(['ls', '/cli-ns']), 'b/\nrenamed/\n');

  const notEmpty = await sluice(['rm', '/cli-ns']);
  assert.notEqual(notEmpty.code, 0);
  assert.match(notEmpty.stderr, /NOT_EMPTY: \/cli-ns is not empty; use --recursive/);
  await ok(['rm', '/cli-ns/b']);
  await ok(['rm', '-r', '/cli-ns']);
  const gone = await sluice(['stat', '/cli-ns']);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /NOT_FOUND/);
});

test('put and get a 5 MB random file: bytes, adler32 and namespace checksum agree', async () => {
  const data = randomBytes(5 * 1024 * 1024);
  const local = join(work, 'random.bin');
  await writeFile(local, data);
  const expected = adler32Hex(adler32(data));
  await ok(['mkdir', '/cli-data']);

  const put = JSON.parse(await ok(['put', local, '/cli-data', '--json'])) as {
    remote: string;
    size: number;
    adler32: string;
    verified: boolean;
  };
  assert.deepEqual(put, { direction: 'put', local, remote: '/cli-data/random.bin', size: data.length, adler32: expected, verified: true });

  const stat = JSON.parse(await ok(['stat', '/cli-data/random.bin', '--json'])) as {
    size: number;
    checksums: { type: string; value: string }[];
    fileLocality: string;
  };
  assert.equal(stat.size, data.length);
  assert.deepEqual(stat.checksums, [{ type: 'ADLER32', value: expected }]);
  assert.equal(stat.fileLocality, 'ONLINE');
  assert.match(await ok(['stat', '/cli-data/random.bin']), new RegExp(`^checksum ADLER32:\\s+${expected}$`, 'm'));

  const back = join(work, 'random.back');
  assert.match(await ok(['get', '/cli-data/random.bin', back]), new RegExp(`adler32=${expected} verified`));
  assert.ok((await readFile(back)).equals(data), 'downloaded bytes equal the uploaded bytes');
});

test('recursive put and get of a small tree', async () => {
  const tree = join(work, 'tree');
  await mkdir(join(tree, 'raw', 'empty'), { recursive: true });
  await mkdir(join(tree, 'processed'), { recursive: true });
  const files: Record<string, Buffer> = {
    'README.txt': Buffer.from('beamtime 11012345\n'),
    'raw/scan_0001.nxs': randomBytes(70_000),
    'raw/scan_0002.nxs': randomBytes(1),
    'processed/zero.dat': Buffer.alloc(0),
  };
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(tree, name), bytes);

  const refused = await sluice(['put', tree, '/cli-tree']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /use --recursive/);

  const lines = (await ok(['put', '-r', tree, '/cli-tree', '--json'])).trim().split('\n');
  assert.equal(lines.length, Object.keys(files).length);
  assert.equal(await ok(['ls', '/cli-tree']), 'README.txt\nprocessed/\nraw/\n');
  assert.equal(await ok(['ls', '/cli-tree/raw']), 'empty/\nscan_0001.nxs\nscan_0002.nxs\n');

  const copy = join(work, 'tree-copy');
  await ok(['get', '--recursive', '/cli-tree', copy]);
  for (const [name, bytes] of Object.entries(files)) assert.ok((await readFile(join(copy, name))).equals(bytes), `${name} round-trips`);
  await readFile(join(copy, 'raw', 'empty')).then(
    () => assert.fail('empty is a directory'),
    (e: NodeJS.ErrnoException) => assert.equal(e.code, 'EISDIR'),
  );
});

test('events --follow prints IN_CLOSE_WRITE for an upload and deletes its channel on Ctrl-C', async () => {
  await ok(['mkdir', '-p', '/cli-events/run1']);
  const follower = spawn(process.execPath, [SLUICE_BIN, 'events', '--follow', '/cli-events', '--recursive'], {
    env: { ...process.env, SLUICE_URL: server.url, SLUICE_TOKEN: server.token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => follower.once('exit', (code) => resolve(code)));
  const waitFor = (what: () => boolean, label: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${label}\nstdout:\n${stdout}\nstderr:\n${stderr}`)), 15_000);
      const check = () => {
        if (!what()) return;
        clearTimeout(timer);
        resolve();
      };
      check();
      follower.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), check()));
      follower.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), check()));
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`events exited early\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      });
    });
  try {
    await waitFor(() => /following \/cli-events recursively on (\S+)/.test(stderr), 'the stream to open');
    const channel = /following \S+ recursively on (\S+)/.exec(stderr)![1]!;

    const local = join(work, 'event.txt');
    await writeFile(local, 'hello events\n');
    await ok(['put', local, '/cli-events/run1/event.txt']);
    await waitFor(() => /^\d+ (\S*,)?IN_CLOSE_WRITE(,\S*)? \/cli-events\/run1\/event\.txt$/m.test(stdout), 'IN_CLOSE_WRITE');

    follower.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
    const res = await fetch(channel, { headers: { authorization: `Bearer ${server.token}`, accept: 'application/json' } });
    assert.equal(res.status, 404, 'the channel is deleted on Ctrl-C');
  } finally {
    if (follower.exitCode === null) follower.kill('SIGKILL');
  }
});
