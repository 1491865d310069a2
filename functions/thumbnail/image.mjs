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
  const valid = mask ?? new Uint8Array(n); // the mask's bytes are turned into the answer in place
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

/** Histogram resolution of one refinement level, and the most values gathered and sorted at the end. */
const BINS = 1 << 16;
const GATHER_MAX = 1 << 16;

/**
 * The k-th smallest valid values (0-based ranks `ks`, ascending), exactly, without copying the frame:
 * a histogram of the candidates over their range finds the bin that holds each rank; a bin with few
 * values is gathered and sorted, a crowded one is refined with another histogram over its own range.
 * Binning is monotonic in the value, so the ranks found are the true ones. `candidates` flags the
 * values still in question; `below` counts the valid values ordered before all of them.
 */
function ranked(values, candidates, ks, below = 0) {
  const n = values.length;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    if (!candidates[i]) continue;
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const out = new Map();
  if (min === max) {
    for (const k of ks) out.set(k, min);
    return out;
  }
  const scale = BINS / (max - min);
  if (!(scale > 0 && Number.isFinite(scale))) {
    // A range too wide or too narrow for doubles to bin (±1e308, or subnormal): sort them all.
    const all = Float64Array.from(values.filter((_, i) => candidates[i])).sort();
    for (const k of ks) out.set(k, all[k - below]);
    return out;
  }
  const hist = new Uint32Array(BINS);
  for (let i = 0; i < n; i++) if (candidates[i]) hist[binOf(values[i], min, scale)]++;

  // For each rank: its bin, and how many candidates lie in the bins before it.
  const targets = [];
  let bin = 0;
  let before = 0;
  for (const k of ks) {
    while (before + hist[bin] <= k - below) before += hist[bin++];
    targets.push({ k, bin, before: below + before });
  }
  // Bins with few values: gathered in one pass (slot per bin), then sorted.
  const slot = new Int32Array(BINS).fill(-1);
  const gathered = [];
  for (const t of targets) {
    if (hist[t.bin] <= GATHER_MAX && slot[t.bin] < 0) {
      slot[t.bin] = gathered.length;
      gathered.push({ values: new Float64Array(hist[t.bin]), n: 0 });
    }
  }
  if (gathered.length > 0) {
    for (let i = 0; i < n; i++) {
      if (!candidates[i]) continue;
      const s = slot[binOf(values[i], min, scale)];
      if (s >= 0) gathered[s].values[gathered[s].n++] = values[i];
    }
    for (const g of gathered) g.values.sort();
  }
  for (const t of targets) if (slot[t.bin] >= 0) out.set(t.k, gathered[slot[t.bin]].values[t.k - t.before]);
  // Crowded bins: the same again over the values in the bin.
  const crowded = targets.filter((t) => slot[t.bin] < 0);
  for (const b of new Set(crowded.map((t) => t.bin))) {
    const inBin = crowded.filter((t) => t.bin === b);
    const next = new Uint8Array(n);
    for (let i = 0; i < n; i++) next[i] = candidates[i] && binOf(values[i], min, scale) === b ? 1 : 0;
    const found = ranked(
      values,
      next,
      inBin.map((t) => t.k),
      inBin[0].before,
    );
    for (const [k, v] of found) out.set(k, v);
  }
  return out;
}

function binOf(v, min, scale) {
  const b = Math.floor((v - min) * scale);
  return b < 0 ? 0 : b >= BINS ? BINS - 1 : b;
}

/**
 * Percentiles (0–100, ascending) of the valid pixels, with numpy's default linear interpolation;
 * nulls if no pixel is valid. Exact, in a few passes over the frame, in constant extra memory.
 */
export function percentiles(values, valid, ps) {
  let count = 0;
  for (let i = 0; i < valid.length; i++) count += valid[i];
  if (count === 0) return ps.map(() => null);
  const positions = ps.map((p) => {
    const rank = (p / 100) * (count - 1);
    const lo = Math.floor(rank);
    return { lo, hi: Math.min(lo + 1, count - 1), frac: rank - lo };
  });
  const ks = [...new Set(positions.flatMap((x) => [x.lo, x.hi]))].sort((a, b) => a - b);
  const at = ranked(values, valid, ks);
  return positions.map(({ lo, hi, frac }) => at.get(lo) + (at.get(hi) - at.get(lo)) * frac);
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
