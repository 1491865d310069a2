// Test support for the built-in functions: NeXus files written by h5py (test/fixtures/nexus/make_nexus.py),
// TIFF files written by libtiff's raw2tiff, h5dump's DDL output parsed into a tree to compare against,
// numpy as an independent reference for percentiles, and the on-disk replica of a namespace file.
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './server.js';

const run = promisify(execFile);

/** Debian's python3, which has h5py and numpy (the python3 first on PATH may be another one). */
export const PYTHON = '/usr/bin/python3';
export const MAKE_NEXUS = join(REPO_ROOT, 'test', 'fixtures', 'nexus', 'make_nexus.py');

export interface NexusOptions {
  frames?: number;
  height?: number;
  width?: number;
  dtype?: 'uint16' | 'float32';
  /** bslz4 and bz2 need hdf5plugin (see hasHdf5Plugin). */
  compression?: 'gzip' | 'none' | 'bslz4' | 'bz2';
  /** An EIGER-style master file with its frames in this many data files beside it. */
  external?: number;
}

/**
 * Writes a NeXus file with h5py; returns the script's summary (shape, dtype, masked pixels, and the
 * names of the data files written beside it with `external`).
 */
export async function makeNexus(
  file: string,
  opts: NexusOptions = {},
): Promise<{ shape: number[]; dtype: string; masked: number; data_files: string[] }> {
  const args = [MAKE_NEXUS, file];
  for (const [k, v] of Object.entries(opts)) args.push(`--${k}`, String(v));
  const { stdout } = await run(PYTHON, args, { maxBuffer: 1 << 20 });
  return JSON.parse(stdout);
}

/**
 * A TIFF written by libtiff's raw2tiff from raw little-endian samples. `compression` is raw2tiff's
 * -c argument (none, lzw, lzw:2, zip:3, packbits); `msbFirst` false keeps raw2tiff's default
 * FillOrder 2 (bit-reversed bytes, which libtiff undoes on read).
 */
export async function rawToTiff(
  raw: string,
  tiff: string,
  opts: { width: number; height: number; type: 'short' | 'float' | 'long'; compression: string; msbFirst?: boolean },
): Promise<void> {
  const args = ['-w', String(opts.width), '-l', String(opts.height), '-d', opts.type, '-c', opts.compression];
  if (opts.msbFirst !== false) args.push('-M');
  await run('raw2tiff', [...args, raw, tiff]);
}

/** Whether h5py can write and read bitshuffle/LZ4 and bzip2 (Debian: python3-hdf5plugin, bitshuffle, hdf5-filter-plugin). */
export async function hasHdf5Plugin(): Promise<boolean> {
  const code = `
import json, h5py, numpy, hdf5plugin, tempfile
with tempfile.TemporaryFile() as t, h5py.File(t, "w") as f:
    for name, c in [("b", hdf5plugin.Bitshuffle(nelems=0, cname="lz4")), ("z", hdf5plugin.BZip2())]:
        f.create_dataset(name, data=numpy.arange(100), chunks=(10,), **c)
        assert f[name][5] == 5
print(json.dumps(True))
`;
  return pythonJson(code).then(
    () => true,
    () => false,
  );
}

/** Runs python code with numpy/h5py and parses what it prints as JSON. */
export async function pythonJson(code: string, ...argv: string[]): Promise<unknown> {
  const { stdout } = await run(PYTHON, ['-c', code, ...argv], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout);
}

// ---- h5dump ----

export interface DdlNode {
  kind: 'group' | 'dataset' | 'attribute' | 'softlink' | 'external';
  name: string;
  /** H5T_STD_U16LE, H5T_IEEE_F32LE, H5T_STRING, … */
  datatype?: string;
  dataspace?: { kind: 'SCALAR' | 'SIMPLE' | 'NULL'; dims: number[]; maxdims: (number | null)[] };
  data?: (string | number)[];
  chunks?: number[];
  filters?: string[];
  hardlink?: string;
  /** SOFTLINK: LINKTARGET; EXTERNAL_LINK: TARGETPATH inside TARGETFILE. */
  target?: string;
  targetFile?: string;
  attrs: Record<string, DdlNode>;
  children: Record<string, DdlNode>;
}

const OPEN_RE = /^(GROUP|DATASET|ATTRIBUTE|SOFTLINK|EXTERNAL_LINK) "(.*)" \{$/;
const KINDS: Record<string, DdlNode['kind']> = {
  GROUP: 'group',
  DATASET: 'dataset',
  ATTRIBUTE: 'attribute',
  SOFTLINK: 'softlink',
  EXTERNAL_LINK: 'external',
};

function newNode(kind: DdlNode['kind'], name: string): DdlNode {
  return { kind, name, attrs: {}, children: {} };
}

/** Index of the line after the block that starts at `i` (whose line ends with "{"). */
function skipBlock(lines: string[], i: number): number {
  let depth = 0;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    depth += (line.match(/\{/g) ?? []).length - (line.match(/\}/g) ?? []).length;
    if (depth <= 0) return i + 1;
  }
  return i;
}

/** The values of a DATA block: "(0): 1, 2, 3" lines, strings in double quotes. */
function parseValues(lines: string[]): (string | number)[] {
  const out: (string | number)[] = [];
  for (const raw of lines) {
    const line = raw.trim().replace(/^\(\d+(,\d+)*\):\s*/, '');
    for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|([^,\s][^,]*)/g)) {
      if (m[1] !== undefined) out.push(m[1].replace(/\\(.)/g, '$1'));
      else out.push(Number(m[2]!.trim()));
    }
  }
  return out;
}

function parseBody(lines: string[], start: number, node: DdlNode): number {
  let i = start;
  while (i < lines.length) {
    const line = lines[i]!.trim();
    if (line === '}') return i + 1;
    let m: RegExpExecArray | null;
    if ((m = OPEN_RE.exec(line))) {
      const child = newNode(KINDS[m[1]!]!, m[2]!);
      i = parseBody(lines, i + 1, child);
      if (child.kind === 'attribute') node.attrs[child.name] = child;
      else node.children[child.name] = child;
    } else if ((m = /^DATATYPE\s+(\S+)(\s*\{)?$/.exec(line))) {
      node.datatype = m[1]!;
      i = m[2] ? skipBlock(lines, i) : i + 1;
    } else if ((m = /^DATASPACE\s+(SCALAR|NULL|SIMPLE)(.*)$/.exec(line))) {
      const dims = /\{\s*\(([^)]*)\)\s*\/\s*\(([^)]*)\)\s*\}/.exec(m[2]!);
      const list = (s: string) => s.split(',').map((x) => x.trim());
      node.dataspace = {
        kind: m[1] as 'SCALAR' | 'NULL' | 'SIMPLE',
        dims: dims ? list(dims[1]!).map(Number) : [],
        maxdims: dims ? list(dims[2]!).map((x) => (x === 'H5S_UNLIMITED' ? null : Number(x))) : [],
      };
      i++;
    } else if (line === 'DATA {') {
      const end = lines.findIndex((l, k) => k > i && l.trim() === '}');
      node.data = parseValues(lines.slice(i + 1, end));
      i = end + 1;
    } else if (line === 'STORAGE_LAYOUT {' || line === 'FILTERS {') {
      const end = skipBlock(lines, i);
      for (const inner of lines.slice(i + 1, end - 1).map((l) => l.trim())) {
        const chunked = /^CHUNKED \(([^)]*)\)/.exec(inner);
        if (chunked) node.chunks = chunked[1]!.split(',').map((x) => Number(x.trim()));
        const filter = /^(COMPRESSION DEFLATE|SHUFFLE|CHECKSUM FLETCHER32|COMPRESSION SZIP|USER_DEFINED_FILTER)/.exec(inner);
        if (filter) (node.filters ??= []).push(filter[1]!);
      }
      i = end;
    } else if ((m = /^HARDLINK "(.*)"$/.exec(line))) {
      node.hardlink = m[1]!;
      i++;
    } else if ((m = /^(?:LINKTARGET|TARGETPATH) "(.*)"$/.exec(line))) {
      node.target = m[1]!;
      i++;
    } else if ((m = /^TARGETFILE "(.*)"$/.exec(line))) {
      node.targetFile = m[1]!;
      i++;
    } else if (line.endsWith('{') && !line.includes('}')) {
      i = skipBlock(lines, i);
    } else {
      i++;
    }
  }
  return i;
}

/** h5dump's DDL as a tree: the root group, or (with -d) a group whose children are the datasets by path. */
export function parseDdl(text: string): DdlNode {
  const lines = text.split('\n');
  const first = lines.findIndex((l) => /^HDF5 ".*" \{$/.test(l.trim()));
  const top = newNode('group', '');
  parseBody(lines, first + 1, top);
  return top.children['/'] ?? top;
}

/** `h5dump -A -p -w 0` (header, attributes with values, storage layout and filters) parsed. */
export async function h5dumpHeader(file: string): Promise<DdlNode> {
  const { stdout } = await run('h5dump', ['-A', '-p', '-w', '0', file], { maxBuffer: 64 << 20 });
  return parseDdl(stdout);
}

/** Datasets with their values, by path, from `h5dump -d … -d …`. */
export async function h5dumpDatasets(file: string, paths: string[]): Promise<Record<string, DdlNode>> {
  const args = ['-w', '0', ...paths.flatMap((p) => ['-d', p]), file];
  const { stdout } = await run('h5dump', args, { maxBuffer: 64 << 20 });
  return parseDdl(stdout).children;
}

/** Every group below (and including) `node`, by path, skipping second appearances of hard-linked groups. */
export function ddlGroups(node: DdlNode, path = '/'): [string, DdlNode][] {
  const out: [string, DdlNode][] = [[path, node]];
  for (const child of Object.values(node.children)) {
    if (child.kind !== 'group' || child.hardlink) continue;
    out.push(...ddlGroups(child, path === '/' ? `/${child.name}` : `${path}/${child.name}`));
  }
  return out;
}

/** The node at a path of the DDL tree (following no links). */
export function ddlAt(root: DdlNode, path: string): DdlNode | undefined {
  let node: DdlNode | undefined = root;
  for (const name of path.split('/').filter(Boolean)) node = node?.children[name];
  return node;
}

/** A scalar string attribute's value from the DDL. */
export function ddlText(node: DdlNode | undefined, attr: string): string | undefined {
  const v = node?.attrs[attr]?.data?.[0];
  return typeof v === 'string' ? v : undefined;
}

/** numpy-style dtype names for h5dump's predefined types. */
export function dtypeOfDdl(datatype: string): { dtype: string; byteOrder?: 'little' | 'big' } {
  if (datatype === 'H5T_STRING') return { dtype: 'string' };
  const m = /^H5T_(STD|IEEE)_([UIBF])(\d+)(LE|BE)$/.exec(datatype);
  if (!m) throw new Error(`no dtype name for ${datatype}`);
  const kind = m[2] === 'U' ? 'uint' : m[2] === 'I' ? 'int' : m[2] === 'F' ? 'float' : 'bitfield';
  const bits = Number(m[3]);
  return bits > 8 ? { dtype: `${kind}${bits}`, byteOrder: m[4] === 'LE' ? 'little' : 'big' } : { dtype: `${kind}${bits}` };
}

// ---- the storage element behind the namespace ----

/** The file in the local SE that holds exactly these bytes (the replica of a namespace file). */
export async function replicaFileOf(dataDir: string, bytes: Buffer): Promise<string> {
  const root = join(dataDir, 'se', 'local', 'data');
  const found: string[] = [];
  async function scan(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) await scan(p);
      else if ((await stat(p)).size === bytes.length && (await readFile(p)).equals(bytes)) found.push(p);
    }
  }
  await scan(root);
  if (found.length !== 1) throw new Error(`expected one replica with these ${bytes.length} bytes under ${root}, found ${found.length}`);
  return found[0]!;
}
