// ADLER32 (RFC 1950) over chunks, as dCache and sluice record it: 8 lower-case hex digits.

const MOD = 65521;
/** Bytes summed before reducing: well inside exact integer arithmetic of doubles (zlib's NMAX is 5552 for 32 bits). */
const BLOCK = 5552;

/** The running ADLER32 after `bytes`, continuing from `seed` (1 for the start of a file). */
export function adler32(bytes, seed = 1) {
  let a = seed & 0xffff;
  let b = (seed >>> 16) & 0xffff;
  for (let i = 0; i < bytes.length;) {
    const end = Math.min(i + BLOCK, bytes.length);
    for (; i < end; i++) {
      a += bytes[i];
      b += a;
    }
    a %= MOD;
    b %= MOD;
  }
  return ((b << 16) | a) >>> 0;
}

export const adler32Hex = (value) => value.toString(16).padStart(8, '0');
