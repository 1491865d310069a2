// A namespace file as a local file under the instance's private /tmp, for libraries that need random
// access (HDF5). The copy streams in (nothing is buffered in the heap) and is removed afterwards.
// /tmp is memory-backed and sized by the manifest's limits.memoryMb, so the file must fit there; a
// file that cannot is refused up front with the numbers, instead of failing half-way with ENOSPC.
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The namespace attributes of a regular file; throws a clear Error for directories. */
export async function statFile(ctx, path) {
  const attrs = await ctx.storage.stat(path);
  if (attrs.fileType === 'DIR') throw new Error(`${path} is a directory, not a file`);
  return attrs;
}

/** Free bytes in the directory's file system, or undefined where that cannot be told. */
export async function freeBytes(dir) {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/**
 * Streams `path` into the local file `local` (in /tmp) after checking that it fits; returns its
 * namespace attributes.
 */
export async function download(ctx, path, local) {
  const attrs = await statFile(ctx, path);
  const free = await freeBytes(dirname(local));
  if (free !== undefined && attrs.size > free) {
    throw new Error(
      `${path} is ${attrs.size} bytes, more than the ${free} bytes free in this instance's /tmp ` +
        '(sized by limits.memoryMb in the manifest); deploy the function with a larger limit for files this big',
    );
  }
  await ctx.storage.download(path, local);
  return attrs;
}

/**
 * Runs `use(localFile, attrs)` on a local copy of `path` and removes the copy afterwards, also when
 * `use` throws. `attrs` are the file's namespace attributes (size, checksums, …). Other files that
 * `use` downloads into the copy's directory are removed with it.
 */
export async function withLocalCopy(ctx, path, use) {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-'));
  try {
    const local = join(dir, 'data');
    const attrs = await download(ctx, path, local);
    return await use(local, attrs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
