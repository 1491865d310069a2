// A storage element backed by a local directory. Bytes live under data/<xx>/<yy>/<id>, keyed by a
// random id rather than the namespace path, so renames never touch data. Incoming data is written to
// tmp/, fsynced and renamed into place before the namespace commit makes it visible.
import { randomUUID } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, rename, unlink, readdir, rm, copyFile, constants, statfs, access } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { ChecksumAccumulator } from './checksums.js';
import { SluiceError } from '../errors.js';
import type { ReceiveOptions, ReceivedData, SpaceInfo, StorageElement } from './storage-element.js';

const EARLY_FLUSH_BYTES = 64 << 20;
const WRITE_BATCH_BYTES = 4 << 20;

export class LocalStorageElement implements StorageElement {
  readonly kind = 'local' as const;
  readonly name: string;
  readonly root: string;
  private readonly fsync: boolean;
  private readonly createdDirs = new Set<string>();

  constructor(name: string, root: string, opts: { fsync: boolean }) {
    this.name = name;
    this.root = root;
    this.fsync = opts.fsync;
  }

  async init(): Promise<void> {
    await mkdir(join(this.root, 'data'), { recursive: true });
    await mkdir(join(this.root, 'tmp'), { recursive: true });
  }

  /** The file holding a replica's bytes. */
  pathOf(location: string): string {
    if (!/^[0-9a-f]{32}$/.test(location)) throw new SluiceError('INTERNAL', `bad replica location ${location}`);
    return join(this.root, 'data', location.slice(0, 2), location.slice(2, 4), location);
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.createdDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.createdDirs.add(dir);
  }

  private async syncDir(dir: string): Promise<void> {
    if (!this.fsync) return;
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /**
   * Streams `source` into a new replica, computing checksums on the way. Resolves once the bytes
   * are durable under their final name; on any failure nothing is left behind.
   */
  async receive(source: Readable | AsyncIterable<Uint8Array>, opts: ReceiveOptions): Promise<ReceivedData> {
    const location = randomUUID().replace(/-/g, '');
    const tmp = join(this.root, 'tmp', location + '.part');
    const acc = new ChecksumAccumulator(opts.extraChecksums);
    const fh = await open(tmp, 'wx', 0o600);
    let size = 0;
    // Flush to disk while the upload is still arriving, so the final fsync has little left to do.
    let flushing: Promise<void> | undefined;
    let sinceFlush = 0;
    try {
      // Batch chunks into few large writes, and keep one write in flight while the next batch
      // arrives: receiving, checksumming and writing overlap, and memory stays at two batches.
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      let writing: Promise<unknown> | undefined;
      const startWrite = async (): Promise<void> => {
        await writing;
        if (pendingBytes === 0) return;
        const bufs = pending;
        const bytes = pendingBytes;
        pending = [];
        pendingBytes = 0;
        writing = fh.writev(bufs);
        sinceFlush += bytes;
        if (this.fsync && sinceFlush >= EARLY_FLUSH_BYTES && !flushing) {
          sinceFlush = 0;
          // Runs beside the next writes; the final datasync below covers whatever it missed.
          flushing = writing.then(() => fh.datasync()).finally(() => (flushing = undefined));
        }
      };
      try {
        for await (const chunk of source as AsyncIterable<Uint8Array>) {
          size += chunk.length;
          if (opts.maxSize !== undefined && size > opts.maxSize) {
            throw new SluiceError('PAYLOAD_TOO_LARGE', `more than ${opts.maxSize} bytes`);
          }
          if (opts.expectedSize !== undefined && size > opts.expectedSize) {
            throw new SluiceError('BAD_REQUEST', `body longer than the declared Content-Length ${opts.expectedSize}`);
          }
          acc.update(chunk);
          pending.push(chunk);
          pendingBytes += chunk.length;
          if (pendingBytes >= WRITE_BATCH_BYTES) await startWrite();
        }
        await startWrite();
      } finally {
        await writing?.catch(() => undefined);
      }
      await writing;
      if (opts.expectedSize !== undefined && size !== opts.expectedSize) {
        throw new SluiceError('BAD_REQUEST', `body ended after ${size} of ${opts.expectedSize} declared bytes`);
      }
      await flushing;
      if (this.fsync) await fh.datasync();
      await fh.close();
      const final = this.pathOf(location);
      await this.ensureDir(dirname(final));
      await rename(tmp, final);
      await this.syncDir(dirname(final));
    } catch (e) {
      await flushing?.catch(() => undefined);
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    return { location, size, checksums: acc.digest() };
  }

  /** Byte range [start, end] inclusive, or the whole replica. */
  async read(location: string, range?: { start: number; end: number }): Promise<ReadStream> {
    return this.readSync(location, range);
  }

  readSync(location: string, range?: { start: number; end: number }): ReadStream {
    return createReadStream(
      this.pathOf(location),
      range ? { start: range.start, end: range.end, highWaterMark: 1 << 20 } : { highWaterMark: 1 << 20 },
    );
  }

  /** Copies a replica to a new location on this SE (reflink where the filesystem can). */
  async duplicate(location: string): Promise<string> {
    const copy = randomUUID().replace(/-/g, '');
    await this.importFile(this.pathOf(location), copy);
    return copy;
  }

  async remove(location: string): Promise<void> {
    await unlink(this.pathOf(location)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  /**
   * Deletes what a crash left behind: partial uploads in tmp/ and data files that no committed
   * replica references (written and renamed, but the namespace commit never happened).
   */
  async sweep(referenced: ReadonlySet<string>): Promise<{ partial: number; orphaned: number }> {
    let partial = 0;
    let orphaned = 0;
    for (const f of await readdir(join(this.root, 'tmp'))) {
      await rm(join(this.root, 'tmp', f), { force: true });
      partial++;
    }
    const data = join(this.root, 'data');
    for (const a of await readdir(data)) {
      for (const b of await readdir(join(data, a)).catch(() => [] as string[])) {
        for (const f of await readdir(join(data, a, b)).catch(() => [] as string[])) {
          if (!referenced.has(f)) {
            await rm(join(data, a, b, f), { force: true });
            orphaned++;
          }
        }
      }
    }
    return { partial, orphaned };
  }

  async space(): Promise<SpaceInfo> {
    const s = await statfs(this.root);
    return { total: s.blocks * s.bsize, free: s.bavail * s.bsize };
  }

  /** Places a copy of `file` under `location` (a tape recall): written to tmp/, synced, renamed. */
  async importFile(file: string, location: string): Promise<void> {
    const tmp = join(this.root, 'tmp', location + '.part');
    try {
      await copyFile(file, tmp, constants.COPYFILE_FICLONE);
      if (this.fsync) {
        const fh = await open(tmp, 'r+');
        await fh.datasync();
        await fh.close();
      }
      const final = this.pathOf(location);
      await this.ensureDir(dirname(final));
      await rename(tmp, final);
      await this.syncDir(dirname(final));
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  async has(location: string): Promise<boolean> {
    return access(this.pathOf(location)).then(
      () => true,
      () => false,
    );
  }

  async close(): Promise<void> {}
}
