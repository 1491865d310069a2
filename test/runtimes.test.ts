// The shipped runtimes (runtimes/node, runtimes/python) and a plain-bash instance, each run as a real
// process over real pipes and driven through instance protocol v1 as sluice drives it, without a
// sandbox. ctx.storage is exercised against a real sluice server listening on a unix socket.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buildServer } from '../src/api/server.js';
import type { FromInstance, InitMessage, InvokeMessage } from '../src/functions/types.js';
import { REPO_ROOT, authed, startServer, tempDir, type RunningServer } from './support/server.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'functions');
const NODE_SHIM = join(REPO_ROOT, 'runtimes', 'node', 'instance.cjs');
const PYTHON_SHIM = join(REPO_ROOT, 'runtimes', 'python', 'sluice_runtime.py');
const PYTHON = '/usr/bin/python3';
const WAIT_MS = 20_000;

/** Sets O_NONBLOCK on stdin and fd 3, then execs the rest of argv: the instance inherits both so. */
const NONBLOCKING_PIPES =
  'import fcntl, os, sys\n' +
  'for fd in (0, 3): fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)\n' +
  'os.execv(sys.argv[1], sys.argv[1:])';

type Language = 'node' | 'python';
type Answer = Extract<FromInstance, { type: 'result' | 'error' }>;
type LogMessage = Extract<FromInstance, { type: 'log' }>;

const running = new Set<ChildProcess>();

/** One instance process, its messages on fd 3 and its raw output. */
class Instance {
  readonly proc: ChildProcess;
  readonly messages: FromInstance[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output = '';
  private waiters: { match(m: FromInstance): boolean; resolve(m: FromInstance): void; reject(e: Error): void }[] = [];
  private partial = '';

  constructor(file: string, args: string[], cwd: string) {
    this.proc = spawn(file, args, {
      cwd,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      // Like sluice: the server's environment is not the function's.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' },
    });
    running.add(this.proc);
    this.exited = new Promise((resolve) =>
      this.proc.on('exit', (code, signal) => {
        running.delete(this.proc);
        resolve({ code, signal });
      }),
    );
    // Once every pipe is closed nothing more can arrive: fail what is still awaited, now.
    this.proc.on('close', (code, signal) => {
      for (const w of this.waiters.splice(0)) w.reject(new Error(`instance ended (${code ?? signal}); output:\n${this.output}`));
    });
    this.proc.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.stdin!.on('error', () => undefined);
    this.fd3.setEncoding('utf8');
    this.fd3.on('data', (chunk: string) => {
      const lines = (this.partial + chunk).split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) this.receive(JSON.parse(line) as FromInstance);
    });
  }

  static start(language: Language, fixture: string, opts: { nonBlocking?: boolean; nodeEntry?: string } = {}): Instance {
    const argv = language === 'node' ? [process.execPath, opts.nodeEntry ?? NODE_SHIM] : [PYTHON, PYTHON_SHIM];
    const [file, args] = opts.nonBlocking ? [PYTHON, ['-c', NONBLOCKING_PIPES, ...argv]] : [argv[0]!, argv.slice(1)];
    return new Instance(file, args, join(FIXTURES, fixture));
  }

  get fd3(): Readable {
    return this.proc.stdio[3] as Readable;
  }

  send(msg: object): void {
    this.proc.stdin!.write(JSON.stringify(msg) + '\n');
  }

  /** The first message (already received or still to come) that matches. */
  waitFor(match: (m: FromInstance) => boolean, what: string): Promise<FromInstance> {
    const found = this.messages.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${WAIT_MS} ms; output:\n${this.output}`)), WAIT_MS);
      this.waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /** Sends init and resolves with ready or init_error. */
  init(
    handler = 'main.handler',
    opts: { concurrency?: number; env?: Record<string, string>; protocol?: number } = {},
  ): Promise<FromInstance> {
    const msg: InitMessage = {
      type: 'init',
      protocol: opts.protocol ?? 1,
      function: 'test-fn',
      version: 'a'.repeat(64),
      handler,
      concurrency: opts.concurrency ?? 1,
      env: opts.env ?? {},
    };
    this.send(msg);
    return this.waitFor((m) => m.type === 'ready' || m.type === 'init_error', 'ready or init_error');
  }

  async ready(handler?: string, opts?: { concurrency?: number; env?: Record<string, string> }): Promise<void> {
    const answer = await this.init(handler, opts);
    assert.deepEqual(answer, { type: 'ready' }, this.output);
  }

  /** Sends an invoke; `answer` resolves with its result or error message. */
  invoke(event: unknown, storage = { socket: '/nonexistent/api.sock', token: 'none' }): { id: string; answer: Promise<Answer> } {
    const id = randomBytes(16).toString('hex');
    const msg: InvokeMessage = {
      type: 'invoke',
      id,
      deadline: Date.now() + 60_000,
      function: 'test-fn',
      version: 'a'.repeat(64),
      storage,
      event,
    };
    this.send(msg);
    const answer = this.waitFor((m) => (m.type === 'result' || m.type === 'error') && m.id === id, `answer to ${id}`) as Promise<Answer>;
    return { id, answer };
  }

  async call(event: unknown): Promise<Answer> {
    return this.invoke(event).answer;
  }

  logsOf(id: string): LogMessage[] {
    return this.messages.filter((m): m is LogMessage => m.type === 'log' && m.id === id);
  }

  /** Closes stdin (the protocol's shutdown) and waits for the exit. */
  async close(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.proc.stdin!.end();
    return this.exited;
  }

  private receive(msg: FromInstance): void {
    this.messages.push(msg);
    for (const w of this.waiters.filter((w) => w.match(msg))) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(msg);
    }
  }
}

after(() => {
  for (const proc of running) proc.kill('SIGKILL');
});

function assertResult(answer: Answer): unknown {
  assert.equal(answer.type, 'result', JSON.stringify(answer));
  return (answer as { result: unknown }).result;
}

function assertError(answer: Answer): { name?: string; message: string; stack?: string } {
  assert.equal(answer.type, 'error', JSON.stringify(answer));
  return (answer as Extract<Answer, { type: 'error' }>).error;
}

for (const language of ['node', 'python'] as const) {
  describe(`${language} runtime`, () => {
    test('init → ready; invoke → result with ctx and the env from init; calls stay in one warm process', async () => {
      const inst = Instance.start(language, `${language}-echo`);
      await inst.ready('main.handler', { env: { ECHO_GREETING: 'hi from init' } });
      const { id, answer } = inst.invoke({ n: 1, text: 'ünïcödé ✓' });
      const result = assertResult(await answer) as Record<string, unknown>;
      assert.deepEqual(result.event, { n: 1, text: 'ünïcödé ✓' });
      assert.equal(result.activationId, id);
      assert.equal(result.functionName, 'test-fn');
      assert.equal(result.version, 'a'.repeat(64));
      assert.equal(typeof result.deadline, 'number');
      assert.ok((result.remainingMs as number) > 50_000 && (result.remainingMs as number) <= 60_000, String(result.remainingMs));
      assert.equal(result.greeting, 'hi from init');
      const again = assertResult(await inst.call(null)) as Record<string, unknown>;
      assert.equal(again.pid, result.pid);
      assert.deepEqual(await inst.close(), { code: 0, signal: null });
    });

    test('a handler returning nothing answers null', async () => {
      const inst = Instance.start(language, `${language}-echo`);
      await inst.ready('main.nothing');
      assert.equal(assertResult(await inst.call({})), null);
      await inst.close();
    });

    test('init_error, then a non-zero exit, for a missing module, a missing function, another protocol', async () => {
      for (const [handler, protocol, pattern] of [
        ['missing.handler', 1, /missing/],
        ['main.nothere', 1, /nothere/],
        ['nodot', 1, /module\.function/],
        ['main.handler', 2, /protocol 2/],
      ] as const) {
        const inst = Instance.start(language, `${language}-echo`);
        const answer = await inst.init(handler, { protocol });
        assert.equal(answer.type, 'init_error', `${handler}: ${JSON.stringify(answer)}`);
        const error = (answer as Extract<FromInstance, { type: 'init_error' }>).error;
        assert.match(error.message, pattern);
        assert.equal(typeof error.name, 'string');
        const { code } = await inst.exited;
        assert.notEqual(code, 0, handler);
      }
    });

    test('console output and logs inside calls are log messages with the right id, also 4 at once', async () => {
      const inst = Instance.start(language, `${language}-logs`);
      await inst.ready('main.handler', { concurrency: 4 });
      const tags = ['a', 'b', 'c', 'd'];
      const calls = tags.map((tag, i) => ({ tag, ...inst.invoke({ tag, delayMs: [40, 10, 30, 0][i] }) }));
      for (const { tag, id, answer } of calls) {
        assert.equal(assertResult(await answer), tag);
        const logs = inst.logsOf(id).map((l) => `${l.level} ${l.message}`);
        const expected =
          language === 'node'
            ? [
                `info start ${tag}`,
                `info info ${tag}`,
                `warn warn ${tag}`,
                `error error ${tag}`,
                `debug debug ${tag}`,
                `info timer ${tag}`,
                `info ctx ${tag}`,
              ]
            : [`info start ${tag}`, `error stderr ${tag}`, `info bytes ${tag}`, `warn ctx ${tag}`, `info unfinished ${tag}`];
        assert.deepEqual(logs, expected);
        // Every log line arrives before its answer.
        const answerAt = inst.messages.findIndex((m) => m.type === 'result' && m.id === id);
        assert.ok(inst.messages.every((m, i) => !(m.type === 'log' && m.id === id) || i < answerAt));
      }
      // Output outside any call is instance log on stderr, not a protocol message.
      assert.match(inst.output, new RegExp(`${language}-logs loaded`));
      assert.equal(inst.messages.filter((m) => m.type === 'log' && !calls.some((c) => c.id === m.id)).length, 0);
      assert.deepEqual(await inst.close(), { code: 0, signal: null });
    });

    test('interleaved async calls keep their own log ids; a call that never answers blocks no other', async () => {
      const inst = Instance.start(language, `${language}-async`);
      await inst.ready('main.handler', { concurrency: 4 });
      const hung = inst.invoke({ hang: true });
      hung.answer.catch(() => undefined); // never answered: the instance is killed below
      const calls = ['w', 'x', 'y'].map((tag, i) => ({ tag, ...inst.invoke({ tag, ms: [60, 20, 40][i] }) }));
      const results = [];
      for (const { tag, id, answer } of calls) {
        const result = assertResult(await answer) as { tag: string; mostAtOnce: number };
        assert.equal(result.tag, tag);
        results.push(result);
        if (language === 'python')
          assert.deepEqual(
            inst.logsOf(id).map((l) => l.message),
            [`before ${tag}`, `after ${tag}`],
          );
      }
      assert.ok(Math.max(...results.map((r) => r.mostAtOnce)) >= 2, 'calls overlapped');
      assert.equal(inst.messages.filter((m) => 'id' in m && m.id === hung.id).length, 0);
      inst.proc.kill('SIGKILL');
      await inst.exited;
    });

    test('a multi-megabyte result arrives intact, and so does a multi-megabyte event', async () => {
      const inst = Instance.start(language, `${language}-async`);
      await inst.ready('main.handler', { concurrency: 4 });
      const bytes = 6 * 1024 * 1024;
      const big = assertResult(await inst.call({ bytes })) as { sha256: string; data: string };
      assert.equal(big.data.length, bytes);
      assert.equal(createHash('sha256').update(big.data).digest('hex'), big.sha256);
      await inst.close();

      const echo = Instance.start(language, `${language}-echo`);
      await echo.ready();
      const text = randomBytes(3 * 1024 * 1024).toString('base64');
      const result = assertResult(await echo.call({ text })) as { event: { text: string } };
      assert.equal(result.event.text, text);
      assert.deepEqual(await echo.close(), { code: 0, signal: null });
    });

    test('a non-blocking stdin and fd 3 that fills up lose nothing', async () => {
      const inst = Instance.start(language, `${language}-async`, { nonBlocking: true });
      await inst.ready('main.handler', { concurrency: 4 });
      // Stop reading so the socketpair fills and the instance meets EAGAIN mid-result.
      inst.fd3.pause();
      const bytes = 4 * 1024 * 1024;
      const big = inst.invoke({ bytes });
      const small = inst.invoke({ tag: 'after', ms: 1 });
      await new Promise((r) => setTimeout(r, 500));
      inst.fd3.resume();
      const result = assertResult(await big.answer) as { sha256: string; data: string };
      assert.equal(result.data.length, bytes);
      assert.equal(createHash('sha256').update(result.data).digest('hex'), result.sha256);
      assert.equal((assertResult(await small.answer) as { tag: string }).tag, 'after');
      assert.equal((assertResult(await inst.call({ tag: 'later' })) as { tag: string }).tag, 'later');
      assert.deepEqual(await inst.close(), { code: 0, signal: null });
    });

    test('EOF on stdin: in-flight calls finish, then the instance exits 0', async () => {
      const inst = Instance.start(language, `${language}-async`);
      await inst.ready('main.handler', { concurrency: 4 });
      const slow = inst.invoke({ tag: 'slow', ms: 300 });
      inst.proc.stdin!.end();
      assert.equal((assertResult(await slow.answer) as { tag: string }).tag, 'slow');
      assert.deepEqual(await inst.exited, { code: 0, signal: null });

      const idle = Instance.start(language, `${language}-echo`);
      await idle.ready();
      const closedAt = Date.now();
      assert.deepEqual(await idle.close(), { code: 0, signal: null });
      assert.ok(Date.now() - closedAt < 2000, 'exits promptly');
    });

    test('invokes sent before ready wait for it; unknown messages and non-JSON lines are ignored', async () => {
      const inst = Instance.start(language, `${language}-echo`);
      inst.proc.stdin!.write('{"type":"bogus","id":"00000000000000000000000000000000"}\nnot json at all\n');
      const init = inst.init();
      const { answer } = inst.invoke('early');
      assert.deepEqual(await init, { type: 'ready' });
      assert.equal((assertResult(await answer) as { event: unknown }).event, 'early');
      assert.deepEqual(await inst.close(), { code: 0, signal: null });
      assert.match(inst.output, /unknown type "bogus"/);
      assert.match(inst.output, /not JSON/);
    });
  });
}

describe('node runtime specifics', () => {
  test('CommonJS handlers, handlers with top-level await, and the ES module entry', async () => {
    const inst = Instance.start('node', 'node-echo');
    await inst.ready('legacy.handler');
    assert.deepEqual(assertResult(await inst.call(7)), { commonjs: true, event: 7 });
    await inst.close();

    const tla = Instance.start('node', 'node-echo');
    await tla.ready('tla.handler');
    assert.equal(assertResult(await tla.call(null)), 'awaited at load');
    await tla.close();

    const esm = Instance.start('node', 'node-echo', { nodeEntry: join(REPO_ROOT, 'runtimes', 'node', 'instance.mjs') });
    await esm.ready();
    assert.deepEqual((assertResult(await esm.call('via mjs')) as { event: unknown }).event, 'via mjs');
    assert.deepEqual(await esm.close(), { code: 0, signal: null });
  });

  test('thrown and rejected errors, non-Error throws, results without JSON form; the instance lives on', async () => {
    const inst = Instance.start('node', 'node-throws');
    await inst.ready();
    const typeError = assertError(await inst.call({ kind: 'type-error', detail: 'x' }));
    assert.equal(typeError.name, 'TypeError');
    assert.equal(typeError.message, 'bad input: x');
    assert.match(typeError.stack!, /node-throws\/main\.mjs/);
    assert.deepEqual(
      { ...assertError(await inst.call({ kind: 'reject' })), stack: undefined },
      { name: 'RangeError', message: 'rejected on purpose', stack: undefined },
    );
    assert.deepEqual(assertError(await inst.call({ kind: 'string' })), { name: 'Error', message: 'a plain string' });
    assert.match(assertError(await inst.call({ kind: 'object' })).message, /\{"code":42\}/);
    assert.match(assertError(await inst.call({ kind: 'cycle' })).message, /not JSON-serializable.*circular/i);
    assert.match(assertError(await inst.call({ kind: 'bigint' })).message, /not JSON-serializable.*BigInt/);
    const uncaught = assertError(await inst.call({ kind: 'uncaught' }));
    assert.equal(uncaught.message, 'thrown from a timer');
    assert.equal(assertResult(await inst.call({ kind: 'ok' })), 'fine');
    assert.deepEqual(await inst.close(), { code: 0, signal: null });
  });
});

describe('python runtime specifics', () => {
  test('exceptions, sys.exit, results without JSON form, NaN; the instance lives on', async () => {
    const inst = Instance.start('python', 'python-throws');
    await inst.ready();
    const valueError = assertError(await inst.call({ kind: 'value-error', detail: 'x' }));
    assert.equal(valueError.name, 'ValueError');
    assert.equal(valueError.message, 'bad input: x');
    assert.match(valueError.stack!, /python-throws\/main\.py", line \d+, in handler/);
    assert.doesNotMatch(valueError.stack!, /sluice_runtime/);
    assert.equal(assertError(await inst.call({ kind: 'exit' })).name, 'SystemExit');
    assert.match(assertError(await inst.call({ kind: 'cycle' })).message, /not JSON-serializable: Circular reference/);
    assert.match(assertError(await inst.call({ kind: 'datetime' })).message, /not JSON-serializable: Object of type datetime/);
    assert.deepEqual(assertResult(await inst.call({ kind: 'nan' })), { values: [1.5, null, null] });
    assert.equal(assertResult(await inst.call({ kind: 'ok' })), 'fine');
    assert.deepEqual(await inst.close(), { code: 0, signal: null });
  });

  test('a dotted handler names a module in a package', async () => {
    const inst = Instance.start('python', 'python-echo');
    await inst.ready('pkg.mod.shout');
    assert.equal(assertResult(await inst.call('quiet')), 'QUIET');
    await inst.close();
  });

  test('an async handler with concurrency 1 runs on a persistent loop, prints tagged', async () => {
    const inst = Instance.start('python', 'python-async');
    await inst.ready('main.handler', { concurrency: 1 });
    for (const tag of ['p', 'q']) {
      const { id, answer } = inst.invoke({ tag, ms: 5 });
      assert.equal((assertResult(await answer) as { tag: string }).tag, tag);
      assert.deepEqual(
        inst.logsOf(id).map((l) => l.message),
        [`before ${tag}`, `after ${tag}`],
      );
    }
    assert.deepEqual(await inst.close(), { code: 0, signal: null });
  });
});

describe('custom runtime in plain bash', () => {
  test('init → ready, invoke → log and result, EOF → exit 0', async () => {
    const inst = new Instance(join(FIXTURES, 'custom-bash', 'instance.sh'), [], join(FIXTURES, 'custom-bash'));
    await inst.ready('instance.sh');
    const event = { text: 'grüße', list: [1, 2, 3] };
    const { id, answer } = inst.invoke(event);
    const result = assertResult(await answer) as { pid: number; inputBytes: number; echo: string };
    assert.equal(result.pid, inst.proc.pid);
    assert.equal(result.echo, id);
    // The invoke line as sent, in bytes: what the script measured without parsing JSON.
    const sent = JSON.stringify({ type: 'invoke', id, deadline: 0, function: 'test-fn', version: 'a'.repeat(64) });
    assert.ok(result.inputBytes > Buffer.byteLength(sent), String(result.inputBytes));
    assert.deepEqual(
      inst.logsOf(id).map((l) => l.level),
      ['info'],
    );
    assert.deepEqual(await inst.close(), { code: 0, signal: null });
  });
});

describe('ctx.storage against a real sluice server', () => {
  let server: RunningServer;
  let socketDir: string;
  let socket: string;
  let close: () => Promise<void>;

  before(async () => {
    server = await startServer();
    socketDir = await tempDir('sluice-sock-');
    socket = join(socketDir, 'api.sock');
    // The product will serve the API on a unix socket for instances; here a second listener does.
    const app = await buildServer(server.core!);
    await app.listen({ path: socket });
    close = () => app.close();
  });

  after(async () => {
    await close?.();
    await server?.stop();
    if (socketDir) await rm(socketDir, { recursive: true, force: true });
  });

  for (const language of ['node', 'python'] as const) {
    test(`${language}: mkdir, write, read, stat with checksum, list, upload, download, remove`, async () => {
      const inst = Instance.start(language, `${language}-storage`);
      await inst.ready();
      const dir = `/rt-${language}`;
      const answer = await inst.invoke({ dir }, { socket, token: server.token }).answer;
      const r = assertResult(answer) as {
        created: boolean;
        text: string;
        length: number;
        stat: { fileType: string; size: number; checksums: { type: string; value: string }[] };
        listed: string[];
        roundTrip: boolean;
        missing: { name: string; status: number; message: string };
      };
      const text = `hello from ${language}`;
      assert.equal(r.created, true);
      assert.equal(r.text, text);
      assert.equal(r.length, Buffer.byteLength(text));
      assert.equal(r.stat.fileType, 'REGULAR');
      assert.equal(r.stat.size, Buffer.byteLength(text));
      assert.deepEqual(
        r.stat.checksums.find((c) => c.type === 'ADLER32'),
        { type: 'ADLER32', value: adler32(Buffer.from(text)) },
      );
      assert.deepEqual(r.listed, ['hello wörld.txt', 'up.bin']);
      assert.equal(r.roundTrip, true);
      assert.equal(r.missing.name, 'StorageError');
      assert.equal(r.missing.status, 404);
      assert.match(r.missing.message, /up\.bin/);

      const get = authed(server);
      const kept = await get(`${dir}/kept.txt`);
      assert.equal(kept.status, 200);
      assert.equal(await kept.text(), `kept by ${language}`);
      assert.equal((await get(`${dir}/sub%20dir`, { method: 'PROPFIND', headers: { depth: '0' } })).status, 404);
      assert.deepEqual(await inst.close(), { code: 0, signal: null });
    });
  }
});

function adler32(data: Buffer): string {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b * 65536 + a) >>> 0).toString(16).padStart(8, '0');
}
