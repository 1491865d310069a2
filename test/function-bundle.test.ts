// Bundle unpacking with real tar.gz archives: content digests, read-only installs, and every kind of
// archive the server must refuse without leaving anything behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { DEFAULT_UNPACK_LIMITS, installBundle, stagingRoot, unpackBundle, type UnpackLimits } from '../src/functions/bundle.js';
import { nodeBundle, rawTar, tarGz, type RawEntry } from './support/tar.js';

let root: string;
let bundles: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-bundle-'));
  bundles = join(root, 'functions');
  await mkdir(bundles);
});
after(async () => rm(root, { recursive: true, force: true }));

const unpack = (archive: Buffer, limits: Partial<UnpackLimits> = {}) =>
  unpackBundle(Readable.from([archive]), bundles, { ...DEFAULT_UNPACK_LIMITS, ...limits }, { fsync: false });

async function refusedWith(archive: Buffer, code: string, detail: RegExp, limits: Partial<UnpackLimits> = {}): Promise<void> {
  await assert.rejects(unpack(archive, limits), (e: Error & { code?: string }) => {
    assert.equal(e.code, code, e.message);
    assert.match(e.message, detail);
    return true;
  });
  assert.deepEqual(await readdir(stagingRoot(bundles)), [], 'the staging area is empty again');
  assert.ok(!existsSync(join(root, 'evil')) && !existsSync(join(bundles, 'evil')), 'nothing escaped');
}

test('a bundle unpacks read-only, keeps exec bits and installs under name/digest', async () => {
  const staged = await unpack(
    tarGz([
      { path: 'sluice.function.json', body: JSON.stringify({ name: 'tool', runtime: 'exec', handler: 'bin/run' }) },
      { path: 'bin/', type: 'Directory' },
      { path: 'bin/run', body: '#!/bin/sh\ncat\n', mode: 0o755 },
      { path: 'data/empty/', type: 'Directory' },
      { path: 'lib/x.txt', body: 'x' },
    ]),
  );
  assert.equal(staged.manifest.name, 'tool');
  assert.match(staged.digest, /^[0-9a-f]{64}$/);
  assert.equal(staged.size, 14 + 1 + JSON.stringify({ name: 'tool', runtime: 'exec', handler: 'bin/run' }).length);
  const { dir, existed } = await installBundle(staged, bundles, { fsync: false });
  assert.equal(existed, false);
  assert.equal(dir, join(bundles, 'tool', staged.digest));
  assert.equal((await stat(join(dir, 'bin/run'))).mode & 0o777, 0o555);
  assert.equal((await stat(join(dir, 'lib/x.txt'))).mode & 0o777, 0o444);
  assert.ok((await stat(join(dir, 'data/empty'))).isDirectory());
  assert.equal(await readFile(join(dir, 'lib/x.txt'), 'utf8'), 'x');

  const again = await installBundle(await unpack(tarGz(await entriesOf(dir))), bundles, { fsync: false });
  assert.deepEqual(again, { dir, existed: true });
  assert.deepEqual(await readdir(stagingRoot(bundles)), []);
});

/** The tree in dir as archive entries, for re-packing. */
async function entriesOf(dir: string): Promise<RawEntry[]> {
  const out: RawEntry[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(e.parentPath, e.name).slice(dir.length + 1);
    const full = join(dir, path);
    if (e.isDirectory()) out.push({ path: path + '/', type: 'Directory' });
    else out.push({ path, body: await readFile(full), mode: (await stat(full)).mode & 0o777 });
  }
  return out;
}

test('the digest depends on content only: not on order, times, owners or listed directories', async () => {
  const a = nodeBundle('same');
  const one = await unpack(
    tarGz([{ path: './', type: 'Directory' }, ...a, { path: 'lib/', type: 'Directory' }, { path: 'lib/u.js', body: 'u' }]),
  );
  const two = await unpack(
    tarGz([{ path: 'lib/u.js', body: 'u', mtime: new Date(0) }, ...[...a].reverse().map((e) => ({ ...e, path: './' + e.path }))]),
  );
  assert.equal(one.digest, two.digest);
  const modeChanged = await unpack(tarGz([...a, { path: 'lib/u.js', body: 'u', mode: 0o755 }]));
  const bytesChanged = await unpack(tarGz([...a, { path: 'lib/u.js', body: 'v' }]));
  const emptyDirAdded = await unpack(tarGz([...a, { path: 'lib/u.js', body: 'u' }, { path: 'e/', type: 'Directory' }]));
  assert.equal(new Set([one.digest, modeChanged.digest, bytesChanged.digest, emptyDirAdded.digest]).size, 4);
  for (const s of [one, two, modeChanged, bytesChanged, emptyDirAdded]) await rm(s.dir, { recursive: true, force: true });
});

test('large files stream through with back-pressure and hash correctly', async () => {
  const big = randomBytes(6 * 1024 * 1024);
  const staged = await unpack(tarGz([...nodeBundle('big'), { path: 'blob.bin', body: big }]));
  assert.ok((await readFile(join(staged.dir, 'blob.bin'))).equals(big));
  await rm(staged.dir, { recursive: true, force: true });
});

test('paths leaving the bundle are refused', async () => {
  const ok = nodeBundle('evil');
  await refusedWith(tarGz([...ok, { path: '../evil', body: 'x' }]), 'BAD_REQUEST', /"\.\.\/evil" leaves the bundle/);
  await refusedWith(tarGz([...ok, { path: 'a/../../evil', body: 'x' }]), 'BAD_REQUEST', /leaves the bundle/);
  await refusedWith(tarGz([{ path: '/tmp/evil', body: 'x' }, ...ok]), 'BAD_REQUEST', /"\/tmp\/evil" has an absolute path/);
  await refusedWith(tarGz([...ok, { path: 'a\nb', body: 'x' }]), 'BAD_REQUEST', /control character/);
});

test('links, devices and FIFOs are refused', async () => {
  const ok = nodeBundle('links');
  await refusedWith(
    tarGz([...ok, { path: 'passwd', type: 'SymbolicLink', linkpath: '/etc/passwd' }]),
    'BAD_REQUEST',
    /"passwd" is a symbolic link \(to "\/etc\/passwd"\)/,
  );
  await refusedWith(tarGz([...ok, { path: 'inner', type: 'SymbolicLink', linkpath: 'main.mjs' }]), 'BAD_REQUEST', /symbolic link/);
  await refusedWith(tarGz([...ok, { path: 'hard', type: 'Link', linkpath: 'main.mjs' }]), 'BAD_REQUEST', /"hard" is a hard link/);
  await refusedWith(tarGz([...ok, { path: 'null', type: 'CharacterDevice' }]), 'BAD_REQUEST', /"null" is a device/);
  await refusedWith(tarGz([...ok, { path: 'pipe', type: 'FIFO' }]), 'BAD_REQUEST', /"pipe" is a FIFO/);
});

test('duplicates and file/directory clashes are refused', async () => {
  const ok = nodeBundle('dup');
  await refusedWith(tarGz([...ok, { path: 'main.mjs', body: 'again' }]), 'BAD_REQUEST', /archive has "main\.mjs" twice/);
  await refusedWith(tarGz([...ok, { path: 'main.mjs/x', body: 'x' }]), 'BAD_REQUEST', /"main\.mjs" is both a file and a directory/);
  await refusedWith(
    tarGz([{ path: 'd/x', body: 'x' }, { path: 'd', body: 'x' }, ...ok]),
    'BAD_REQUEST',
    /"d" is both a file and a directory/,
  );
});

test('caps on bytes, entries and path length', async () => {
  const ok = nodeBundle('caps');
  await refusedWith(tarGz([...ok, { path: 'big', body: Buffer.alloc(10_000) }]), 'PAYLOAD_TOO_LARGE', /unpacks to more than 5000 bytes/, {
    maxBytes: 5000,
  });
  const many = Array.from({ length: 20 }, (_, i) => ({ path: `f${i}`, body: '' }));
  await refusedWith(tarGz([...ok, ...many]), 'PAYLOAD_TOO_LARGE', /more than 10 entries/, { maxFiles: 10 });
  await refusedWith(tarGz([...ok, { path: 'a/'.repeat(40) + 'f', body: '' }]), 'BAD_REQUEST', /path longer than 64 bytes/, {
    maxPathBytes: 64,
  });
  // An archive whose compressed form is already over the cap is refused before it is unpacked.
  const noisy = gzipSync(rawTar([...ok, { path: 'noise', body: randomBytes(20_000) }]));
  await refusedWith(noisy, 'PAYLOAD_TOO_LARGE', /archive larger than 10000 bytes/, { maxBytes: 10_000 });
  // A gzip bomb: a little gzip that inflates into far more tar than any allowed content.
  const bomb = gzipSync(Buffer.concat([rawTar(ok).subarray(0, -1024), Buffer.alloc(30 * 1024 * 1024)]));
  await refusedWith(bomb, 'PAYLOAD_TOO_LARGE', /unpacks to more than/, { maxBytes: 1024 * 1024, maxFiles: 10 });
});

test('what is not a tar.gz, or not a bundle, is refused', async () => {
  await refusedWith(Buffer.from('{"name": "x"}'), 'BAD_REQUEST', /not a gzip-compressed tar archive/);
  const whole = tarGz(nodeBundle('cut'));
  await refusedWith(whole.subarray(0, whole.length - 20), 'BAD_REQUEST', /not a gzip-compressed tar archive|not a valid tar/);
  await refusedWith(gzipSync(Buffer.from('hello, this is not tar'.repeat(100))), 'BAD_REQUEST', /not a valid tar archive/);
  await refusedWith(tarGz([{ path: 'main.mjs', body: '' }]), 'BAD_REQUEST', /no manifest/);
  await refusedWith(tarGz(nodeBundle('x', { limits: { timeoutSeconds: 0 } })), 'BAD_REQUEST', /limits\.timeoutSeconds must be > 0/);
});
