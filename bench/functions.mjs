#!/usr/bin/env node
// bench/functions.mjs — function invocation benchmark, with its peers measured in the same run:
//
//   cold start:  scale from zero to "handler entered" (a timestamp the handler returns), node and
//                python, sandboxed as configured, against the bare interpreter start (`node -e 0`,
//                `python3 -c 0`, spawn to exit) measured here, alternating.
//   warm:        latency of a no-op call to a warm node instance, in-process (Invoker.invoke) and
//                over the HTTP API (keep-alive), p50/p99, sequential.
//   throughput:  no-op calls/s to warm node instances with many calls in flight, in-process and over
//                HTTP; against the exec way (one process per call): sluice's exec runtime and a bare
//                spawn of `sh` per call.
//
// sluice runs in this process (createCore + buildServer on loopback, temp data dir), built first
// with `npm run build`. Usage: node bench/functions.mjs [--quick]
// Env: BENCH_COLD_RUNS (15) BENCH_WARM_CALLS (3000) BENCH_SECONDS (5) BENCH_INFLIGHT (256)
//      BENCH_SANDBOX (auto|bubblewrap|none; default auto)
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { create as createTar } from 'tar';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const QUICK = process.argv.includes('--quick');
const envInt = (name, dflt) => (process.env[name] ? Number.parseInt(process.env[name], 10) : dflt);
const CFG = {
  coldRuns: envInt('BENCH_COLD_RUNS', QUICK ? 5 : 15),
  warmCalls: envInt('BENCH_WARM_CALLS', QUICK ? 500 : 3000),
  seconds: envInt('BENCH_SECONDS', QUICK ? 2 : 5),
  inflight: envInt('BENCH_INFLIGHT', 256),
  sandbox: process.env.BENCH_SANDBOX ?? 'auto',
};
const PYTHON = '/usr/bin/python3';
const now = () => performance.timeOrigin + performance.now();
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const median = (xs) => pct(xs, 50);
const fmt = (ms) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const { loadConfig } = await import(path.join(REPO, 'dist/src/config.js'));
const { createCore, ensureAdminToken, createLogger } = await import(path.join(REPO, 'dist/src/app.js'));
const { buildServer } = await import(path.join(REPO, 'dist/src/api/server.js'));
const { treeRssBytes } = await import(path.join(REPO, 'dist/src/functions/process-tree.js'));

// ------------------------------------------------------------------ bundles

const BUNDLES = {
  'cold-node': {
    manifest: { runtime: 'node', handler: 'main.handler', scaling: { idleTimeoutSeconds: 0 } },
    files: { 'main.mjs': 'export function handler() { return performance.timeOrigin + performance.now(); }\n' },
  },
  'cold-python': {
    manifest: { runtime: 'python', handler: 'main.handler', scaling: { idleTimeoutSeconds: 0 } },
    files: { 'main.py': 'import time\n\ndef handler(event, ctx):\n    return time.time() * 1000\n' },
  },
  'noop-node': {
    manifest: { runtime: 'node', handler: 'main.handler', scaling: { min: 0, max: 2, concurrency: 128, idleTimeoutSeconds: 300 } },
    files: { 'main.mjs': 'export function handler() { return null; }\n' },
  },
  'noop-exec': {
    manifest: { runtime: 'exec', handler: 'run.sh', scaling: { max: 8 } },
    files: { 'run.sh': '#!/bin/sh\ncat >/dev/null\necho null\n' },
  },
};

async function pack(dir) {
  const chunks = [];
  for await (const c of createTar({ gzip: true, cwd: dir, portable: true }, ['.'])) chunks.push(c);
  return Buffer.concat(chunks);
}

// ------------------------------------------------------------------ peers

function timeSpawn(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const p = spawn(cmd, args, { stdio: 'ignore' });
    p.on('error', reject);
    p.on('exit', () => resolve(now() - t0));
  });
}

function spawnCall() {
  return new Promise((resolve, reject) => {
    const p = spawn('/bin/sh', ['-c', 'cat >/dev/null; echo null'], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', () => resolve(JSON.parse(out)));
    p.stdin.end('{}');
  });
}

async function rate(seconds, inflight, one) {
  let done = 0;
  let failed = 0;
  const until = now() + seconds * 1000;
  const t0 = now();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (now() < until) {
        try {
          await one();
          done++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return { perSecond: done / ((now() - t0) / 1000), done, failed };
}

// ------------------------------------------------------------------ run

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sluice-bench-fn-'));
const config = loadConfig({ dataDir, port: 0, logLevel: 'warn', functions: { sandbox: CFG.sandbox, maxQueuedPerFunction: 100000 } }, {});
const core = await createCore(config, createLogger('warn'));
await ensureAdminToken(core);
const app = await buildServer(core);
const url = await app.listen({ host: '127.0.0.1', port: 0 });
const token = (await readFile(path.join(dataDir, 'admin.token'), 'utf8')).trim();
const principal = core.tokens.authenticate(token);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const { port } = new URL(url);

function post(pathname, body) {
  return new Promise((resolve, reject) => {
    const data = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: pathname,
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': Buffer.isBuffer(body) ? 'application/gzip' : 'application/json',
          'content-length': data.length,
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode >= 300) reject(new Error(`${pathname}: ${res.statusCode} ${text}`));
          else resolve(text ? JSON.parse(text) : null);
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * Calls/s over the HTTP API. The load comes from wrk (Debian package wrk) in its own process when
 * it is installed, so the client does not share this process's CPU; otherwise from this process.
 */
async function httpRate(seconds, connections) {
  const target = `${url}/api/v1/functions/noop-node/invocations?result=true`;
  const wrk = await new Promise((resolve) => {
    const p = spawn('wrk', ['--version'], { stdio: 'ignore' });
    p.on('error', () => resolve(false));
    p.on('exit', () => resolve(true));
  });
  if (!wrk)
    return {
      ...(await rate(seconds, connections, () => post('/api/v1/functions/noop-node/invocations?result=true', {}))),
      client: 'in-process',
    };
  const script = path.join(dataDir, 'post.lua');
  await writeFile(
    script,
    `wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer ${token}"\n` +
      `done = function(summary, latency, requests)\n  io.write(string.format("RESULT %d %d %d\\n", summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.duration))\nend\n`,
  );
  const out = await new Promise((resolve, reject) => {
    let text = '';
    const p = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, target], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.on('data', (d) => (text += d));
    p.on('error', reject);
    p.on('exit', () => resolve(text));
  });
  const m = /RESULT (\d+) (\d+) (\d+)/.exec(out);
  if (!m) throw new Error(`wrk gave no result: ${out}`);
  const [done, failed, micros] = m.slice(1).map(Number);
  return { perSecond: done / (micros / 1e6), done, failed, client: 'wrk' };
}

const invoke = (name, input = {}) => core.invoker.invoke({ name, input, principal, blocking: true });

try {
  for (const [name, b] of Object.entries(BUNDLES)) {
    const dir = path.join(dataDir, 'src', name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'sluice.function.json'), JSON.stringify({ name, ...b.manifest }));
    for (const [f, text] of Object.entries(b.files)) await writeFile(path.join(dir, f), text, { mode: 0o755 });
    await post('/api/v1/functions', await pack(dir));
  }
  const sandboxKind = core.invoker.sandboxKind;
  console.log(`sluice function benchmark — ${os.cpus().length} cores, node ${process.version}, sandbox ${sandboxKind}`);

  // A second server without prewarmed instances, for cold starts that pay for the sandbox and the
  // interpreter start (what a burst sees once the prewarmed instances are used up).
  const freshDir = await mkdtemp(path.join(os.tmpdir(), 'sluice-bench-fresh-'));
  const fresh = await createCore(
    loadConfig({ dataDir: freshDir, port: 0, logLevel: 'warn', functions: { sandbox: CFG.sandbox, prewarm: 0 } }, {}),
    createLogger('warn'),
  );
  const freshApp = await buildServer(fresh);
  await freshApp.ready(); // the API socket ctx.storage uses; also starts the invoker
  for (const name of ['cold-node', 'cold-python']) {
    await fresh.functions.deploy(Readable.from(await pack(path.join(dataDir, 'src', name))), principal);
  }

  // cold start vs bare interpreter, alternating
  const cold = { node: [], python: [] };
  const coldFresh = { node: [], python: [] };
  const bare = { node: [], python: [] };
  const prewarmedReady = (lang) => core.invoker.prewarmStatus().some((c) => c.runtime === lang && c.ready);
  for (let i = 0; i < CFG.coldRuns; i++) {
    bare.node.push(await timeSpawn(process.execPath, ['-e', '0']));
    bare.python.push(await timeSpawn(PYTHON, ['-c', '0']));
    for (const [lang, fn] of [
      ['node', 'cold-node'],
      ['python', 'cold-python'],
    ]) {
      for (const [server, into] of [
        [core, cold],
        [fresh, coldFresh],
      ]) {
        while (!server.invoker.poolStatus(fn).every((p) => p.instances.length === 0)) await sleep(5);
        if (server === core) while (!prewarmedReady(lang)) await sleep(5);
        const t0 = now();
        const a = await server.invoker.invoke({ name: fn, input: {}, principal, blocking: true });
        if (a.status !== 'success' || !a.cold) throw new Error(`${fn}: expected a cold success, got ${JSON.stringify(a)}`);
        into[lang].push(a.result - t0);
      }
    }
  }
  await freshApp.close();
  await fresh.close();
  await rm(freshDir, { recursive: true, force: true });
  const coldRows = ['node', 'python'].map((lang) => ({
    lang,
    cold: median(cold[lang]),
    coldFresh: median(coldFresh[lang]),
    bare: median(bare[lang]),
    ratio: median(cold[lang]) / median(bare[lang]),
    ratioFresh: median(coldFresh[lang]) / median(bare[lang]),
  }));

  // warm latency, sequential
  for (let i = 0; i < 200; i++) await invoke('noop-node');
  const inproc = [];
  for (let i = 0; i < CFG.warmCalls; i++) {
    const t0 = now();
    const a = await invoke('noop-node');
    inproc.push(now() - t0);
    if (a.status !== 'success') throw new Error(JSON.stringify(a.error));
  }
  const overHttp = [];
  for (let i = 0; i < CFG.warmCalls; i++) {
    const t0 = now();
    await post('/api/v1/functions/noop-node/invocations?result=true', {});
    overHttp.push(now() - t0);
  }

  // memory of one warm node instance (the sandbox's processes included), after the calls above
  const instanceRss = core.invoker
    .poolStatus('noop-node')
    .flatMap((p) => p.instances)
    .map((i) => treeRssBytes(i.pid) / 2 ** 20);

  // throughput
  const tpInproc = await rate(CFG.seconds, CFG.inflight, async () => {
    const a = await invoke('noop-node');
    if (a.status !== 'success') throw new Error(a.error.message);
  });
  const tpHttp = await httpRate(CFG.seconds, 64);
  const tpExec = await rate(CFG.seconds, 8, async () => {
    const a = await invoke('noop-exec');
    if (a.status !== 'success') throw new Error(a.error.message);
  });
  const tpSpawn = await rate(CFG.seconds, 8, spawnCall);

  const results = {
    date: new Date().toISOString(),
    machine: { cores: os.cpus().length, model: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    sandbox: sandboxKind,
    config: CFG,
    cold: coldRows,
    warm: {
      inProcess: { p50: pct(inproc, 50), p99: pct(inproc, 99) },
      http: { p50: pct(overHttp, 50), p99: pct(overHttp, 99) },
    },
    warmNodeInstanceRssMiB: instanceRss,
    throughput: { inProcess: tpInproc, http: tpHttp, execRuntime: tpExec, spawnPerCall: tpSpawn },
  };

  console.log('\ncold start (scale from zero → handler entered) vs bare interpreter start, medians');
  for (const r of coldRows) {
    console.log(
      `  ${r.lang.padEnd(7)} prewarmed sandbox ${fmt(r.cold).padStart(9)} (${r.ratio.toFixed(2)}×)   ` +
        `fresh sandbox ${fmt(r.coldFresh).padStart(9)} (${r.ratioFresh.toFixed(2)}×)   bare ${fmt(r.bare).padStart(9)}   (target ≤ 1.3×)`,
    );
  }
  console.log('\nwarm no-op call latency (sequential)');
  console.log(`  in-process  p50 ${fmt(results.warm.inProcess.p50)}  p99 ${fmt(results.warm.inProcess.p99)}   (target p50 ≤ 1 ms)`);
  console.log(`  HTTP API    p50 ${fmt(results.warm.http.p50)}  p99 ${fmt(results.warm.http.p99)}`);
  console.log(`  warm node instance RSS ${instanceRss.map((m) => m.toFixed(1) + ' MiB').join(', ')}   (target ≤ 40 MB)`);
  console.log('\nthroughput, no-op calls/s');
  console.log(`  warm node, in-process (${CFG.inflight} in flight)   ${tpInproc.perSecond.toFixed(0).padStart(7)}   (target ≥ 5,000)`);
  console.log(
    `  warm node, HTTP API (64 connections, ${tpHttp.client})  ${tpHttp.perSecond.toFixed(0).padStart(7)}${tpHttp.failed ? `  (${tpHttp.failed} failed)` : ''}`,
  );
  console.log(`  exec runtime, process per call (8)      ${tpExec.perSecond.toFixed(0).padStart(7)}`);
  console.log(`  bare spawn of sh per call (8)           ${tpSpawn.perSecond.toFixed(0).padStart(7)}`);
  console.log(`  warm in-process / bare spawn: ${(tpInproc.perSecond / tpSpawn.perSecond).toFixed(1)}×`);
  await mkdir(path.join(REPO, 'bench', 'out'), { recursive: true });
  const out = path.join(REPO, 'bench', 'out', `functions-${results.date.slice(0, 10)}.json`);
  await writeFile(out, JSON.stringify(results, null, 2));
  console.log(`\nwrote ${path.relative(REPO, out)}`);
} finally {
  agent.destroy();
  await app.close();
  await core.close();
  await rm(dataDir, { recursive: true, force: true });
}
