// The WebDAV door with real clients (curl, rclone) and over fetch: ranges, digests, Content-MD5,
// preconditions, COPY/MOVE and property handling, the events a PUT records, and bad input that
// must be refused while leaving storage exactly as it was.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServer, rawRequest, tempDir, type RunningServer } from './support/server.js';
import { normalizePath } from '../src/storage/paths.js';

const run = promisify(execFile);

let server: RunningServer;
let work: string;
before(async () => {
  server = await startServer({ fsync: false });
  work = await tempDir('sluice-webdav-test-');
});
after(async () => {
  await server.stop();
  await rm(work, { recursive: true, force: true });
});

function dav(method: string, path: string, init: { headers?: Record<string, string>; body?: string | Buffer; token?: string } = {}) {
  return fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${init.token ?? server.token}`, ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
}

function adler32Hex(buf: Buffer): string {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return (((b << 16) | a) >>> 0).toString(16).padStart(8, '0');
}

const b64 = (algorithm: string, data: Buffer): string => createHash(algorithm).update(data).digest('base64');

/** Everything in the namespace plus every byte file on the storage element. */
async function storageSnapshot(): Promise<string> {
  const core = server.core!;
  const admin = core.tokens.authenticate(server.token);
  const entries = (await core.namespace.descendants(admin, normalizePath('/'))).map((e) => `${e.path} ${e.type} ${e.size} ${e.etag}`);
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      if (d.isDirectory()) await walk(join(dir, d.name));
      else files.push(join(dir, d.name));
    }
  };
  await walk(join(server.dataDir, 'se'));
  return JSON.stringify({ entries, files: files.sort() });
}

test('curl -T uploads and curl downloads the same bytes', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const src = join(work, 'curl-src.bin');
  const back = join(work, 'curl-back.bin');
  await writeFile(src, data);
  const auth = `Authorization: Bearer ${server.token}`;
  const { stdout: putStatus } = await run('curl', [
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-H',
    auth,
    '-T',
    src,
    `${server.url}/curl.bin`,
  ]);
  assert.equal(putStatus, '201');
  const { stdout: getStatus } = await run('curl', ['-sS', '-o', back, '-w', '%{http_code}', '-H', auth, `${server.url}/curl.bin`]);
  assert.equal(getStatus, '200');
  assert.ok((await readFile(back)).equals(data));
});

test('rclone copies a tree up and back, and rclone check agrees', async () => {
  const local = join(work, 'rclone-up');
  const back = join(work, 'rclone-back');
  await mkdir(join(local, 'raw', 'scan 1'), { recursive: true });
  await writeFile(join(local, 'README.txt'), 'beamtime 11012345\n');
  await writeFile(join(local, 'raw', 'scan 1', 'frame-0001.bin'), randomBytes(200_000));
  await writeFile(join(local, 'raw', 'ünïcode €.dat'), randomBytes(1234));
  await writeFile(join(local, 'raw', 'empty'), '');
  const env = {
    ...process.env,
    RCLONE_CONFIG_SLUICE_TYPE: 'webdav',
    RCLONE_CONFIG_SLUICE_URL: server.url,
    RCLONE_CONFIG_SLUICE_VENDOR: 'other',
    RCLONE_CONFIG_SLUICE_BEARER_TOKEN: server.token,
    RCLONE_CONFIG: '/dev/null',
  };
  const opts = { env, timeout: 30_000 };
  await run('rclone', ['copy', local, 'sluice:rclone-tree'], opts);
  await run('rclone', ['check', local, 'sluice:rclone-tree'], opts);
  await run('rclone', ['copy', 'sluice:rclone-tree', back], opts);
  await run('rclone', ['check', local, back], opts);
  assert.ok(
    (await readFile(join(back, 'raw', 'scan 1', 'frame-0001.bin'))).equals(await readFile(join(local, 'raw', 'scan 1', 'frame-0001.bin'))),
  );
});

test('GET and HEAD with Range: 206, suffix ranges, 416 and validators', async () => {
  const data = randomBytes(1000);
  assert.equal((await dav('PUT', '/range.bin', { body: data, headers: { 'content-type': 'application/x-test' } })).status, 201);

  const head = await dav('HEAD', '/range.bin');
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), '1000');
  assert.equal(head.headers.get('accept-ranges'), 'bytes');
  assert.equal(head.headers.get('content-type'), 'application/x-test');
  assert.match(head.headers.get('etag')!, /^"[^"]+"$/);
  assert.ok(Date.parse(head.headers.get('last-modified')!) > 0);

  const part = await dav('GET', '/range.bin', { headers: { range: 'bytes=10-19' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), 'bytes 10-19/1000');
  assert.equal(part.headers.get('content-length'), '10');
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(data.subarray(10, 20)));

  const suffix = await dav('GET', '/range.bin', { headers: { range: 'bytes=-5' } });
  assert.equal(suffix.status, 206);
  assert.ok(Buffer.from(await suffix.arrayBuffer()).equals(data.subarray(995)));

  const open = await dav('GET', '/range.bin', { headers: { range: 'bytes=990-' } });
  assert.equal(open.headers.get('content-range'), 'bytes 990-999/1000');
  assert.ok(Buffer.from(await open.arrayBuffer()).equals(data.subarray(990)));

  const beyond = await dav('GET', '/range.bin', { headers: { range: 'bytes=1000-' } });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers.get('content-range'), 'bytes */1000');
  await beyond.arrayBuffer();

  const etag = head.headers.get('etag')!;
  const notModified = await dav('GET', '/range.bin', { headers: { 'if-none-match': etag } });
  assert.equal(notModified.status, 304);
  const staleIfRange = await dav('GET', '/range.bin', { headers: { range: 'bytes=0-0', 'if-range': '"other"' } });
  assert.equal(staleIfRange.status, 200);
  assert.equal((await staleIfRange.arrayBuffer()).byteLength, 1000);
});

test('Want-Digest on PUT, GET and HEAD returns RFC 3230 digests equal to node:crypto', async () => {
  const data = randomBytes(100_000);
  const expected = { adler32: adler32Hex(data), md5: b64('md5', data), sha256: b64('sha256', data) };
  const put = await dav('PUT', '/digest.bin', { body: data, headers: { 'want-digest': 'adler32, md5;q=0.5, sha-256;q=0.3' } });
  assert.equal(put.status, 201);
  assert.equal(put.headers.get('digest'), `adler32=${expected.adler32},md5=${expected.md5},sha-256=${expected.sha256}`);

  assert.equal((await dav('PUT', '/digest2.bin', { body: data })).status, 201);
  const get = await dav('GET', '/digest2.bin', { headers: { 'want-digest': 'sha-256' } });
  assert.equal(get.headers.get('digest'), `sha-256=${expected.sha256}`);
  await get.arrayBuffer();
  const head = await dav('HEAD', '/digest2.bin', { headers: { 'want-digest': 'md5,adler32;q=0.1,unknown' } });
  assert.equal(head.headers.get('digest'), `md5=${expected.md5},adler32=${expected.adler32}`);
});

test('Content-MD5: a match stores, a mismatch answers 400 and stores nothing', async () => {
  const data = Buffer.from('checked content\n');
  const good = await dav('PUT', '/md5-ok.txt', { body: data, headers: { 'content-md5': b64('md5', data) } });
  assert.equal(good.status, 201);

  const before = await storageSnapshot();
  const bad = await dav('PUT', '/md5-bad.txt', { body: data, headers: { 'content-md5': b64('md5', Buffer.from('something else')) } });
  assert.equal(bad.status, 400);
  assert.equal(await storageSnapshot(), before);
  assert.equal((await dav('GET', '/md5-bad.txt')).status, 404);

  const overwrite = await dav('PUT', '/md5-ok.txt', { body: 'new', headers: { 'content-md5': b64('md5', data) } });
  assert.equal(overwrite.status, 400);
  assert.equal(await (await dav('GET', '/md5-ok.txt')).text(), data.toString());
});

test('PUT status codes and If-Match / If-None-Match preconditions', async () => {
  assert.equal((await dav('PUT', '/cond.txt', { body: 'one', headers: { 'if-match': '*' } })).status, 412);
  assert.equal((await dav('PUT', '/cond.txt', { body: 'one', headers: { 'if-none-match': '*' } })).status, 201);
  assert.equal((await dav('PUT', '/cond.txt', { body: 'two', headers: { 'if-none-match': '*' } })).status, 412);
  const replaced = await dav('PUT', '/cond.txt', { body: 'two', headers: { 'if-match': '*' } });
  assert.equal(replaced.status, 204);
  const etag = replaced.headers.get('etag')!;
  assert.equal((await dav('PUT', '/cond.txt', { body: 'three', headers: { 'if-match': '"stale"' } })).status, 412);
  assert.equal((await dav('PUT', '/cond.txt', { body: 'three', headers: { 'if-match': etag } })).status, 204);
  assert.equal((await dav('DELETE', '/cond.txt', { headers: { 'if-none-match': '*' } })).status, 412);
  assert.equal((await dav('DELETE', '/cond.txt', { headers: { 'if-match': etag } })).status, 412);
  assert.equal((await dav('DELETE', '/cond.txt', { headers: { 'if-match': '*' } })).status, 204);
  assert.equal((await dav('DELETE', '/cond.txt', { headers: { 'if-match': '*' } })).status, 412);

  assert.equal((await dav('PUT', '/no/parent.txt', { body: 'x' })).status, 409);
  assert.equal((await dav('MKCOL', '/coll')).status, 201);
  assert.equal((await dav('MKCOL', '/coll/')).status, 405);
  assert.equal((await dav('PUT', '/coll', { body: 'x' })).status, 409);
  assert.equal((await dav('MKCOL', '/coll2', { body: 'x', headers: { 'content-type': 'text/plain' } })).status, 415);
  assert.equal((await dav('MKCOL', '/missing/coll')).status, 409);
});

test('COPY and MOVE: 201/204, Overwrite F, Depth 0, to self, to a host that does not resolve (RFC 6761 .invalid)', async () => {
  await dav('MKCOL', '/cm');
  await dav('PUT', '/cm/a.txt', { body: 'a' });
  const dest = (p: string) => ({ destination: `${server.url}${p}` });
  assert.equal((await dav('COPY', '/cm/a.txt', { headers: dest('/cm/b.txt') })).status, 201);
  assert.equal((await dav('COPY', '/cm/a.txt', { headers: { ...dest('/cm/b.txt'), overwrite: 'F' } })).status, 412);
  assert.equal((await dav('COPY', '/cm/a.txt', { headers: { destination: '/cm/b.txt' } })).status, 204);
  assert.equal((await dav('COPY', '/cm/a.txt', { headers: dest('/cm/a.txt') })).status, 403);
  assert.equal((await dav('COPY', '/cm/a.txt', { headers: { destination: 'http://elsewhere.invalid/cm/c.txt' } })).status, 502);
  assert.equal((await dav('COPY', '/cm', { headers: { ...dest('/cm-shallow'), depth: '0' } })).status, 201);
  assert.equal((await dav('GET', '/cm-shallow/a.txt')).status, 404);
  assert.equal((await dav('COPY', '/cm', { headers: dest('/cm-deep') })).status, 201);
  assert.equal(await (await dav('GET', '/cm-deep/a.txt')).text(), 'a');
  assert.equal((await dav('MOVE', '/cm/b.txt', { headers: dest('/cm/c.txt') })).status, 201);
  assert.equal((await dav('MOVE', '/cm/c.txt', { headers: { ...dest('/cm/a.txt'), overwrite: 'F' } })).status, 412);
  assert.equal((await dav('MOVE', '/cm/c.txt', { headers: dest('/cm/a.txt') })).status, 204);
  assert.equal((await dav('GET', '/cm/c.txt')).status, 404);
  assert.equal((await dav('MOVE', '/cm/a.txt', { headers: dest('/api/v1/x') })).status, 403);
  assert.equal((await dav('DELETE', '/cm-deep')).status, 204);
  assert.equal((await dav('GET', '/cm-deep/a.txt')).status, 404);
});

test('PROPFIND depths and PROPPATCH atomicity with protected live properties', async () => {
  await dav('MKCOL', '/props');
  await dav('PUT', '/props/f.txt', { body: 'hello', headers: { 'content-type': 'text/plain' } });

  const d1 = await dav('PROPFIND', '/props/', { headers: { depth: '1' } });
  assert.equal(d1.status, 207);
  const xml = await d1.text();
  assert.match(xml, /<D:href>\/props\/<\/D:href>/);
  assert.match(xml, /<D:href>\/props\/f.txt<\/D:href>/);
  assert.match(xml, /<D:getcontentlength>5<\/D:getcontentlength>/);
  assert.match(xml, /<D:getcontenttype>text\/plain<\/D:getcontenttype>/);
  assert.match(xml, /<D:resourcetype><D:collection\/><\/D:resourcetype>/);

  const infinite = await dav('PROPFIND', '/props', { headers: { depth: 'infinity' } });
  assert.equal(infinite.status, 403);
  assert.match(await infinite.text(), /propfind-finite-depth/);

  const patch = (body: string) => dav('PROPPATCH', '/props/f.txt', { body, headers: { 'content-type': 'application/xml' } });
  const set = await patch(
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:sample xml:lang="en">lysozyme &amp; <Z:b>salt</Z:b></Z:sample></D:prop></D:set></D:propertyupdate>',
  );
  assert.equal(set.status, 207);
  assert.match(await set.text(), /HTTP\/1.1 200 OK/);

  const refused = await patch(
    '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:other>x</Z:other><D:getetag>"forged"</D:getetag></D:prop></D:set><D:remove><D:prop><Z:sample/></D:prop></D:remove></D:propertyupdate>',
  );
  assert.equal(refused.status, 207);
  const refusedXml = await refused.text();
  assert.match(refusedXml, /<D:getetag\/><\/D:prop><D:status>HTTP\/1.1 403 Forbidden/);
  assert.match(refusedXml, /HTTP\/1.1 424 Failed Dependency/);

  const get = await dav('PROPFIND', '/props/f.txt', {
    headers: { depth: '0' },
    body: '<D:propfind xmlns:D="DAV:"><D:prop><Y:sample xmlns:Y="urn:z"/><Y:other xmlns:Y="urn:z"/></D:prop></D:propfind>',
  });
  const got = await get.text();
  assert.match(got, /<P:sample xmlns:P="urn:z">lysozyme &amp; <Z:b xmlns:Z="urn:z">salt<\/Z:b><\/P:sample>/);
  assert.match(got, /<P:other xmlns:P="urn:z"\/><\/D:prop><D:status>HTTP\/1.1 404 Not Found/);

  const names = await (
    await dav('PROPFIND', '/props/f.txt', { headers: { depth: '0' }, body: '<propfind xmlns="DAV:"><propname/></propfind>' })
  ).text();
  assert.match(names, /<P:sample xmlns:P="urn:z"\/>/);
  assert.match(names, /<D:getetag\/>/);
});

test('a PUT records IN_CREATE, IN_OPEN, IN_MODIFY, IN_CLOSE_WRITE, IN_ATTRIB for the new file', async () => {
  await dav('MKCOL', '/watched');
  const latest = await server.core!.eventLog.read(0, 100_000);
  const from = latest.length > 0 ? latest[latest.length - 1]!.id : 0;
  assert.equal((await dav('PUT', '/watched/new.txt', { body: 'data' })).status, 201);
  const events = (await server.core!.eventLog.read(from, 100)).filter((e) => e.path === '/watched/new.txt');
  assert.deepEqual(
    events.map((e) => e.type),
    ['IN_CREATE', 'IN_OPEN', 'IN_MODIFY', 'IN_CLOSE_WRITE', 'IN_ATTRIB'],
  );
});

test('bad input is refused and leaves storage unchanged', async () => {
  await dav('MKCOL', '/guarded');
  await dav('PUT', '/guarded/keep.txt', { body: 'keep' });
  const other = server.core!.tokens.create({ subject: 'elsewhere', scopes: ['storage.modify:/other'] }).secret;
  const before = await storageSnapshot();

  const cases: [string, () => Promise<number>, number][] = [
    ['.. segment', async () => (await rawRequest(server, 'PUT', '/guarded/../x.txt', {}, 'x')).status, 400],
    ['%2e%2e segment', async () => (await rawRequest(server, 'PUT', '/guarded/%2e%2e/x.txt', {}, 'x')).status, 400],
    ['%2E%2E in DELETE', async () => (await rawRequest(server, 'DELETE', '/guarded/%2E%2E')).status, 400],
    ['%00 in name', async () => (await rawRequest(server, 'PUT', '/guarded/x%00.txt', {}, 'x')).status, 400],
    [
      '.. in Destination',
      async () => (await rawRequest(server, 'COPY', '/guarded/keep.txt', { destination: `${server.url}/guarded/../x.txt` })).status,
      400,
    ],
    [
      'header over 16 KiB',
      async () => (await rawRequest(server, 'PUT', '/guarded/big.txt', { 'x-padding': 'a'.repeat(17 * 1024) }, 'x')).status,
      431,
    ],
    [
      'malformed PROPFIND',
      async () => (await dav('PROPFIND', '/guarded', { headers: { depth: '0' }, body: '<D:propfind xmlns:D="DAV:"><D:prop>' })).status,
      400,
    ],
    [
      'malformed PROPPATCH',
      async () => (await dav('PROPPATCH', '/guarded/keep.txt', { body: '<propertyupdate xmlns="DAV:"><set>' })).status,
      400,
    ],
    ['PUT under /api', async () => (await dav('PUT', '/api/v1/sneaky', { body: 'x' })).status, 403],
    ['MKCOL under /api', async () => (await dav('MKCOL', '/api/x')).status, 403],
    ['wrong token', async () => (await dav('PUT', '/guarded/x.txt', { body: 'x', token: 'sluice_nope_nope' })).status, 401],
    ['no token', async () => (await fetch(`${server.url}/guarded/x.txt`, { method: 'PUT', body: 'x' })).status, 401],
    ['token for another path', async () => (await dav('PUT', '/guarded/x.txt', { body: 'x', token: other })).status, 403],
    ['delete with token for another path', async () => (await dav('DELETE', '/guarded', { token: other })).status, 403],
  ];
  for (const [name, attempt, status] of cases) {
    assert.equal(await attempt(), status, name);
    assert.equal(await storageSnapshot(), before, `${name} changed storage`);
  }

  const unauthorized = await fetch(`${server.url}/guarded/keep.txt`);
  const challenge = unauthorized.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /Basic/);
  assert.match(challenge, /Bearer/);
});

test('Basic auth with the token as password works, and the API keeps its JSON parser', async () => {
  const basic = `Basic ${Buffer.from(`anyone:${server.token}`).toString('base64')}`;
  const res = await fetch(`${server.url}/guarded/keep.txt`, { headers: { authorization: basic } });
  assert.equal(await res.text(), 'keep');
  const options = await dav('OPTIONS', '/');
  assert.equal(options.headers.get('dav'), '1');
  assert.match(options.headers.get('allow')!, /PROPFIND/);

  const mkdir = await fetch(`${server.url}/api/v1/namespace/guarded`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ action: 'mkdir', name: 'via-api' }),
  });
  assert.equal(mkdir.status, 201);
  const listing = await dav('GET', '/guarded/');
  assert.match(listing.headers.get('content-type')!, /text\/html/);
  assert.match(await listing.text(), /via-api\//);
});
