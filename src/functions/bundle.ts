// Function bundles on the server: an uploaded tar.gz is unpacked into a private staging directory
// under the bundles directory (regular files and directories only, within caps on bytes, entries
// and path length), its manifest is read, its content digest computed, and it is moved by one rename
// to <bundlesDir>/<name>/<digest>/ with read-only files. Nothing from a refused archive stays behind.
//
// The digest is sha-256 over the sorted list of (path, kind, executable bit, size, sha-256 of bytes),
// so it depends only on the tree's content: not on tar metadata, timestamps, owners, whether the
// archive lists directories, or archive order. The same directory deployed twice is the same version.
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { ReadEntry } from 'tar';
import { SluiceError } from '../errors.js';
import { readManifest } from './manifest.js';
import type { Manifest, VersionId } from './types.js';

export interface UnpackLimits {
  /** Largest archive as uploaded, and largest sum of unpacked file sizes. */
  maxBytes: number;
  /** Most entries (files and directories). */
  maxFiles: number;
  /** Longest relative path, in UTF-8 bytes. */
  maxPathBytes: number;
}

export const DEFAULT_UNPACK_LIMITS: UnpackLimits = { maxBytes: 100 * 1024 * 1024, maxFiles: 10_000, maxPathBytes: 1024 };

/** Longest single path segment most file systems accept. */
const MAX_SEGMENT_BYTES = 255;
/** Tar overhead allowed per entry (header, pax record, padding) on top of the content bytes. */
const TAR_OVERHEAD_PER_ENTRY = 4096;
/** Pax headers carry a path and a few attributes; more is not a bundle. */
const MAX_META_ENTRY_BYTES = 64 * 1024;
const STAGING = '.staging';

/** One entry of the unpacked tree, as the digest sees it. */
export interface BundleEntry {
  path: string;
  kind: 'file' | 'dir';
  executable: boolean;
  size: number;
  /** sha-256 hex of the bytes (files only). */
  sha256: string;
}

export interface StagedBundle {
  /** The staging directory holding the unpacked tree. */
  dir: string;
  manifest: Manifest;
  digest: VersionId;
  /** Sum of file sizes. */
  size: number;
  entries: BundleEntry[];
}

/** sha-256 over the sorted entries; see the module header. */
export function bundleDigest(entries: readonly BundleEntry[]): VersionId {
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const hash = createHash('sha256');
  for (const e of sorted) {
    hash.update(e.kind === 'dir' ? `${e.path}\0dir\n` : `${e.path}\0file\0${e.executable ? 1 : 0}\0${e.size}\0${e.sha256}\n`);
  }
  return hash.digest('hex') as VersionId;
}

export const stagingRoot = (bundlesDir: string): string => join(bundlesDir, STAGING);

/** Removes what interrupted deploys left in the staging area. */
export async function clearStaging(bundlesDir: string): Promise<void> {
  await rm(stagingRoot(bundlesDir), { recursive: true, force: true });
}

/**
 * Unpacks a tar.gz into a new staging directory, validates its manifest and computes its digest.
 * On any failure the staging directory is removed and a BAD_REQUEST or PAYLOAD_TOO_LARGE is thrown.
 */
export async function unpackBundle(
  archive: Readable,
  bundlesDir: string,
  limits: UnpackLimits = DEFAULT_UNPACK_LIMITS,
  opts: { fsync?: boolean } = {},
): Promise<StagedBundle> {
  await mkdir(stagingRoot(bundlesDir), { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(stagingRoot(bundlesDir), 'b-'));
  try {
    const entries = await extract(archive, dir, limits, opts.fsync ?? true);
    const { manifest } = await readManifest(dir);
    await seal(dir, entries, opts.fsync ?? true);
    const size = entries.reduce((n, e) => n + e.size, 0);
    return { dir, manifest, digest: bundleDigest(entries), size, entries };
  } catch (e) {
    archive.resume();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Moves a staged bundle to <bundlesDir>/<name>/<digest>/. If that directory exists, the same content
 * was installed before: the staging copy is dropped and `existed` is true.
 */
export async function installBundle(
  staged: StagedBundle,
  bundlesDir: string,
  opts: { fsync?: boolean } = {},
): Promise<{ dir: string; existed: boolean }> {
  const parent = join(bundlesDir, staged.manifest.name);
  const target = join(parent, staged.digest);
  await mkdir(parent, { recursive: true, mode: 0o755 });
  try {
    await rename(staged.dir, target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    await rm(staged.dir, { recursive: true, force: true });
    return { dir: target, existed: true };
  }
  if (opts.fsync ?? true) await fsyncDir(parent);
  return { dir: target, existed: false };
}

/** Removes an installed bundle directory (its files are read-only, its directories are not). */
export async function removeBundleDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

// ---- extraction ------------------------------------------------------------------------------

/** Counts bytes through a stream and fails once they pass a limit. */
class ByteCap extends Transform {
  private bytes = 0;

  constructor(
    private readonly limit: number,
    private readonly what: () => SluiceError,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) done(this.what());
    else done(null, chunk);
  }
}

const tooLarge = (message: string) => new SluiceError('PAYLOAD_TOO_LARGE', message);
const refused = (message: string) => new SluiceError('BAD_REQUEST', message);

async function extract(archive: Readable, dir: string, limits: UnpackLimits, fsync: boolean): Promise<BundleEntry[]> {
  // Loaded on the first deploy, not at server start: an idle server never needs it (6 MB).
  const { Parser } = await import('tar');
  const claimed = new Map<string, 'file' | 'dir'>();
  const files: BundleEntry[] = [];
  let entryCount = 0;
  let contentBytes = 0;
  let failure: Error | undefined;
  let current: ReadEntry | undefined;
  let work: Promise<void> = Promise.resolve();
  let failed!: (e: Error) => void;
  const failedPromise = new Promise<never>((_, reject) => (failed = reject));
  failedPromise.catch(() => undefined);

  const fail = (e: Error) => {
    if (failure) return;
    failure = e;
    current?.destroy();
    failed(e);
  };

  const parser = new Parser({ strict: true, brotli: false, zstd: false, maxMetaEntrySize: MAX_META_ENTRY_BYTES });
  parser.on('error', (e: Error) => fail(refused(`not a valid tar archive: ${e.message}`)));
  parser.on('ignoredEntry', (entry: ReadEntry) => fail(refused(`archive entry "${entry.path}" cannot be read (${entry.type})`)));
  parser.on('entry', (entry: ReadEntry) => {
    if (failure) return void entry.resume();
    let checked: { path: string; kind: 'file' | 'dir' } | undefined;
    try {
      checked = checkEntry(entry, limits);
      if (checked.path !== '') {
        entryCount++;
        if (entryCount > limits.maxFiles) throw tooLarge(`archive holds more than ${limits.maxFiles} entries`);
        claim(checked.path, checked.kind, claimed);
      }
      if (checked.kind === 'file') {
        contentBytes += entry.size;
        if (contentBytes > limits.maxBytes) throw tooLarge(`archive unpacks to more than ${limits.maxBytes} bytes`);
      }
    } catch (e) {
      fail(e as Error);
      return void entry.resume();
    }
    if (checked.kind === 'dir') {
      entry.resume();
      work = work.then(() => mkdir(join(dir, checked.path), { recursive: true, mode: 0o755 }).then(() => undefined));
      return;
    }
    current = entry;
    const path = checked.path;
    const executable = ((entry.mode ?? 0) & 0o111) !== 0;
    work = work
      .then(() => writeEntry(entry, join(dir, path), executable, fsync))
      .then(({ size, sha256 }) => {
        files.push({ path, kind: 'file', executable, size, sha256 });
      })
      .catch((e: unknown) => {
        fail(e instanceof SluiceError ? e : refused(`cannot unpack "${path}": ${(e as Error).message}`));
        entry.resume();
      });
  });
  const parsed = new Promise<void>((resolve) => parser.on('end', resolve));

  const tarCap = limits.maxBytes + limits.maxFiles * TAR_OVERHEAD_PER_ENTRY + 1024 * 1024;
  try {
    await pipeline(
      archive,
      new ByteCap(limits.maxBytes, () => tooLarge(`archive larger than ${limits.maxBytes} bytes`)),
      createGunzip(),
      new ByteCap(tarCap, () => tooLarge(`archive unpacks to more than ${limits.maxBytes} bytes`)),
      async function feed(source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          if (failure) throw failure;
          if (!parser.write(chunk)) await Promise.race([new Promise((r) => parser.once('drain', r)), failedPromise]);
        }
        parser.end();
      },
    );
    await Promise.race([parsed, failedPromise]);
    await Promise.race([work, failedPromise]);
  } catch (e) {
    fail(asUnpackError(e));
    // Let the write in progress close its file before the caller removes the directory.
    await work.catch(() => undefined);
    throw failure ?? asUnpackError(e);
  }
  if (failure) throw failure;
  const dirs = [...claimed].filter(([, kind]) => kind === 'dir').map(([path]) => path);
  // Directories the archive only implies (by the paths of its files) exist already; empty ones listed
  // explicitly were made as they came.
  return [...files, ...dirs.map((path): BundleEntry => ({ path, kind: 'dir', executable: false, size: 0, sha256: '' }))];
}

function asUnpackError(e: unknown): SluiceError {
  if (e instanceof SluiceError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err?.code?.startsWith('Z_') || err?.code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return refused(`not a gzip-compressed tar archive: ${err.message}`);
  }
  return refused(`cannot unpack the archive: ${err?.message ?? String(e)}`);
}

/** Validates one tar entry: its kind and its path. Returns the normalized relative path ('' = root). */
function checkEntry(entry: ReadEntry, limits: UnpackLimits): { path: string; kind: 'file' | 'dir' } {
  const raw = entry.path;
  const shown = JSON.stringify(raw.length > 200 ? raw.slice(0, 200) + '…' : raw);
  let kind: 'file' | 'dir';
  switch (entry.type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      kind = 'file';
      break;
    case 'Directory':
      kind = 'dir';
      break;
    case 'SymbolicLink':
      throw refused(
        `archive entry ${shown} is a symbolic link (to ${JSON.stringify(entry.linkpath)}); bundles hold only files and directories`,
      );
    case 'Link':
      throw refused(`archive entry ${shown} is a hard link; bundles hold only files and directories`);
    case 'CharacterDevice':
    case 'BlockDevice':
      throw refused(`archive entry ${shown} is a device; bundles hold only files and directories`);
    case 'FIFO':
      throw refused(`archive entry ${shown} is a FIFO; bundles hold only files and directories`);
    default:
      throw refused(`archive entry ${shown} has unsupported type ${entry.type}`);
  }
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw) || raw.startsWith('\\')) {
    throw refused(`archive entry ${shown} has an absolute path`);
  }
  if (hasControlCharacter(raw)) throw refused(`archive entry ${shown} has a control character in its path`);
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw refused(`archive entry ${shown} leaves the bundle (..)`);
  const path = segments.join('/');
  if (path === '' && kind === 'file') throw refused(`archive entry ${shown} has no name`);
  if (Buffer.byteLength(path) > limits.maxPathBytes) {
    throw refused(`archive entry ${shown} has a path longer than ${limits.maxPathBytes} bytes`);
  }
  if (segments.some((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES)) {
    throw refused(`archive entry ${shown} has a name longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return { path, kind };
}

function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** Records a path and its ancestors; refuses duplicates and file/directory clashes. */
function claim(path: string, kind: 'file' | 'dir', claimed: Map<string, 'file' | 'dir'>): void {
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const ancestor = segments.slice(0, i).join('/');
    if (claimed.get(ancestor) === 'file') throw refused(`archive entry "${ancestor}" is both a file and a directory`);
    claimed.set(ancestor, 'dir');
  }
  const before = claimed.get(path);
  if (before === undefined) claimed.set(path, kind);
  else if (before !== kind) throw refused(`archive entry "${path}" is both a file and a directory`);
  else if (kind === 'file') throw refused(`archive has "${path}" twice`);
}

/** Writes one entry's bytes to a new file (never through an existing one) and hashes them. */
async function writeEntry(entry: ReadEntry, file: string, executable: boolean, fsync: boolean): Promise<{ size: number; sha256: string }> {
  await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  const fh = await open(file, 'wx', executable ? 0o700 : 0o600);
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      await fh.write(chunk);
    }
    if (size !== entry.size) throw refused(`archive entry "${entry.path}" is truncated`);
    if (fsync) await fh.sync();
  } finally {
    await fh.close();
  }
  return { size, sha256: hash.digest('hex') };
}

/** Makes files read-only (keeping exec bits) and directories 0755; fsyncs directories so names persist. */
async function seal(dir: string, entries: readonly BundleEntry[], fsync: boolean): Promise<void> {
  for (const e of entries) {
    await chmod(join(dir, e.path), e.kind === 'dir' ? 0o755 : e.executable ? 0o555 : 0o444);
    if (fsync && e.kind === 'dir') await fsyncDir(join(dir, e.path));
  }
  await chmod(dir, 0o755);
  if (fsync) await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
