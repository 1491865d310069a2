// One 2-D frame out of a file: from HDF5/NeXus (the chosen dataset, one slice of a stack, never the
// whole stack; in linked files for EIGER master files) or from TIFF (one page, decoded by geotiff). A frame is {values, width, height, dtype,
// mask?} with values a typed array in row-major order, top row first, and mask (if any) one byte
// per pixel, non-zero for pixels the detector's pixel_mask flags.
import { readFile } from 'node:fs/promises';
import { dtypeName, hdf5Call, linkKind, missingFilters } from '@sluice/builtins/hdf5.mjs';
import { childrenOfClass, externalData, findDefaultData, join, signalOf, walk } from '@sluice/builtins/nexus.mjs';

const NUMERIC_RE = /^(u?int|float)\d+$/;

// ---- HDF5 / NeXus ----

function isImage(dataset) {
  const { shape } = dataset.metadata;
  return Array.isArray(shape) && shape.length >= 2 && NUMERIC_RE.test(dtypeName(dataset.metadata));
}

function notImage(where, dataset) {
  return new Error(`${where} is not image data: ${dtypeName(dataset.metadata)} of shape [${dataset.metadata.shape}]`);
}

/**
 * What to preview: the dataset asked for; else the NeXus default plottable signal (@default,
 * @signal); else the first NXdetector data; each of them either a dataset of 2 or more dimensions in
 * the file, or frames in other files reached through external links (EIGER master files); else, for
 * plain HDF5 without any NX_class, the first numeric dataset of 2 or more dimensions. Returns
 * {path, dataset, tree} or {path, links: [{path, file, target}], tree}.
 */
export function chooseImage(h5, file, name, requested) {
  const tree = walk(h5, file);
  if (requested !== undefined) {
    if (typeof requested !== 'string' || !requested.startsWith('/')) {
      throw new TypeError(`"dataset" must be an absolute path inside the file, like "/entry/data/data", not ${JSON.stringify(requested)}`);
    }
    const link = linkKind(h5, file, requested);
    if (link.kind === 'external')
      return { path: requested, links: [{ path: requested, file: link.filename, target: link.obj_path }], tree };
    if (link.kind !== 'dataset') {
      const what = link.kind === 'missing' ? '' : ` (it is ${link.kind === 'group' ? 'a group' : `a ${link.kind} link`})`;
      throw new Error(`${name} has no dataset ${requested}${what}`);
    }
    const dataset = file.get(requested);
    if (!isImage(dataset)) throw notImage(`${name}:${requested}`, dataset);
    return { path: requested, dataset, tree };
  }
  const candidates = [];
  const found = findDefaultData(file, tree);
  if (found) candidates.push({ group: found.data, dataset: signalOf(h5, file, tree, found.data) });
  for (const entry of childrenOfClass(tree, '/', 'NXentry')) {
    for (const instrument of childrenOfClass(tree, entry, 'NXinstrument')) {
      for (const detector of childrenOfClass(tree, instrument, 'NXdetector')) {
        const hasData = tree.groups.get(detector).datasets.includes('data');
        candidates.push({ group: detector, dataset: hasData ? join(detector, 'data') : undefined });
      }
    }
  }
  for (const { group, dataset } of candidates) {
    if (dataset && isImage(file.get(dataset))) return { path: dataset, dataset: file.get(dataset), tree };
    const links = externalData(file, tree, group);
    if (links.length > 0) return { path: group, links, tree };
  }
  const isNexus = [...tree.groups.values()].some((node) => node.nxClass !== null);
  if (!isNexus) {
    for (const [group, node] of tree.groups) {
      for (const dname of node.datasets) {
        const dataset = file.get(join(group, dname));
        if (isImage(dataset)) return { path: join(group, dname), dataset, tree };
      }
    }
  }
  throw new Error(
    isNexus
      ? `${name} has no image data: no default plottable signal and no NXdetector data of 2 or more dimensions`
      : `${name} has no dataset of 2 or more dimensions`,
  );
}

/** A 2-D integer mask of the frame's shape as one byte per pixel (1 = flagged), or undefined. */
function readMask(file, maskPath, frameShape) {
  const mask = file.get(maskPath);
  const { shape } = mask.metadata;
  if (!/^u?int\d+$/.test(dtypeName(mask.metadata)) || shape.length !== 2 || shape[0] !== frameShape[0] || shape[1] !== frameShape[1]) {
    return undefined;
  }
  // One byte per pixel from here on: a 32-bit mask of a large detector is 4 times the size.
  const bits = hdf5Call(`cannot read ${maskPath}`, () => mask.value);
  const flags = new Uint8Array(bits.length);
  for (let i = 0; i < bits.length; i++) flags[i] = bits[i] ? 1 : 0;
  return { path: maskPath, flags };
}

/** The pixel_mask of the NXdetector whose data a dataset is (found by object identity, through any link). */
function pixelMaskOfDataset(h5, file, tree, path, frameShape) {
  const same = (a, b) => Buffer.from(a.ref_data).equals(Buffer.from(b.ref_data));
  const target = file.get(path).create_reference();
  for (const [detector, node] of tree.groups) {
    if (node.nxClass !== 'NXdetector' || !node.datasets.includes('data') || !node.datasets.includes('pixel_mask')) continue;
    if (same(file.get(join(detector, 'data')).create_reference(), target)) return readMask(file, join(detector, 'pixel_mask'), frameShape);
  }
  return undefined;
}

/**
 * The pixel_mask of the entry's detector, for frames in linked files: in the NXdetector or, as
 * DECTRIS writes it, in its detectorSpecific group; the first of the frame's shape.
 */
function pixelMaskOfEntry(h5, file, tree, entry, frameShape) {
  for (const instrument of childrenOfClass(tree, entry, 'NXinstrument')) {
    for (const detector of childrenOfClass(tree, instrument, 'NXdetector')) {
      for (const maskPath of [join(detector, 'pixel_mask'), join(detector, 'detectorSpecific/pixel_mask')]) {
        if (linkKind(h5, file, maskPath).kind !== 'dataset') continue;
        const mask = readMask(file, maskPath, frameShape);
        if (mask) return mask;
      }
    }
  }
  return undefined;
}

/** Throws a clear Error before reading data compressed with a filter there is no plugin for. */
async function mustDecode(dataset, where) {
  const reason = await missingFilters(dataset);
  if (reason) throw new Error(`cannot read ${where}: ${reason}`);
}

/** Frames in a dataset: the product of all but its last two dimensions (1 for a 2-D image). */
export function frameCount(shape) {
  return shape.slice(0, -2).reduce((n, d) => n * d, 1);
}

/** Frame `index` of an image dataset, as one hyperslab: `index` counts through all leading dimensions. */
function sliceFrame(dataset, index, where) {
  const { shape } = dataset.metadata;
  const lead = [];
  for (let rest = index, d = shape.length - 3; d >= 0; d--) {
    lead.unshift(rest % shape[d]);
    rest = Math.floor(rest / shape[d]);
  }
  const [height, width] = shape.slice(-2);
  const ranges = [...lead.map((i) => [i, i + 1]), [0, height], [0, width]];
  let values = hdf5Call(`cannot read frame ${index} of ${where}`, () => dataset.slice(ranges));
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) values = Float64Array.from(values, Number);
  return values;
}

/**
 * One frame of the chosen image. `frame` counts through all leading dimensions in row-major order
 * (for a 3-D stack it is the first index); negative counts from the end. Frames in linked files count
 * on from one file to the next; `openLinked(fileName)` gives {file, close()} for a linked file, and
 * only the files up to the one holding the frame are opened.
 */
export async function readHdf5Frame(h5, file, name, chosen, frame, openLinked) {
  const { path, dataset, tree } = chosen;
  if (dataset) {
    const { shape } = dataset.metadata;
    const frames = frameCount(shape);
    const index = frame < 0 ? frames + frame : frame;
    if (index < 0 || index >= frames) {
      throw new RangeError(
        `frame ${frame} is out of range: ${name}:${path} has ${frames} frame${frames === 1 ? '' : 's'} (shape [${shape}])`,
      );
    }
    await mustDecode(dataset, `${name}:${path}`);
    const [height, width] = shape.slice(-2);
    const mask = pixelMaskOfDataset(h5, file, tree, path, [height, width]); // before the frame: lower peak memory
    const values = sliceFrame(dataset, index, `${name}:${path}`);
    const source = { dataset: path, frame: index, shape, ...(mask ? { mask: mask.path } : {}) };
    return { values, width, height, dtype: dtypeName(dataset.metadata), mask: mask?.flags, source };
  }

  if (frame < 0) {
    throw new RangeError(`frame ${frame}: the frames of ${name} are in linked files, counted from the start only (frame 0 is the first)`);
  }
  let rest = frame;
  for (const link of chosen.links) {
    const linked = await openLinked(link.file);
    try {
      const where = `${link.file}:${link.target} (linked from ${name}:${link.path})`;
      if (linkKind(h5, linked.file, link.target).kind !== 'dataset') throw new Error(`${where} is not a dataset`);
      const target = linked.file.get(link.target);
      if (!isImage(target)) throw notImage(where, target);
      const { shape } = target.metadata;
      const frames = frameCount(shape);
      if (rest >= frames) {
        rest -= frames;
        continue;
      }
      await mustDecode(target, where);
      const [height, width] = shape.slice(-2);
      const mask = pixelMaskOfEntry(h5, file, tree, `/${link.path.split('/')[1]}`, [height, width]);
      const values = sliceFrame(target, rest, where);
      const source = {
        dataset: link.path,
        file: link.file,
        target: link.target,
        frame,
        frameInFile: rest,
        shape,
        ...(mask ? { mask: mask.path } : {}),
      };
      return { values, width, height, dtype: dtypeName(target.metadata), mask: mask?.flags, source };
    } finally {
      await linked.close();
    }
  }
  const total = frame - rest;
  throw new RangeError(
    `frame ${frame} is out of range: ${name}:${path} links ${total} frame${total === 1 ? '' : 's'} in ${chosen.links.length} file${chosen.links.length === 1 ? '' : 's'}`,
  );
}

// ---- TIFF ----

const TIFF_MAGIC = [
  Buffer.from('II*\0', 'latin1'),
  Buffer.from('MM\0*', 'latin1'),
  Buffer.from('II+\0', 'latin1'),
  Buffer.from('MM\0+', 'latin1'),
];

export function isTiff(head) {
  return TIFF_MAGIC.some((m) => head.subarray(0, 4).equals(m));
}

/** TIFF sample formats (tag 339) and bits per sample as dtype names. */
function tiffDtype(format, bits) {
  const kind = format === 3 ? 'float' : format === 2 ? 'int' : 'uint';
  return `${kind}${bits}`;
}

/** Reverses the bit order of every byte in place (TIFF FillOrder 2, as libtiff undoes it on read). */
function reverseBits(bytes) {
  for (let i = 0; i < bytes.length; i++) {
    let b = bytes[i];
    b = ((b & 0xf0) >> 4) | ((b & 0x0f) << 4);
    b = ((b & 0xcc) >> 2) | ((b & 0x33) << 2);
    bytes[i] = ((b & 0xaa) >> 1) | ((b & 0x55) << 1);
  }
}

/**
 * One page of a TIFF file (page `frame`; negative counts from the end). Gray images as they are
 * (gray + alpha without the alpha); RGB(A) as luminance (Rec. 601 weights).
 */
export async function readTiffFrame(localFile, name, frame) {
  const { fromArrayBuffer } = await import('geotiff');
  const bytes = await readFile(localFile);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  const tiff = await fromArrayBuffer(buffer);
  const pages = await tiff.getImageCount();
  const index = frame < 0 ? pages + frame : frame;
  if (index < 0 || index >= pages) {
    throw new RangeError(`frame ${frame} is out of range: ${name} has ${pages} page${pages === 1 ? '' : 's'}`);
  }
  const image = await tiff.getImage(index);
  const fd = image.fileDirectory;
  if ((await fd.loadValue('FillOrder')) === 2) {
    // geotiff reads the bytes as they are; libtiff reverses them first, and so do we.
    const tiled = !fd.hasTag('StripOffsets');
    const offsets = await fd.loadValue(tiled ? 'TileOffsets' : 'StripOffsets');
    const counts = await fd.loadValue(tiled ? 'TileByteCounts' : 'StripByteCounts');
    const view = new Uint8Array(buffer);
    for (let s = 0; s < offsets.length; s++) reverseBits(view.subarray(Number(offsets[s]), Number(offsets[s]) + Number(counts[s])));
  }
  const width = image.getWidth();
  const height = image.getHeight();
  const spp = image.getSamplesPerPixel();
  const bits = image.getBitsPerSample();
  const dtype = tiffDtype(image.getSampleFormat(), bits);
  let values;
  try {
    const rasters = await image.readRasters({ interleave: true });
    values = spp === 1 ? rasters : spp === 2 ? firstSample(rasters, spp, width * height) : luminance(rasters, spp, width * height);
  } catch (err) {
    throw new Error(`cannot decode ${name} (TIFF page ${index}): ${err?.message || err}`, { cause: err });
  }
  return {
    values,
    width,
    height,
    dtype: spp <= 2 ? dtype : 'float32',
    source: { dataset: null, frame: index, shape: spp === 1 ? [height, width] : [height, width, spp], pages },
  };
}

/** Gray of gray + alpha. */
function firstSample(samples, spp, n) {
  const out = new samples.constructor(n);
  for (let i = 0, o = 0; o < n; i += spp, o++) out[o] = samples[i];
  return out;
}

function luminance(rgb, spp, n) {
  const out = new Float32Array(n);
  for (let i = 0, o = 0; o < n; i += spp, o++) out[o] = 0.299 * rgb[i] + 0.587 * rgb[i + 1] + 0.114 * rgb[i + 2];
  return out;
}
