// HTTP third-party copy on the WebDAV door between two real sluice servers on loopback: pull (COPY +
// Source) and push (COPY + Destination on the other server), the perf-marker stream, the checks
// answered before a copy starts, and failures that must leave nothing stored. Peers that misbehave
// (wrong Digest, short bodies, trickling, redirects) are small real HTTP servers in this file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startServer, type RunningServer } from './support/server.js';
import { tpcSettings } from '../src/api/webdav/tpc.js';
import { readPerfMarkers } from '../src/storage/webdav-se.js';

let a: RunningServer;
let b: RunningServer;
const peers: Server[] = [];

before(async () => {
  tpcSettings.markerIntervalMs = 50;
  a = await startServer({ fsync: false });
  b = await startServer({ fsync: false });
  await dav(a, 'MKCOL', '/data');
  await dav(b, 'MKCOL', '/in');
});
after(async () => {
  for (const p of peers) {
    p.closeAllConnections();
    await new Promise((r) => p.close(r));
  }
  await a.stop();
  await b.stop();
});

function dav(
  server: RunningServer,
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: Buffer | string; token?: string } = {},
) {
  return fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${init.token ?? server.token}`, ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
}

function adler32Hex(buf: Buffer): string {
  let s1 = 1;
  let s2 = 0;
  for (const byte of buf) {
    s1 = (s1 + byte) % 65521;
    s2 = (s2 + s1) % 65521;
  }
  return (((s2 << 16) | s1) >>> 0).toString(16).padStart(8, '0');
}

/** A COPY with the whole response body as text. */
async function copy(server: RunningServer, path: string, headers: Record<string, string>, token = server.token) {
  const res = await open(server, path, headers, token);
  let body = '';
  res.setEncoding('utf8');
  for await (const chunk of res as AsyncIterable<string>) body += chunk;
  return { status: res.statusCode!, headers: res.headers, body };
}

/** A COPY whose response is handed over unread (to watch markers arrive, or to hang up). */
function open(server: RunningServer, path: string, headers: Record<string, string>, token = server.token): Promise<IncomingMessage> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method: 'COPY', path, headers: { authorization: `Bearer ${token}`, ...headers } },
      resolve,
    );
    req.on('error', reject);
    req.end();
  });
}

/** A small real HTTP server playing a remote endpoint. */
async function peer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  peers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Markers as a client parses them: byte counts at each "End", and the outcome line. */
function markersOf(body: string): { bytes: number[]; outcome: string } {
  const bytes = [...body.matchAll(/^ {4}Stripe Bytes Transferred: (\d+)$/gm)].map((m) => Number(m[1]));
  const outcome = body.trimEnd().split('\n').at(-1)!;
  return { bytes, outcome };
}

const exists = async (server: RunningServer, path: string): Promise<boolean> => (await dav(server, 'HEAD', path)).status === 200;

/**
 * Partial uploads a server's storage elements hold: files in any tmp/ under <data>/se (the layout
 * of local SEs). The se directory itself must exist, so an empty answer means something.
 */
async function partialUploads(dataDir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, inTmp: boolean): Promise<void> => {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      if (d.isDirectory()) await walk(join(dir, d.name), inTmp || d.name === 'tmp');
      else if (inTmp) found.push(join(dir, d.name));
    }
  };
  await walk(join(dataDir, 'se'), false);
  return found;
}

const partials = (server: RunningServer): Promise<string[]> => partialUploads(server.dataDir);

test('pull: COPY with Source copies A to B, verified, with markers and an IN_CLOSE_WRITE on B', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 5);
  assert.equal((await dav(a, 'PUT', '/data/src.bin', { body: data })).status, 201);
  const headBefore = await b.core!.eventLog.head();

  const res = await copy(b, '/in/pulled.bin', {
    source: `${a.url}/data/src.bin`,
    transferheaderauthorization: `Bearer ${a.token}`,
    requirechecksumverification: 'true',
  });
  assert.equal(res.status, 202);
  assert.equal(res.headers['content-type'], 'text/perf-marker-stream');
  const { bytes, outcome } = markersOf(res.body);
  assert.equal(outcome, 'success: Created');
  assert.ok(bytes.length >= 1, 'at least one perf marker');
  assert.equal(bytes.at(-1), data.length, 'the last marker counts every byte');
  assert.match(
    res.body,
    /^Perf Marker\n {4}Timestamp: \d+\n {4}Stripe Index: 0\n {4}Stripe Bytes Transferred: \d+\n {4}Total Stripe Count: 1\nEnd\n/,
  );

  const back = await dav(b, 'GET', '/in/pulled.bin', { headers: { 'want-digest': 'adler32' } });
  assert.equal(back.status, 200);
  assert.equal(back.headers.get('digest'), `adler32=${adler32Hex(data)}`);
  assert.ok(Buffer.from(await back.arrayBuffer()).equals(data));

  const events = await b.core!.eventLog.read(headBefore, 1000);
  assert.ok(
    events.some((e) => e.type === 'IN_CLOSE_WRITE' && e.path === '/in/pulled.bin'),
    'B logged IN_CLOSE_WRITE',
  );
});

test('pull: the parsed marker stream (client side) reports progress and success', async () => {
  const data = randomBytes(100_000);
  await dav(a, 'PUT', '/data/parsed.bin', { body: data });
  const res = await open(b, '/in/parsed.bin', { source: `${a.url}/data/parsed.bin`, transferheaderauthorization: `Bearer ${a.token}` });
  assert.equal(res.statusCode, 202);
  const progress: number[] = [];
  assert.deepEqual(await readPerfMarkers(res, (n) => progress.push(n)), { ok: true });
  assert.equal(progress.at(-1), data.length);
});

test('pull: markers keep coming while a slow source trickles, with growing counts', async () => {
  const chunk = randomBytes(10_000);
  const slow = await peer((req, res) => {
    res.writeHead(200, { 'content-length': String(chunk.length * 8) });
    let n = 0;
    const t = setInterval(() => {
      res.write(chunk);
      if (++n === 8) {
        clearInterval(t);
        res.end();
      }
    }, 60);
    req.on('close', () => clearInterval(t));
  });
  const res = await copy(b, '/in/slow.bin', { source: `${slow}/slow.bin` });
  const { bytes, outcome } = markersOf(res.body);
  assert.equal(outcome, 'success: Created');
  assert.ok(bytes.length >= 4, `several markers, got ${bytes.length}`);
  assert.ok(
    bytes.some((n) => n > 0 && n < chunk.length * 8),
    'a marker in the middle of the copy',
  );
  assert.deepEqual(
    [...bytes].sort((x, y) => x - y),
    bytes,
    'counts never go down',
  );
  assert.equal((await dav(b, 'GET', '/in/slow.bin')).headers.get('content-length'), String(chunk.length * 8));
});

test('pull: a missing source or a wrong source token is a failure line, and nothing is stored', async () => {
  const missing = await copy(b, '/in/missing.bin', { source: `${a.url}/data/nope.bin`, transferheaderauthorization: `Bearer ${a.token}` });
  assert.equal(missing.status, 202);
  assert.match(markersOf(missing.body).outcome, /^failure: .*404/);
  assert.equal(await exists(b, '/in/missing.bin'), false);

  await dav(a, 'PUT', '/data/guarded.bin', { body: 'secret bytes' });
  const denied = await copy(b, '/in/denied.bin', {
    source: `${a.url}/data/guarded.bin`,
    transferheaderauthorization: 'Bearer sluice_wrong_token',
  });
  assert.match(markersOf(denied.body).outcome, /^failure: .*401/);
  assert.equal(await exists(b, '/in/denied.bin'), false);

  const unauthenticated = await copy(b, '/in/denied.bin', { source: `${a.url}/data/guarded.bin` });
  assert.match(markersOf(unauthenticated.body).outcome, /^failure: /);
  assert.equal(await exists(b, '/in/denied.bin'), false);
  assert.deepEqual(await partials(b), []);
});

test('pull: checks before the copy starts answer with plain statuses', async () => {
  const source = `${a.url}/data/src.bin`;
  const readOnly = b.core!.tokens.create({ subject: 'reader', scopes: ['storage.read:/'] }).secret;
  const elsewhere = b.core!.tokens.create({ subject: 'elsewhere', scopes: ['storage.create:/other'] }).secret;
  await dav(b, 'PUT', '/in/existing.bin', { body: 'old' });

  const status = async (path: string, headers: Record<string, string>, token?: string) => (await copy(b, path, headers, token)).status;
  assert.equal(await status('/in/x.bin', { source }, 'sluice_not_a_token'), 401);
  assert.equal(await status('/in/x.bin', { source }, readOnly), 403, 'no create scope');
  assert.equal(await status('/in/x.bin', { source }, elsewhere), 403, 'create scope elsewhere');
  assert.equal(await status('/in/x.bin', { source: 'not a url' }), 400);
  assert.equal(await status('/in/x.bin', { source: 'ftp://127.0.0.1/data/src.bin' }), 400);
  assert.equal(await status('/in/x.bin', { source: 'file:///etc/passwd' }), 400);
  assert.equal(await status('/in/x.bin', { source: `http://user:pw@127.0.0.1:1/x` }), 400, 'credentials in the URL');
  assert.equal(await status('/in/x.bin', { source, destination: `${a.url}/y` }), 400, 'both Source and Destination');
  assert.equal(await status('/in/x.bin', { source, transferheaderhost: 'evil.example' }), 400);
  assert.equal(await status('/in/x.bin', { source, credential: 'gridsite' }), 400);
  assert.equal(await status('/in/x.bin', { source, requirechecksumverification: 'maybe' }), 400);
  assert.equal(await status('/in/x.bin', { source: 'http://no-such-host.invalid/x' }), 502);
  assert.equal(await status('/in/existing.bin', { source, overwrite: 'F' }), 412);
  assert.equal(await status('/nowhere/x.bin', { source }), 409, 'missing parent');
  assert.equal(await status('/in', { source }), 409, 'a directory');
  assert.equal(await exists(b, '/in/x.bin'), false);
  assert.equal(await (await dav(b, 'GET', '/in/existing.bin')).text(), 'old');
});

test('pull: Overwrite T replaces an existing file', async () => {
  await dav(b, 'PUT', '/in/replace.bin', { body: 'old' });
  const res = await copy(b, '/in/replace.bin', { source: `${a.url}/data/src.bin`, transferheaderauthorization: `Bearer ${a.token}` });
  assert.equal(markersOf(res.body).outcome, 'success: Created');
  assert.equal((await dav(b, 'HEAD', '/in/replace.bin')).headers.get('content-length'), String(3 * 1024 * 1024 + 5));
});

test('pull: a Digest that does not match the bytes stores nothing', async () => {
  const data = randomBytes(50_000);
  const liar = await peer((_req, res) => {
    res.writeHead(200, { 'content-length': String(data.length), digest: 'adler32=00000001' });
    res.end(data);
  });
  const res = await copy(b, '/in/lied.bin', { source: `${liar}/lied.bin` });
  assert.equal(res.status, 202);
  assert.match(
    markersOf(res.body).outcome,
    /^failure: checksum mismatch: source declared adler32 00000001, received data has [0-9a-f]{8}$/,
  );
  assert.equal(await exists(b, '/in/lied.bin'), false);
  assert.deepEqual(await partials(b), []);
});

test('pull: RequireChecksumVerification fails a source without Digest; without it the copy succeeds', async () => {
  const data = randomBytes(20_000);
  let wanted: string | undefined;
  const plain = await peer((req, res) => {
    wanted = req.headers['want-digest'] as string | undefined;
    res.writeHead(200, { 'content-length': String(data.length) });
    res.end(data);
  });
  const strict = await copy(b, '/in/plain.bin', { source: `${plain}/plain.bin`, requirechecksumverification: 'true' });
  assert.match(markersOf(strict.body).outcome, /^failure: source offered no adler32 Digest/);
  assert.equal(wanted, 'adler32', 'the door asks the source for adler32');
  assert.equal(await exists(b, '/in/plain.bin'), false);

  const lenient = await copy(b, '/in/plain.bin', { source: `${plain}/plain.bin`, requirechecksumverification: 'false' });
  assert.equal(markersOf(lenient.body).outcome, 'success: Created');
  const back = await dav(b, 'GET', '/in/plain.bin', { headers: { 'want-digest': 'adler32' } });
  assert.equal(back.headers.get('digest'), `adler32=${adler32Hex(data)}`);
});

test('pull: a source that breaks off mid-body stores nothing', async () => {
  const short = await peer((req, res) => {
    res.writeHead(200, { 'content-length': '1000000' });
    res.write(randomBytes(100_000));
    setTimeout(() => req.socket.destroy(), 50);
  });
  const res = await copy(b, '/in/short.bin', { source: `${short}/short.bin` });
  assert.match(markersOf(res.body).outcome, /^failure: /);
  assert.equal(await exists(b, '/in/short.bin'), false);
  assert.deepEqual(await partials(b), []);
});

test('pull: redirects are followed; credentials go only to the same origin', async () => {
  const data = randomBytes(1000);
  const seen: IncomingHttpHeaders[] = [];
  const other = await peer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-length': String(data.length) });
    res.end(data);
  });
  const door = await peer((req, res) => {
    seen.push(req.headers);
    if (req.url === '/same') res.writeHead(307, { location: '/pool' }).end();
    else if (req.url === '/pool') res.writeHead(302, { location: `${other}/elsewhere` }).end();
    else res.writeHead(404).end();
  });
  const res = await copy(b, '/in/redirected.bin', { source: `${door}/same`, transferheaderauthorization: 'Bearer remote-secret' });
  assert.equal(markersOf(res.body).outcome, 'success: Created');
  assert.deepEqual(
    seen.map((h) => h.authorization),
    ['Bearer remote-secret', 'Bearer remote-secret', undefined],
  );

  const loop = await peer((_req, res) => res.writeHead(302, { location: '/again' }).end());
  const looped = await copy(b, '/in/loop.bin', { source: `${loop}/start` });
  assert.match(markersOf(looped.body).outcome, /^failure: .*more than 3 redirects/);
});

test('pull: a client that hangs up cancels the copy and nothing is stored', async () => {
  let sourceClosed!: () => void;
  const closed = new Promise<void>((r) => (sourceClosed = r));
  const endless = await peer((req, res) => {
    res.writeHead(200, { 'content-length': String(100 << 20) });
    const t = setInterval(() => res.write(randomBytes(1000)), 10);
    res.on('close', () => {
      clearInterval(t);
      sourceClosed();
    });
  });
  const res = await open(b, '/in/cancelled.bin', { source: `${endless}/big` });
  assert.equal(res.statusCode, 202);
  await new Promise((r) => res.once('data', r));
  res.destroy();
  await closed;
  // The put fails once the source stream errors; give it a moment to clean up.
  for (let i = 0; i < 50 && (await partials(b)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await exists(b, '/in/cancelled.bin'), false);
  assert.deepEqual(await partials(b), []);
});

test('push: COPY with a Destination on another server PUTs the file there, verified by its Digest', async () => {
  const data = randomBytes(2 * 1024 * 1024 + 3);
  await dav(a, 'PUT', '/data/push.bin', { body: data });
  const res = await copy(a, '/data/push.bin', {
    destination: `${b.url}/in/pushed.bin`,
    transferheaderauthorization: `Bearer ${b.token}`,
    requirechecksumverification: 'true',
    'want-digest': 'adler32',
  });
  assert.equal(res.status, 202);
  assert.equal(res.headers.digest, `adler32=${adler32Hex(data)}`);
  const { bytes, outcome } = markersOf(res.body);
  assert.equal(outcome, 'success: Created');
  assert.equal(bytes.at(-1), data.length);
  const back = await dav(b, 'GET', '/in/pushed.bin');
  assert.ok(Buffer.from(await back.arrayBuffer()).equals(data));

  // Overwrite: F becomes If-None-Match: * at the destination.
  const again = await copy(a, '/data/push.bin', {
    destination: `${b.url}/in/pushed.bin`,
    transferheaderauthorization: `Bearer ${b.token}`,
    overwrite: 'F',
  });
  assert.match(markersOf(again.body).outcome, /^failure: .*412/);

  const denied = await copy(a, '/data/push.bin', {
    destination: `${b.url}/in/denied-push.bin`,
    transferheaderauthorization: 'Bearer wrong',
  });
  assert.match(markersOf(denied.body).outcome, /^failure: .*401/);
  assert.equal(await exists(b, '/in/denied-push.bin'), false);
});

test('push: checks before the copy starts answer with plain statuses; a same-host Destination stays a local COPY', async () => {
  const noRead = a.core!.tokens.create({ subject: 'writer', scopes: ['storage.create:/data'] }).secret;
  const destination = `${b.url}/in/never.bin`;
  assert.equal((await copy(a, '/data/none.bin', { destination })).status, 404);
  assert.equal((await copy(a, '/data/src.bin', { destination }, noRead)).status, 403);
  assert.equal((await copy(a, '/data', { destination })).status, 409);
  assert.equal((await copy(a, '/data/src.bin', { destination: 'gopher://127.0.0.1/x' })).status, 400);
  assert.equal((await copy(a, '/data/src.bin', { destination: 'http://elsewhere.invalid/x' })).status, 502);
  assert.equal((await copy(a, '/data/src.bin', { destination: `${a.url}/data/local-copy.bin` })).status, 201);
  assert.equal(await exists(a, '/data/local-copy.bin'), true);
});

test('push: a destination whose Digest disagrees is a failure, and the forwarded headers are what was asked', async () => {
  const data = randomBytes(30_000);
  await dav(a, 'PUT', '/data/to-liar.bin', { body: data });
  const requests: { method: string; headers: IncomingHttpHeaders; bytes: number }[] = [];
  const liar = await peer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      requests.push({ method: req.method!, headers: req.headers, bytes });
      if (req.method === 'PUT') res.writeHead(201).end();
      else if (req.method === 'HEAD') res.writeHead(200, { 'content-length': String(data.length), digest: 'adler32=0badc0de' }).end();
      else res.writeHead(204).end();
    });
  });
  const res = await copy(a, '/data/to-liar.bin', {
    destination: `${liar}/x.bin`,
    transferheaderauthorization: 'Bearer remote',
    'transferheaderx-experiment': 'p11',
  });
  assert.match(markersOf(res.body).outcome, /^failure: checksum mismatch: destination has adler32 0badc0de/);
  const put = requests.find((r) => r.method === 'PUT')!;
  assert.equal(put.bytes, data.length);
  assert.equal(put.headers['content-length'], String(data.length));
  assert.equal(put.headers.authorization, 'Bearer remote');
  assert.equal(put.headers['x-experiment'], 'p11');
  assert.equal(requests.find((r) => r.method === 'HEAD')!.headers['want-digest'], 'adler32');
  assert.ok(
    requests.some((r) => r.method === 'DELETE'),
    'the corrupt copy is deleted',
  );
  assert.ok(!Object.keys(put.headers).some((h) => h.startsWith('transferheader')));
});
