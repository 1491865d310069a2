import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { adler32, adler32Hex, ChecksumAccumulator, parseWantDigest, digestHeaderItem, contentMd5ToHex } from './checksums.js';

/** Straight from RFC 1950, byte by byte: the reference the fast version must match. */
function referenceAdler32(buf: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

test('adler32 matches known values', () => {
  assert.equal(adler32Hex(adler32(Buffer.from('Wikipedia'))), '11e60398');
  assert.equal(adler32Hex(adler32(Buffer.alloc(0))), '00000001');
});

test('adler32 matches the reference on random data of awkward sizes, whole and in chunks', () => {
  for (const size of [1, 7, 8, 3799, 3800, 3801, 65536, 100_003]) {
    const data = randomBytes(size);
    const expected = referenceAdler32(data);
    assert.equal(adler32(data), expected, `size ${size}`);
    let seed = 1;
    for (let i = 0; i < size; i += 1013) seed = adler32(data.subarray(i, i + 1013), seed);
    assert.equal(seed, expected, `chunked size ${size}`);
  }
  assert.equal(adler32(Buffer.alloc(100_000, 0xff)), referenceAdler32(Buffer.alloc(100_000, 0xff)));
});

test('ChecksumAccumulator computes requested digests', () => {
  const data = randomBytes(10_000);
  const acc = new ChecksumAccumulator(new Set(['md5', 'sha256'] as const));
  acc.update(data.subarray(0, 4000));
  acc.update(data.subarray(4000));
  const c = acc.digest();
  assert.equal(c.md5, createHash('md5').update(data).digest('hex'));
  assert.equal(c.sha256, createHash('sha256').update(data).digest('hex'));
  assert.equal(c.adler32, adler32Hex(referenceAdler32(data)));
  assert.equal(new ChecksumAccumulator(new Set()).digest().md5, undefined);
});

test('parseWantDigest orders by q, ignores unknown algorithms and q=0', () => {
  assert.deepEqual(parseWantDigest('md5;q=0.3, ADLER32;q=0.9, sha-256'), ['sha256', 'adler32', 'md5']);
  assert.deepEqual(parseWantDigest('crc32c, unixsum'), []);
  assert.deepEqual(parseWantDigest('md5;q=0'), []);
  assert.deepEqual(parseWantDigest(undefined), []);
});

test('Digest header items follow RFC 3230 encodings', () => {
  const md5 = createHash('md5').update('x').digest('hex');
  assert.equal(digestHeaderItem('adler32', '0a0b0c0d'), 'adler32=0a0b0c0d');
  assert.equal(digestHeaderItem('md5', md5), 'md5=' + Buffer.from(md5, 'hex').toString('base64'));
  assert.match(digestHeaderItem('sha256', 'ab'.repeat(32)), /^sha-256=[A-Za-z0-9+/]+=*$/);
});

test('contentMd5ToHex accepts only a base64 16-byte digest', () => {
  const b64 = createHash('md5').update('x').digest('base64');
  assert.equal(contentMd5ToHex(b64), Buffer.from(b64, 'base64').toString('hex'));
  assert.throws(() => contentMd5ToHex('abc'), /Content-MD5/);
  assert.throws(() => contentMd5ToHex(createHash('md5').update('x').digest('hex')), /Content-MD5/);
});
