// Server-sent events on a raw HTTP response: frames in dCache's field order (event, id, data),
// heartbeat comments, and backpressure (a writer reports when the socket buffer is full).
import type { ServerResponse } from 'node:http';

export interface SseFrame {
  event: string;
  /** Omitted for events that cannot be resumed from (SYSTEM, metronome). */
  id?: number;
  /** One line of compact JSON. */
  data: string;
}

export function formatFrame(f: SseFrame): string {
  return `event: ${f.event}\n${f.id !== undefined ? `id: ${f.id}\n` : ''}data: ${f.data}\n\n`;
}

export const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
  connection: 'keep-alive',
} as const;

/** Owns one SSE response: headers, frames, a heartbeat, and its end. */
export class SseWriter {
  private heartbeat: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly res: ServerResponse,
    heartbeatMs: number,
  ) {
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    this.heartbeat = setInterval(() => {
      if (!this.full) this.res.write(': keep-alive\n\n');
    }, heartbeatMs);
    this.heartbeat.unref();
    res.once('close', () => this.dispose());
  }

  get closed(): boolean {
    return this.ended || this.res.destroyed || this.res.writableEnded;
  }

  /** True while the socket buffer is full: stop producing until `onDrain`. */
  get full(): boolean {
    return this.res.writableNeedDrain;
  }

  onDrain(listener: () => void): void {
    this.res.once('drain', listener);
  }

  onClose(listener: () => void): void {
    this.res.once('close', listener);
  }

  /** Writes a frame; returns false when the caller should wait for drain. */
  send(frame: SseFrame): boolean {
    if (this.closed) return false;
    return this.res.write(formatFrame(frame));
  }

  end(): void {
    if (this.ended) return;
    this.dispose();
    this.res.end();
  }

  private dispose(): void {
    this.ended = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}
