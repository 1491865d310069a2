// Splits a byte stream into lines with a hard cap on line length. An instance that writes a line
// longer than the cap does not make the server buffer it: the head is kept (to tell whose line it
// was) and the rest is dropped until the next newline.

export interface LineHandlers {
  line(text: string): void;
  /** A line went past the cap; `head` holds its first bytes, `bytes` how many were seen so far. */
  overflow(head: string, bytes: number): void;
}

const NEWLINE = 0x0a;
const HEAD_BYTES = 256;

export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Bytes of the current over-long line seen so far; -1 when not skipping. */
  private skipping = -1;

  constructor(
    /** May be changed between lines (an instance adopted by a function takes that function's limit). */
    public maxLineBytes: number,
    private readonly on: LineHandlers,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl < 0 ? chunk.length : nl;
      if (this.skipping >= 0) {
        this.skipping += end - start;
      } else {
        const piece = chunk.subarray(start, end);
        if (this.partBytes + piece.length > this.maxLineBytes) {
          const head = Buffer.concat([...this.parts, piece.subarray(0, Math.max(0, HEAD_BYTES - this.partBytes))]).subarray(0, HEAD_BYTES);
          this.skipping = this.partBytes + piece.length;
          this.parts = [];
          this.partBytes = 0;
          this.on.overflow(head.toString('utf8'), this.skipping);
        } else if (piece.length > 0) {
          // Copy: the chunk's buffer may be reused by the stream after we return.
          this.parts.push(nl < 0 ? Buffer.from(piece) : piece);
          this.partBytes += piece.length;
        }
      }
      if (nl < 0) break;
      if (this.skipping >= 0) this.skipping = -1;
      else this.emit();
      start = nl + 1;
    }
  }

  /** Emits a last line that had no newline (end of stream). */
  end(): void {
    if (this.skipping < 0 && this.partBytes > 0) this.emit();
    this.skipping = -1;
  }

  private emit(): void {
    const text = this.parts.length === 1 ? this.parts[0]!.toString('utf8') : Buffer.concat(this.parts, this.partBytes).toString('utf8');
    this.parts = [];
    this.partBytes = 0;
    this.on.line(text);
  }
}
