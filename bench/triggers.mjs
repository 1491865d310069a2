#!/usr/bin/env node
// bench/triggers.mjs — storage event → function benchmark, with incron (Debian) measured in the same run:
//
//   latency:     file closed → handler entered, warm, p50/p99. Sequential small WebDAV PUTs over HTTP
//                (keep-alive) into a directory watched by a trigger bound to a python (and a node)
//                function; t0 = the PUT's response arrives (the close is acknowledged: data, namespace
//                row and events are durable), t1 = the timestamp the handler takes on entry. Also
//                t1 − the event's own time in the log, and t1 − the moment the PUT was sent.
//                incron: files written with fs.writeFile into a watched directory (t0 = after close),
//                rule IN_CLOSE_WRITE → python3 running the same handler code; t1 = its timestamp.
//   throughput:  (a) dispatch: a log pre-filled with N committed files (namespace service, in-process),
//                then a trigger created with from:'beginning' drains them into warm instances — events
//                delivered/s, python and node; (b) end to end over HTTP: many concurrent PUTs (wrk,
//                unique paths) for a few seconds, deliveries/s until the trigger's lag is 0.
//                incron: N files written as fast as possible, handled files/s and files never handled.
//
// Timestamps: every handler returns { entered: wall-clock ms, mono: CLOCK_MONOTONIC ms } taken on
// entry (python: time.time()*1000 and time.monotonic_ns(); node: the same clocks). Latencies use the
// monotonic clock shared by all processes on the host (no NTP slew); "− event time" uses wall clock.
//
// sluice runs in this process (createCore + buildServer on loopback, temp data dir, logLevel warn),
// built first with `npm run build`. fsync is on (the default: a PUT is acknowledged once durable);
// BENCH_FSYNC=on,off runs the sluice part a second time without fsync, reported beside it.
//
// Usage: node bench/triggers.mjs [--quick] [--only=latency,dispatch,http,incron]
// Env: BENCH_LAT_CALLS (500) BENCH_FILL (10000) BENCH_FILL_SECONDS (15) BENCH_SECONDS (8)
//      BENCH_CONNECTIONS (64) BENCH_INCRON_LAT (60) BENCH_INCRON_FILES (200) BENCH_FSYNC (on)
//      BENCH_SANDBOX (auto|bubblewrap|none; default auto)
//      BENCH_PROFILE=DIR: CPU profiles (.cpuprofile) of this process over each dispatch measure
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile, readFile, open } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { create as createTar } from 'tar';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const QUICK = process.argv.includes('--quick');
const ONLY = (process.argv.find((a) => a.startsWith('--only='))?.slice(7) ?? 'latency,dispatch,http,incron').split(',');
const envInt = (name, dflt) => (process.env[name] ? Number.parseInt(process.env[name], 10) : dflt);
const CFG = {
  latCalls: envInt('BENCH_LAT_CALLS', QUICK ? 100 : 500),
  latWarmup: QUICK ? 20 : 30,
  fill: envInt('BENCH_FILL', QUICK ? 3000 : 10000),
  fillSeconds: envInt('BENCH_FILL_SECONDS', QUICK ? 4 : 15),
  seconds: envInt('BENCH_SECONDS', QUICK ? 3 : 8),
  connections: envInt('BENCH_CONNECTIONS', 64),
  incronLat: envInt('BENCH_INCRON_LAT', QUICK ? 25 : 60),
  incronFiles: envInt('BENCH_INCRON_FILES', QUICK ? 60 : 200),
  fsync: (process.env.BENCH_FSYNC ?? 'on').split(',').map((s) => s.trim() === 'on'),
  sandbox: process.env.BENCH_SANDBOX ?? 'auto',
  only: ONLY,
};
const PYTHON = '/usr/bin/python3';
const mono = () => Number(process.hrtime.bigint()) / 1e6;
const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const stats = (xs) => ({ n: xs.length, p50: pct(xs, 50), p99: pct(xs, 99), min: pct(xs, 0), max: pct(xs, 100) });
const fmt = (ms) =>
  Number.isNaN(ms) || ms === undefined ? '—' : Math.abs(ms) < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const load = () => os.loadavg().map((l) => Number(l.toFixed(2)));

const { loadConfig } = await import(path.join(REPO, 'dist/src/config.js'));
const { createCore, ensureAdminToken, createLogger } = await import(path.join(REPO, 'dist/src/app.js'));
const { buildServer } = await import(path.join(REPO, 'dist/src/api/server.js'));
const { descendants } = await import(path.join(REPO, 'dist/src/functions/process-tree.js'));

// ------------------------------------------------------------------ CPU accounting
// Other work on the machine changes wall-clock rates; CPU time per delivery does not (much). Ticks
// from /proc: this process's main thread (the event loop: log reads, dispatch, invoker, SQLite), the
// whole process (with the libuv pool), and the function's instance process trees.

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;
function procTicks(statPath) {
  try {
    const text = readFileSync(statPath, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return 0;
  }
}
function cpuSnapshot(core, fn) {
  const pids = core.invoker
    .poolStatus(fn)
    .flatMap((p) => p.instances)
    .map((i) => i.pid)
    .filter(Boolean);
  const tree = pids.flatMap((pid) => [pid, ...descendants(pid)]);
  const ticks = new Map(tree.map((pid) => [pid, procTicks(`/proc/${pid}/stat`)]));
  const u = process.cpuUsage();
  return { main: procTicks(`/proc/self/task/${process.pid}/stat`), process: (u.user + u.system) / 1000, instances: ticks };
}
/** CPU ms spent between two snapshots: main thread, whole process, instances (alive in both). */
function cpuSpent(a, b) {
  let inst = 0;
  for (const [pid, t] of b.instances) inst += t - (a.instances.get(pid) ?? 0);
  const ms = (t) => (t * 1000) / CLK_TCK;
  return { mainThreadMs: ms(b.main - a.main), processMs: b.process - a.process, instancesMs: ms(inst) };
}

// ------------------------------------------------------------------ the handler (same code everywhere)

const PY_HANDLER =
  'import time\n\n\ndef handler(event, ctx):\n' + '    return {"entered": time.time() * 1000, "mono": time.monotonic_ns() / 1e6}\n';
const NODE_HANDLER =
  'export function handler() {\n' +
  '  return { entered: performance.timeOrigin + performance.now(), mono: Number(process.hrtime.bigint()) / 1e6 };\n}\n';
const SCALING = { min: 1, max: 2, concurrency: 16, idleTimeoutSeconds: 600 };
// limits.memoryMb 1024 for python: with the default 256 the sandbox's RLIMIT_AS is 768 MiB, and a
// python instance cannot start its 14th handler thread under it (8 MiB stack + a 64 MiB malloc arena
// reservation per thread): "RuntimeError: can't start new thread" kills the instance once 14 calls
// overlap, which a trigger with many deliveries in flight does at once. See the report.
const BUNDLES = {
  'trig-python': {
    manifest: { runtime: 'python', handler: 'main.handler', scaling: SCALING, limits: { memoryMb: 1024 } },
    files: { 'main.py': PY_HANDLER },
  },
  'trig-node': { manifest: { runtime: 'node', handler: 'main.handler', scaling: SCALING }, files: { 'main.mjs': NODE_HANDLER } },
};

async function pack(dir) {
  const chunks = [];
  for await (const c of createTar({ gzip: true, cwd: dir, portable: true }, ['.'])) chunks.push(c);
  return Buffer.concat(chunks);
}

const hasCmd = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

// ------------------------------------------------------------------ cleanup, always

const cleanups = [];
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    for (const f of cleanups.splice(0).reverse()) {
      try {
        await f();
      } catch (e) {
        console.error(`cleanup: ${e.message}`);
      }
    }
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\n${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}
// Last resort on a crash: no incrond is left behind.
const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

// ------------------------------------------------------------------ sluice

/**
 * Commits `n` small files under /fill with a core of its own on `dataDir`, fsync off: it only fills
 * the log the dispatch measure drains (at a few hundred fsync'd commits/s it would take minutes).
 */
async function fillLog(dataDir, n, seconds) {
  const config = loadConfig({ dataDir, port: 0, logLevel: 'warn', fsync: false, functions: { sandbox: CFG.sandbox, prewarm: 0 } }, {});
  const core = await createCore(config, createLogger('warn'));
  try {
    await ensureAdminToken(core);
    const token = (await readFile(path.join(dataDir, 'admin.token'), 'utf8')).trim();
    const principal = core.tokens.authenticate(token);
    await core.namespace.mkdir(principal, '/fill');
    const body = Buffer.from('x'.repeat(64));
    const t0 = mono();
    const until = t0 + seconds * 1000;
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < n && mono() < until) {
          const i = next++;
          await core.namespace.put(principal, `/fill/f${String(i).padStart(6, '0')}.dat`, Readable.from([body]));
        }
      }),
    );
    const files = Math.min(next, n);
    const s = (mono() - t0) / 1000;
    return { files, seconds: s, commitsPerSecond: files / s, logEvents: await core.eventLog.head(), fsync: false };
  } finally {
    await sleep(100); // the channel service's watch tracker catches up on a setImmediate; let it
    await core.close();
  }
}

async function runSluice(fsync) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sluice-bench-trig-'));
  const fill = CFG.only.includes('dispatch') ? await fillLog(dataDir, CFG.fill, CFG.fillSeconds) : undefined;
  const config = loadConfig(
    { dataDir, port: 0, logLevel: 'warn', fsync, functions: { sandbox: CFG.sandbox, maxQueuedPerFunction: 100000 } },
    {},
  );
  const core = await createCore(config, createLogger(process.env.BENCH_LOG ?? 'warn'));
  await ensureAdminToken(core);
  // When each commit became durable and its events were announced to the log's consumers (the
  // triggers among them): the moment IN_CLOSE_WRITE exists for sluice. This listener is registered
  // before any trigger's, so it runs first.
  const announced = { heads: [], at: [] };
  core.eventLog.onAppend((head) => {
    announced.heads.push(head);
    announced.at.push(mono());
  });
  const announcedAt = (id) => {
    let lo = 0;
    let hi = announced.heads.length - 1;
    if (hi < 0 || announced.heads[hi] < id) return undefined;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (announced.heads[mid] >= id) hi = mid;
      else lo = mid + 1;
    }
    return announced.at[lo];
  };
  const app = await buildServer(core);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const token = (await readFile(path.join(dataDir, 'admin.token'), 'utf8')).trim();
  const principal = core.tokens.authenticate(token);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const { port } = new URL(url);
  const closeAll = async () => {
    agent.destroy();
    await app.close();
    await core.close();
    await rm(dataDir, { recursive: true, force: true });
  };
  cleanups.push(closeAll);

  /** One HTTP request; resolves when the response has arrived (tResponse) and its body is read. */
  function request(method, pathname, body, headers = {}) {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      const tSent = mono();
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method,
          path: pathname,
          agent,
          headers: {
            authorization: `Bearer ${token}`,
            ...(data ? { 'content-length': data.length } : {}),
            ...(data && !Buffer.isBuffer(body) ? { 'content-type': 'application/json' } : {}),
            ...headers,
          },
        },
        (res) => {
          const tResponse = mono();
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let json;
            try {
              json = text ? JSON.parse(text) : null;
            } catch {
              json = text;
            }
            resolve({ status: res.statusCode, body: json, tSent, tResponse });
          });
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }
  const api = async (method, p, body, headers) => {
    const r = await request(method, `/api/v1${p}`, body, headers);
    if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  // Every finished trigger activation, seen as the dispatcher gets it back (no polling): the bench
  // wraps the invoker's invoke on this instance; nothing in src/ changes.
  const done = new Map(); // trigger name -> { count, times: [mono], target, resolveAt }
  const waiters = new Map(); // subject path -> resolve(activation)
  const origInvoke = core.invoker.invoke.bind(core.invoker);
  const invokedAt = new Map(); // subject path -> when the dispatcher called invoke (latency phase)
  core.invoker.invoke = async (req) => {
    if (waiters.has(req.input?.subject)) invokedAt.set(req.input.subject, mono());
    const a = await origInvoke(req);
    if (req.cause?.startsWith('trigger:')) {
      const t = mono();
      const name = req.cause.slice(8);
      const d = done.get(name) ?? { count: 0, ok: 0, times: [], target: Infinity, resolve: undefined };
      done.set(name, d);
      d.count++;
      if (a.status === 'success') d.ok++;
      else if (process.env.BENCH_DEBUG) console.error('failed activation', JSON.stringify(a).slice(0, 2000));
      d.times.push(t);
      if (d.count >= d.target) d.resolve?.();
      const w = waiters.get(a.input?.subject);
      if (w) {
        waiters.delete(a.input.subject);
        w(a);
      }
    }
    return a;
  };
  const reachCount = (name, target, timeoutMs) =>
    new Promise((resolve) => {
      const d = done.get(name) ?? { count: 0, ok: 0, times: [], target: Infinity, resolve: undefined };
      done.set(name, d);
      if (d.count >= target) return resolve(true);
      const timer = setTimeout(() => resolve(false), timeoutMs);
      d.target = target;
      d.resolve = () => {
        clearTimeout(timer);
        d.target = Infinity;
        resolve(true);
      };
    });
  const waitFor = (subject, timeoutMs = 10_000) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiters.delete(subject);
        resolve(undefined);
      }, timeoutMs);
      waiters.set(subject, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
    });
  const newTrigger = (name, dir, fn, extra = {}) =>
    api('POST', '/triggers', {
      name,
      filter: { path: dir, glob: '*.dat' },
      target: { function: fn },
      delivery: { concurrency: 256 },
      ...extra,
    });

  const result = { fsync, sandbox: core.invoker.sandboxKind };
  try {
    for (const [name, b] of Object.entries(BUNDLES)) {
      const dir = path.join(dataDir, 'src', name);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'sluice.function.json'), JSON.stringify({ name, ...b.manifest }));
      for (const [f, text] of Object.entries(b.files)) await writeFile(path.join(dir, f), text);
      await api('POST', '/functions', await pack(dir), { 'content-type': 'application/gzip' });
    }
    for (const d of ['/bench', '/bench/py', '/bench/node', '/bench/tp']) {
      const r = await request('MKCOL', d);
      if (r.status !== 201) throw new Error(`MKCOL ${d}: ${r.status}`);
    }
    // Warm both functions: two instances each, every thread of the python ones used once.
    for (const fn of Object.keys(BUNDLES)) {
      await Promise.all(Array.from({ length: 64 }, () => core.invoker.invoke({ name: fn, input: {}, principal, blocking: true })));
    }
    const body = Buffer.from('x'.repeat(64));

    // ---------------------------------------------------------- dispatch: drain a filled log
    if (fill) {
      const filled = fill.files;
      const logHead = fill.logEvents;
      result.fill = fill;
      // The server's catalogue indexer (another consumer of the same log) records every filled file
      // once the server starts; let it finish first so the drain measures the triggers alone.
      if (core.catalogIndexer?.caughtUp) {
        const t = mono();
        await core.catalogIndexer.caughtUp();
        result.fill.catalogCatchUpSeconds = (mono() - t) / 1000;
      }
      result.dispatch = {};
      for (const [label, fn] of [
        ['python', 'trig-python'],
        ['node', 'trig-node'],
      ]) {
        const name = `drain-${label}`;
        const profiler = await startProfile();
        const cpu0 = cpuSnapshot(core, fn);
        const started = mono();
        const reached = reachCount(name, filled, 120_000);
        await newTrigger(name, '/fill', fn, { from: 'beginning' });
        const ok = await reached;
        const elapsed = (mono() - started) / 1000;
        const cpu = cpuSpent(cpu0, cpuSnapshot(core, fn));
        await profiler.stop(`drain-${label}-fsync-${fsync ? 'on' : 'off'}`);
        const status = await api('GET', `/triggers/${name}`);
        const d = done.get(name);
        result.dispatch[label] = {
          events: filled,
          delivered: d?.count ?? 0,
          succeeded: status.deliveries.succeeded,
          dead: status.deliveries.dead,
          completed: ok,
          seconds: elapsed,
          deliveredPerSecond: (d?.count ?? 0) / elapsed,
          logEventsReadPerSecond: logHead / elapsed,
          cpu,
          cpuPerDeliveryUs: {
            mainThread: (cpu.mainThreadMs * 1000) / filled,
            process: (cpu.processMs * 1000) / filled,
            instances: (cpu.instancesMs * 1000) / filled,
          },
          // What these CPU costs allow on an idle machine: the event loop is one thread; the
          // process and the instances share the cores.
          ceilingPerSecond: {
            eventLoop: filled / (cpu.mainThreadMs / 1000),
            twoCores: (os.cpus().length * filled) / ((cpu.processMs + cpu.instancesMs) / 1000),
          },
        };
        await api('POST', `/triggers/${name}/disable`);
      }
    }

    // ---------------------------------------------------------- latency: sequential PUTs
    if (CFG.only.includes('latency')) {
      result.latency = {};
      for (const [label, fn, dir] of [
        ['python', 'trig-python', '/bench/py'],
        ['node', 'trig-node', '/bench/node'],
      ]) {
        const name = `lat-${label}`;
        await newTrigger(name, dir, fn);
        const fromAck = [];
        const fromAnnounce = [];
        const announceToInvoke = [];
        const invokeToHandler = [];
        const fromSend = [];
        const fromEvent = [];
        const putRtt = [];
        const queueWait = [];
        let timeouts = 0;
        let negative = 0;
        for (let i = 0; i < CFG.latWarmup + CFG.latCalls; i++) {
          const p = `${dir}/l${i}.dat`;
          const seen = waitFor(p);
          const r = await request('PUT', p, body);
          if (r.status !== 201) throw new Error(`PUT ${p}: ${r.status}`);
          const a = await seen;
          if (i < CFG.latWarmup) continue;
          if (!a || a.status !== 'success') {
            timeouts++;
            continue;
          }
          const t1 = a.result.mono;
          fromAck.push(t1 - r.tResponse);
          const ann = announcedAt(Number(a.input.id));
          if (ann !== undefined) fromAnnounce.push(t1 - ann);
          const inv = invokedAt.get(p);
          invokedAt.delete(p);
          if (inv !== undefined && ann !== undefined) announceToInvoke.push(inv - ann);
          if (inv !== undefined) invokeToHandler.push(t1 - inv);
          fromSend.push(t1 - r.tSent);
          putRtt.push(r.tResponse - r.tSent);
          fromEvent.push(a.result.entered - Date.parse(a.input.time));
          if (a.waitMs !== undefined) queueWait.push(a.waitMs);
          if (t1 < r.tResponse) negative++;
        }
        await api('POST', `/triggers/${name}/disable`);
        result.latency[label] = {
          fromAck: stats(fromAck),
          fromCommitDurable: stats(fromAnnounce),
          // fromCommitDurable split at the dispatcher's call of Invoker.invoke: reading the log,
          // recording the delivery; then the invoker, the pipe to the instance, the runtime.
          commitDurableToInvoke: stats(announceToInvoke),
          invokeToHandler: stats(invokeToHandler),
          fromSend: stats(fromSend),
          fromEventTime: stats(fromEvent),
          putRoundTrip: stats(putRtt),
          invokerQueueWaitMs: stats(queueWait),
          handlerBeforeAck: negative,
          timeouts,
        };
      }
    }

    // ---------------------------------------------------------- end to end over HTTP: concurrent PUTs
    if (CFG.only.includes('http')) {
      const name = 'tp-python';
      await newTrigger(name, '/bench/tp', 'trig-python');
      const started = mono();
      const pl = await putLoad(url, token, CFG.seconds, CFG.connections, body, request);
      const loadEnd = mono();
      const reached = await reachCount(name, pl.done, 120_000);
      const d = done.get(name) ?? { count: 0, times: [] };
      const drainedAt = d.times.at(-1) ?? loadEnd;
      const inWindow = d.times.filter((t) => t <= loadEnd).length;
      const status = await api('GET', `/triggers/${name}`);
      result.http = {
        client: pl.client,
        connections: CFG.connections,
        seconds: (loadEnd - started) / 1000,
        puts: pl.done,
        putErrors: pl.failed,
        putsPerSecond: pl.done / ((loadEnd - started) / 1000),
        delivered: d.count,
        succeeded: status.deliveries.succeeded,
        dead: status.deliveries.dead,
        allDelivered: reached,
        deliveredPerSecondDuringLoad: inWindow / ((loadEnd - started) / 1000),
        deliveredPerSecondUntilDrained: d.count / ((drainedAt - started) / 1000),
        drainAfterLoadSeconds: (drainedAt - loadEnd) / 1000,
      };
    }
  } finally {
    cleanups.splice(cleanups.indexOf(closeAll), 1);
    await closeAll();
  }
  return result;
}

/**
 * BENCH_PROFILE=DIR: a CPU profile of this process (the whole sluice server: log reads, dispatch,
 * invoker, activation records) over one measure, written as DIR/NAME.cpuprofile — what
 * `node --cpu-prof` writes, limited to the measure instead of the whole run.
 */
async function startProfile() {
  const dir = process.env.BENCH_PROFILE;
  if (!dir) return { stop: async () => undefined };
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = (method, params) => new Promise((res, rej) => session.post(method, params, (e, r) => (e ? rej(e) : res(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 100 });
  await post('Profiler.start');
  return {
    async stop(name) {
      const { profile } = await post('Profiler.stop');
      session.disconnect();
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    },
  };
}

/** Concurrent PUTs of unique small files for `seconds`: wrk in its own process when installed. */
async function putLoad(url, token, seconds, connections, body, request) {
  if (!hasCmd('wrk')) {
    let next = 0;
    let done = 0;
    let failed = 0;
    const until = mono() + seconds * 1000;
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (mono() < until) {
          const r = await request('PUT', `/bench/tp/p${next++}.dat`, body).catch(() => ({ status: 0 }));
          if (r.status === 201) done++;
          else failed++;
        }
      }),
    );
    return { done, failed, client: 'in-process' };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-bench-wrk-'));
  try {
    const script = path.join(dir, 'put.lua');
    await writeFile(
      script,
      `local n = 0\nlocal body = "${body.toString()}"\nwrk.headers["Authorization"] = "Bearer ${token}"\n` +
        `request = function()\n  n = n + 1\n  return wrk.format("PUT", "/bench/tp/w" .. n .. ".dat", nil, body)\nend\n` +
        `done = function(summary, latency, requests)\n  local e = summary.errors\n` +
        `  io.write(string.format("RESULT %d %d %d %d\\n", summary.requests, e.status + e.connect + e.read + e.write + e.timeout, summary.duration, latency:percentile(50)))\nend\n`,
    );
    const out = await new Promise((resolve, reject) => {
      let text = '';
      const p = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, url], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.add(p);
      p.stdout.on('data', (d) => (text += d));
      p.on('error', reject);
      p.on('exit', () => {
        children.delete(p);
        resolve(text);
      });
    });
    const m = /RESULT (\d+) (\d+) (\d+) (\d+)/.exec(out);
    if (!m) throw new Error(`wrk gave no result: ${out}`);
    const [requests, failed, , p50us] = m.slice(1).map(Number);
    return { done: requests - failed, failed, client: 'wrk', putP50Ms: p50us / 1000 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ incron

async function runIncron() {
  if (!hasCmd('incrond')) {
    console.error('incrond not found: apt-get install -y incron');
    return { skipped: 'incrond not installed' };
  }
  // A private configuration (system table dir, lock file) so the bench touches nothing global and
  // cannot collide with an incrond someone else runs; incrond -n stays in the foreground as our child.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-bench-incron-'));
  const removeDir = () => rm(dir, { recursive: true, force: true });
  cleanups.push(removeDir);
  const watch = path.join(dir, 'watch');
  const handlerDir = path.join(dir, 'handler');
  const out = path.join(dir, 'handled.txt');
  for (const d of [watch, handlerDir, path.join(dir, 'incron.d'), path.join(dir, 'user')]) await mkdir(d);
  await writeFile(path.join(handlerDir, 'main.py'), PY_HANDLER);
  // The per-event program: the same handler module, called as a function would be, then "path t t".
  await writeFile(
    path.join(handlerDir, 'run.py'),
    `import sys\nfrom main import handler\n\nr = handler({"subject": sys.argv[1]}, None)\n` +
      `with open(${JSON.stringify(out)}, "a") as f:\n    f.write("%s %r %r\\n" % (sys.argv[1], r["entered"], r["mono"]))\n`,
  );
  const conf = path.join(dir, 'incron.conf');
  await writeFile(
    conf,
    `system_table_dir = ${dir}/incron.d\nuser_table_dir = ${dir}/user\nlockfile_dir = ${dir}\nlockfile_name = incrond\n`,
  );
  await writeFile(
    path.join(dir, 'incron.d', 'sluice-bench'),
    `${watch} IN_CLOSE_WRITE ${PYTHON} ${path.join(handlerDir, 'run.py')} $@/$#\n`,
  );
  await writeFile(out, '');
  const daemon = spawn('incrond', ['-n', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(daemon);
  let daemonErr = '';
  daemon.stderr.on('data', (d) => (daemonErr += d));
  const stopDaemon = async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    }
    children.delete(daemon);
  };
  cleanups.push(stopDaemon);

  // Results file, read incrementally.
  const fh = await open(out, 'r');
  let offset = 0;
  let partial = '';
  const handled = new Map(); // path -> { entered, mono }
  const poll = async () => {
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
      const text = partial + buf.subarray(0, bytesRead).toString();
      const lines = text.split('\n');
      partial = lines.pop();
      for (const l of lines) {
        const [p, entered, m] = l.split(' ');
        handled.set(p, { entered: Number(entered), mono: Number(m) });
      }
    }
  };
  const waitHandled = async (p, timeoutMs) => {
    const end = mono() + timeoutMs;
    while (mono() < end) {
      await poll();
      const h = handled.get(p);
      if (h) return h;
      await sleep(1);
    }
    return undefined;
  };

  const result = {};
  try {
    // incrond reads its tables and adds its watches after start: probe until a file is handled
    // (this also leaves main.py's bytecode cached, as sluice's runtime has it precompiled).
    let ready = false;
    for (let i = 0; i < 50 && !ready; i++) {
      if (daemon.exitCode !== null) throw new Error(`incrond exited: ${daemonErr}`);
      const p = path.join(watch, `probe${i}`);
      await writeFile(p, 'x');
      ready = (await waitHandled(p, 200)) !== undefined;
    }
    if (!ready) throw new Error(`incrond handled no file: ${daemonErr}`);
    await sleep(300);
    await poll();

    // latency, sequential
    const fromClose = [];
    let lost = 0;
    for (let i = 0; i < CFG.incronLat; i++) {
      const p = path.join(watch, `l${i}.dat`);
      await writeFile(p, 'x'.repeat(64));
      const t0 = mono();
      const h = await waitHandled(p, 10_000);
      if (h) fromClose.push(h.mono - t0);
      else lost++;
    }
    result.latency = { fromClose: stats(fromClose), lost };

    // rate: a burst of files written as fast as possible
    const names = Array.from({ length: CFG.incronFiles }, (_, i) => path.join(watch, `r${i}.dat`));
    const started = mono();
    for (const p of names) await writeFile(p, 'x'.repeat(64));
    const written = mono();
    let last = -1;
    let lastChange = mono();
    const cap = mono() + (QUICK ? 20_000 : 40_000);
    for (;;) {
      await poll();
      const n = names.filter((p) => handled.has(p)).length;
      if (n !== last) {
        last = n;
        lastChange = mono();
      }
      if (n === names.length || mono() - lastChange > 5000 || mono() > cap) break;
      await sleep(50);
    }
    const got = names.map((p) => handled.get(p)).filter(Boolean);
    const lastEntered = Math.max(...got.map((h) => h.mono));
    result.rate = {
      files: names.length,
      handled: got.length,
      lost: names.length - got.length,
      writeSeconds: (written - started) / 1000,
      seconds: (lastEntered - started) / 1000,
      handledPerSecond: got.length / ((lastEntered - started) / 1000),
      cappedAtSeconds: mono() > cap ? (cap - started) / 1000 : undefined,
    };
  } finally {
    await fh.close();
    cleanups.splice(cleanups.indexOf(stopDaemon), 1);
    await stopDaemon();
    // Let the handlers still running finish before their directory goes.
    await sleep(200);
    cleanups.splice(cleanups.indexOf(removeDir), 1);
    await removeDir();
  }
  return result;
}

// ------------------------------------------------------------------ run

const loadStart = load();
console.log(
  `sluice trigger benchmark — ${os.cpus().length} cores, node ${process.version}, load average ${loadStart.join(' ')}` +
    (QUICK ? ' (quick)' : ''),
);
const results = {
  date: new Date().toISOString(),
  machine: { cores: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  config: CFG,
  loadAverage: { start: loadStart },
  sluice: [],
};
const t00 = mono();
try {
  for (const fsync of CFG.fsync) {
    if (CFG.only.some((o) => o !== 'incron')) results.sluice.push(await runSluice(fsync));
  }
  if (CFG.only.includes('incron')) results.incron = await runIncron();
} finally {
  await cleanup();
}
results.loadAverage.end = load();
results.seconds = (mono() - t00) / 1000;

// ------------------------------------------------------------------ report

const tgt = (ok) => (ok ? 'met' : 'MISSED');
const primary = results.sluice.find((s) => s.fsync) ?? results.sluice[0];
const inc = results.incron;
console.log(`sandbox ${primary?.sandbox ?? '—'}; total ${results.seconds.toFixed(0)} s\n`);
console.log('file closed → handler entered, warm, sequential; p50 / p99 of t1 (handler entered) minus:');
console.log(
  '  ' +
    'side'.padEnd(24) +
    'PUT acknowledged'.padEnd(22) +
    'commit durable'.padEnd(22) +
    'event time (wall)'.padEnd(22) +
    'PUT sent'.padEnd(22) +
    'handler before ack',
);
const pair = (x) => `${fmt(x?.p50)} / ${fmt(x?.p99)}`.padEnd(22);
for (const s of results.sluice) {
  for (const lang of ['python', 'node']) {
    const l = s.latency?.[lang];
    if (!l) continue;
    console.log(
      `  ${`sluice ${lang} fsync ${s.fsync ? 'on' : 'off'}`.padEnd(24)}${pair(l.fromAck)}${pair(l.fromCommitDurable)}${pair(l.fromEventTime)}${pair(l.fromSend)}` +
        `${l.handlerBeforeAck}/${l.fromAck.n}${l.timeouts ? `  (${l.timeouts} not delivered in 10 s)` : ''}`,
    );
  }
}
for (const s of results.sluice) {
  for (const lang of ['python', 'node']) {
    const l = s.latency?.[lang];
    if (l?.invokeToHandler?.n)
      console.log(
        `    ${lang} fsync ${s.fsync ? 'on' : 'off'}: commit durable → dispatcher calls invoke ${pair(l.commitDurableToInvoke).trim()}, → handler entered ${pair(l.invokeToHandler).trim()}`,
      );
  }
}
if (inc?.latency) {
  const l = inc.latency.fromClose;
  console.log(`  ${'incron python'.padEnd(24)}${pair(l)}(t0 = close() returned)${inc.latency.lost ? `  (${inc.latency.lost} lost)` : ''}`);
}
const lp = primary?.latency?.python;
if (lp) {
  const [a, c] = [lp.fromAck, lp.fromCommitDurable];
  console.log(
    `  target p50 ≤ 1 ms, p99 ≤ 5 ms (python, fsync ${primary.fsync ? 'on' : 'off'}): from the acknowledgement ${tgt(a.p50 <= 1)} / ${tgt(a.p99 <= 5)}; ` +
      `from the durable commit ${tgt(c.p50 <= 1)} / ${tgt(c.p99 <= 5)}`,
  );
  if (inc?.latency) {
    const i = inc.latency.fromClose.p50;
    results.latencyRatioVsIncron = { fromCommitDurable: i / c.p50, fromPutSent: i / lp.fromSend.p50 };
    console.log(
      `  incron p50 / sluice python p50: ${(i / c.p50).toFixed(0)}× from the durable commit, ${(i / lp.fromSend.p50).toFixed(1)}× from the PUT sent ` +
        `(target ≥ 20×: ${tgt(i / c.p50 >= 20)} / ${tgt(i / lp.fromSend.p50 >= 20)})`,
    );
  }
}

console.log('\nevents/s through triggers into warm instances');
for (const s of results.sluice) {
  const f = s.fsync ? 'fsync on' : 'fsync off';
  if (s.fill)
    console.log(
      `  (log filled beforehand: ${s.fill.files} files committed in-process, fsync off, at ${s.fill.commitsPerSecond.toFixed(0)}/s; ${s.fill.logEvents} log events` +
        `${s.fill.catalogCatchUpSeconds !== undefined ? `; waited ${s.fill.catalogCatchUpSeconds.toFixed(1)} s for the catalogue indexer to record them before the drains` : ''})`,
    );
  for (const lang of ['python', 'node']) {
    const d = s.dispatch?.[lang];
    if (d)
      console.log(
        `  sluice dispatch, ${lang.padEnd(6)} (${f})  ${d.deliveredPerSecond.toFixed(0).padStart(7)} deliveries/s   (${d.delivered}/${d.events} in ${d.seconds.toFixed(2)} s; ${d.logEventsReadPerSecond.toFixed(0)} log events read/s${d.dead ? `; ${d.dead} dead` : ''}${d.completed ? '' : '; NOT COMPLETE'})`,
      );
    if (d?.cpuPerDeliveryUs)
      console.log(
        `      CPU per delivery: event loop ${d.cpuPerDeliveryUs.mainThread.toFixed(0)} µs, sluice process ${d.cpuPerDeliveryUs.process.toFixed(0)} µs, ` +
          `instances ${d.cpuPerDeliveryUs.instances.toFixed(0)} µs → ceiling on an idle machine ${d.ceilingPerSecond.eventLoop.toFixed(0)}/s (event loop), ` +
          `${d.ceilingPerSecond.twoCores.toFixed(0)}/s (all CPU on ${os.cpus().length} cores)`,
      );
  }
  if (s.http) {
    const h = s.http;
    console.log(
      `  sluice HTTP PUT → python (${f}) ${h.deliveredPerSecondUntilDrained.toFixed(0).padStart(7)} deliveries/s   (${h.puts} PUTs by ${h.client}, ${h.connections} connections, ${h.putsPerSecond.toFixed(0)} PUT/s; ` +
        `${h.deliveredPerSecondDuringLoad.toFixed(0)}/s during the load, drained ${Math.max(0, h.drainAfterLoadSeconds).toFixed(2)} s after${h.putErrors ? `; ${h.putErrors} PUT errors` : ''}${h.allDelivered ? '' : '; NOT ALL DELIVERED'})`,
    );
  }
}
if (inc?.rate) {
  const r = inc.rate;
  console.log(
    `  incron python (process/event)  ${r.handledPerSecond.toFixed(1).padStart(7)} files/s        (${r.handled}/${r.files} handled in ${r.seconds.toFixed(2)} s; ${r.lost} lost)`,
  );
}
const pd = primary?.dispatch?.python;
if (pd) {
  console.log(`  target ≥ 10,000 events/s (dispatch into warm python): ${tgt(pd.deliveredPerSecond >= 10000)}`);
  const nd = primary?.dispatch?.node;
  if (nd) console.log(`  target ≥ 10,000 events/s (dispatch into warm node):   ${tgt(nd.deliveredPerSecond >= 10000)}`);
  if (inc?.rate) {
    const ratio = pd.deliveredPerSecond / inc.rate.handledPerSecond;
    results.ratioPythonDispatchVsIncron = ratio;
    console.log(`  sluice / incron rate (python handler): ${ratio.toFixed(0)}×  (target ≥ 20×: ${tgt(ratio >= 20)})`);
    if (primary.http) {
      results.ratioPythonHttpVsIncron = primary.http.deliveredPerSecondUntilDrained / inc.rate.handledPerSecond;
      console.log(`  sluice over HTTP / incron: ${results.ratioPythonHttpVsIncron.toFixed(0)}×`);
    }
  }
}
console.log(
  `\nload average: start ${results.loadAverage.start.join(' ')}, end ${results.loadAverage.end.join(' ')} (${os.cpus().length} cores)`,
);

await mkdir(path.join(REPO, 'bench', 'out'), { recursive: true });
const outFile = path.join(REPO, 'bench', 'out', `triggers-${results.date.slice(0, 10)}.json`);
await writeFile(outFile, JSON.stringify(results, null, 2));
console.log(`wrote ${path.relative(REPO, outFile)}`);
