// From one detector frame to an 8-bit preview: which pixels count, a robust intensity range
// (percentiles, as numpy.percentile computes them), an optional log stretch, and an area-averaging
// downscale. Pure functions over typed arrays; nothing here knows about files.
import { PNG } from 'pngjs';

/** astropy's LogStretch: y = log(a·x + 1) / log(a + 1) on x in [0, 1]. */
const LOG_A = 1000;

/**
 * Which pixels hold a measurement (1) and which do not (0): NaN and infinities; negative values of
 * signed integer data (PILATUS marks module gaps -1 and bad pixels -2); the all-ones value of unsigned
 * data of 16 bits or more (EIGER marks gaps and masked pixels 2^bits - 1); and pixels flagged in a
 * NeXus pixel_mask (any bit set).
 */
export function validPixels({ values, dtype, mask }) {
  const n = values.length;
  const valid = new Uint8Array(n);
  const unsigned = /^uint(\d+)$/.exec(dtype);
  const bits = unsigned ? Number(unsigned[1]) : 0;
  const sentinel = bits >= 16 ? 2 ** bits - 1 : undefined;
  const signedInt = /^int\d+$/.test(dtype);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    valid[i] = Number.isFinite(v) && !(signedInt && v < 0) && v !== sentinel && !(mask && mask[i] !== 0) ? 1 : 0;
  }
  return valid;
}

/** The k-th smallest element of a[left..right] (in place; afterwards a[left..k-1] ≤ a[k] ≤ a[k+1..right]). */
function select(a, k, left, right) {
  while (right > left) {
    const mid = (left + right) >>> 1;
    if (a[mid] < a[left]) swap(a, mid, left);
    if (a[right] < a[left]) swap(a, right, left);
    if (a[right] < a[mid]) swap(a, right, mid);
    const pivot = a[mid];
    let i = left;
    let j = right;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else break;
  }
  return a[k];
}

function swap(a, i, j) {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

/**
 * Percentiles (0–100, ascending) of the valid pixels, with numpy's default linear interpolation;
 * nulls if no pixel is valid. Linear time (quickselect), one copy of the valid values.
 */
export function percentiles(values, valid, ps) {
  let count = 0;
  for (let i = 0; i < valid.length; i++) count += valid[i];
  if (count === 0) return ps.map(() => null);
  // float32 holds every float32 and every integer up to 16 bits exactly; anything wider needs float64.
  const exactInFloat32 = values instanceof Float32Array || values instanceof Uint8Array || values instanceof Int8Array;
  const narrow = exactInFloat32 || values instanceof Uint16Array || values instanceof Int16Array;
  const a = narrow ? new Float32Array(count) : new Float64Array(count);
  for (let i = 0, o = 0; i < values.length; i++) if (valid[i]) a[o++] = values[i];
  const out = [];
  let from = 0;
  for (const p of ps) {
    const rank = (p / 100) * (count - 1);
    const lo = Math.floor(rank);
    const vlo = select(a, lo, from, count - 1);
    from = lo;
    const frac = rank - lo;
    out.push(frac === 0 ? vlo : vlo + (select(a, lo + 1, lo + 1, count - 1) - vlo) * frac);
  }
  return out;
}

/** Output size: fits in size × size, keeps the aspect ratio, never enlarges. */
export function fitSize(width, height, size) {
  const scale = Math.min(1, size / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * 8-bit gray levels: valid pixels mapped linearly (or with the log stretch) from [low, high] onto
 * [0, 255], clipped, and averaged over the input pixels each output pixel covers. Output pixels with
 * no valid input are black. A flat frame (high ≤ low) is mid-gray.
 */
export function render(frame, valid, { low, high, log, size }) {
  const { values, width: w, height: h } = frame;
  const out = fitSize(w, h, size);
  const sums = new Float64Array(out.width * out.height);
  const counts = new Uint32Array(out.width * out.height);
  const col = new Int32Array(w);
  for (let x = 0; x < w; x++) col[x] = Math.min(out.width - 1, Math.floor((x * out.width) / w));
  const range = high - low;
  const logDen = Math.log1p(LOG_A);
  if (low !== null && high !== null) {
    for (let y = 0; y < h; y++) {
      const row = Math.min(out.height - 1, Math.floor((y * out.height) / h)) * out.width;
      for (let x = 0, i = y * w; x < w; x++, i++) {
        if (!valid[i]) continue;
        let t = range > 0 ? (values[i] - low) / range : 0.5;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        if (log) t = Math.log1p(LOG_A * t) / logDen;
        sums[row + col[x]] += t;
        counts[row + col[x]]++;
      }
    }
  }
  const pixels = Buffer.alloc(out.width * out.height);
  for (let o = 0; o < pixels.length; o++) pixels[o] = counts[o] ? Math.round((255 * sums[o]) / counts[o]) : 0;
  return { width: out.width, height: out.height, pixels };
}

/** A grayscale 8-bit PNG of the pixels (row-major, top row first). */
export function encodePng({ width, height, pixels }) {
  return PNG.sync.write({ width, height, data: pixels }, { colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
}
