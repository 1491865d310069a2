// thumbnail: a grayscale PNG preview of one detector frame of an HDF5/NeXus or TIFF file, written
// next to the file as derived data (<dir>/<stem>.preview.png). See functions/README.md.
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { intOption, pathOf, splitPath } from '@sluice/builtins/events.mjs';
import { headOf, isHdf5, openHdf5 } from '@sluice/builtins/hdf5.mjs';
import { download, withLocalCopy } from '@sluice/builtins/local-copy.mjs';
import { chooseImage, isTiff, readHdf5Frame, readTiffFrame } from './frames.mjs';
import { encodePng, percentiles, render, validPixels } from './image.mjs';

const DEFAULT_PERCENTILES = [0.5, 99.5];
const PREVIEW_SUFFIX = '.preview.png';

/** Where the preview of a file goes: beside it, its name's extension replaced. */
export function previewPath(path) {
  const { dir, name } = splitPath(path);
  const dot = name.lastIndexOf('.');
  const stem = dot > 0 ? name.slice(0, dot) : name;
  return `${dir === '/' ? '' : dir}/${stem}${PREVIEW_SUFFIX}`;
}

/**
 * Opens the files an HDF5 file links to (EIGER master files keep their frames in <prefix>_data_000001.h5
 * and so on), one at a time: each is downloaded from beside the file into the same local directory
 * and removed again when closed. Only link targets beside the file or below its directory are followed.
 */
function linkedFiles(ctx, path, localDir) {
  const { dir } = splitPath(path);
  let n = 0;
  return async (fileName) => {
    if (fileName.startsWith('/') || fileName.split('/').includes('..')) {
      throw new Error(`${path} links to ${fileName}; only files beside it (relative names without "..") are followed`);
    }
    const linkedPath = `${dir === '/' ? '' : dir}/${fileName.replace(/^\.\//, '')}`;
    const local = join(localDir, `linked-${++n}`);
    try {
      await download(ctx, linkedPath, local);
    } catch (err) {
      throw new Error(`the frames of ${path} are in ${linkedPath}, which cannot be read: ${err.message}`, { cause: err });
    }
    const { file } = await openHdf5(local, linkedPath);
    return {
      file,
      async close() {
        file.close();
        await rm(local, { force: true });
      },
    };
  };
}

function options(event) {
  const frame = intOption(event, 'frame', { min: -(2 ** 31), max: 2 ** 31 - 1, fallback: 0 });
  const size = intOption(event, 'size', { min: 8, max: 4096, fallback: 256 });
  if (event.log !== undefined && typeof event.log !== 'boolean')
    throw new TypeError(`"log" must be true or false, not ${JSON.stringify(event.log)}`);
  const range = event.percentiles ?? DEFAULT_PERCENTILES;
  const okRange =
    Array.isArray(range) && range.length === 2 && range.every((p) => typeof p === 'number' && p >= 0 && p <= 100) && range[0] < range[1];
  if (!okRange) throw new RangeError(`"percentiles" must be [low, high] with 0 ≤ low < high ≤ 100, not ${JSON.stringify(range)}`);
  return { dataset: event.dataset, frame, size, log: event.log === true, range };
}

export async function handler(event, ctx) {
  const path = pathOf(event);
  if (path.endsWith(PREVIEW_SUFFIX))
    throw new Error(`${path} is a preview itself; a trigger for thumbnail should match the data files only`);
  const opts = options(event);
  const preview = previewPath(path);

  const frame = await withLocalCopy(ctx, path, async (local) => {
    const head = await headOf(local);
    if (isTiff(head)) {
      if (opts.dataset !== undefined) throw new TypeError(`"dataset" applies to HDF5 files; ${path} is a TIFF file`);
      return readTiffFrame(local, path, opts.frame);
    }
    if (!(await isHdf5(local))) {
      throw new Error(`${path} is neither HDF5/NeXus nor TIFF (it starts with bytes ${head.subarray(0, 8).toString('hex')})`);
    }
    const { h5, file } = await openHdf5(local, path);
    try {
      const chosen = chooseImage(h5, file, path, opts.dataset);
      return await readHdf5Frame(h5, file, path, chosen, opts.frame, linkedFiles(ctx, path, dirname(local)));
    } finally {
      file.close();
    }
  });

  const valid = validPixels(frame);
  const [low, high] = percentiles(frame.values, valid, opts.range);
  let validCount = 0;
  for (let i = 0; i < valid.length; i++) validCount += valid[i];
  if (validCount === 0) ctx.log.warn('%s: no valid pixel in the frame (all NaN, masked or sentinel values); the preview is black', path);
  const image = render(frame, valid, { low, high, log: opts.log, size: opts.size });
  await ctx.storage.write(preview, encodePng(image), { contentType: 'image/png' });
  ctx.log.info(
    '%s: %d×%d frame → %s (%d×%d), intensity %s…%s',
    path,
    frame.width,
    frame.height,
    preview,
    image.width,
    image.height,
    low,
    high,
  );
  return {
    path,
    preview,
    width: image.width,
    height: image.height,
    source: { ...frame.source, dtype: frame.dtype, maskedPixels: valid.length - validCount },
    scale: { low, high, percentiles: opts.range, log: opts.log },
  };
}
