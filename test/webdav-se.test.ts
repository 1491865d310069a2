// The WebDAV storage element against real endpoints on loopback: a second sluice server (which
// offers Digest and does third-party copy) and nginx's dav module (which does neither, so what
// lands is verified by reading it back): receive, read, ranges, remove, space, pullFrom, and
// corruption on nginx's disk found by verify.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { startServer, type RunningServer } from './support/server.js';
import { nginxAvailable, startNginxDav, type NginxDav } from './support/nginx.js';
import { tpcSettings } from '../src/api/webdav/tpc.js';
import { WebDavStorageElement } from '../src/storage/webdav-se.js';
import { SluiceError } from '../src/errors.js';

const LOCATION = /^[0-9a-f]{2}\/[0-9a-f]{32}$/;

function adler32Hex(buf: Buffer): string {
  let s1 = 1;
  let s2 = 0;
  for (const byte of buf) {
    s1 = (s1 + byte) % 65521;
    s2 = (s2 + s1) % 65521;
  }
  return (((s2 << 16) | s1) >>> 0).toString(16).padStart(8, '0');
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A source that yields `data` in chunks of `size`, optionally failing after `failAfter` bytes. */
async function* chunks(data: Buffer, size = 64 * 1024, failAfter?: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) {
    if (failAfter !== undefined && i >= failAfter) throw new Error('source broke off');
    yield data.subarray(i, i + size);
  }
}

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

const isCode = (code: string) => (e: unknown) => e instanceof SluiceError && e.code === code;

/** Every file (not collection) below a directory on disk. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (d.isDirectory()) out.push(...(await filesUnder(join(dir, d.name))));
    else out.push(join(dir, d.name));
  }
  return out;
}

/** The behaviour both endpoints must show. */
function contract(label: string, make: () => { se: WebDavStorageElement; stored: () => Promise<string[]> }) {
  test(`${label}: receive streams a replica that reads back whole and in ranges, then remove deletes it`, async () => {
    const { se, stored } = make();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const got = await se.receive(Readable.from(chunks(data)), { extraChecksums: new Set(['md5']), expectedSize: data.length });
    assert.match(got.location, LOCATION);
    assert.equal(got.size, data.length);
    assert.equal(got.checksums.adler32, adler32Hex(data));
    assert.match(got.checksums.md5!, /^[0-9a-f]{32}$/);
    assert.ok((await bytesOf(await se.read(got.location))).equals(data));
    assert.ok((await bytesOf(await se.read(got.location, { start: 1000, end: 1999 }))).equals(data.subarray(1000, 2000)));
    assert.ok((await bytesOf(await se.read(got.location, { start: data.length - 5, end: data.length - 1 }))).equals(data.subarray(-5)));
    assert.equal(await se.verify(got.location, adler32Hex(data)), true);
    assert.equal(await se.verify(got.location, adler32Hex(data), { readBack: true }), true);
    assert.equal(await se.verify(got.location, '00000001'), false);
    assert.ok(se.urlOf(got.location).endsWith('/' + got.location));

    await se.remove(got.location);
    await assert.rejects(se.read(got.location), isCode('NOT_FOUND'));
    await se.remove(got.location);
    assert.equal(await se.verify(got.location, adler32Hex(data)), false, 'a missing replica does not verify');
    assert.deepEqual(await stored(), []);
  });

  test(`${label}: an empty replica and one without a declared size`, async () => {
    const { se } = make();
    const empty = await se.receive(Readable.from([]), { extraChecksums: new Set() });
    assert.equal(empty.size, 0);
    assert.equal(empty.checksums.adler32, '00000001');
    assert.equal((await bytesOf(await se.read(empty.location))).length, 0);
    const data = randomBytes(200_000);
    const chunked = await se.receive(chunks(data, 10_000), { extraChecksums: new Set() });
    assert.ok((await bytesOf(await se.read(chunked.location))).equals(data));
    await se.remove(empty.location);
    await se.remove(chunked.location);
  });

  test(`${label}: a source that breaks off, ends short or runs long leaves nothing behind`, async () => {
    const { se, stored } = make();
    const data = randomBytes(500_000);
    await assert.rejects(se.receive(chunks(data, 50_000, 200_000), { extraChecksums: new Set() }), /source broke off/);
    await assert.rejects(
      se.receive(chunks(data, 50_000, 200_000), { extraChecksums: new Set(), expectedSize: data.length }),
      /source broke off/,
    );
    await assert.rejects(se.receive(chunks(data), { extraChecksums: new Set(), expectedSize: data.length + 1 }), isCode('BAD_REQUEST'));
    await assert.rejects(se.receive(chunks(data), { extraChecksums: new Set(), expectedSize: data.length - 1 }), isCode('BAD_REQUEST'));
    await assert.rejects(se.receive(chunks(data), { extraChecksums: new Set(), maxSize: 1000 }), isCode('PAYLOAD_TOO_LARGE'));
    // Give the endpoint a moment to drop what the aborted requests spooled.
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await stored(), []);
  });
}

describe('against a second sluice server', () => {
  let remote: RunningServer;
  let source: RunningServer;
  let se: WebDavStorageElement;

  before(async () => {
    tpcSettings.markerIntervalMs = 20;
    remote = await startServer({ fsync: false });
    source = await startServer({ fsync: false });
    se = new WebDavStorageElement({ name: 'remote-sluice', url: `${remote.url}/replicas/desy`, token: remote.token });
    await se.init();
    await se.init(); // idempotent
  });
  after(async () => {
    await se.close();
    await remote.stop();
    await source.stop();
  });

  const replicaFiles = async (): Promise<string[]> => {
    const core = remote.core!;
    const admin = core.tokens.authenticate(remote.token);
    const entries = await core.namespace.descendants(admin, '/replicas' as never);
    return entries.filter((e) => e.type !== 'DIR').map((e) => e.path);
  };

  test('init creates the base collection and its parents', async () => {
    const res = await fetch(`${remote.url}/replicas/desy/`, {
      method: 'PROPFIND',
      headers: { authorization: `Bearer ${remote.token}`, depth: '0' },
    });
    assert.equal(res.status, 207);
  });

  contract('sluice', () => ({ se, stored: replicaFiles }));

  test('the token is sent as a bearer and handed out for third-party copies', async () => {
    assert.equal(se.authorization(), `Bearer ${remote.token}`);
    const anonymous = new WebDavStorageElement({ name: 'anon', url: `${remote.url}/replicas/anon` });
    assert.equal(anonymous.authorization(), undefined);
    await assert.rejects(anonymous.init(), (e) => e instanceof SluiceError && /401/.test(e.message));
    await anonymous.close();
  });

  test('space: no RFC 4331 quota here, so the configured capacity (or unlimited) with free unknown', async () => {
    const sized = new WebDavStorageElement({
      name: 'sized',
      url: `${remote.url}/replicas/desy`,
      token: remote.token,
      capacityBytes: 10 << 30,
    });
    assert.deepEqual(await sized.space(), { total: 10 << 30, free: 10 << 30 });
    await sized.close();
    assert.deepEqual(await se.space(), { total: Number.MAX_SAFE_INTEGER, free: Number.MAX_SAFE_INTEGER });
  });

  test('pullFrom: the endpoint pulls from another sluice by third-party copy, with progress', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 1);
    await fetch(`${source.url}/origin.bin`, { method: 'PUT', body: data, headers: { authorization: `Bearer ${source.token}` } });
    const progress: number[] = [];
    const got = await se.pullFrom(
      { url: `${source.url}/origin.bin`, authorization: `Bearer ${source.token}` },
      { expectedSize: data.length, expectedAdler32: adler32Hex(data), onProgress: (n) => progress.push(n) },
    );
    assert.notEqual(got, 'unsupported');
    if (got === 'unsupported') return;
    assert.match(got.location, LOCATION);
    assert.equal(got.size, data.length);
    assert.equal(got.checksums.adler32, adler32Hex(data));
    assert.ok(progress.length >= 1 && progress.at(-1) === data.length, `progress ${progress.join(',')}`);
    assert.ok((await bytesOf(await se.read(got.location))).equals(data));

    // Without an expected checksum the endpoint must compare against the source's Digest itself.
    const unchecked = await se.pullFrom({ url: `${source.url}/origin.bin`, authorization: `Bearer ${source.token}` });
    assert.notEqual(unchecked, 'unsupported');
    if (unchecked !== 'unsupported') assert.equal(unchecked.checksums.adler32, adler32Hex(data));
  });

  test('pullFrom: a wrong expected checksum, a missing source or a wrong token fail and leave nothing', async () => {
    const before = await replicaFiles();
    const data = randomBytes(10_000);
    await fetch(`${source.url}/small.bin`, { method: 'PUT', body: data, headers: { authorization: `Bearer ${source.token}` } });
    const auth = `Bearer ${source.token}`;
    await assert.rejects(
      se.pullFrom({ url: `${source.url}/small.bin`, authorization: auth }, { expectedAdler32: '00000001' }),
      isCode('CHECKSUM_MISMATCH'),
    );
    await assert.rejects(
      se.pullFrom({ url: `${source.url}/small.bin`, authorization: auth }, { expectedSize: 1 }),
      isCode('CHECKSUM_MISMATCH'),
    );
    await assert.rejects(se.pullFrom({ url: `${source.url}/none.bin`, authorization: auth }), /third-party copy failed: .*404/);
    await assert.rejects(se.pullFrom({ url: `${source.url}/small.bin`, authorization: 'Bearer wrong' }), /third-party copy failed: .*401/);
    assert.deepEqual(await replicaFiles(), before);
  });

  test('pullFrom: an abort stops the copy and removes the partial target', async () => {
    const before = await replicaFiles();
    let sourceClosed!: () => void;
    const closed = new Promise<void>((r) => (sourceClosed = r));
    const trickle: Server = createServer((req, res) => {
      res.writeHead(200, { 'content-length': String(50 << 20) });
      const t = setInterval(() => res.write(randomBytes(4096)), 5);
      res.on('close', () => {
        clearInterval(t);
        sourceClosed();
      });
    });
    await new Promise<void>((r) => trickle.listen(0, '127.0.0.1', () => r()));
    const controller = new AbortController();
    const pulling = se.pullFrom(
      { url: `http://127.0.0.1:${(trickle.address() as AddressInfo).port}/big` },
      {
        expectedAdler32: '12345678',
        onProgress: (n) => n > 0 && controller.abort(new Error('operator cancelled')),
        signal: controller.signal,
      },
    );
    await assert.rejects(pulling, /operator cancelled/);
    await closed;
    trickle.closeAllConnections();
    await new Promise((r) => trickle.close(r));
    for (let i = 0; i < 50 && (await partialUploads(remote.dataDir)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await partialUploads(remote.dataDir), []);
    assert.deepEqual(await replicaFiles(), before);
  });

  test('pullFrom: 405 and 501 mean no third-party copy (remembered); a 400 about the Source is an error', async () => {
    let answer = { status: 400, body: 'Unknown source hostname' };
    let copies = 0;
    const peer: Server = createServer((req, res) => {
      req.resume();
      if (req.method === 'MKCOL') return void res.writeHead(201).end();
      if (req.method === 'DELETE') return void res.writeHead(404).end();
      copies++;
      res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(answer.body);
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', () => r()));
    const other = new WebDavStorageElement({ name: 'peer', url: `http://127.0.0.1:${(peer.address() as AddressInfo).port}/r` });
    try {
      await other.init();
      const src = { url: 'http://source.example/a.bin' };
      await assert.rejects(other.pullFrom(src), /COPY refused: HTTP 400 \(Unknown source hostname\)/);
      answer = { status: 501, body: 'COPY not implemented' };
      assert.equal(await other.pullFrom(src), 'unsupported');
      answer = { status: 202, body: 'success: Created\n' };
      assert.equal(await other.pullFrom(src), 'unsupported', 'remembered: no second COPY');
      assert.equal(copies, 2);
      await assert.rejects(other.pullFrom({ url: 'ftp://source.example/a.bin' }), isCode('BAD_REQUEST'));
    } finally {
      await other.close();
      peer.closeAllConnections();
      await new Promise((r) => peer.close(r));
    }
  });

  test("thirdPartyCopy: 'never' always streams", async () => {
    const never = new WebDavStorageElement({
      name: 'never',
      url: `${remote.url}/replicas/desy`,
      token: remote.token,
      thirdPartyCopy: 'never',
    });
    assert.equal(await never.pullFrom({ url: `${source.url}/origin.bin` }), 'unsupported');
    await never.close();
  });
});

describe('against nginx with the dav module', { skip: !nginxAvailable() && 'nginx dav-ext module not installed' }, () => {
  let nginx: NginxDav;
  let source: RunningServer;
  let se: WebDavStorageElement;

  before(async () => {
    nginx = await startNginxDav();
    source = await startServer({ fsync: false });
    se = new WebDavStorageElement({ name: 'nginx', url: `${nginx.url}/replicas/site-a/disk`, capacityBytes: 1 << 30 });
    await se.init();
  });
  after(async () => {
    await se.close();
    await nginx.stop();
    await source.stop();
  });

  const replicaFiles = (): Promise<string[]> => filesUnder(join(nginx.root, 'replicas'));

  test('init creates the nested base collection (nginx makes no parents)', async () => {
    assert.ok((await stat(join(nginx.root, 'replicas', 'site-a', 'disk'))).isDirectory());
  });

  contract('nginx', () => ({ se, stored: replicaFiles }));

  test('nginx offers no Digest: receive verifies by reading back, and the replica is on disk as sent', async () => {
    const data = randomBytes(300_000);
    const head = await fetch(`${nginx.url}/`, { method: 'HEAD', headers: { 'want-digest': 'adler32' } });
    assert.equal(head.headers.get('digest'), null, 'nginx really offers no Digest');
    const got = await se.receive(Readable.from([data]), { extraChecksums: new Set() });
    assert.ok((await readFile(join(nginx.root, 'replicas', 'site-a', 'disk', got.location))).equals(data));
    await se.remove(got.location);
  });

  test('corrupted bytes on the endpoint are found by verify', async () => {
    const data = randomBytes(100_000);
    const got = await se.receive(Readable.from([data]), { extraChecksums: new Set() });
    assert.equal(await se.verify(got.location, got.checksums.adler32!), true);
    const file = join(nginx.root, 'replicas', 'site-a', 'disk', got.location);
    const bad = Buffer.from(data);
    bad[50_000] = bad[50_000]! ^ 0xff;
    bad[50_001] = bad[50_001]! ^ 0x01;
    await writeFile(file, bad);
    assert.equal(await se.verify(got.location, got.checksums.adler32!), false);
    assert.equal(await se.verify(got.location, got.checksums.adler32!, { size: data.length }), false);
    await writeFile(file, data.subarray(0, 99_999));
    assert.equal(await se.verify(got.location, got.checksums.adler32!, { size: data.length }), false, 'truncated');
    await se.remove(got.location);
  });

  test('space: the configured capacity, nginx offers no quota', async () => {
    assert.deepEqual(await se.space(), { total: 1 << 30, free: 1 << 30 });
  });

  test("pullFrom: nginx does no third-party copy: 'unsupported', remembered, and nothing left", async () => {
    const data = randomBytes(1000);
    await fetch(`${source.url}/for-nginx.bin`, { method: 'PUT', body: data, headers: { authorization: `Bearer ${source.token}` } });
    const src = { url: `${source.url}/for-nginx.bin`, authorization: `Bearer ${source.token}` };
    assert.equal(await se.pullFrom(src, { expectedAdler32: adler32Hex(data) }), 'unsupported');
    assert.equal(await se.pullFrom(src), 'unsupported');
    assert.deepEqual(await replicaFiles(), []);
  });

  test('sluice pulls from nginx with TPC (a source without Digest) when the caller knows the checksum', async () => {
    const data = randomBytes(400_000);
    const put = await fetch(`${nginx.url}/replicas/plain.bin`, { method: 'PUT', body: data });
    assert.equal(put.status, 201);
    const sluiceSe = new WebDavStorageElement({ name: 'sluice-from-nginx', url: `${source.url}/pulled`, token: source.token });
    await sluiceSe.init();
    const got = await sluiceSe.pullFrom({ url: `${nginx.url}/replicas/plain.bin` }, { expectedAdler32: adler32Hex(data) });
    assert.notEqual(got, 'unsupported');
    if (got !== 'unsupported') assert.equal(got.checksums.adler32, adler32Hex(data));
    // Without a known checksum the copy must fail: nginx cannot say what it sent.
    await assert.rejects(sluiceSe.pullFrom({ url: `${nginx.url}/replicas/plain.bin` }), /no adler32 Digest/);
    await sluiceSe.close();
    await fetch(`${nginx.url}/replicas/plain.bin`, { method: 'DELETE' });
  });
});
