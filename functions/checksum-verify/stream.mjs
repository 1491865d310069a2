// A namespace file as a stream of chunks, without keeping the file anywhere: ctx.storage.download
// writes into a named pipe under /tmp that this module reads from, so memory stays flat whatever
// the file's size. Where no pipe can be made (no mkfifo in the sandbox), the file goes through /tmp
// instead, which then must have room for it.
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freeBytes } from '@sluice/builtins/local-copy.mjs';

const run = promisify(execFile);

async function makeFifo(path) {
  try {
    await run('mkfifo', ['-m', '600', path]);
    return true;
  } catch {
    return false;
  }
}

async function readAll(file, onChunk) {
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) onChunk(chunk);
}

/**
 * Calls `onChunk` with every chunk of the file at `path`, in order. `size` (from stat) is only used
 * to check room in /tmp on the fallback path. Resolves when the whole file has passed.
 */
export async function streamFile(ctx, path, size, onChunk) {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-'));
  try {
    const pipe = join(dir, 'pipe');
    if (await makeFifo(pipe)) {
      // Opening either end of a pipe waits for the other, so both sides start at once. If the
      // download fails, its end closes and the reader sees the end of the file; if the reader fails,
      // the writer's next write fails (EPIPE): neither side is left waiting.
      const [reading, downloading] = await Promise.allSettled([readAll(pipe, onChunk), ctx.storage.download(path, pipe)]);
      if (downloading.status === 'rejected') throw downloading.reason;
      if (reading.status === 'rejected') throw reading.reason;
      return;
    }
    const free = await freeBytes(dir);
    ctx.log.warn('no mkfifo here: %s passes through /tmp (%d bytes)', path, size);
    if (free !== undefined && size > free) {
      throw new Error(`${path} is ${size} bytes, more than the ${free} bytes free in /tmp, and no named pipe could be made to stream it`);
    }
    const local = join(dir, 'data');
    await ctx.storage.download(path, local);
    await readAll(local, onChunk);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
