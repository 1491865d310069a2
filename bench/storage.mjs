#!/usr/bin/env node
// bench/storage.mjs — storage benchmark: sluice's WebDAV door against nginx's WebDAV module and `cp`.
//
// Measures, side by side in one run with alternating order (no warm-cache advantage for either):
//   large PUT (streamed from a random file on disk) and GET (discarded) in MiB/s, best and median;
//   4 KiB PUT/GET requests/s at concurrency 16 over keep-alive connections;
//   disk baselines: `cp` + `sync FILE`, plain `cp`, and 4 KiB fs.copyFileSync (+ write+fsync) rates.
// nginx is started here (generated config, temp dir, worker_processes 1 = one core, like one Node
// process). sluice comes from SLUICE_BENCH_URL + SLUICE_BENCH_TOKEN, or is started here with
// `node bin/sluice.js serve --data DIR --port PORT` (token read from DIR/admin.token).
//
// Usage: node bench/storage.mjs [--quick]
// Env:   BENCH_LARGE_MB (1024) BENCH_RUNS (3) BENCH_SMALL_COUNT (2000) BENCH_CONCURRENCY (16)
//        BENCH_ONLY_PEERS=1 (skip sluice) BENCH_DIR (temp root, default os.tmpdir())
//        BENCH_NGINX_WORKERS (1) BENCH_SLUICE_PREFIX (WebDAV path prefix on sluice, default "")
//        BENCH_SETTLE_MS (250, pause after `sync` before each timed phase) BENCH_KEEP=1 (keep temp dir)
//        SLUICE_BENCH_URL SLUICE_BENCH_TOKEN
// --quick sets 64 MiB, 200 small files, 1 run (the env variables above still override).
// Units: MiB/s (2^20 bytes per second). Node built-ins only; no build step.

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
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
};
const CFG = {
  largeMiB: envInt('BENCH_LARGE_MB', QUICK ? 64 : 1024),
  runs: envInt('BENCH_RUNS', QUICK ? 1 : 3),
  smallCount: envInt('BENCH_SMALL_COUNT', QUICK ? 200 : 2000),
  smallSize: 4096,
  concurrency: envInt('BENCH_CONCURRENCY', 16),
  nginxWorkers: envInt('BENCH_NGINX_WORKERS', 1),
  settleMs: envInt('BENCH_SETTLE_MS', 250),
  onlyPeers: process.env.BENCH_ONLY_PEERS === '1',
  sluicePrefix: (process.env.BENCH_SLUICE_PREFIX ?? '').replace(/\/+$/, ''),
  keep: process.env.BENCH_KEEP === '1',
  quick: QUICK,
};
const LARGE_BYTES = CFG.largeMiB * 1024 * 1024;
const DAV_EXT_MODULE = '/usr/lib/nginx/modules/ngx_http_dav_ext_module.so';

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
const best = (xs) => Math.max(...xs);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const sh = (cmd, args) =>
  execFileSync(cmd, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
// Flush everyone's dirty pages before a timed phase, then let the (virtual) disk settle, so no phase
// pays for the previous one's write-back.
const syncAll = () => {
  execFileSync('sync');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, CFG.settleMs);
};

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = http.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function adler32() {
  let a = 1;
  let b = 0;
  return {
    update(buf) {
      const n = buf.length;
      let i = 0;
      while (i < n) {
        const end = Math.min(i + 3800, n); // reduce mod 65521 every 3800 bytes; sums stay exact
        for (; i < end; i++) {
          a += buf[i];
          b += a;
        }
        a %= 65521;
        b %= 65521;
      }
    },
    hex: () => (((b << 16) | a) >>> 0).toString(16).padStart(8, '0'),
  };
}

// Spawns a long-running child in its own process group; stop() sends SIGTERM to the group, then SIGKILL.
function spawnService(name, cmd, args, opts) {
  const logPath = opts.logPath;
  const out = fs.openSync(logPath, 'a');
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', out, out],
    detached: true,
  });
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
    }, 5000);
    await exitP;
    clearTimeout(t);
    log(`${name} stopped`);
  };
  return {
    child,
    stop,
    exitP,
    isExited: () => exited,
    logTail: () => tail(logPath),
  };
}
function tail(file, n = 20) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------- HTTP client

// One request; body is a Buffer, a file path ({ file }) or nothing. Response body is discarded
// (bytes counted) unless collect is set. Resolves { status, headers, bytes, ms }.
function request(target, method, p, { body, headers = {}, agent, collect = false, hash } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (target.auth) h.Authorization = target.auth;
    let len = 0;
    if (Buffer.isBuffer(body)) len = body.length;
    else if (body?.file) len = fs.statSync(body.file).size;
    if (body || method === 'PUT') h['Content-Length'] = String(len);
    const t0 = performance.now();
    const req = http.request(
      {
        host: target.host,
        port: target.port,
        method,
        path: target.prefix + p,
        headers: h,
        agent: agent ?? target.agent,
      },
      (res) => {
        let bytes = 0;
        const chunks = [];
        res.on('data', (c) => {
          bytes += c.length;
          if (collect) chunks.push(c);
          if (hash) hash.update(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            bytes,
            ms: performance.now() - t0,
            text: collect ? Buffer.concat(chunks).toString('utf8') : undefined,
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(300_000, () => req.destroy(new Error(`${method} ${p}: timeout`)));
    req.on('error', reject);
    if (Buffer.isBuffer(body)) req.end(body);
    else if (body?.file) {
      const rs = fs.createReadStream(body.file, { highWaterMark: 1 << 20 });
      rs.on('error', (e) => req.destroy(e));
      rs.pipe(req);
    } else req.end();
  });
}
const ok = (r) => r.status >= 200 && r.status < 300;
function expectOk(r, what) {
  if (!ok(r)) throw new Error(`${what}: HTTP ${r.status}${r.text ? ` ${r.text.slice(0, 300)}` : ''}`);
  return r;
}

async function mkcol(target, p) {
  // Collections are named with a trailing slash (nginx answers 409 without it); if a server
  // refuses that form, try the bare path. 201 = created, 405 = already exists (RFC 4918).
  let r = await request(target, 'MKCOL', `${p}/`, { collect: true });
  if (r.status !== 201 && r.status !== 405) r = await request(target, 'MKCOL', p, { collect: true });
  // Anything else is a warning, not a stop: nginx has create_full_put_path, sluice may create parents.
  if (r.status !== 201 && r.status !== 405) log(`warning: ${target.name} MKCOL ${p} -> HTTP ${r.status}`);
}

// ---------------------------------------------------------------- peers

async function startNginx(tmp) {
  if (!fs.existsSync(DAV_EXT_MODULE)) throw new Error(`missing ${DAV_EXT_MODULE} (libnginx-mod-http-dav-ext)`);
  const dir = path.join(tmp, 'nginx');
  const root = path.join(dir, 'root');
  for (const d of ['root', 'temp/body', 'temp/proxy', 'temp/fastcgi', 'temp/uwsgi', 'temp/scgi', 'logs'])
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const conf = `# generated by bench/storage.mjs
load_module ${DAV_EXT_MODULE};
${asRoot ? 'user root root;  # workers must write into the root-owned temp dir\n' : ''}worker_processes ${CFG.nginxWorkers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  # request bodies are spooled here, then renamed into root: must be the same filesystem
  client_body_temp_path ${dir}/temp/body;
  proxy_temp_path ${dir}/temp/proxy;
  fastcgi_temp_path ${dir}/temp/fastcgi;
  uwsgi_temp_path ${dir}/temp/uwsgi;
  scgi_temp_path ${dir}/temp/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / {
      dav_methods PUT DELETE MKCOL COPY MOVE;
      dav_ext_methods PROPFIND OPTIONS;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 0;
    }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const svc = spawnService('nginx', 'nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], {
    cwd: dir,
    logPath: path.join(dir, 'logs', 'stderr.log'),
  });
  cleanups.push(svc.stop);
  const target = makeTarget('nginx', `http://127.0.0.1:${port}`, null, '');
  await waitUp(target, svc, 10_000);
  log(`nginx up on 127.0.0.1:${port} (worker_processes ${CFG.nginxWorkers}), root ${root}`);
  return { target, dir, root };
}

async function startOrAttachSluice(tmp) {
  if (process.env.SLUICE_BENCH_URL) {
    const token = process.env.SLUICE_BENCH_TOKEN ?? '';
    if (!token) log('warning: SLUICE_BENCH_TOKEN is empty; requests go without Authorization');
    const target = makeTarget('sluice', process.env.SLUICE_BENCH_URL, token, CFG.sluicePrefix);
    await waitUp(target, null, 20_000);
    log(`sluice at ${process.env.SLUICE_BENCH_URL} (external)`);
    return { target, external: true };
  }
  const main = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} not built; run \`npm run build\` or set SLUICE_BENCH_URL`);
  const data = path.join(tmp, 'sluice-data');
  fs.mkdirSync(data, { recursive: true });
  const port = await freePort();
  const svc = spawnService(
    'sluice',
    process.execPath,
    [path.join(REPO, 'bin', 'sluice.js'), 'serve', '--data', data, '--port', String(port)],
    {
      cwd: REPO,
      logPath: path.join(tmp, 'sluice.log'),
    },
  );
  cleanups.push(svc.stop);
  const base = `http://127.0.0.1:${port}`;
  const target = makeTarget('sluice', base, null, CFG.sluicePrefix);
  await waitUp(target, svc, 20_000);
  const tokenFile = path.join(data, 'admin.token');
  const deadline = Date.now() + 5000;
  while (!fs.existsSync(tokenFile) && Date.now() < deadline) await sleep(100);
  if (!fs.existsSync(tokenFile)) throw new Error(`sluice is up but ${tokenFile} does not exist`);
  target.auth = `Bearer ${fs.readFileSync(tokenFile, 'utf8').trim()}`;
  log(`sluice up on ${base} (pid ${svc.child.pid}), data ${data}`);
  return { target, external: false, data, svc };
}

function makeTarget(name, url, token, prefix) {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`${name}: only http:// is supported, got ${url}`);
  return {
    name,
    host: u.hostname,
    port: Number(u.port || 80),
    prefix: (u.pathname.replace(/\/+$/, '') || '') + prefix,
    auth: token ? `Bearer ${token}` : null,
    agent: new http.Agent({ keepAlive: true, maxSockets: CFG.concurrency }),
  };
}

// Polls until the server answers anything (any status): GET /api/v1/health for sluice, / for nginx.
async function waitUp(target, svc, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const probe = target.name === 'sluice' ? '/api/v1/health' : '/';
  let lastErr;
  while (Date.now() < deadline) {
    if (svc?.isExited()) throw new Error(`${target.name} exited during start-up:\n${svc.logTail()}`);
    try {
      const agent = new http.Agent({ keepAlive: false });
      await request({ ...target, prefix: '', auth: null }, 'GET', probe, {
        agent,
      });
      return;
    } catch (err) {
      lastErr = err;
      await sleep(100);
    }
  }
  throw new Error(`${target.name} did not answer within ${timeoutMs / 1000} s (${lastErr?.message})${svc ? `\n${svc.logTail()}` : ''}`);
}

// ---------------------------------------------------------------- measurements

async function putLarge(target, src) {
  await request(target, 'DELETE', '/bench/large.bin').catch(() => {}); // each run creates, not overwrites (untimed)
  syncAll(); // flush the previous phase's dirty pages outside the timed window
  const r = expectOk(await request(target, 'PUT', '/bench/large.bin', { body: { file: src } }), `${target.name} PUT large`);
  return {
    mibs: LARGE_BYTES / 1048576 / (r.ms / 1000),
    ms: r.ms,
    status: r.status,
    digest: r.headers.digest,
  };
}

async function getLarge(target, hash) {
  syncAll();
  const r = expectOk(await request(target, 'GET', '/bench/large.bin', { hash }), `${target.name} GET large`);
  if (r.bytes !== LARGE_BYTES) throw new Error(`${target.name} GET large: ${r.bytes} bytes, expected ${LARGE_BYTES}`);
  return { mibs: LARGE_BYTES / 1048576 / (r.ms / 1000), ms: r.ms };
}

async function pool(count, concurrency, fn) {
  let next = 0;
  const lat = new Array(count);
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      await fn(i);
      lat[i] = performance.now() - t0;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const ms = performance.now() - t0;
  return { rps: count / (ms / 1000), ms, p50: pct(lat, 50), p99: pct(lat, 99) };
}

const smallName = (i) => `f${String(i + 1).padStart(4, '0')}`;

async function putSmall(target, run, bodies) {
  const col = `/bench/small/r${run}`;
  await mkcol(target, col);
  syncAll();
  return pool(CFG.smallCount, CFG.concurrency, async (i) => {
    expectOk(
      await request(target, 'PUT', `${col}/${smallName(i)}`, {
        body: bodies[i],
      }),
      `${target.name} PUT small`,
    );
  });
}

async function getSmall(target, run) {
  const col = `/bench/small/r${run}`;
  syncAll();
  return pool(CFG.smallCount, CFG.concurrency, async (i) => {
    const r = expectOk(await request(target, 'GET', `${col}/${smallName(i)}`), `${target.name} GET small`);
    if (r.bytes !== CFG.smallSize) throw new Error(`${target.name} GET small: ${r.bytes} bytes`);
  });
}

function timeCp(src, dst, withSync) {
  syncAll();
  const t0 = performance.now();
  execFileSync('cp', [src, dst]);
  if (withSync) execFileSync('sync', [dst]);
  const ms = performance.now() - t0;
  fs.rmSync(dst);
  return { mibs: LARGE_BYTES / 1048576 / (ms / 1000), ms };
}

function smallCopies(dir, src, bodies) {
  fs.mkdirSync(dir, { recursive: true });
  syncAll();
  let t0 = performance.now();
  for (let i = 0; i < CFG.smallCount; i++) fs.copyFileSync(src, path.join(dir, `c${smallName(i)}`));
  const cp = { rps: CFG.smallCount / ((performance.now() - t0) / 1000) };
  syncAll();
  t0 = performance.now();
  for (let i = 0; i < CFG.smallCount; i++) {
    const fd = fs.openSync(path.join(dir, `w${smallName(i)}`), 'w');
    fs.writeSync(fd, bodies[i]);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  }
  const fsync = { rps: CFG.smallCount / ((performance.now() - t0) / 1000) };
  fs.rmSync(dir, { recursive: true, force: true });
  return { cp, fsync };
}

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
    nginx: tryRun(() => {
      const r = spawnSync('nginx', ['-v'], { encoding: 'utf8' }); // prints on stderr
      return `${r.stdout}${r.stderr}`.trim();
    }),
    benchDir: dir,
    fsType: tryRun(() => sh('stat', ['-f', '-c', '%T', dir]).trim()),
    diskFreeGiB: Array.isArray(df) ? +(Number(df[3]) / 2 ** 20).toFixed(1) : df,
    device: Array.isArray(df) ? df[0] : '?',
  };
}
// ---------------------------------------------------------------- main

async function main() {
  const sluiceMain = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
  if (!CFG.onlyPeers && !process.env.SLUICE_BENCH_URL && !fs.existsSync(sluiceMain))
    throw new Error(`${sluiceMain} not built; run \`npm run build\`, set SLUICE_BENCH_URL, or BENCH_ONLY_PEERS=1`);
  const benchRoot = process.env.BENCH_DIR || os.tmpdir();
  const tmp = fs.mkdtempSync(path.join(benchRoot, 'sluice-bench-'));
  cleanups.push(() => {
    if (CFG.keep) log(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  });
  const info = machineInfo(tmp);
  const targetsN = CFG.onlyPeers ? 1 : 2;
  const needGiB = (LARGE_BYTES * (targetsN + 2)) / 2 ** 30 + 0.5;
  if (typeof info.diskFreeGiB === 'number' && info.diskFreeGiB < needGiB)
    throw new Error(`need ~${needGiB.toFixed(1)} GiB free in ${benchRoot}, have ${info.diskFreeGiB} GiB (set BENCH_DIR or BENCH_LARGE_MB)`);
  log(`config ${JSON.stringify({ ...CFG, largeBytes: LARGE_BYTES })}`);
  log(`temp dir ${tmp} (${info.fsType}, ${info.diskFreeGiB} GiB free)`);

  // Source data: one large random file (with its adler32 and sha256), small random bodies.
  const src = path.join(tmp, 'large.src');
  let srcAdler;
  let srcSha;
  {
    const t0 = performance.now();
    const fd = fs.openSync(src, 'w');
    const buf = Buffer.allocUnsafe(1 << 20);
    const a32 = adler32();
    const sha = crypto.createHash('sha256');
    for (let off = 0; off < LARGE_BYTES; off += buf.length) {
      const n = Math.min(buf.length, LARGE_BYTES - off);
      const chunk = n === buf.length ? buf : buf.subarray(0, n);
      crypto.randomFillSync(chunk);
      a32.update(chunk);
      sha.update(chunk);
      fs.writeSync(fd, chunk);
    }
    fs.closeSync(fd);
    srcAdler = a32.hex();
    srcSha = sha.digest('hex');
    log(`generated ${src}: ${CFG.largeMiB} MiB, adler32 ${srcAdler} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  const bodies = Array.from({ length: CFG.smallCount }, () => crypto.randomBytes(CFG.smallSize));
  const smallSrc = path.join(tmp, 'small.src');
  fs.writeFileSync(smallSrc, bodies[0]);

  const nginx = await startNginx(tmp);
  const targets = [nginx.target];
  let sluice = null;
  if (!CFG.onlyPeers) {
    sluice = await startOrAttachSluice(tmp);
    targets.unshift(sluice.target);
  }
  for (const t of targets) {
    await mkcol(t, '/bench');
    await mkcol(t, '/bench/small');
  }

  // Warm-up (untimed): JIT of the client, TCP windows, server code paths. Without it the first
  // measured transfer on this kind of VM is 2-4x slower than the next ones.
  {
    const warm = path.join(tmp, 'warm.src');
    fs.writeFileSync(warm, crypto.randomBytes(Math.min(LARGE_BYTES, 32 << 20)));
    for (const t of targets) {
      for (let i = 0; i < 3; i++) {
        expectOk(await request(t, 'PUT', '/bench/warm.bin', { body: { file: warm } }), `${t.name} warm-up PUT`);
        expectOk(await request(t, 'GET', '/bench/warm.bin'), `${t.name} warm-up GET`);
      }
      await mkcol(t, '/bench/small/warm');
      await pool(Math.min(200, CFG.smallCount), CFG.concurrency, async (i) => {
        expectOk(
          await request(t, 'PUT', `/bench/small/warm/${smallName(i)}`, {
            body: bodies[i],
          }),
          `${t.name} warm-up PUT small`,
        );
        expectOk(await request(t, 'GET', `/bench/small/warm/${smallName(i)}`), `${t.name} warm-up GET small`);
      });
    }
    fs.rmSync(warm);
    log('warm-up done');
  }

  const res = {};
  for (const t of targets) res[t.name] = { putLarge: [], getLarge: [], putSmall: [], getSmall: [] };
  res.cpSync = [];
  res.cp = [];
  res.cpSmall = [];
  res.fsyncSmall = [];
  const digestChecks = [];
  const cpDst = path.join(tmp, 'cp-dst.bin');

  for (let run = 1; run <= CFG.runs; run++) {
    const order = run % 2 ? targets : [...targets].reverse();
    log(`run ${run}/${CFG.runs}, order ${order.map((t) => t.name).join(' → ')}`);
    for (const t of order) {
      const r = await putLarge(t, src);
      res[t.name].putLarge.push(r.mibs);
      log(`  ${t.name} PUT large ${r.mibs.toFixed(1)} MiB/s (HTTP ${r.status}${r.digest ? `, Digest ${r.digest}` : ''})`);
      if (t.name === 'sluice') {
        const h = await request(t, 'HEAD', '/bench/large.bin', {
          headers: { 'Want-Digest': 'adler32' },
        });
        const d = h.headers.digest ?? r.digest;
        const check = {
          run,
          headStatus: h.status,
          putDigest: r.digest ?? null,
          headDigest: h.headers.digest ?? null,
          expected: `adler32=${srcAdler}`,
          prefixOk: d ? /^adler32=/i.test(d) : null,
          valueOk: d ? d.toLowerCase().includes(`adler32=${srcAdler}`) : null,
        };
        digestChecks.push(check);
        log(
          `  sluice HEAD Want-Digest: adler32 -> HTTP ${h.status}, Digest: ${h.headers.digest ?? '(none)'}; expected adler32=${srcAdler}`,
        );
        if (d && !check.prefixOk) log(`  WARNING: sluice Digest does not start with adler32=: ${d}`);
        else if (d && !check.valueOk) log(`  WARNING: sluice adler32 differs from the source's ${srcAdler}`);
      }
    }
    const cs = timeCp(src, cpDst, true);
    res.cpSync.push(cs.mibs);
    const cp = timeCp(src, cpDst, false);
    res.cp.push(cp.mibs);
    log(`  cp+sync ${cs.mibs.toFixed(1)} MiB/s, cp ${cp.mibs.toFixed(1)} MiB/s`);
    for (const t of order) {
      const r = await getLarge(t);
      res[t.name].getLarge.push(r.mibs);
      log(`  ${t.name} GET large ${r.mibs.toFixed(1)} MiB/s`);
    }
    for (const t of order) {
      const r = await putSmall(t, run, bodies);
      res[t.name].putSmall.push(r.rps);
      log(`  ${t.name} PUT 4KiB x${CFG.smallCount}: ${r.rps.toFixed(0)} req/s (p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms)`);
    }
    for (const t of order) {
      const r = await getSmall(t, run);
      res[t.name].getSmall.push(r.rps);
      log(`  ${t.name} GET 4KiB x${CFG.smallCount}: ${r.rps.toFixed(0)} req/s (p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms)`);
    }
    const sc = smallCopies(path.join(tmp, `small-cp-r${run}`), smallSrc, bodies);
    res.cpSmall.push(sc.cp.rps);
    res.fsyncSmall.push(sc.fsync.rps);
    log(`  copyFileSync 4KiB ${sc.cp.rps.toFixed(0)} files/s, write+fsync 4KiB ${sc.fsync.rps.toFixed(0)} files/s`);
  }

  // Integrity (untimed): each target returns exactly the source bytes.
  for (const t of targets) {
    const h = crypto.createHash('sha256');
    await request(t, 'GET', '/bench/large.bin', { hash: h });
    const got = h.digest('hex');
    if (got !== srcSha) throw new Error(`${t.name}: GET body sha256 ${got} != source ${srcSha}`);
  }
  log('integrity: GET bodies match the source (sha256)');

  report({
    info,
    res,
    digestChecks,
    srcAdler,
    nginxWorkers: CFG.nginxWorkers,
    sluiceExternal: sluice?.external ?? null,
  });
}

// ---------------------------------------------------------------- report

function report({ info, res, digestChecks, srcAdler, sluiceExternal }) {
  const S = res.sluice;
  const N = res.nginx;
  const st = (xs) => (xs?.length ? { best: best(xs), median: median(xs), runs: xs } : null);
  const ratio = (a, b) => (a && b ? a / b : null);
  const rows = [
    {
      key: 'putLarge',
      label: `PUT ${CFG.largeMiB} MiB`,
      unit: 'MiB/s',
      cp: st(res.cpSync),
      cpLabel: 'cp+sync',
      cp2: st(res.cp),
    },
    {
      key: 'getLarge',
      label: `GET ${CFG.largeMiB} MiB`,
      unit: 'MiB/s',
      cp: st(res.cp),
      cpLabel: 'cp',
      cp2: st(res.cpSync),
    },
    {
      key: 'putSmall',
      label: 'PUT 4 KiB',
      unit: 'req/s',
      cp: st(res.fsyncSmall),
      cpLabel: 'write+fsync',
      cp2: st(res.cpSmall),
    },
    {
      key: 'getSmall',
      label: 'GET 4 KiB',
      unit: 'req/s',
      cp: st(res.cpSmall),
      cpLabel: 'copyFileSync',
      cp2: null,
    },
  ].map((r) => {
    const s = st(S?.[r.key]);
    const n = st(N[r.key]);
    return {
      ...r,
      sluice: s,
      nginx: n,
      sluiceOverNginx: ratio(s?.median, n?.median),
      sluiceOverNginxBest: ratio(s?.best, n?.best),
      sluiceOverCp: ratio(s?.median, r.cp?.median),
    };
  });

  const fmtN = (x) => (x == null ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const fmtR = (x) => (x == null ? '–' : x.toFixed(2));
  const cell = (s) => (s ? `${fmtN(s.median)} / ${fmtN(s.best)}` : '–');

  const put = rows[0].sluiceOverNginx;
  const get = rows[1].sluiceOverNginx;
  const verdict =
    put == null || get == null
      ? 'verdict: n/a (sluice not measured)'
      : `verdict: large-file PUT ${fmtR(put)}x, GET ${fmtR(get)}x nginx (medians) — target >= 0.8x: ${put >= 0.8 && get >= 0.8 ? 'PASS' : 'FAIL'}`;

  // Plain text table.
  const head = ['', 'unit', 'sluice med/best', 'nginx med/best', 'baseline med/best', 'sluice/nginx', 'sluice/baseline'];
  const body = rows.map((r) => [
    r.label,
    r.unit,
    cell(r.sluice),
    cell(r.nginx),
    `${r.cpLabel} ${cell(r.cp)}`,
    fmtR(r.sluiceOverNginx),
    fmtR(r.sluiceOverCp),
  ]);
  body.push([
    `cp ${CFG.largeMiB} MiB (no sync)`,
    'MiB/s',
    '',
    '',
    `cp ${cell(st(res.cp))}`,
    '',
    fmtR(ratio(rows[0].sluice?.median, median(res.cp))),
  ]);
  const widths = head.map((_, i) => Math.max(head[i].length, ...body.map((b) => b[i].length)));
  const line = (cols) => cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log('');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
  console.log('');
  console.log(
    `runs ${CFG.runs}, small files ${CFG.smallCount} x 4 KiB at concurrency ${CFG.concurrency}, nginx worker_processes ${CFG.nginxWorkers}`,
  );
  console.log('baselines: PUT large vs cp+sync (sluice fsyncs before acknowledging; nginx does not); last row = vs plain cp');
  if (digestChecks.length) {
    const d = digestChecks[0];
    console.log(
      `sluice Digest (HEAD, Want-Digest: adler32): ${d.headDigest ?? '(none)'}; PUT response Digest: ${d.putDigest ?? '(none)'}; source adler32=${srcAdler}`,
    );
  }
  console.log(verdict);

  // JSON.
  const outDir = path.join(REPO, 'bench', 'out');
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = info.date.replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
  const outFile = path.join(outDir, `storage-${stamp}.json`);
  const json = {
    bench: 'storage',
    config: { ...CFG, largeBytes: LARGE_BYTES, sluiceExternal },
    machine: info,
    results: Object.fromEntries(
      rows.map((r) => [
        r.key,
        {
          unit: r.unit,
          sluice: r.sluice,
          nginx: r.nginx,
          baseline: { name: r.cpLabel, ...r.cp },
          sluiceOverNginx: r.sluiceOverNginx,
          sluiceOverNginxBest: r.sluiceOverNginxBest,
          sluiceOverBaseline: r.sluiceOverCp,
        },
      ]),
    ),
    baselines: {
      cpSync: st(res.cpSync),
      cp: st(res.cp),
      copyFileSync4k: st(res.cpSmall),
      writeFsync4k: st(res.fsyncSmall),
    },
    digestChecks,
    verdict,
  };
  fs.writeFileSync(outFile, JSON.stringify(json, null, 2) + '\n');
  console.log(`\nJSON: ${path.relative(process.cwd(), outFile) || outFile}`);

  // Markdown for bench/RESULTS.md.
  const md = [];
  md.push(`### storage — ${info.date.slice(0, 10)}${CFG.quick ? ' (--quick)' : ''}`);
  md.push('');
  md.push(
    `Machine: ${info.nproc} CPUs (${info.cpu}), ${info.memTotalGiB} GiB RAM, Linux ${info.kernel}, Node ${info.node}, ${info.nginx}, ${info.fsType} on ${info.device} with ${info.diskFreeGiB} GiB free. ` +
      `nginx worker_processes ${CFG.nginxWorkers}; ${CFG.runs} run(s), alternating order; figures median / best.`,
  );
  md.push('');
  md.push('| measure | unit | sluice | nginx | baseline | sluice/nginx | sluice/baseline |');
  md.push('|---|---|--:|--:|--:|--:|--:|');
  for (const r of rows)
    md.push(
      `| ${r.label} | ${r.unit} | ${cell(r.sluice)} | ${cell(r.nginx)} | ${r.cpLabel} ${cell(r.cp)} | ${fmtR(r.sluiceOverNginx)} | ${fmtR(r.sluiceOverCp)} |`,
    );
  md.push(
    `| cp ${CFG.largeMiB} MiB, no sync | MiB/s | | | ${cell(st(res.cp))} | | ${fmtR(ratio(rows[0].sluice?.median, median(res.cp)))} (PUT) |`,
  );
  md.push('');
  md.push(
    `Small files: ${CFG.smallCount} x 4 KiB, concurrency ${CFG.concurrency}, keep-alive. ${verdict.replace(/^verdict: /, 'Verdict: ')}`,
  );
  console.log('\n<!-- bench/RESULTS.md -->');
  console.log(md.join('\n'));
}

main()
  .catch(async (err) => {
    console.error(`\nbench/storage: ${err.stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanup();
  });
