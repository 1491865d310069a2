// The function sandbox against real bubblewrap processes: what a function can see, write, reach and
// inherit, its limits and uid, interpreters inside and outside /usr, and killing and measuring its
// process tree. Also the unsandboxed fallback, which keeps the clean environment and the limits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Sandbox, addressSpaceBytes, type SandboxSpec } from '../src/functions/sandbox.js';
import { descendants, killTree, treeRssBytes } from '../src/functions/process-tree.js';
import { SluiceError } from '../src/errors.js';

const silent = pino({ level: 'silent' });
const CANARY = 'SLUICE_SANDBOX_TEST_CANARY';
const PYTHON = '/usr/bin/python3';

let root: string;
let dataDir: string;
let bundle: string;
let otherBundle: string;
let secretFile: string;
let sandbox: Sandbox;
let unsandboxed: Sandbox;

before(async () => {
  // The server's own environment holds things a function must never inherit.
  process.env[CANARY] = 'leaked';
  root = mkdtempSync(join(tmpdir(), 'sluice-sandbox-'));
  dataDir = join(root, 'data');
  bundle = join(dataDir, 'functions', 'mine');
  otherBundle = join(dataDir, 'functions', 'other');
  mkdirSync(bundle, { recursive: true });
  mkdirSync(otherBundle, { recursive: true });
  secretFile = join(dataDir, 'admin.token');
  writeFileSync(secretFile, 'sluice_secret_token', { mode: 0o600 });
  writeFileSync(join(bundle, 'hello.txt'), 'hello from the bundle');
  writeFileSync(join(otherBundle, 'other.txt'), 'someone else’s code');
  sandbox = await Sandbox.detect('bubblewrap', silent);
  unsandboxed = await Sandbox.detect('none', silent);
});

after(() => {
  delete process.env[CANARY];
  rmSync(root, { recursive: true, force: true });
});

function spec(argv: string[], over: Partial<SandboxSpec> = {}): SandboxSpec {
  return {
    bundleDir: bundle,
    argv,
    env: { PATH: '/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8' },
    network: false,
    limits: { memoryMb: 128, openFiles: 200 },
    ...over,
  };
}

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(box: Sandbox, s: SandboxSpec) {
  const launch = box.wrap(s);
  return spawn(launch.file, launch.args, { env: launch.env, cwd: launch.cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
}

async function run(box: Sandbox, s: SandboxSpec): Promise<Ran> {
  const child = start(box, s);
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code, signal] = (await new Promise((done) => child.on('close', (...r) => done(r)))) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr };
}

const sh = (script: string, over: Partial<SandboxSpec> = {}) => run(sandbox, spec(['/bin/sh', '-c', script], over));

test('the bundle is readable at /fn, which is the working directory', async () => {
  const r = await sh('pwd; cat /fn/hello.txt; cat hello.txt');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '/fn\nhello from the bundle' + 'hello from the bundle');
  assert.equal(sandbox.insidePath(join(bundle, 'lib', 'x.py'), spec([])), '/fn/lib/x.py');
});

test('the data directory, its secrets and other bundles are invisible', async () => {
  for (const path of [secretFile, dataDir, otherBundle, join(otherBundle, 'other.txt'), bundle, '/etc/shadow', '/root', '/home']) {
    const r = await run(sandbox, spec(['/bin/sh', '-c', 'ls -d "$1" 2>/dev/null || cat "$1" 2>/dev/null', 'sh', path]));
    assert.notEqual(r.code, 0, `${path} is visible inside the sandbox: ${r.stdout}`);
  }
  const top = await sh('ls -A /');
  assert.deepEqual(top.stdout.split('\n').filter(Boolean).sort(), [
    'bin',
    'dev',
    'etc',
    'fn',
    'lib',
    'lib64',
    'proc',
    'sbin',
    'tmp',
    'usr',
  ]);
  const etc = await sh('ls -A /etc');
  assert.deepEqual(etc.stdout.split('\n').filter(Boolean).sort(), ['alternatives', 'group', 'ld.so.cache', 'passwd']);
  assert.equal((await sh('uname -n')).stdout, 'sluice\n', 'the host name shows through');
  // the pid namespace shows the sandbox's own processes only: bwrap's init, sh and ls
  const procs = await sh('ls -d /proc/[0-9]* | wc -l');
  assert.ok(Number(procs.stdout) <= 4, `host processes visible: ${procs.stdout}`);
});

test('/fn, / and /dev are read-only; /tmp and /dev/shm are private and writable', async () => {
  const marker = `sluice-sandbox-marker-${process.pid}`;
  const script =
    'touch /fn/new 2>/dev/null && echo fn-writable; touch /x 2>/dev/null && echo root-writable; ' +
    'touch /dev/x 2>/dev/null && echo dev-writable; echo private > /tmp/$1 && cat /tmp/$1; touch /dev/shm/s && echo shm';
  const r = await run(sandbox, spec(['/bin/sh', '-c', script, 'sh', marker]));
  assert.equal(r.stdout, 'private\nshm\n', r.stderr);
  assert.ok(!existsSync(join(bundle, 'new')));
  assert.ok(!existsSync(join(tmpdir(), marker)) && !existsSync(join('/tmp', marker)), 'the sandbox wrote to the host /tmp');
  // /tmp is a sized tmpfs: filling it past tmpMb fails instead of eating host memory
  const full = await sh('head -c 3000000 /dev/zero > /tmp/big', { limits: { memoryMb: 128, openFiles: 200, tmpMb: 2 } });
  assert.notEqual(full.code, 0);
  assert.match(full.stderr, /No space left/);
});

test('the environment is exactly the given variables (and PWD)', async () => {
  const env = { PATH: '/usr/bin', ONLY_THIS: 'yes', WITH_SPACE: 'a b=c' };
  for (const box of [sandbox, unsandboxed]) {
    const r = await run(box, spec(['/usr/bin/env', '-0'], { env }));
    assert.equal(r.code, 0, r.stderr);
    const seen = Object.fromEntries(
      r.stdout
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    assert.deepEqual(seen, { ...env, PWD: box.insidePath(bundle, spec([])) }, box.kind);
    assert.ok(!r.stdout.includes('leaked'));
  }
});

test('envFd: the environment reaches the function without showing on any command line', async () => {
  const env = { PATH: '/usr/bin', SLUICE_TOKEN: 'sluice_token_never_in_cmdline', EMPTY: '' };
  for (const box of [sandbox, unsandboxed]) {
    const launch = box.wrap(spec(['/bin/sh', '-c', 'echo ready; read x; env -0'], { env, envFd: 4 }));
    const child = spawn(launch.file, launch.args, {
      env: launch.env,
      cwd: launch.cwd,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    (child.stdio[4] as Writable).end(launch.envFdData);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise((done) => child.on('close', done));
    await waitFor(() => out.startsWith('ready\n'), 'the function to start');
    for (const pid of [child.pid!, ...descendants(child.pid!)]) {
      assert.ok(!readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('sluice_token'), `${box.kind}: the token is in a command line`);
    }
    child.stdin!.end('\n');
    await closed;
    const seen = out.slice('ready\n'.length).split('\0').filter(Boolean).sort();
    assert.deepEqual(
      seen,
      ['EMPTY=', 'PATH=/usr/bin', `PWD=${box.insidePath(bundle, spec([]))}`, 'SLUICE_TOKEN=sluice_token_never_in_cmdline'],
      box.kind,
    );
  }
});

test('no network unless allowed', async (t) => {
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    socket.end();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const connect = `import socket\ntry:\n  socket.create_connection(('127.0.0.1', ${port}), 2).close(); print('connected')\nexcept OSError as e: print('refused', e)`;
  const closed = await run(sandbox, spec([PYTHON, '-c', connect]));
  assert.match(closed.stdout, /^refused/, closed.stderr);
  assert.equal(connections, 0);
  const open = await run(sandbox, spec([PYTHON, '-c', connect], { network: true }));
  assert.equal(open.stdout.trim(), 'connected', open.stderr);
  assert.equal(connections, 1);
  const etc = await run(sandbox, spec(['/bin/ls', '/etc'], { network: true }));
  assert.match(etc.stdout, /resolv\.conf/);
  assert.match(etc.stdout, /ssl/);
});

test('limits: open files, CPU time and address space, soft = hard; no core dumps', async () => {
  const limits = { memoryMb: 64, openFiles: 77, cpuSeconds: 9, addressSpace: true };
  const script = 'ulimit -n; ulimit -Hn; ulimit -t; ulimit -v; ulimit -c';
  const as = String(addressSpaceBytes(64) / 1024);
  for (const box of [sandbox, unsandboxed]) {
    const r = await run(box, spec(['/bin/sh', '-c', script], { limits }));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').filter(Boolean), ['77', '77', '9', as, '0'], box.kind);
  }
  const noAs = await sh('ulimit -v', { limits: { memoryMb: 64, openFiles: 77 } });
  assert.equal(noAs.stdout.trim(), 'unlimited');
});

test('runs as uid 65534 without capabilities', async () => {
  const r = await sh("id -u; id -g; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status | awk '{print $2}'; whoami");
  assert.deepEqual(r.stdout.split('\n').filter(Boolean), [
    '65534',
    '65534',
    '0000000000000000',
    '0000000000000000',
    '0000000000000000',
    'nobody',
  ]);
  // --disable-userns: no user namespace of its own, the way to regain capabilities
  const nested = await sh('/usr/bin/unshare --user /usr/bin/true');
  assert.notEqual(nested.code, 0);
  assert.match(nested.stderr, /No space left on device|Operation not permitted/);
});

test('node and python run inside', async () => {
  const node = await run(
    sandbox,
    spec([process.execPath, '-e', 'console.log(require("fs").readFileSync("hello.txt", "utf8"), require("os").userInfo().uid)']),
  );
  assert.equal(node.stdout.trim(), 'hello from the bundle 65534', node.stderr);
  const py = await run(sandbox, spec([PYTHON, '-c', 'import ssl, json, getpass; print(open("hello.txt").read(), getpass.getuser())']));
  assert.equal(py.stdout.trim(), 'hello from the bundle nobody', py.stderr);
});

test('an interpreter outside /usr gets its installation prefix bound, never more', async () => {
  // an "installation" beside the data directory: <root>/opt/tool/bin/echo plus a symlink to it
  const prefix = join(root, 'opt', 'tool');
  mkdirSync(join(prefix, 'bin'), { recursive: true });
  copyFileSync('/usr/bin/echo', join(prefix, 'bin', 'echo'));
  writeFileSync(join(prefix, 'share.txt'), 'part of the installation');
  symlinkSync(join(prefix, 'bin', 'echo'), join(root, 'opt', 'echo-link'));
  const r = await run(sandbox, spec([join(root, 'opt', 'echo-link'), 'from outside /usr']));
  assert.equal(r.stdout, 'from outside /usr\n', r.stderr);
  const launch = sandbox.wrap(spec([join(prefix, 'bin', 'echo')]));
  assert.ok(launch.args.join(' ').includes(`--ro-bind ${prefix} ${prefix}`));
  assert.ok(!launch.args.includes(root) && !launch.args.includes(dataDir));

  // an executable whose prefix would contain the data directory: only the file itself is bound
  copyFileSync('/usr/bin/cat', join(root, 'cat'));
  const cat = await run(sandbox, spec([join(root, 'cat'), secretFile]));
  assert.notEqual(cat.code, 0);
  assert.ok(!cat.stdout.includes('sluice_secret_token'));
  const catArgs = sandbox.wrap(spec([join(root, 'cat')])).args;
  assert.ok(!catArgs.includes(root), 'the data directory’s parent is bound');
});

test('a pyenv python under the home directory runs', { skip: !existsSync('/root/.pyenv/versions') && 'no pyenv here' }, async () => {
  const version = readdirSync('/root/.pyenv/versions').find((v) => /^3\.\d+\.\d+$/.test(v));
  if (!version) return;
  const python = `/root/.pyenv/versions/${version}/bin/python3`;
  const r = await run(sandbox, spec([python, '-c', 'import sys, os; print(sys.prefix); print(sorted(os.listdir("/root")))']));
  assert.equal(r.stdout, `/root/.pyenv/versions/${version}\n['.pyenv']\n`, r.stderr);
});

test('binds: a read-only directory, a writable one and a unix socket', async (t) => {
  const shim = join(root, 'shim');
  const out = join(root, 'out');
  mkdirSync(shim);
  mkdirSync(out);
  writeFileSync(join(shim, 'runtime.txt'), 'shim');
  const socketPath = join(root, 'api.sock');
  const server = createServer((socket) => socket.end('pong'));
  await new Promise<void>((done) => server.listen(socketPath, done));
  t.after(() => server.close());
  const binds = [
    { host: shim, inside: '/sluice/runtime' },
    { host: out, inside: '/out', writable: true },
    { host: socketPath, inside: '/sluice/api.sock' },
  ];
  const script =
    "import socket\nprint(open('/sluice/runtime/runtime.txt').read())\nopen('/out/result', 'w').write('written')\n" +
    "try:\n  open('/sluice/runtime/x', 'w')\nexcept OSError: print('read-only')\n" +
    "s = socket.socket(socket.AF_UNIX); s.connect('/sluice/api.sock'); print(s.recv(10).decode())";
  const r = await run(sandbox, spec([PYTHON, '-c', script], { binds }));
  assert.equal(r.stdout, 'shim\nread-only\npong\n', r.stderr);
  assert.equal(readFileSync(join(out, 'result'), 'utf8'), 'written');
  assert.equal(sandbox.insidePath(join(shim, 'main.py'), spec([], { binds })), '/sluice/runtime/main.py');
});

function alive(pid: number): boolean {
  try {
    // a zombie is dead, only not yet reaped by whoever inherited it
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const which of ['bubblewrap', 'none'] as const) {
  test(`killTree leaves no survivors (${which})`, async () => {
    const box = which === 'bubblewrap' ? sandbox : unsandboxed;
    // the second sleep escapes the process group, as a daemonising child would
    const child = start(box, spec(['/bin/sh', '-c', 'sleep 100 & setsid sleep 100 & sleep 100']));
    const exited = new Promise((done) => child.on('exit', done));
    const sleeps = () =>
      descendants(child.pid!).filter((p) => {
        try {
          return readFileSync(`/proc/${p}/comm`, 'latin1').trim() === 'sleep';
        } catch {
          return false;
        }
      });
    await waitFor(() => sleeps().length === 3, 'three sleeps');
    const tree = [child.pid!, ...descendants(child.pid!)];
    killTree(child.pid!);
    await exited;
    await waitFor(() => tree.every((p) => !alive(p)), `every process of ${tree.join(' ')} to die`);
  });
}

test('treeRssBytes counts a child’s allocation, and 0 once the tree is gone', async () => {
  const script =
    'import sys, time\nprint(1, flush=True)\nsys.stdin.readline()\nb = b"x" * (64 << 20)\nprint(2, flush=True)\ntime.sleep(100)';
  const child = start(sandbox, spec(['/bin/sh', '-c', `${PYTHON} -c '${script}'`], { limits: { memoryMb: 256, openFiles: 64 } }));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('1'), 'python to start');
  const before = treeRssBytes(child.pid!);
  child.stdin.write('\n');
  await waitFor(() => out.includes('2'), 'the allocation');
  const afterAlloc = treeRssBytes(child.pid!);
  assert.ok(before > 1 << 20, `implausible RSS ${before}`);
  assert.ok(afterAlloc - before >= 60 << 20, `RSS grew by ${afterAlloc - before} bytes only`);
  const exited = new Promise((done) => child.on('exit', done));
  killTree(child.pid!);
  await exited;
  assert.equal(treeRssBytes(child.pid!), 0);
});

test('detect: auto falls back to none with one warning; bubblewrap refuses', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const fallback = await Sandbox.detect('auto', log, { bwrap: join(root, 'no-such-bwrap') });
  assert.equal(fallback.kind, 'none');
  const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!.msg, /UNSANDBOXED/);
  await assert.rejects(
    Sandbox.detect('bubblewrap', silent, { bwrap: join(root, 'no-such-bwrap') }),
    (err) => err instanceof SluiceError && err.code === 'UNAVAILABLE',
  );
  assert.equal((await Sandbox.detect('auto', silent)).kind, 'bubblewrap');
});

test('detect: an old bubblewrap without --disable-userns and --size still sandboxes, with a warning', async () => {
  const oldBwrap = join(root, 'old-bwrap');
  writeFileSync(
    oldBwrap,
    '#!/bin/sh\nfor a in "$@"; do case "$a" in --disable-userns|--size) echo "bwrap: Unknown option $a" >&2; exit 1;; esac; done\n' +
      'exec /usr/bin/bwrap "$@"\n',
    { mode: 0o755 },
  );
  const lines: string[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
  const old = await Sandbox.detect('bubblewrap', log, { bwrap: oldBwrap });
  assert.equal(old.kind, 'bubblewrap');
  assert.match(lines.join(''), /old bubblewrap/);
  const r = await run(old, spec(['/bin/sh', '-c', 'id -u; cat hello.txt; ls /home >/dev/null 2>&1 || echo hidden']));
  assert.equal(r.stdout, '65534\nhello from the bundlehidden\n', r.stderr);
});

test('none: cwd is the bundle and paths are host paths', async () => {
  const r = await run(unsandboxed, spec(['/bin/sh', '-c', 'pwd; cat hello.txt']));
  assert.equal(r.stdout, `${bundle}\nhello from the bundle`);
  assert.equal(unsandboxed.insidePath(join(bundle, 'x'), spec([])), join(bundle, 'x'));
});
