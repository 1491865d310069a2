// Progress bars for transfers: shown only for large files and only when a person is watching.
import { SingleBar, Presets } from 'cli-progress';
import type { ProgressListener } from './client.js';
import { formatSize } from './output.js';

/** Transfers smaller than this finish before a bar would be worth drawing. */
const MIN_BYTES_FOR_BAR = 4 * 1000 * 1000;

export interface Progress {
  listener: ProgressListener | undefined;
  stop(): void;
}

export function progressFor(label: string, total: number | undefined): Progress {
  if (!process.stdout.isTTY || !process.stderr.isTTY || total === undefined || total < MIN_BYTES_FOR_BAR) {
    return { listener: undefined, stop() {} };
  }
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% {done}/{size} {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      fps: 10,
    },
    Presets.shades_classic,
  );
  bar.start(total, 0, { done: formatSize(0), size: formatSize(total) });
  return {
    listener: (transferred) => bar.update(transferred, { done: formatSize(transferred) }),
    stop: () => bar.stop(),
  };
}
