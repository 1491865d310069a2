// Packs a function's directory into the tar.gz a deploy uploads. Keeps exec bits; leaves out what
// never belongs in a bundle (.git, __pycache__, node_modules/.cache). The server accepts only files
// and directories, so a symbolic link that stays inside the directory is packed as what it points
// at, and one that leads outside is refused here with a message naming it.
import { readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { create } from 'tar';
import { SluiceError } from '../errors.js';
import { byName } from './output.js';

/** Names skipped wherever they appear, and paths skipped at any depth. */
const SKIPPED_NAMES = new Set(['.git', '__pycache__']);
const SKIPPED_SUFFIXES = ['node_modules/.cache'];

export interface PackEntry {
  /** Relative to the bundle root, with / separators. */
  path: string;
  kind: 'file' | 'dir';
}

const skipped = (path: string, name: string): boolean =>
  SKIPPED_NAMES.has(name) || SKIPPED_SUFFIXES.some((s) => path === s || path.endsWith('/' + s));

/** What a bundle of dir holds, in a stable order (parents before children). */
export async function bundleEntries(dir: string): Promise<PackEntry[]> {
  const root = await realpath(dir).catch(() => {
    throw new SluiceError('NOT_FOUND', `${dir}: no such directory`);
  });
  if (!(await stat(root)).isDirectory()) throw new SluiceError('NOT_A_DIRECTORY', `${dir} is not a directory`);
  const out: PackEntry[] = [];
  await walk(dir, root, '', new Set([root]), out);
  return out;
}

async function walk(dir: string, root: string, rel: string, ancestors: Set<string>, out: PackEntry[]): Promise<void> {
  const entries = await readdir(join(dir, rel), { withFileTypes: true });
  entries.sort((a, b) => byName(a.name, b.name));
  for (const e of entries) {
    const path = rel === '' ? e.name : `${rel}/${e.name}`;
    if (skipped(path, e.name)) continue;
    const full = join(dir, path);
    let kind: 'file' | 'dir' | 'other';
    let real = full;
    if (e.isSymbolicLink()) {
      real = await realpath(full).catch(() => {
        throw new SluiceError('BAD_REQUEST', `${path} is a symbolic link to nothing; remove it or make it point inside the bundle`);
      });
      if (real !== root && !real.startsWith(root + sep)) {
        throw new SluiceError(
          'BAD_REQUEST',
          `${path} is a symbolic link to ${real}, outside ${dir}; bundles cannot refer outside themselves: copy it in or remove the link`,
        );
      }
      const target = await stat(real);
      kind = target.isDirectory() ? 'dir' : target.isFile() ? 'file' : 'other';
    } else {
      kind = e.isDirectory() ? 'dir' : e.isFile() ? 'file' : 'other';
    }
    if (kind === 'other') throw new SluiceError('BAD_REQUEST', `${path} is not a regular file or directory (socket, FIFO or device)`);
    out.push({ path, kind });
    if (kind === 'dir') {
      const target = e.isSymbolicLink() ? real : await realpath(full);
      if (ancestors.has(target))
        throw new SluiceError('BAD_REQUEST', `${path} leads back into ${relative(root, target) || '.'}: a symbolic link loop`);
      await walk(dir, root, path, new Set([...ancestors, target]), out);
    }
  }
}

/** The tar.gz of dir as one buffer (bundles are small; the server caps them anyway). */
export async function packBundle(dir: string): Promise<Buffer> {
  const entries = await bundleEntries(dir);
  // follow: links were checked above, so the archive holds their targets as plain files and
  // directories; noDirRecurse: exactly the listed entries, nothing skipped sneaks back in.
  const stream = create(
    { gzip: true, cwd: dir, portable: true, follow: true, noDirRecurse: true },
    entries.map((e) => e.path),
  );
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
