// A nearline storage element, emulating an HSM-backed dCache pool: files land in a disk buffer,
// are flushed to "tape" (a separate directory, written once, synced) and may then leave the
// buffer; reading such a file needs a stage that takes stageDelaySeconds. The placement domain
// decides when to flush, stage and evict; this class only moves bytes.
import { copyFile, mkdir, open, rename, unlink, readdir, rm, constants } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { LocalStorageElement } from './local-se.js';
import { SluiceError } from '../errors.js';
import type { ReceiveOptions, ReceivedData, SpaceInfo, StorageElement } from './storage-element.js';

export interface TapeOptions {
  fsync: boolean;
  flushDelaySeconds: number;
  stageDelaySeconds: number;
}

export class TapeStorageElement implements StorageElement {
  readonly kind = 'tape' as const;
  readonly buffer: LocalStorageElement;
  private readonly tapeDir: string;

  constructor(
    readonly name: string,
    readonly root: string,
    readonly options: TapeOptions,
  ) {
    this.buffer = new LocalStorageElement(name, join(root, 'buffer'), { fsync: options.fsync });
    this.tapeDir = join(root, 'tape');
  }

  async init(): Promise<void> {
    await this.buffer.init();
    await mkdir(join(this.tapeDir, 'tmp'), { recursive: true });
  }

  private onTape(location: string): string {
    if (!/^[0-9a-f]{32}$/.test(location)) throw new SluiceError('INTERNAL', `bad replica location ${location}`);
    return join(this.tapeDir, location.slice(0, 2), location);
  }

  receive(source: Readable | AsyncIterable<Uint8Array>, opts: ReceiveOptions): Promise<ReceivedData> {
    return this.buffer.receive(source, opts);
  }

  /** Reads from the disk buffer; a file only on tape must be staged first. */
  async read(location: string, range?: { start: number; end: number }): Promise<Readable> {
    if (!(await this.buffer.has(location)))
      throw new SluiceError('UNAVAILABLE', `replica on ${this.name} is NEARLINE: it must be staged first`);
    return this.buffer.read(location, range);
  }

  isOnline(location: string): Promise<boolean> {
    return this.buffer.has(location);
  }

  /** Writes the buffered bytes to tape (written aside, synced, renamed: a crash leaves no partial file). */
  async flush(location: string): Promise<void> {
    const final = this.onTape(location);
    const tmp = join(this.tapeDir, 'tmp', location);
    await mkdir(dirname(final), { recursive: true });
    try {
      await copyFile(this.buffer.pathOf(location), tmp, constants.COPYFILE_FICLONE);
      if (this.options.fsync) {
        const fh = await open(tmp, 'r+');
        await fh.datasync();
        await fh.close();
      }
      await rename(tmp, final);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  /** Recalls a file from tape into the buffer; takes stageDelaySeconds, as a tape mount and seek would. */
  async stage(location: string, signal?: AbortSignal): Promise<void> {
    await sleep(this.options.stageDelaySeconds * 1000, undefined, signal ? { signal } : {});
    await this.buffer.importFile(this.onTape(location), location);
  }

  /** Drops the buffer copy of a flushed file. */
  async evict(location: string): Promise<void> {
    await this.buffer.remove(location);
  }

  async remove(location: string): Promise<void> {
    await this.buffer.remove(location);
    await unlink(this.onTape(location)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  async space(): Promise<SpaceInfo> {
    return this.buffer.space();
  }

  /** Removes buffer and tape files no committed replica references (what a crash left). */
  async sweep(referenced: ReadonlySet<string>): Promise<{ partial: number; orphaned: number }> {
    const swept = await this.buffer.sweep(referenced);
    for (const f of await readdir(join(this.tapeDir, 'tmp'))) {
      await rm(join(this.tapeDir, 'tmp', f), { force: true });
      swept.partial++;
    }
    for (const d of await readdir(this.tapeDir)) {
      if (d === 'tmp') continue;
      for (const f of await readdir(join(this.tapeDir, d)).catch(() => [] as string[])) {
        if (!referenced.has(f)) {
          await rm(join(this.tapeDir, d, f), { force: true });
          swept.orphaned++;
        }
      }
    }
    return swept;
  }

  async close(): Promise<void> {}
}
