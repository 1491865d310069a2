// Group commit for the embedded state. SQLite runs with synchronous=NORMAL, so a commit does not
// fsync on the event loop; before a change is acknowledged, `durable()` fdatasyncs the WAL file in
// the thread pool. One fsync covers every commit made before it started, so concurrent writers
// share fsyncs instead of queueing behind one each.
import { open, type FileHandle } from 'node:fs/promises';

export class WalSync {
  private fh: FileHandle | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(private readonly walPath: string) {}

  async init(): Promise<void> {
    // The WAL exists once the database is in WAL mode and has been written; SQLite keeps the same
    // file (reset, not deleted) while the connection is open.
    this.fh = await open(this.walPath, 'r+');
  }

  /** Resolves once every commit made before this call is on disk. */
  durable(): Promise<void> {
    if (!this.fh) return Promise.resolve();
    if (!this.running) {
      this.running = this.sync();
      return this.running;
    }
    // A sync is under way but may have started before our commit: wait for the next one, shared by
    // everybody who arrives meanwhile.
    if (!this.queued) {
      this.queued = this.running.then(() => {
        this.queued = undefined;
        this.running = this.sync();
        return this.running;
      });
    }
    return this.queued;
  }

  private async sync(): Promise<void> {
    try {
      await this.fh!.datasync();
    } finally {
      this.running = undefined;
    }
  }

  async close(): Promise<void> {
    await this.running?.catch(() => undefined);
    await this.fh?.close();
    this.fh = undefined;
  }
}
