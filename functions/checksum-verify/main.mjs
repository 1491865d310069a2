// checksum-verify: reads a file's bytes back through the namespace, recomputes its checksums and
// compares them (and the size) with what the namespace has on record. A mismatch is a result, not an
// exception: the call succeeds with ok=false and logs an error line, so a trigger or a pipeline step
// after it can act on the flag (quarantine, re-replicate, alert). See functions/README.md.
import { createHash } from 'node:crypto';
import { pathOf } from '@sluice/builtins/events.mjs';
import { statFile } from '@sluice/builtins/local-copy.mjs';
import { adler32, adler32Hex } from './adler32.mjs';
import { streamFile } from './stream.mjs';

/** dCache's checksum type names (and common spellings) → the algorithm. */
const ALGORITHMS = { ADLER32: 'adler32', MD5_TYPE: 'md5', MD5: 'md5', SHA256: 'sha256', 'SHA-256': 'sha256' };

/** A recorded value in the form computed here: lower-case hex (MD5/SHA-256 given in base64 converted). */
function normalize(algorithm, value) {
  const v = String(value).trim();
  if (algorithm === 'adler32') return /^[0-9a-f]{1,8}$/i.test(v) ? v.toLowerCase().padStart(8, '0') : v;
  const bytes = algorithm === 'md5' ? 16 : 32;
  if (new RegExp(`^[0-9a-f]{${bytes * 2}}$`, 'i').test(v)) return v.toLowerCase();
  const decoded = Buffer.from(v, 'base64');
  return decoded.length === bytes && decoded.toString('base64') === v ? decoded.toString('hex') : v;
}

export async function handler(event, ctx) {
  const path = pathOf(event);
  const attrs = await statFile(ctx, path);
  const recorded = [];
  for (const { type, value } of attrs.checksums ?? []) {
    const algorithm = ALGORITHMS[String(type).toUpperCase()];
    if (algorithm) recorded.push({ type, algorithm, expected: normalize(algorithm, value) });
    else ctx.log.warn('%s: checksum type %s is not one this function computes; not compared', path, type);
  }
  const wanted = new Set(['adler32', ...recorded.map((r) => r.algorithm)]);

  let adler = 1;
  let size = 0;
  const hashes = {};
  for (const a of ['md5', 'sha256']) if (wanted.has(a)) hashes[a] = createHash(a);
  const started = Date.now();
  await streamFile(ctx, path, attrs.size, (chunk) => {
    adler = adler32(chunk, adler);
    size += chunk.length;
    for (const h of Object.values(hashes)) h.update(chunk);
  });
  const seconds = (Date.now() - started) / 1000;
  const actual = { adler32: adler32Hex(adler) };
  for (const [a, h] of Object.entries(hashes)) actual[a] = h.digest('hex');

  const checksums = recorded.map((r) => ({
    type: r.type,
    expected: r.expected,
    actual: actual[r.algorithm],
    ok: r.expected === actual[r.algorithm],
  }));
  if (!recorded.some((r) => r.algorithm === 'adler32'))
    checksums.push({ type: 'ADLER32', expected: null, actual: actual.adler32, ok: null });
  const sizeOk = size === attrs.size;
  const compared = checksums.filter((c) => c.ok !== null);
  const ok = sizeOk && compared.length > 0 && compared.every((c) => c.ok);

  const result = { path, ok, size: { expected: attrs.size, actual: size }, checksums };
  if (ok) {
    ctx.log.info('%s: %d bytes in %s s, %s match', path, size, seconds.toFixed(2), compared.map((c) => c.type).join(' and '));
  } else if (compared.length === 0 && sizeOk) {
    result.reason = 'the namespace has no checksum of this file to compare with';
    ctx.log.error('%s: cannot verify: %s (ADLER32 of the bytes read: %s)', path, result.reason, actual.adler32);
  } else {
    const bad = compared.filter((c) => !c.ok).map((c) => `${c.type} expected ${c.expected}, read ${c.actual}`);
    if (!sizeOk) bad.unshift(`size expected ${attrs.size} bytes, read ${size}`);
    result.reason = `mismatch: ${bad.join('; ')}`;
    ctx.log.error('%s: CORRUPT: %s', path, bad.join('; '));
  }
  return result;
}
