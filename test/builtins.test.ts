// The built-in functions (functions/) end to end: bundles built by scripts/build-functions.mjs, deployed
// to a real server, invoked on real files — NeXus written by h5py, TIFF written by libtiff's raw2tiff —
// and their answers checked against independent tools: h5dump for the NeXus structure, numpy for the
// intensity percentiles, pngjs for the preview, and a byte changed behind the namespace's back on the
// storage element's disk for the checksum check.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServer, authed, json, tempDir, REPO_ROOT, type RunningServer } from './support/server.js';
import { call, deploy } from './support/functions.js';
import {
  ddlAt,
  ddlGroups,
  ddlText,
  dtypeOfDdl,
  h5dumpDatasets,
  h5dumpHeader,
  hasHdf5Plugin,
  makeNexus,
  pythonJson,
  rawToTiff,
  replicaFileOf,
  type DdlNode,
} from './support/nexus.js';

const run = promisify(execFile);

interface DecodedPng {
  width: number;
  height: number;
  /** RGBA, as pngjs decodes every PNG. */
  data: Buffer;
}
const { PNG } = createRequire(import.meta.url)('pngjs') as { PNG: { sync: { read(buf: Buffer): DecodedPng } } };

const FUNCTIONS = join(REPO_ROOT, 'functions');
const RAW = '/beamtime/11012345/raw';

let server: RunningServer;
let work: string;
/** Whether h5py here writes bitshuffle/LZ4 and bzip2 (the EIGER file is gzip-compressed otherwise). */
let withPlugins = false;
/** Local copies of what was uploaded, by namespace path. */
const uploaded = new Map<string, string>();

async function put(path: string, file: string, headers: Record<string, string> = {}): Promise<void> {
  const res = await authed(server)(path, { method: 'PUT', headers, body: await readFile(file) });
  assert.ok(res.status === 201 || res.status === 204, `PUT ${path}: ${res.status} ${await res.text()}`);
  uploaded.set(path, file);
}

async function get(path: string): Promise<Buffer> {
  const res = await authed(server)(path);
  assert.equal(res.status, 200, `GET ${path}`);
  return Buffer.from(await res.arrayBuffer());
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function succeeds(name: string, input: unknown): Promise<any> {
  const a = await call(server, name, input);
  assert.equal(a.status, 'success', `${name} ${JSON.stringify(input)}: ${JSON.stringify(a.error)}\n${(a.logs ?? []).join('\n')}`);
  return a;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function fails(name: string, input: unknown): Promise<any> {
  const a = await call(server, name, input);
  assert.equal(a.status, 'error', `${name} ${JSON.stringify(input)} should fail: ${JSON.stringify(a.result)}`);
  assert.equal(a.error.code, 'APPLICATION_ERROR', JSON.stringify(a.error));
  return a.error;
}

/** A gradient like the NeXus fixture's frames, as raw little-endian samples for raw2tiff. */
function gradient(width: number, height: number, type: 'short' | 'float'): Buffer {
  const bytes = type === 'short' ? 2 : 4;
  const buf = Buffer.alloc(width * height * bytes);
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      const v = 100 + Math.round((20000 * j) / (width - 1)) + Math.round((5000 * i) / (height - 1));
      if (type === 'short') buf.writeUInt16LE(v, (i * width + j) * 2);
      else buf.writeFloatLE(v / 1000, (i * width + j) * 4);
    }
  }
  return buf;
}

before(async () => {
  await run(process.execPath, [join(REPO_ROOT, 'scripts', 'build-functions.mjs')]);
  work = await tempDir('sluice-builtins-');
  server = await startServer({ fsync: false });
  for (const name of ['nexus-metadata', 'thumbnail', 'checksum-verify']) await deploy(server, join(FUNCTIONS, name));
  for (const dir of ['/beamtime', '/beamtime/11012345', RAW]) {
    assert.equal((await authed(server)(dir, { method: 'MKCOL' })).status, 201);
  }

  await makeNexus(join(work, 'scan_0001.nxs'), { frames: 10, height: 96, width: 128, dtype: 'uint16' });
  await makeNexus(join(work, 'scan_0002.nxs'), { frames: 4, height: 60, width: 80, dtype: 'float32', compression: 'none' });
  await put(`${RAW}/scan_0001.nxs`, join(work, 'scan_0001.nxs'));
  await put(`${RAW}/scan_0002.nxs`, join(work, 'scan_0002.nxs'));

  // An EIGER-style series: a master file and two data files, bitshuffle/LZ4 as the detector writes.
  withPlugins = await hasHdf5Plugin();
  const eiger = await makeNexus(join(work, 'series_7_master.h5'), {
    frames: 6,
    height: 48,
    width: 64,
    external: 2,
    compression: withPlugins ? 'bslz4' : 'gzip',
  });
  assert.deepEqual(eiger.data_files, ['series_7_master_data_000001.h5', 'series_7_master_data_000002.h5']);
  for (const f of ['series_7_master.h5', ...eiger.data_files]) await put(`${RAW}/${f}`, join(work, f));
  if (withPlugins) {
    await makeNexus(join(work, 'scan_bz2.nxs'), { frames: 2, height: 20, width: 30, compression: 'bz2' });
    await put(`${RAW}/scan_bz2.nxs`, join(work, 'scan_bz2.nxs'));
  }

  await writeFile(join(work, 'g16.raw'), gradient(200, 150, 'short'));
  await writeFile(join(work, 'gf.raw'), gradient(200, 150, 'float'));
  const tiffs: [string, string, 'short' | 'float', string, boolean?][] = [
    ['image_lzw.tif', 'g16.raw', 'short', 'lzw:2'],
    ['image_fillorder2.tif', 'g16.raw', 'short', 'lzw:2', false],
    ['image_float.tif', 'gf.raw', 'float', 'zip:3'],
  ];
  for (const [name, raw, type, compression, msbFirst] of tiffs) {
    await rawToTiff(join(work, raw), join(work, name), { width: 200, height: 150, type, compression, msbFirst });
    await put(`${RAW}/${name}`, join(work, name));
  }
  await writeFile(join(work, 'notes.txt'), 'beamtime notes: not an image\n'.repeat(10));
  await put(`${RAW}/notes.txt`, join(work, 'notes.txt'));
});

after(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('nexus-metadata', () => {
  test('reports what h5dump sees: NX_class tree, entries, instrument, source, sample, detector data', async () => {
    const file = uploaded.get(`${RAW}/scan_0001.nxs`)!;
    const a = await succeeds('nexus-metadata', { path: `${RAW}/scan_0001.nxs` });
    assert.equal(a.result.path, `${RAW}/scan_0001.nxs`);
    assert.deepEqual(a.scopes, ['storage.read:/'], 'the manifest holds even an admin to reading');
    const md = a.result.metadata;
    const root = await h5dumpHeader(file);

    // The NX_class tree: every group h5dump lists, with its NX_class, and nothing else.
    const groups = ddlGroups(root);
    assert.deepEqual(Object.keys(md.tree).sort(), groups.map(([p]) => p).sort());
    for (const [path, node] of groups) assert.equal(md.tree[path], ddlText(node, 'NX_class') ?? null, path);
    assert.equal(md.format, 'NeXus');

    // Root attributes and the default plottable data found by @default → @default → @signal.
    for (const [name, attr] of Object.entries(root.attrs)) assert.equal(md.attributes[name], attr.data![0], `@${name}`);
    const entryName = ddlText(root, 'default')!;
    const nxdataName = ddlText(ddlAt(root, `/${entryName}`), 'default')!;
    const signal = ddlText(ddlAt(root, `/${entryName}/${nxdataName}`), 'signal')!;
    assert.equal(md.default, entryName);
    assert.equal(md.plottable, `/${entryName}/${nxdataName}/${signal}`);

    // Entries: every NXentry, with title/start_time/end_time as h5dump prints their values.
    const entries = groups.filter(([, n]) => ddlText(n, 'NX_class') === 'NXentry' && !n.hardlink).map(([p]) => p);
    assert.deepEqual(Object.keys(md.entries).sort(), entries.map((p) => p.slice(1)).sort());
    for (const entryPath of entries) {
      const values = await h5dumpDatasets(
        file,
        ['title', 'start_time', 'end_time'].map((f) => `${entryPath}/${f}`),
      );
      const entry = md.entries[entryPath.slice(1)];
      for (const f of ['title', 'start_time', 'end_time'])
        assert.equal(entry[f], values[`${entryPath}/${f}`]!.data![0], `${entryPath}/${f}`);
    }

    // Instrument and source names, with their @short_name.
    const entry = md.entries.entry;
    const names = await h5dumpDatasets(file, ['/entry/instrument/name', '/entry/instrument/source/name']);
    assert.equal(entry.instruments.length, 1);
    const instrument = entry.instruments[0];
    assert.equal(instrument.path, '/entry/instrument');
    assert.equal(instrument.name, names['/entry/instrument/name']!.data![0]);
    assert.equal(instrument.short_name, ddlText(names['/entry/instrument/name'], 'short_name'));
    assert.deepEqual(
      instrument.sources.map((s: { path: string }) => s.path),
      ['/entry/instrument/source'],
    );
    assert.equal(instrument.sources[0].name, names['/entry/instrument/source/name']!.data![0]);
    assert.equal(instrument.sources[0].short_name, ddlText(names['/entry/instrument/source/name'], 'short_name'));

    // The sample: every field with its value, dtype-faithful, and units where h5dump shows them.
    const sampleNode = ddlAt(root, '/entry/sample')!;
    const fieldNames = Object.values(sampleNode.children)
      .filter((c) => c.kind === 'dataset')
      .map((c) => c.name);
    const fieldValues = await h5dumpDatasets(
      file,
      fieldNames.map((f) => `/entry/sample/${f}`),
    );
    const sample = entry.samples[0];
    assert.equal(sample.path, '/entry/sample');
    assert.equal(sample.name, fieldValues['/entry/sample/name']!.data![0]);
    assert.deepEqual(Object.keys(sample.fields).sort(), fieldNames.sort());
    for (const f of fieldNames) {
      const ddl = fieldValues[`/entry/sample/${f}`]!;
      const expected = ddl.dataspace!.kind === 'SCALAR' ? ddl.data![0] : ddl.data;
      const units = ddlText(ddl, 'units');
      assert.deepEqual(sample.fields[f], units === undefined ? expected : { value: expected, units }, `/entry/sample/${f}`);
    }
    assert.deepEqual(sample.fields.temperature, { value: 100, units: 'K' });

    // Detectors: data shape, max shape, dtype, byte order, chunks and compression as h5dump has them.
    const detectors = groups.filter(([, n]) => ddlText(n, 'NX_class') === 'NXdetector').map(([p]) => p);
    const reported = Object.values(md.entries).flatMap((e) =>
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      (e as any).instruments.flatMap((i: any) => i.detectors),
    );
    assert.deepEqual(reported.map((d: { path: string }) => d.path).sort(), detectors.sort());
    for (const d of reported) {
      const node = ddlAt(root, `${d.path}/data`) as DdlNode;
      // h5dump prints a hard-linked dataset in full once; elsewhere it names the first path.
      const full = node.hardlink ? (ddlAt(root, node.hardlink) as DdlNode) : node;
      assert.deepEqual(d.data.shape, full.dataspace!.dims, d.path);
      const { dtype, byteOrder } = dtypeOfDdl(full.datatype!);
      assert.equal(d.data.dtype, dtype);
      assert.equal(d.data.byteOrder, byteOrder);
      const maxdims = full.dataspace!.maxdims;
      if (maxdims.some((m, i) => m !== full.dataspace!.dims[i])) assert.deepEqual(d.data.maxshape, maxdims);
      assert.deepEqual(d.data.chunks, full.chunks);
      assert.deepEqual(d.data.filters, full.filters?.includes('COMPRESSION DEFLATE') ? ['deflate'] : undefined);
      assert.equal(d.data.units, ddlText(full, 'units'));
    }
    const main = reported.find((d: { path: string }) => d.path === '/entry/instrument/detector');
    assert.deepEqual(main.data.shape, [10, 96, 128]);
    assert.equal(main.data.dtype, 'uint16');
    assert.deepEqual(main.fields.x_pixel_size, { value: 7.5e-5, units: 'm' });
    assert.equal(main.description, 'EIGER2 X 4M');

    // NXdata: the signal, followed through its soft link where there is one.
    const cal = md.entries.calibration.data[0];
    assert.equal(cal.signal, '/calibration/data/flat');
    assert.equal(cal.link, ddlAt(root, '/calibration/data/flat')!.target);
    assert.deepEqual(cal.shape, [96, 128]);
  });

  test('takes the path from a CloudEvent storage event', async () => {
    const a = await succeeds('nexus-metadata', {
      specversion: '1.0',
      id: '42',
      source: 'sluice://test',
      type: 'org.sluice.storage.IN_CLOSE_WRITE',
      subject: `${RAW}/scan_0002.nxs`,
      data: { name: 'scan_0002.nxs', mask: ['IN_CLOSE_WRITE'] },
    });
    assert.equal(a.result.path, `${RAW}/scan_0002.nxs`);
    const det = a.result.metadata.entries.entry.instruments[0].detectors[0];
    assert.deepEqual(det.data.shape, [4, 60, 80]);
    assert.equal(det.data.dtype, 'float32');
    assert.equal(det.data.filters, undefined, 'written without compression');
  });

  test('an EIGER master file: the external links to the data files, as h5dump shows them', async () => {
    const file = uploaded.get(`${RAW}/series_7_master.h5`)!;
    const a = await succeeds('nexus-metadata', { path: `${RAW}/series_7_master.h5` });
    const root = await h5dumpHeader(file);
    const links = Object.values(ddlAt(root, '/entry/data')!.children).filter((c) => c.kind === 'external');
    assert.equal(links.length, 2);
    const entry = a.result.metadata.entries.entry;
    assert.deepEqual(
      entry.data[0].external,
      links.map((l) => ({ path: `/entry/data/${l.name}`, file: l.targetFile, target: l.target })),
    );
    assert.equal(entry.data[0].signal, null);
    assert.equal(entry.instruments[0].detectors[0].data, null, 'the detector group itself has no data');
    assert.equal(a.result.metadata.tree['/entry/instrument/detector/detectorSpecific'], 'NXcollection');
  });

  test('refuses what it cannot read with a clear error', async () => {
    assert.match((await fails('nexus-metadata', { path: `${RAW}/notes.txt` })).message, /notes\.txt is not an HDF5 file/);
    assert.match((await fails('nexus-metadata', { path: `${RAW}/missing.nxs` })).message, /404/);
    assert.match((await fails('nexus-metadata', { path: RAW })).message, /is a directory/);
    assert.match((await fails('nexus-metadata', { file: 'x' })).message, /expected \{"path"/);
  });
});

/** The gray levels of a decoded PNG (pngjs gives RGBA; a grayscale PNG has R = G = B). */
function grayOf(png: DecodedPng): (x: number, y: number) => number {
  return (x, y) => png.data[(y * png.width + x) * 4]!;
}

function assertMonotonic(values: number[], what: string, span = 200): void {
  for (let i = 1; i < values.length; i++) assert.ok(values[i]! >= values[i - 1]!, `${what} falls at ${i}: ${values.join(',')}`);
  assert.ok(values.at(-1)! - values[0]! > span, `${what} spans the gray levels: ${values[0]} → ${values.at(-1)}`);
}

/** Pixel (i, j) of frame k in make_nexus.py. */
const fixtureValue = (k: number, i: number, j: number, height: number, width: number) =>
  100 + Math.round((20000 * j) / (width - 1)) + Math.round((5000 * i) / (height - 1)) + 100 * k;

/**
 * numpy's percentiles of one frame, without NaN, sentinels and the pixels the mask flags. By default
 * the frame is of the detector data in `file`, the mask that detector's pixel_mask.
 */
async function numpyPercentiles(
  file: string,
  frame: number,
  where: { data?: string; maskFile?: string; mask?: string } = {},
): Promise<[number, number]> {
  const code = `
import sys, json, h5py, numpy as np
try:
    import hdf5plugin  # to read bitshuffle/LZ4
except ImportError:
    pass
file, frame, data, mask_file, mask = sys.argv[1:]
with h5py.File(file, 'r') as f, h5py.File(mask_file, 'r') as m:
    stack = f[data]
    values = stack[int(frame)].astype(np.float64)
    valid = np.isfinite(values) & (m[mask][()] == 0)
    if stack.dtype == np.uint16:
        valid &= values != 65535
    print(json.dumps(list(np.percentile(values[valid], [0.5, 99.5]))))
`;
  const args = [
    file,
    String(frame),
    where.data ?? '/entry/instrument/detector/data',
    where.maskFile ?? file,
    where.mask ?? '/entry/instrument/detector/pixel_mask',
  ];
  return (await pythonJson(code, ...args)) as [number, number];
}

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= 1e-6 * Math.max(1, Math.abs(expected)), `${what}: ${actual} ≠ ${expected}`);

describe('thumbnail', () => {
  test('NeXus: the default plottable frame as a PNG next to the file; intensities follow the frame', async () => {
    const a = await succeeds('thumbnail', { path: `${RAW}/scan_0001.nxs` });
    const r = a.result;
    assert.equal(r.preview, `${RAW}/scan_0001.preview.png`);
    assert.deepEqual([r.width, r.height], [128, 96], 'smaller than size: kept as it is');
    assert.deepEqual(r.source.shape, [10, 96, 128]);
    assert.equal(r.source.dataset, '/entry/data/data');
    assert.equal(r.source.frame, 0);
    assert.equal(r.source.mask, '/entry/instrument/detector/pixel_mask');
    assert.equal(r.source.maskedPixels, 131);

    const [low, high] = await numpyPercentiles(uploaded.get(`${RAW}/scan_0001.nxs`)!, 0);
    close(r.scale.low, low, 'low');
    close(r.scale.high, high, 'high');

    const png = PNG.sync.read(await get(r.preview));
    assert.deepEqual([png.width, png.height], [128, 96]);
    const gray = grayOf(png);
    const row = (y: number) => Array.from({ length: png.width }, (_, x) => gray(x, y));
    const column = (x: number) => Array.from({ length: png.height }, (_, y) => gray(x, y));
    assertMonotonic(row(10), 'row 10');
    assertMonotonic(row(80), 'row 80');
    assertMonotonic(
      column(100).filter((_, y) => y !== 24),
      'column 100',
      40,
    );
    assert.ok(
      row(24).every((g) => g === 0),
      'the masked gap row is black',
    );
    assert.equal(gray(2, 1), 0, 'a masked pixel is black');
    // Every other pixel is its value mapped linearly from [low, high] onto 0…255 (no downscale here).
    const masked = new Set(['1,2', '48,42', '94,125']);
    for (let i = 0; i < 96; i++) {
      for (let j = 0; j < 128; j++) {
        if (i === 24 || masked.has(`${i},${j}`)) continue;
        const t = Math.min(1, Math.max(0, (fixtureValue(0, i, j, 96, 128) - r.scale.low) / (r.scale.high - r.scale.low)));
        assert.ok(Math.abs(gray(j, i) - 255 * t) <= 0.5 + 1e-9, `pixel (${i}, ${j}): ${gray(j, i)} for ${255 * t}`);
      }
    }
  });

  test('NeXus: another frame, a smaller size, an explicit dataset', async () => {
    const file = uploaded.get(`${RAW}/scan_0001.nxs`)!;
    const a = await succeeds('thumbnail', { path: `${RAW}/scan_0001.nxs`, frame: 7, size: 64 });
    assert.equal(a.result.source.frame, 7);
    assert.deepEqual([a.result.width, a.result.height], [64, 48]);
    const [low, high] = await numpyPercentiles(file, 7);
    close(a.result.scale.low, low, 'low of frame 7');
    close(a.result.scale.high, high, 'high of frame 7');
    const png = PNG.sync.read(await get(a.result.preview));
    assert.deepEqual([png.width, png.height], [64, 48]);
    assertMonotonic(
      Array.from({ length: 64 }, (_, x) => grayOf(png)(x, 40)),
      'downscaled row 40',
    );

    const last = await succeeds('thumbnail', { path: `${RAW}/scan_0001.nxs`, frame: -1 });
    assert.equal(last.result.source.frame, 9);

    const flat = await succeeds('thumbnail', { path: `${RAW}/scan_0001.nxs`, dataset: '/calibration/data/flat' });
    assert.deepEqual(flat.result.source.shape, [96, 128]);
    assert.equal(flat.result.source.dtype, 'float32');
  });

  test('NeXus float32 with NaN for masked pixels, log scale', async () => {
    const a = await succeeds('thumbnail', { path: `${RAW}/scan_0002.nxs`, log: true, frame: 2 });
    assert.equal(a.result.source.dtype, 'float32');
    assert.equal(a.result.scale.log, true);
    const [low, high] = await numpyPercentiles(uploaded.get(`${RAW}/scan_0002.nxs`)!, 2);
    close(a.result.scale.low, low, 'low');
    close(a.result.scale.high, high, 'high');
    const png = PNG.sync.read(await get(a.result.preview));
    assertMonotonic(
      Array.from({ length: png.width }, (_, x) => grayOf(png)(x, 5)),
      'row 5 (log)',
    );
    assert.equal(grayOf(png)(2, 1), 0, 'a NaN pixel is black');
  });

  test('TIFF written by libtiff: LZW with predictor, FillOrder 2, float32 with the floating-point predictor', async () => {
    const raw = await readFile(join(work, 'g16.raw'));
    const samples = Array.from({ length: raw.length / 2 }, (_, i) => raw.readUInt16LE(i * 2));
    const [low, high] = (await pythonJson(
      'import sys, json, numpy as np; print(json.dumps(list(np.percentile(np.fromfile(sys.argv[1], "<u2"), [0.5, 99.5]))))',
      join(work, 'g16.raw'),
    )) as number[];
    assert.equal(samples.length, 200 * 150);

    const a = await succeeds('thumbnail', { path: `${RAW}/image_lzw.tif`, size: 100 });
    assert.equal(a.result.preview, `${RAW}/image_lzw.preview.png`);
    assert.deepEqual([a.result.width, a.result.height], [100, 75]);
    assert.deepEqual(a.result.source.shape, [150, 200]);
    assert.equal(a.result.source.dtype, 'uint16');
    close(a.result.scale.low, low!, 'low');
    close(a.result.scale.high, high!, 'high');
    const lzw = await get(a.result.preview);
    const png = PNG.sync.read(lzw);
    assert.deepEqual([png.width, png.height], [100, 75]);
    assertMonotonic(
      Array.from({ length: 100 }, (_, x) => grayOf(png)(x, 30)),
      'TIFF row 30',
    );

    const b = await succeeds('thumbnail', { path: `${RAW}/image_fillorder2.tif`, size: 100 });
    assert.ok((await get(b.result.preview)).equals(lzw), 'FillOrder 2 decodes to the same image');

    const f = await succeeds('thumbnail', { path: `${RAW}/image_float.tif` });
    assert.equal(f.result.source.dtype, 'float32');
    close(f.result.scale.low, low! / 1000, 'float low');
    close(f.result.scale.high, high! / 1000, 'float high');
    const fpng = PNG.sync.read(await get(f.result.preview));
    assertMonotonic(
      Array.from({ length: 200 }, (_, x) => grayOf(fpng)(x, 100)),
      'float TIFF row 100',
    );
  });

  test('EIGER master file: the frame is read from the data file that holds it, masked by detectorSpecific/pixel_mask', async () => {
    const a = await succeeds('thumbnail', { path: `${RAW}/series_7_master.h5`, frame: 4 });
    const r = a.result;
    assert.equal(r.preview, `${RAW}/series_7_master.preview.png`);
    assert.equal(r.source.dataset, '/entry/data/data_000002');
    assert.equal(r.source.file, 'series_7_master_data_000002.h5');
    assert.equal(r.source.target, '/entry/data/data');
    assert.equal(r.source.frame, 4);
    assert.equal(r.source.frameInFile, 1, 'frames 0-2 are in the first file');
    assert.deepEqual(r.source.shape, [3, 48, 64]);
    assert.equal(r.source.mask, '/entry/instrument/detector/detectorSpecific/pixel_mask');
    const [low, high] = await numpyPercentiles(join(work, 'series_7_master_data_000002.h5'), 1, {
      data: '/entry/data/data',
      maskFile: join(work, 'series_7_master.h5'),
      mask: '/entry/instrument/detector/detectorSpecific/pixel_mask',
    });
    close(r.scale.low, low, 'low');
    close(r.scale.high, high, 'high');
    const png = PNG.sync.read(await get(r.preview));
    assert.deepEqual([png.width, png.height], [64, 48]);
    for (let i = 0; i < 48; i++) {
      for (let j = 0; j < 64; j++) {
        if (i === 12 || (i === 1 && j === 2) || (i === 24 && j === 21) || (i === 46 && j === 61)) {
          assert.equal(grayOf(png)(j, i), 0, `masked pixel (${i}, ${j})`);
          continue;
        }
        const t = Math.min(1, Math.max(0, (fixtureValue(4, i, j, 48, 64) - r.scale.low) / (r.scale.high - r.scale.low)));
        assert.ok(Math.abs(grayOf(png)(j, i) - 255 * t) <= 0.5 + 1e-9, `pixel (${i}, ${j}): ${grayOf(png)(j, i)} for ${255 * t}`);
      }
    }
    assert.match((await fails('thumbnail', { path: `${RAW}/series_7_master.h5`, frame: 6 })).message, /links 6 frames in 2 files/);
  });

  test('compression: bitshuffle/LZ4 decoded by the bundled plugin; a filter without a plugin is named', async (t) => {
    if (!withPlugins) {
      t.skip('h5py here cannot write bitshuffle/LZ4 or bzip2 (Debian: python3-hdf5plugin, bitshuffle, hdf5-filter-plugin)');
      return;
    }
    const md = await succeeds('nexus-metadata', { path: `${RAW}/series_7_master.h5` });
    assert.ok(md.result.path);
    const a = await succeeds('thumbnail', { path: `${RAW}/series_7_master.h5`, frame: 0 });
    assert.equal(a.result.source.file, 'series_7_master_data_000001.h5');
    const bz2 = await fails('thumbnail', { path: `${RAW}/scan_bz2.nxs` });
    assert.match(
      bz2.message,
      /cannot read .*scan_bz2\.nxs:\/entry\/data\/data: it is compressed with "HDF5 bzip2 filter" \(filter id 307\), which this function has no plugin for/,
    );
    const meta = await succeeds('nexus-metadata', { path: `${RAW}/scan_bz2.nxs` });
    const data = meta.result.metadata.entries.entry.instruments[0].detectors[0].data;
    assert.deepEqual(data.filters, ['HDF5 bzip2 filter'], 'described without being read');
  });

  test('bad requests fail with a message that says what is wrong', async () => {
    assert.match((await fails('thumbnail', { path: `${RAW}/notes.txt` })).message, /neither HDF5\/NeXus nor TIFF/);
    assert.match(
      (await fails('thumbnail', { path: `${RAW}/scan_0001.nxs`, frame: 10 })).message,
      /frame 10 is out of range: .* has 10 frames/,
    );
    assert.match(
      (await fails('thumbnail', { path: `${RAW}/scan_0001.nxs`, dataset: '/entry/nope' })).message,
      /has no dataset \/entry\/nope/,
    );
    assert.match((await fails('thumbnail', { path: `${RAW}/scan_0001.nxs`, dataset: '/entry/title' })).message, /is not image data/);
    assert.match((await fails('thumbnail', { path: `${RAW}/scan_0001.nxs`, size: 0 })).message, /"size" must be an integer/);
    assert.match((await fails('thumbnail', { path: `${RAW}/scan_0001.preview.png` })).message, /is a preview itself/);
  });
});

describe('checksum-verify', () => {
  test('an intact file: ADLER32 and MD5 recomputed from its bytes match the namespace', async () => {
    const file = join(work, 'scan_0001.nxs');
    const bytes = await readFile(file);
    const path = `${RAW}/verified.nxs`;
    await put(path, file, { 'content-md5': createHash('md5').update(bytes).digest('base64') });
    const stat = await json(await authed(server)(`/api/v1/namespace${path}?checksum=true`));
    const types = stat.checksums.map((c: { type: string }) => c.type).sort();
    assert.deepEqual(types, ['ADLER32', 'MD5_TYPE']);

    const a = await succeeds('checksum-verify', { path });
    assert.equal(a.result.ok, true, JSON.stringify(a.result));
    assert.deepEqual(a.scopes, ['storage.read:/']);
    assert.deepEqual(a.result.size, { expected: bytes.length, actual: bytes.length });
    for (const c of a.result.checksums) {
      const recorded = stat.checksums.find((s: { type: string }) => s.type === c.type);
      assert.equal(c.expected, recorded.value);
      assert.equal(c.actual, c.expected);
      assert.equal(c.ok, true);
    }
    assert.equal(
      a.result.checksums.find((c: { type: string }) => c.type === 'MD5_TYPE').actual,
      createHash('md5').update(bytes).digest('hex'),
    );
  });

  test('a byte changed on the storage element behind the namespace: ok false, an error logged, the call itself succeeds', async () => {
    const file = join(work, 'flipped.nxs');
    await makeNexus(file, { frames: 3, height: 40, width: 50 });
    const bytes = await readFile(file);
    const path = `${RAW}/flipped.nxs`;
    await put(path, file);
    const replica = await replicaFileOf(server.dataDir, bytes);
    const offset = Math.floor(bytes.length / 2);
    const fh = await open(replica, 'r+');
    try {
      await fh.write(Buffer.from([bytes[offset]! ^ 0x10]), 0, 1, offset);
    } finally {
      await fh.close();
    }

    const a = await succeeds('checksum-verify', {
      specversion: '1.0',
      id: '7',
      source: 'sluice://test',
      type: 'org.sluice.storage.IN_CLOSE_WRITE',
      subject: path,
    });
    assert.equal(a.result.ok, false);
    assert.deepEqual(a.result.size, { expected: bytes.length, actual: bytes.length });
    const adler = a.result.checksums.find((c: { type: string }) => c.type === 'ADLER32');
    assert.equal(adler.ok, false);
    assert.notEqual(adler.actual, adler.expected);
    assert.match(a.result.reason, /ADLER32 expected/);
    assert.ok(
      a.logs.some((l: string) => /CORRUPT/.test(l) && l.includes(path)),
      JSON.stringify(a.logs),
    );
  });

  test('a missing file or a directory is an error, not a verdict', async () => {
    assert.match((await fails('checksum-verify', { path: `${RAW}/nothing-here` })).message, /404/);
    assert.match((await fails('checksum-verify', { path: RAW })).message, /is a directory/);
  });
});
