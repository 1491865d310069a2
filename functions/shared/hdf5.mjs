// HDF5 through h5wasm (the HDF5 C library compiled to WebAssembly; its node build reads host files
// directly, so a file is never copied into the heap). What is read is chosen with care: attributes,
// shapes, types and small values only, and slices of big datasets, never a whole big dataset.
import { open, readdir } from 'node:fs/promises';

/** Datasets with at most this many elements (and bytes) are read as values; bigger ones are described. */
export const SMALL_ELEMENTS = 64;
const SMALL_BYTES = 64 * 1024;
/** Strings longer than this are cut (a scalar may hold a whole configuration file). */
const MAX_STRING = 4096;

const SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** H5T_class_t values as h5wasm reports them in metadata.type. */
const H5T = { INTEGER: 0, FLOAT: 1, STRING: 3, BITFIELD: 4, OPAQUE: 5, COMPOUND: 6, REFERENCE: 7, ENUM: 8, VLEN: 9, ARRAY: 10 };

let loading;

/**
 * The h5wasm module, loaded once per instance, with HDF5 errors thrown as JS errors (not printed),
 * and the filter plugins of h5wasm-plugins where the bundle has them (HDF5 loads one when a dataset
 * needs it).
 */
export function h5wasm() {
  loading ??= import('h5wasm/node').then(async (mod) => {
    const Module = await mod.ready;
    Module.activate_throwing_error_handler();
    try {
      (await import('h5wasm-plugins')).install_local_plugins(Module);
    } catch (err) {
      if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    }
    return mod;
  });
  return loading;
}

/** Filter plugins of h5wasm-plugins, by file name, and the HDF5 filter ids they register. */
const PLUGIN_IDS = { bshuf: 32008, lz4: 32004, blosc: 32001, blosc2: 32026, zstd: 32015, bz2: 307, zfp: 32013, jpeg: 32019 };
/** Built into h5wasm: deflate, shuffle, fletcher32, szip, nbit, scaleoffset, and LZF. */
const BUILT_IN = [1, 2, 3, 4, 5, 6, 32000];

/** The HDF5 filter ids this instance can decode: built in, or a plugin the bundle carries. */
export async function decodableFilters() {
  const ids = new Set(BUILT_IN);
  try {
    const { base_url: base } = await import('h5wasm-plugins');
    for (const file of await readdir(new URL(`${base}/plugins`))) {
      const id = PLUGIN_IDS[/^libH5Z(\w+)\.so$/.exec(file)?.[1]];
      if (id) ids.add(id);
    }
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  }
  return ids;
}

/** Why a dataset's data cannot be read here, if its filters say so: a sentence, or undefined. */
export async function missingFilters(dataset) {
  const ids = await decodableFilters();
  const missing = (dataset.filters ?? []).filter((f) => !ids.has(f.id));
  if (missing.length === 0) return undefined;
  const names = missing.map((f) => `"${f.name?.split(';')[0] || 'unnamed'}" (filter id ${f.id})`).join(', ');
  return `it is compressed with ${names}, which this function has no plugin for`;
}

/**
 * Whether a local file is HDF5: the signature sits at offset 0 or, after a user block, at 512, 1024,
 * 2048, … (HDF5 File Format Specification, "Format Signature").
 */
export async function isHdf5(localFile) {
  const fh = await open(localFile, 'r');
  try {
    const { size } = await fh.stat();
    const buf = Buffer.alloc(SIGNATURE.length);
    for (let offset = 0; offset + SIGNATURE.length <= size; offset = offset === 0 ? 512 : offset * 2) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      if (bytesRead === buf.length && buf.equals(SIGNATURE)) return true;
    }
    return false;
  } finally {
    await fh.close();
  }
}

/** The first bytes of a local file (for telling formats apart). */
export async function headOf(localFile, length = 16) {
  const fh = await open(localFile, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** An HDF5 error as one readable line: HDF5's own error stack is a dozen lines of C call sites. */
export function hdf5Message(err) {
  const text = String(err?.message ?? err);
  if (!text.includes('HDF5-DIAG')) return text;
  const frames = [...text.matchAll(/#\d+: .*? in (\w+\(\)): (.*)/g)].map((m) => `${m[1]}: ${m[2].trim()}`);
  const errno = /error message = '([^']+)'/.exec(text);
  const parts = frames.length > 0 ? [frames[0], frames.at(-1)] : [text.split('\n')[0]];
  if (errno) parts.push(errno[1]);
  return `HDF5 error: ${[...new Set(parts)].join('; ')}`;
}

/** Runs `fn`, turning an HDF5 error into an Error that names the file and what was being done. */
export function hdf5Call(what, fn) {
  try {
    return fn();
  } catch (err) {
    throw new Error(`${what}: ${hdf5Message(err)}`, { cause: err });
  }
}

/**
 * Opens a local HDF5 file read-only. `name` is how errors refer to it (the namespace path). Throws a
 * clear Error if the file is not HDF5 at all.
 */
export async function openHdf5(localFile, name) {
  if (!(await isHdf5(localFile))) {
    throw new Error(`${name} is not an HDF5 file: it has no HDF5 signature (neither at its start nor after a user block)`);
  }
  const h5 = await h5wasm();
  const file = hdf5Call(`cannot open ${name}`, () => new h5.File(localFile, 'r'));
  if (typeof file.file_id === 'bigint' && file.file_id < 0n) throw new Error(`cannot open ${name} as HDF5`);
  return { h5, file };
}

/** What a link in a group is: 'group', 'dataset', 'soft' (to `target`), 'external', 'datatype' or 'missing'. */
export function linkKind(h5, file, path) {
  let type;
  try {
    type = file.get_type(path);
  } catch {
    type = -1;
  }
  if (type < 0) return { kind: 'missing' }; // no such name, or no such parent group
  const target = file.get_link(path);
  const { H5G_GROUP, H5G_DATASET, H5G_LINK, H5G_UDLINK, H5G_TYPE } = h5.Module;
  if (type === H5G_UDLINK) return { kind: 'external', ...file.get_external_link(path) };
  if (type === H5G_LINK) return { kind: 'broken', target };
  const kind = type === H5G_GROUP ? 'group' : type === H5G_DATASET ? 'dataset' : type === H5G_TYPE ? 'datatype' : 'missing';
  return target ? { kind, soft: target } : { kind };
}

/** A numpy-style name of an HDF5 type: uint16, int32, float32, string, bool, enum, compound, …. */
export function dtypeName(metadata) {
  const { type, size, signed } = metadata;
  switch (type) {
    case H5T.INTEGER:
      return `${signed ? 'int' : 'uint'}${size * 8}`;
    case H5T.FLOAT:
      return `float${size * 8}`;
    case H5T.STRING:
      return 'string';
    case H5T.BITFIELD:
      return `bitfield${size * 8}`;
    case H5T.OPAQUE:
      return 'opaque';
    case H5T.COMPOUND:
      return 'compound';
    case H5T.REFERENCE:
      return 'reference';
    case H5T.ENUM:
      return isBoolEnum(metadata) ? 'bool' : 'enum';
    case H5T.VLEN:
      return 'vlen';
    case H5T.ARRAY:
      return 'array';
    default:
      return `class${type}`;
  }
}

/** Byte order of a numeric type wider than a byte; undefined where it does not apply. */
export function byteOrder(metadata) {
  if ((metadata.type !== H5T.INTEGER && metadata.type !== H5T.FLOAT) || metadata.size < 2) return undefined;
  return metadata.littleEndian ? 'little' : 'big';
}

function isBoolEnum(metadata) {
  const members = metadata.enum_type?.members;
  if (!members) return false;
  const names = Object.keys(members).sort();
  return names.length === 2 && names[0] === 'FALSE' && names[1] === 'TRUE';
}

/** Whether values of this type have a JSON form (numbers, strings, booleans). */
function isPlain(metadata) {
  return metadata.type === H5T.INTEGER || metadata.type === H5T.FLOAT || metadata.type === H5T.STRING || metadata.type === H5T.ENUM;
}

/** Whether a dataset or attribute is small enough to read as a value. */
export function isSmall(metadata) {
  if (!isPlain(metadata)) return false;
  const elements = metadata.total_size ?? 1;
  return elements <= SMALL_ELEMENTS && elements * metadata.size <= SMALL_BYTES;
}

/** The shortest decimal that reads back as the same float32 (99.87, not 99.87000274658203). */
function float32(x) {
  if (!Number.isFinite(x)) return x;
  for (let digits = 1; digits < 9; digits++) {
    const y = Number(x.toPrecision(digits));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

function cleanValue(value, metadata) {
  const clean = (v) => {
    if (typeof v === 'string') return v.length > MAX_STRING ? `${v.slice(0, MAX_STRING)}…` : v;
    if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
    if (typeof v === 'number' && metadata.type === H5T.FLOAT && metadata.size === 4) return float32(v);
    if (Array.isArray(v)) return v.map(clean);
    return v;
  };
  return clean(value);
}

/**
 * The JSON value of a small dataset or attribute (`entity` has metadata and to_array()), or undefined
 * if it is not small. Text stored as a one-element array is given as its string, since writers differ
 * in how they store a single string.
 */
export function smallValue(entity, metadata = entity.metadata) {
  if (!isSmall(metadata)) return undefined;
  let value = entity.to_array();
  if (metadata.type === H5T.STRING && Array.isArray(value) && value.length === 1 && metadata.shape?.length === 1) value = value[0];
  return cleanValue(value, metadata);
}

/** The names of an object's attributes. */
export function attributeNames(entity) {
  return Object.keys(entity.attrs);
}

/** One attribute's JSON value; undefined if absent; {shape, dtype} if too big to read. */
export function attribute(entity, name) {
  const attrs = entity.attrs;
  if (!Object.hasOwn(attrs, name)) return undefined;
  const attr = attrs[name];
  const value = smallValue(attr, attr.metadata);
  return value !== undefined ? value : { shape: attr.metadata.shape, dtype: dtypeName(attr.metadata) };
}

/** Every attribute of an object, as JSON values (big ones described). */
export function attributes(entity) {
  const out = {};
  for (const name of attributeNames(entity)) out[name] = attribute(entity, name);
  return out;
}

/** A text attribute (e.g. NX_class, signal, default) as a string, or undefined. */
export function textAttribute(entity, name) {
  const value = attribute(entity, name);
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0];
  return undefined;
}

/** Dimensions with no limit come back as 2^64-1; report them as null, as h5py reports None. */
function maxshapeOf(metadata) {
  return metadata.maxshape?.map((n) => (n >= 2 ** 63 ? null : n)) ?? null;
}

/**
 * A dataset without its data: shape, dtype, byte order, chunks, max shape, filters, units; and its
 * value if it is small. A dataset with a `units` attribute and a value gives {value, units}.
 */
export function describeDataset(dataset, { withValue = true } = {}) {
  const metadata = dataset.metadata;
  const units = textAttribute(dataset, 'units');
  let value;
  let unreadable;
  try {
    value = withValue ? smallValue(dataset, metadata) : undefined;
  } catch (err) {
    unreadable = hdf5Message(err); // e.g. compressed with a filter h5wasm lacks: describe it instead
  }
  if (value !== undefined) return units === undefined ? value : { value, units };
  const out = { shape: metadata.shape, dtype: dtypeName(metadata) };
  const order = byteOrder(metadata);
  if (order) out.byteOrder = order;
  if (metadata.chunks) out.chunks = metadata.chunks;
  const maxshape = maxshapeOf(metadata);
  if (maxshape && maxshape.some((n, i) => n !== metadata.shape[i])) out.maxshape = maxshape;
  const filters = dataset.filters;
  // Plugins name themselves "bitshuffle; see https://…": the name is the part before the ';'.
  if (filters?.length) out.filters = filters.map((f) => (f.name || `filter ${f.id}`).split(';')[0].trim());
  if (metadata.virtual_sources) out.virtual = true;
  if (units !== undefined) out.units = units;
  if (unreadable !== undefined) out.unreadable = unreadable;
  return out;
}
