// The log lines kept with one activation, cut at a byte budget so a function that prints
// megabytes costs the server no more than its limit; what was dropped is counted and noted.
export class LogCollector {
  private readonly kept: string[] = [];
  private bytes = 0;
  private droppedLines = 0;
  private droppedBytes = 0;

  constructor(private readonly maxBytes: number) {}

  add(line: string): void {
    const size = Buffer.byteLength(line) + 1;
    if (this.bytes + size > this.maxBytes) {
      this.droppedLines++;
      this.droppedBytes += size;
      return;
    }
    this.kept.push(line);
    this.bytes += size;
  }

  lines(): string[] {
    if (this.droppedLines === 0) return [...this.kept];
    return [
      ...this.kept,
      `[logs cut at limits.maxLogBytes (${this.maxBytes} bytes): ${this.droppedLines} more lines, ${this.droppedBytes} bytes]`,
    ];
  }
}

/** The last few lines of raw output of a process, whatever call they belonged to. */
export class OutputTail {
  private readonly ring: string[] = [];

  constructor(private readonly size: number) {}

  add(line: string): void {
    this.ring.push(line);
    if (this.ring.length > this.size) this.ring.shift();
  }

  lines(): string[] {
    return [...this.ring];
  }
}
