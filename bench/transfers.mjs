#!/usr/bin/env node
// bench/transfers.mjs — replication throughput of sluice's placement engine (rules → judge →
// transfer queue → verified replicas) against peers run side by side in the same run.
//
//  local:  a rule copies a dataset from the landing SE to a second local SE on the same filesystem,
//          timed from POST /api/v1/rules until GET /api/v1/rules/{id} says OK (cross-checked with the
//          transfers list: every transfer DONE). Peers: `cp` (and `cp -r` for many files) of the same
//          bytes prepared as plain files, without and with `sync -f` (syncfs: the copies on disk,
//          which is what sluice guarantees before it counts a replica), and `cp` + `sync FILE…`
//          (an fsync per copied file, sequential) for comparison.
//  webdav: servers B and C (sluice child processes) are remote WebDAV SEs of server A. The dataset
//          is replicated A→B (setup, untimed); timed: a rule with expression davC… and source davB…
//          makes C pull every file from B by HTTP third-party copy (mode "tpc"), orchestrated by A.
//          Peer: `rclone copy` between the same two endpoints, same files, --transfers = sluice's
//          per-link concurrency (placement.maxActivePerLink).
//  Datasets: "big" = one large random file; "small" = many small random files in one directory.
//
// Every timed phase starts after `sync` and a short pause, so none pays for the previous one's
// write-back; sources are in the page cache for everyone (written or uploaded just before); nothing
// is dropped from the cache. Each measure runs BENCH_RUNS times, sluice and peers interleaved and the
// order alternating between runs; the table shows the best run (and the median).
//
// Usage: node bench/transfers.mjs [--quick]
// Env:   BENCH_LARGE_MB (1024)  BENCH_SMALL_COUNT (10000)  BENCH_SMALL_SIZE (4096 bytes)
//        BENCH_RUNS (2)  BENCH_CONCURRENCY (16, parallel uploads during setup)
//        BENCH_PER_LINK (8: sluice placement.maxActivePerLink, rclone --transfers)
//        BENCH_PARTS (local,webdav)  BENCH_SETS (big,small)  BENCH_POLL_MS (25)
//        BENCH_POLL_VIA (list: GET /api/v1/rules, from the judge's memory; rule: GET /api/v1/rules/{id},
//        which recounts the rule's locks at every poll). Either way the final state is confirmed with
//        GET /api/v1/rules/{id} and the transfers list (one DONE transfer per file).
//        BENCH_CP_FSYNC_EACH (1: also time cp + an fsync per copied file; 0 to skip)
//        BENCH_RCLONE_FLAGS (extra flags for rclone, split on blanks)
//        BENCH_PROF=1 (server A runs with --cpu-prof; profiles kept in the temp dir, implies BENCH_KEEP)
//        BENCH_DIR (temp root, default os.tmpdir())  BENCH_SETTLE_MS (250)  BENCH_KEEP=1
//        BENCH_TIMEOUT_S (1800, per timed phase)
// --quick sets 64 MiB, 500 small files, 1 run (the env variables above still override).
// Units: MB/s = 10^6 bytes/s (MiB/s given in the JSON too). Node built-ins only; needs a build
// (`npx tsc -p .` or `npm run build`) and cp, sync, rclone on PATH.

import http from 'node:http';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const QUICK = process.argv.includes('--quick');
const envInt = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number.parseInt(v, 10);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
};
const envList = (name, dflt) =>
  (process.env[name] || dflt)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const CFG = {
  largeMiB: envInt('BENCH_LARGE_MB', QUICK ? 64 : 1024),
  smallCount: envInt('BENCH_SMALL_COUNT', QUICK ? 500 : 10000),
  smallSize: envInt('BENCH_SMALL_SIZE', 4096),
  runs: Math.max(1, envInt('BENCH_RUNS', QUICK ? 1 : 2)),
  uploadConcurrency: Math.max(1, envInt('BENCH_CONCURRENCY', 16)),
  perLink: Math.max(1, envInt('BENCH_PER_LINK', 8)),
  parts: envList('BENCH_PARTS', 'local,webdav'),
  sets: envList('BENCH_SETS', 'big,small'),
  pollMs: Math.max(1, envInt('BENCH_POLL_MS', 25)),
  // list: GET /api/v1/rules (the judge's rules in memory); rule: GET /api/v1/rules/{id}, which counts
  // the rule's locks in SQLite at every call (~1-5 ms for 10,000 locks: polling it every 25 ms takes
  // a noticeable share of the server's CPU away from the transfers it observes)
  pollVia: process.env.BENCH_POLL_VIA === 'rule' ? 'rule' : 'list',
  cpFsyncEach: process.env.BENCH_CP_FSYNC_EACH !== '0',
  rcloneFlags: (process.env.BENCH_RCLONE_FLAGS ?? '').split(/\s+/).filter(Boolean),
  settleMs: envInt('BENCH_SETTLE_MS', 250),
  timeoutS: Math.max(1, envInt('BENCH_TIMEOUT_S', 1800)),
  prof: process.env.BENCH_PROF === '1',
  keep: process.env.BENCH_KEEP === '1' || process.env.BENCH_PROF === '1',
  quick: QUICK,
};
const LARGE_BYTES = CFG.largeMiB * 1024 * 1024;
const SMALL_BYTES = CFG.smallCount * CFG.smallSize;
const SETS = {
  big: { key: 'big', label: `1 x ${CFG.largeMiB} MiB`, files: 1, bytes: LARGE_BYTES, dir: '/bench/big' },
  small: {
    key: 'small',
    label: `${CFG.smallCount} x ${CFG.smallSize >= 1024 ? `${CFG.smallSize / 1024} KiB` : `${CFG.smallSize} B`}`,
    files: CFG.smallCount,
    bytes: SMALL_BYTES,
    dir: '/bench/small',
  },
};
for (const s of CFG.sets) if (!SETS[s]) throw new Error(`BENCH_SETS: unknown set ${s} (big, small)`);
for (const p of CFG.parts) if (p !== 'local' && p !== 'webdav') throw new Error(`BENCH_PARTS: unknown part ${p} (local, webdav)`);
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// ---------------------------------------------------------------- cleanup (always)

const cleanups = [];
let cleaning = null;
function cleanup() {
  if (!cleaning) {
    cleaning = (async () => {
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch (err) {
          console.error(`cleanup: ${err.message}`);
        }
      }
    })();
  }
  return cleaning;
}
const children = new Set(); // last-resort synchronous kill on exit
process.on('exit', () => {
  for (const pid of children) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping servers and removing temp files…`);
    cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------- small helpers

const log = (...a) => console.error('[bench]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
const loadavg = () => os.loadavg().map((x) => +x.toFixed(2));
/** Share of the last 10 s in which some task waited for CPU / for I/O (Linux PSI): others' load. */
function pressure() {
  const some = (what) => {
    try {
      return Number(/some avg10=([\d.]+)/.exec(fs.readFileSync(`/proc/pressure/${what}`, 'utf8'))?.[1]);
    } catch {
      return null;
    }
  };
  return { cpuSome10: some('cpu'), ioSome10: some('io') };
}
// Flush everyone's dirty pages before a timed phase, then let the (virtual) disk settle.
function syncAll() {
  execFileSync('sync');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, CFG.settleMs);
}
/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return NaN;
  }
}
const mb = (bytes) => bytes / 1e6;
const fmtS = (ms) => (ms / 1000).toFixed(2);

// Spawns a long-running child in its own process group; stop() sends SIGTERM to the group, then SIGKILL.
function spawnService(name, cmd, args, opts) {
  const out = fs.openSync(opts.logPath, 'a');
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  children.add(child.pid);
  let exited = false;
  const exitP = new Promise((r) =>
    child.once('exit', (code, sig) => {
      exited = true;
      children.delete(child.pid);
      r({ code, sig });
    }),
  );
  const stop = async () => {
    if (exited) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const t = setTimeout(() => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 15000);
    await exitP;
    clearTimeout(t);
    log(`${name} stopped`);
  };
  return { child, stop, exitP, isExited: () => exited, logTail: () => tail(opts.logPath) };
}
function tail(file, n = 20) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------- HTTP client

// One request; body is a Buffer, a string, a file ({ file }) or nothing. Resolves { status, headers, text, ms }.
function request(srv, method, p, opts = {}) {
  const { body, headers = {}, json } = opts;
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (srv.auth) h.Authorization = srv.auth;
    let payload = body;
    if (json !== undefined) {
      payload = Buffer.from(JSON.stringify(json));
      h['Content-Type'] = 'application/json';
    }
    if (typeof payload === 'string') payload = Buffer.from(payload);
    let len = 0;
    if (Buffer.isBuffer(payload)) len = payload.length;
    else if (payload?.file) len = fs.statSync(payload.file).size;
    if (payload || method === 'PUT') h['Content-Length'] = String(len);
    const t0 = performance.now();
    const agent = opts.agent ?? srv.agent;
    const req = http.request({ host: '127.0.0.1', port: srv.port, method, path: p, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }),
      );
      res.on('error', reject);
    });
    req.setTimeout(600_000, () => req.destroy(new Error(`${method} ${p}: timeout`)));
    req.on('error', reject);
    if (Buffer.isBuffer(payload)) req.end(payload);
    else if (payload?.file) {
      const rs = fs.createReadStream(payload.file, { highWaterMark: 1 << 20 });
      rs.on('error', (e) => req.destroy(e));
      rs.pipe(req);
    } else req.end();
  });
}
function expectOk(r, what) {
  if (r.status < 200 || r.status >= 300) throw new Error(`${what}: HTTP ${r.status} ${r.text?.slice(0, 400) ?? ''}`);
  return r;
}
// API calls come seconds apart (between timed peers): a kept-alive socket may have been closed by the
// server meanwhile (EPIPE on reuse), so each goes on its own connection.
const apiAgent = new http.Agent({ keepAlive: false });
async function api(srv, method, p, json) {
  const r = expectOk(
    await request(srv, method, `/api/v1${p}`, json !== undefined ? { json, agent: apiAgent } : { agent: apiAgent }),
    `${srv.name} ${method} ${p}`,
  );
  return r.text ? JSON.parse(r.text) : undefined;
}
async function mkcol(srv, p) {
  const r = await request(srv, 'MKCOL', p, { agent: apiAgent });
  if (r.status !== 201 && r.status !== 405) throw new Error(`${srv.name} MKCOL ${p}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
}
async function pool(count, concurrency, fn) {
  let next = 0;
  const worker = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

// ---------------------------------------------------------------- sluice servers

async function startSluice(tmp, name) {
  const data = path.join(tmp, `sluice-${name}`);
  fs.mkdirSync(data, { recursive: true });
  // logLevel warn: no per-request logging on the hot path (as a production setting would have it).
  fs.writeFileSync(path.join(data, 'sluice.json'), JSON.stringify({ logLevel: 'warn', placement: { maxActivePerLink: CFG.perLink } }));
  const logPath = path.join(tmp, `sluice-${name}.log`);
  const nodeArgs = ['--max-semi-space-size=4']; // as bin/sluice.js's shebang
  if (CFG.prof && name === 'A') nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${path.join(tmp, 'prof')}`);
  const svc = spawnService(
    `sluice ${name}`,
    process.execPath,
    [...nodeArgs, path.join(REPO, 'bin', 'sluice.js'), 'serve', '--data', data, '--port', '0'],
    { cwd: REPO, logPath, env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' } },
  );
  cleanups.push(svc.stop);
  // --port 0: the server prints the address it got.
  const deadline = Date.now() + 30_000;
  let port;
  while (!port) {
    if (svc.isExited()) throw new Error(`sluice ${name} exited during start-up:\n${svc.logTail()}`);
    if (Date.now() > deadline) throw new Error(`sluice ${name} did not start within 30 s:\n${svc.logTail()}`);
    const m = /sluice serving .* at http:\/\/127\.0\.0\.1:(\d+)/.exec(tail(logPath, 50));
    if (m) port = Number(m[1]);
    else await sleep(50);
  }
  const token = fs.readFileSync(path.join(data, 'admin.token'), 'utf8').trim();
  const srv = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    token,
    auth: `Bearer ${token}`,
    agent: new http.Agent({ keepAlive: true, maxSockets: Math.max(CFG.uploadConcurrency, 4) }),
    data,
    pid: svc.child.pid,
    svc,
  };
  expectOk(await request(srv, 'GET', '/api/v1/health'), `sluice ${name} health`);
  log(`sluice ${name} up on ${srv.url} (pid ${srv.pid}), data ${data}`);
  return srv;
}

// ---------------------------------------------------------------- datasets

const smallName = (i) => `f${String(i + 1).padStart(5, '0')}`;

/** Writes the plain source files the peers copy (the same bytes sluice gets uploaded). */
function prepareSources(root) {
  const out = {};
  if (CFG.sets.includes('big')) {
    const dir = path.join(root, 'big');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'large.bin');
    const fd = fs.openSync(file, 'w');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let off = 0; off < LARGE_BYTES; off += buf.length) {
      const n = Math.min(buf.length, LARGE_BYTES - off);
      crypto.randomFillSync(buf, 0, n);
      fs.writeSync(fd, buf, 0, n);
    }
    fs.closeSync(fd);
    out.big = { dir, files: ['large.bin'] };
  }
  if (CFG.sets.includes('small')) {
    const dir = path.join(root, 'small');
    fs.mkdirSync(dir, { recursive: true });
    const files = [];
    for (let i = 0; i < CFG.smallCount; i++) {
      const name = smallName(i);
      fs.writeFileSync(path.join(dir, name), crypto.randomBytes(CFG.smallSize));
      files.push(name);
    }
    out.small = { dir, files };
  }
  return out;
}

async function upload(srv, set, src) {
  const t0 = performance.now();
  await mkcol(srv, '/bench');
  await mkcol(srv, set.dir);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CFG.uploadConcurrency }); // fresh sockets for this burst
  await pool(src.files.length, set.key === 'big' ? 1 : CFG.uploadConcurrency, async (i) => {
    const f = src.files[i];
    expectOk(
      await request(srv, 'PUT', `${set.dir}/${f}`, { body: { file: path.join(src.dir, f) }, agent }),
      `${srv.name} PUT ${set.dir}/${f}`,
    );
  });
  agent.destroy();
  log(`  uploaded ${set.label} to sluice ${srv.name} ${set.dir} in ${fmtS(performance.now() - t0)} s`);
}

// ---------------------------------------------------------------- sluice: one timed rule

/** Every transfer of a rule (the list is newest first, paged). */
async function transfersOf(srv, ruleId) {
  const all = [];
  for (let offset = 0; ; offset += 10000) {
    const page = await api(srv, 'GET', `/transfers?rule=${ruleId}&limit=10000&offset=${offset}`);
    all.push(...page);
    if (page.length < 10000) break;
  }
  return all;
}

/**
 * Creates a rule and waits until it is OK. Timed: POST → the first GET that says OK. Returns the
 * time, the POST's own latency, and what the transfers list says (states, modes, timings).
 */
async function timedRule(srv, spec, set, { cpuPids = [] } = {}) {
  syncAll();
  const load = loadavg();
  const psi = pressure();
  const cpu0 = cpuPids.map(cpuSeconds);
  const t0 = performance.now();
  const wall0 = Date.now();
  const rule = await api(srv, 'POST', '/rules', spec);
  const postMs = performance.now() - t0;
  let state = rule.state;
  let last = rule;
  let polls = 0;
  const deadline = t0 + CFG.timeoutS * 1000;
  while (!(state === 'OK' && last.locks?.ok === set.files)) {
    if (state === 'STUCK') throw new Error(`rule ${rule.id} STUCK: ${last.reason}`);
    if (performance.now() > deadline) throw new Error(`rule ${rule.id} not OK after ${CFG.timeoutS} s: ${JSON.stringify(last)}`);
    await sleep(CFG.pollMs);
    if (CFG.pollVia === 'rule') last = await api(srv, 'GET', `/rules/${rule.id}`);
    else last = (await api(srv, 'GET', '/rules')).find((r) => r.id === rule.id) ?? last;
    state = last.state;
    polls++;
  }
  const ms = performance.now() - t0;
  // The judge's view (the list) said OK: the rule as stored must say so too.
  const stored = await api(srv, 'GET', `/rules/${rule.id}`);
  if (stored.state !== 'OK' || stored.locks.ok !== set.files)
    throw new Error(`rule ${rule.id}: list says OK, GET says ${JSON.stringify(stored)}`);
  const cpu = cpuPids.map((pid, i) => +(cpuSeconds(pid) - cpu0[i]).toFixed(2));
  // Cross-check (untimed): one DONE transfer per file, and how they went.
  const transfers = await transfersOf(srv, rule.id);
  const states = {};
  const modes = {};
  for (const t of transfers) {
    states[t.state] = (states[t.state] ?? 0) + 1;
    if (t.mode) modes[t.mode] = (modes[t.mode] ?? 0) + 1;
  }
  if ((states.DONE ?? 0) !== set.files)
    throw new Error(`rule ${rule.id} OK but transfers: ${JSON.stringify(states)} (expected ${set.files} DONE)`);
  const done = transfers.filter((t) => t.state === 'DONE');
  const active = done.map((t) => t.finished - t.started);
  const firstStart = Math.min(...done.map((t) => t.started));
  const lastFinish = Math.max(...done.map((t) => t.finished));
  const lastCreated = Math.max(...done.map((t) => t.created));
  const activeSum = active.reduce((a, b) => a + b, 0);
  const timeline = {
    // ms from the POST being sent (client clock; the server runs on the same host)
    firstTransferStarted: firstStart - wall0,
    lastTransferQueued: lastCreated - wall0,
    lastTransferFinished: lastFinish - wall0,
    ruleSeenOk: ms,
    // one transfer from ACTIVE to DONE: mean and p50/p99, ms
    activeMeanMs: +(activeSum / done.length).toFixed(2),
    activeP50Ms: +pctl(active, 50).toFixed(2),
    activeP99Ms: +pctl(active, 99).toFixed(2),
    // transfers in flight on average between the first start and the last finish
    meanConcurrency: +(activeSum / Math.max(1, lastFinish - firstStart)).toFixed(2),
    attemptsAboveOne: transfers.filter((t) => t.attempts > 1).length,
  };
  return { ruleId: rule.id, ms, postMs, polls, states, modes, timeline, cpu, loadBefore: load, pressureBefore: psi };
}
function pctl(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

// ---------------------------------------------------------------- peers

/** Runs a command under /usr/bin/time: wall ms and the command's CPU seconds. */
function timed(cmd, args, opts = {}) {
  const tf = path.join(os.tmpdir(), `bench-time-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', tf, cmd, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
    ...opts,
  });
  const ms = performance.now() - t0;
  let cpu = NaN;
  try {
    const [u, s] = fs.readFileSync(tf, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    cpu = +(u + s).toFixed(2);
    fs.rmSync(tf);
  } catch {
    /* no time output */
  }
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr?.slice(-2000)}`);
  return { ms, cpu, stdout: r.stdout, stderr: r.stderr };
}

/** cp of the source (file or directory) to a fresh place; variant: plain | syncfs | fsync-each. */
function timeCp(set, src, dstRoot, variant) {
  const dst = path.join(dstRoot, `cp-${set.key}-${variant}`);
  fs.rmSync(dst, { recursive: true, force: true });
  syncAll();
  const load = loadavg();
  const psi = pressure();
  const t0 = performance.now();
  let cpu = 0;
  if (set.key === 'big') {
    fs.mkdirSync(dst);
    const target = path.join(dst, src.files[0]);
    cpu += timed('cp', [path.join(src.dir, src.files[0]), target]).cpu;
    if (variant === 'syncfs') cpu += timed('sync', ['-f', target]).cpu;
    if (variant === 'fsync-each') cpu += timed('sync', [target]).cpu;
  } else {
    cpu += timed('cp', ['-r', src.dir, dst]).cpu;
    if (variant === 'syncfs') cpu += timed('sync', ['-f', dst]).cpu;
    // coreutils `sync FILE…` fsyncs each file in turn (plus the directory, as sluice does).
    if (variant === 'fsync-each') cpu += timed('sync', [dst, ...src.files.map((f) => path.join(dst, f))]).cpu;
  }
  const ms = performance.now() - t0;
  const n = set.key === 'big' ? 1 : fs.readdirSync(dst).length;
  if (n !== set.files) throw new Error(`cp ${set.key}: ${n} files at the destination, expected ${set.files}`);
  fs.rmSync(dst, { recursive: true, force: true });
  return { ms, cpu: +cpu.toFixed(2), loadBefore: load, pressureBefore: psi };
}

function rcloneEnv(b, c) {
  const env = { ...process.env };
  for (const [remote, srv] of [
    ['SRC', b],
    ['DST', c],
  ]) {
    env[`RCLONE_CONFIG_${remote}_TYPE`] = 'webdav';
    env[`RCLONE_CONFIG_${remote}_URL`] = srv.url;
    env[`RCLONE_CONFIG_${remote}_VENDOR`] = 'other';
    env[`RCLONE_CONFIG_${remote}_BEARER_TOKEN`] = srv.token;
  }
  env.RCLONE_CONFIG = '/dev/null'; // no user config
  return env;
}

function rcloneArgs(from, to) {
  return ['copy', from, to, '--transfers', String(CFG.perLink), '--checkers', String(CFG.perLink), '--stats', '0', ...CFG.rcloneFlags];
}

function timeRclone(set, b, c, from, to) {
  syncAll();
  const load = loadavg();
  const psi = pressure();
  const cpu0 = [b.pid, c.pid].map(cpuSeconds);
  const r = timed('rclone', rcloneArgs(from, to), { env: rcloneEnv(b, c) });
  const cpu = [b.pid, c.pid].map((pid, i) => +(cpuSeconds(pid) - cpu0[i]).toFixed(2));
  return { ms: r.ms, cpuRclone: r.cpu, cpuB: cpu[0], cpuC: cpu[1], loadBefore: load, pressureBefore: psi };
}

/** What rclone finds at a remote path: files and bytes (untimed check). */
function rcloneSize(b, c, remote) {
  const r = sh('rclone', ['size', '--json', remote], { env: rcloneEnv(b, c) });
  return JSON.parse(r);
}

// ---------------------------------------------------------------- parts

async function localPart(A, sources, tmp, results) {
  const peerDir = path.join(tmp, 'peer');
  fs.mkdirSync(peerDir, { recursive: true });
  for (const key of CFG.sets) {
    const set = SETS[key];
    log(`local: ${set.label}`);
    await upload(A, set, sources[key]);
    await sleep(500); // let the judge read the upload events (no rules yet: nothing to do)
    const res = { sluice: [], cp: [], cpSyncfs: [], cpFsyncEach: [] };
    results.local[key] = res;
    for (let run = 1; run <= CFG.runs; run++) {
      // A fresh destination SE per run, on the same filesystem as the landing SE.
      const se = run === 1 ? 'disk2' : `disk2r${run}`;
      if (!A.ses.has(se)) {
        const dir = path.join(tmp, 'ses', se);
        await api(A, 'POST', '/storage-elements', { name: se, kind: 'local', path: dir, attributes: { site: 'b' } });
        A.ses.set(se, dir);
      }
      const steps = [
        async () => {
          const r = await timedRule(A, { path: set.dir, copies: 1, expression: se }, set, { cpuPids: [A.pid] });
          const files = countFiles(path.join(A.ses.get(se), 'data'));
          if (files.n < set.files || files.bytes < set.bytes)
            throw new Error(`local SE ${se}: ${files.n} files, ${files.bytes} bytes on disk`);
          await api(A, 'DELETE', `/rules/${r.ruleId}`); // untimed: the next run starts with the same set of rules
          res.sluice.push({ run, se, ...r, cpuA: r.cpu[0] });
          log(
            `  run ${run} sluice rule → ${se}: ${fmtS(r.ms)} s (${rate(set, r.ms)}), POST ${fmtS(r.postMs)} s, modes ${JSON.stringify(r.modes)}, A cpu ${r.cpu[0]} s${psiNote(r)}`,
          );
        },
        async () => {
          const r = timeCp(set, sources[key], peerDir, 'plain');
          res.cp.push({ run, ...r });
          log(`  run ${run} cp: ${fmtS(r.ms)} s (${rate(set, r.ms)})${psiNote(r)}`);
        },
        async () => {
          const r = timeCp(set, sources[key], peerDir, 'syncfs');
          res.cpSyncfs.push({ run, ...r });
          log(`  run ${run} cp + sync -f: ${fmtS(r.ms)} s (${rate(set, r.ms)})${psiNote(r)}`);
        },
      ];
      if (CFG.cpFsyncEach && key === 'small')
        steps.push(async () => {
          const r = timeCp(set, sources[key], peerDir, 'fsync-each');
          res.cpFsyncEach.push({ run, ...r });
          log(`  run ${run} cp + fsync each: ${fmtS(r.ms)} s (${rate(set, r.ms)})${psiNote(r)}`);
        });
      for (const step of run % 2 ? steps : [...steps].reverse()) await step();
    }
  }
}

async function webdavPart(A, tmp, results) {
  const B = await startSluice(tmp, 'B');
  const C = await startSluice(tmp, 'C');
  results.servers = { A: A.url, B: B.url, C: C.url };
  for (const key of CFG.sets) {
    const set = SETS[key];
    log(`webdav: ${set.label}`);
    if (!results.local?.[key]) {
      // the dataset is on A already when the local part ran
      await upload(A, set, SOURCES[key]);
    }
    // Setup (untimed): the dataset to B (streamed by A: A reads its landing SE, PUTs to B).
    const bCol = `replicas-${key}`;
    const bSe = `davB${key}`;
    await api(A, 'POST', '/storage-elements', {
      name: bSe,
      kind: 'webdav',
      url: `${B.url}/${bCol}`,
      token: B.token,
      attributes: { site: 'b' },
    });
    const setup = await timedRule(A, { path: set.dir, copies: 1, expression: bSe }, set, { cpuPids: [A.pid, B.pid] });
    log(`  setup: ${set.label} A → ${bSe} (${B.url}/${bCol}) in ${fmtS(setup.ms)} s, modes ${JSON.stringify(setup.modes)}`);
    const res = { sluice: [], rclone: [], setup: { ms: setup.ms, modes: setup.modes, timeline: setup.timeline } };
    results.webdav[key] = res;
    for (let run = 1; run <= CFG.runs; run++) {
      const cSe = `davC${key}${run}`;
      const cCol = `sluice-${key}-r${run}`;
      await api(A, 'POST', '/storage-elements', {
        name: cSe,
        kind: 'webdav',
        url: `${C.url}/${cCol}`,
        token: C.token,
        attributes: { site: 'c' },
      });
      const rcloneDst = `rclone-${key}-r${run}`;
      const steps = [
        async () => {
          const r = await timedRule(A, { path: set.dir, copies: 1, expression: cSe, source: bSe }, set, { cpuPids: [A.pid, B.pid, C.pid] });
          await api(A, 'DELETE', `/rules/${r.ruleId}`);
          res.sluice.push({ run, se: cSe, ...r, cpuA: r.cpu[0], cpuB: r.cpu[1], cpuC: r.cpu[2] });
          log(
            `  run ${run} sluice rule ${bSe} → ${cSe}: ${fmtS(r.ms)} s (${rate(set, r.ms)}), POST ${fmtS(r.postMs)} s, modes ${JSON.stringify(r.modes)}, cpu A/B/C ${r.cpu.join('/')} s${psiNote(r)}`,
          );
        },
        async () => {
          const r = timeRclone(set, B, C, `src:${bCol}`, `dst:${rcloneDst}`);
          const size = rcloneSize(B, C, `dst:${rcloneDst}`);
          if (size.count !== set.files || size.bytes !== set.bytes)
            throw new Error(`rclone copy: ${JSON.stringify(size)} at dst:${rcloneDst}`);
          res.rclone.push({ run, ...r });
          log(
            `  run ${run} rclone copy src:${bCol} → dst:${rcloneDst}: ${fmtS(r.ms)} s (${rate(set, r.ms)}), cpu rclone/B/C ${r.cpuRclone}/${r.cpuB}/${r.cpuC} s${psiNote(r)}`,
          );
        },
      ];
      for (const step of run % 2 ? steps : [...steps].reverse()) await step();
    }
  }
  await C.svc.stop();
  await B.svc.stop();
}

function countFiles(dir) {
  let n = 0;
  let bytes = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        n++;
        bytes += fs.statSync(p).size;
      }
    }
  };
  walk(dir);
  return { n, bytes };
}
const psiNote = (r) =>
  r.pressureBefore?.cpuSome10 != null ? `; before: cpu pressure ${r.pressureBefore.cpuSome10}%, io ${r.pressureBefore.ioSome10}%` : '';
const rate = (set, ms) =>
  `${(mb(set.bytes) / (ms / 1000)).toFixed(1)} MB/s, ${(set.files / (ms / 1000)).toFixed(set.files > 1 ? 0 : 2)} files/s`;

// ---------------------------------------------------------------- machine info

function machineInfo(dir) {
  const tryRun = (f) => {
    try {
      return f();
    } catch (e) {
      return `? (${e.message.split('\n')[0]})`;
    }
  };
  const df = tryRun(() => sh('df', ['-Pk', dir]).trim().split('\n').pop().split(/\s+/));
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    nproc: tryRun(() => Number(sh('nproc', []).trim())),
    cpu: os.cpus()[0]?.model ?? '?',
    memTotalGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(),
    node: process.version,
    rclone: tryRun(() => sh('rclone', ['version']).split('\n')[0].trim()),
    cp: tryRun(() => sh('cp', ['--version']).split('\n')[0].trim()),
    benchDir: dir,
    fsType: tryRun(() => sh('stat', ['-f', '-c', '%T', dir]).trim()),
    diskFreeGiB: Array.isArray(df) ? +(Number(df[3]) / 2 ** 20).toFixed(1) : df,
    device: Array.isArray(df) ? df[0] : '?',
    uptimeStart: tryRun(() => sh('uptime', []).trim()),
    pressureStart: pressure(),
  };
}

// ---------------------------------------------------------------- main

let SOURCES;

async function main() {
  const sluiceMain = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
  if (!fs.existsSync(sluiceMain)) throw new Error(`${sluiceMain} not built; run \`npx tsc -p .\` or \`npm run build\``);
  const benchRoot = process.env.BENCH_DIR || os.tmpdir();
  const tmp = fs.mkdtempSync(path.join(benchRoot, 'sluice-transfers-'));
  cleanups.push(() => {
    if (CFG.keep) log(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  });
  const info = machineInfo(tmp);
  const setBytes = CFG.sets.reduce((a, k) => a + SETS[k].bytes, 0);
  // source + landing + one sluice replica per run (+ B + C + rclone copies per run for webdav)
  const copies = 2 + CFG.runs + (CFG.parts.includes('webdav') ? 1 + 2 * CFG.runs : 0);
  const needGiB = (setBytes * copies) / 2 ** 30 + 1;
  if (typeof info.diskFreeGiB === 'number' && info.diskFreeGiB < needGiB)
    throw new Error(`need ~${needGiB.toFixed(1)} GiB free in ${benchRoot}, have ${info.diskFreeGiB} GiB (set BENCH_DIR or smaller sizes)`);
  log(`config ${JSON.stringify(CFG)}`);
  log(`temp dir ${tmp} (${info.fsType}, ${info.diskFreeGiB} GiB free); ${info.uptimeStart}`);

  const t0 = performance.now();
  SOURCES = prepareSources(path.join(tmp, 'src'));
  log(`generated sources (${CFG.sets.map((k) => SETS[k].label).join(', ')}) in ${fmtS(performance.now() - t0)} s`);

  const A = await startSluice(tmp, 'A');
  A.ses = new Map();
  const results = { local: {}, webdav: {} };

  // Warm-up (untimed): one small rule round trip so the first timed rule does not pay for JIT and
  // lazy initialisation of the placement code paths.
  {
    const warm = { key: 'warm', label: 'warm-up', files: 20, bytes: 20 * 1024, dir: '/bench/warm' };
    await mkcol(A, '/bench');
    await mkcol(A, warm.dir);
    await pool(warm.files, 8, async (i) =>
      expectOk(await request(A, 'PUT', `${warm.dir}/w${i}`, { body: crypto.randomBytes(1024) }), 'warm-up PUT'),
    );
    const dir = path.join(tmp, 'ses', 'warm');
    await api(A, 'POST', '/storage-elements', { name: 'warm', kind: 'local', path: dir, attributes: { site: 'w' } });
    const r = await timedRule(A, { path: warm.dir, copies: 1, expression: 'warm' }, warm);
    await api(A, 'DELETE', `/rules/${r.ruleId}`);
    log(`warm-up rule: ${fmtS(r.ms)} s for ${warm.files} files`);
  }

  if (CFG.parts.includes('local')) await localPart(A, SOURCES, tmp, results);
  if (CFG.parts.includes('webdav')) await webdavPart(A, tmp, results);
  info.uptimeEnd = sh('uptime', []).trim();
  info.pressureEnd = pressure();
  await A.svc.stop();
  if (CFG.prof) log(`CPU profile of server A in ${path.join(tmp, 'prof')}`);
  report(info, results);
}

// ---------------------------------------------------------------- report

function report(info, results) {
  const summarize = (runs, set) => {
    if (!runs?.length) return null;
    const ms = runs.map((r) => r.ms);
    const bestMs = Math.min(...ms);
    return {
      bestS: +(bestMs / 1000).toFixed(3),
      medianS: +(median(ms) / 1000).toFixed(3),
      runsS: ms.map((x) => +(x / 1000).toFixed(3)),
      MBs: +(mb(set.bytes) / (bestMs / 1000)).toFixed(1),
      MiBs: +(set.bytes / 2 ** 20 / (bestMs / 1000)).toFixed(1),
      filesPerS: +(set.files / (bestMs / 1000)).toFixed(1),
    };
  };
  const rows = [];
  const out = { local: {}, webdav: {} };
  for (const key of CFG.sets) {
    const set = SETS[key];
    const L = results.local[key];
    if (L) {
      const s = summarize(L.sluice, set);
      const cp = summarize(L.cp, set);
      const cpSync = summarize(L.cpSyncfs, set);
      const cpEach = summarize(L.cpFsyncEach, set);
      const ratio = (peer) => (s && peer ? +(peer.bestS / s.bestS).toFixed(2) : null);
      out.local[key] = {
        sluice: s,
        cp,
        cpSyncfs: cpSync,
        cpFsyncEach: cpEach,
        ratioVsCp: ratio(cp),
        ratioVsCpSyncfs: ratio(cpSync),
        ratioVsCpFsyncEach: ratio(cpEach),
        modes: L.sluice[0]?.modes,
        runs: L,
      };
      rows.push({ part: 'local→local', set, who: 'sluice rule', st: s, note: `modes ${fmtModes(L.sluice)}` });
      rows.push({ part: '', set, who: 'cp', st: cp, ratio: ratio(cp), ratioName: 'sluice / cp' });
      rows.push({ part: '', set, who: 'cp + sync -f', st: cpSync, ratio: ratio(cpSync), ratioName: 'sluice / (cp+sync)', target: 0.9 });
      if (cpEach)
        rows.push({ part: '', set, who: 'cp + fsync each', st: cpEach, ratio: ratio(cpEach), ratioName: 'sluice / (cp+fsync each)' });
    }
    const W = results.webdav[key];
    if (W) {
      const s = summarize(W.sluice, set);
      const rc = summarize(W.rclone, set);
      const ratio = rc && s ? +(rc.bestS / s.bestS).toFixed(2) : null;
      out.webdav[key] = { sluice: s, rclone: rc, ratioVsRclone: ratio, modes: W.sluice[0]?.modes, setup: W.setup, runs: W };
      rows.push({ part: 'WebDAV→WebDAV', set, who: 'sluice rule (B→C)', st: s, note: `modes ${fmtModes(W.sluice)}` });
      rows.push({ part: '', set, who: `rclone copy --transfers ${CFG.perLink}`, st: rc, ratio, ratioName: 'sluice / rclone', target: 1.0 });
    }
  }
  const fmt = (x, d = 1) => (x == null ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(d));
  const head = ['part', 'dataset', 'who', 'seconds best (median)', 'MB/s', 'files/s', 'ratio', 'target'];
  const body = rows.map((r) => [
    r.part,
    r.set.label,
    r.who,
    r.st ? `${r.st.bestS.toFixed(2)} (${r.st.medianS.toFixed(2)})` : '–',
    fmt(r.st?.MBs),
    fmt(r.st?.filesPerS, 2),
    r.ratio == null ? (r.note ?? '') : `${r.ratio.toFixed(2)} ${r.ratioName}`,
    r.target == null ? '' : r.ratio == null ? 'n/a' : `>= ${r.target.toFixed(1)}: ${r.ratio >= r.target ? 'PASS' : 'MISS'}`,
  ]);
  const widths = head.map((_, i) => Math.max(head[i].length, ...body.map((b) => b[i].length)));
  const line = (cols) => cols.map((c, i) => (i >= 3 && i <= 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  console.log('');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
  console.log('');
  console.log(
    `runs ${CFG.runs} (best shown, median in parentheses); ratio = peer seconds / sluice seconds (> 1: sluice faster); sluice per-link concurrency ${CFG.perLink} (placement.maxActivePerLink), rclone --transfers ${CFG.perLink} --checkers ${CFG.perLink}`,
  );
  console.log(`load: ${info.uptimeStart}  →  ${info.uptimeEnd}`);
  console.log(
    `CPU pressure (PSI some avg10, % of time something waited for a CPU): ${info.pressureStart?.cpuSome10} → ${info.pressureEnd?.cpuSome10}; I/O: ${info.pressureStart?.ioSome10} → ${info.pressureEnd?.ioSome10}`,
  );

  const outDir = path.join(REPO, 'bench', 'out');
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = info.date.replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
  const outFile = path.join(outDir, `transfers-${stamp}.json`);
  const json = { bench: 'transfers', config: { ...CFG, largeBytes: LARGE_BYTES, smallBytes: SMALL_BYTES }, machine: info, results: out };
  fs.writeFileSync(outFile, JSON.stringify(json, null, 2) + '\n');
  console.log(`\nJSON: ${path.relative(process.cwd(), outFile) || outFile}`);

  // Markdown rows for bench/RESULTS.md.
  console.log('\n<!-- bench/RESULTS.md -->');
  console.log('| part | dataset | who | seconds (best) | MB/s | files/s | ratio |');
  console.log('|---|---|---|--:|--:|--:|--:|');
  for (const r of rows)
    console.log(
      `| ${r.part} | ${r.set.label} | ${r.who} | ${r.st ? r.st.bestS.toFixed(2) : '–'} | ${fmt(r.st?.MBs)} | ${fmt(r.st?.filesPerS, 2)} | ${r.ratio == null ? '' : `${r.ratio.toFixed(2)}`} |`,
    );
}
/** The transfer modes of each run ("tpc:10000" = every transfer of the run pulled by third-party copy). */
function fmtModes(runs) {
  const each = runs.map((r) =>
    Object.entries(r.modes ?? {})
      .map(([k, v]) => `${k}:${v}`)
      .join(' '),
  );
  return each.every((m) => m === each[0]) ? `${each[0]} per run` : each.join(' / ');
}

main()
  .catch((err) => {
    console.error(`\nbench/transfers: ${err.stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanup();
  });
