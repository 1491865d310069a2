// A small Server-Sent Events parser (WHATWG EventSource rules): bytes in, complete messages out.
// Kept here rather than pulling in an EventSource package so the CLI can set headers and resume freely.

export interface SseMessage {
  /** The `event:` field; "message" when the server sent none. */
  event: string;
  /** The `id:` field of this message, if it carried one. */
  id: string | undefined;
  data: string;
}

export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private buffer = '';
  private event = '';
  private id: string | undefined;
  private data: string[] = [];

  /** Feeds a chunk; returns the messages it completed. */
  push(chunk: Uint8Array): SseMessage[] {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    const out: SseMessage[] = [];
    for (;;) {
      const end = this.buffer.search(/\r\n|\r|\n/);
      if (end < 0) break;
      // A lone trailing "\r" may be the first half of "\r\n": wait for the next chunk.
      if (this.buffer[end] === '\r' && end === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + (this.buffer.startsWith('\r\n', end) ? 2 : 1));
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const message = this.data.length === 0 ? undefined : { event: this.event || 'message', id: this.id, data: this.data.join('\n') };
    this.event = '';
    this.id = undefined;
    this.data = [];
    return message;
  }
}
