// Keeps the catalogue in step with the namespace, as a durable consumer of the storage-event log:
// every file closed after writing gets (or updates) its record, raw or derived; a file written by a
// function activation is recorded as derived from that activation's input, by that function's exact
// version, with its parameters; renames move records; deletions mark them deleted. Lineage is thus
// recorded by sluice itself, not left to each function to report.
import type { Logger } from 'pino';
import type { EventLog } from '../events/event-log.js';
import type { StorageEvent } from '../events/types.js';
import type { Invoker } from '../functions/invoker.js';
import type { Activation } from '../functions/types.js';
import type { CatalogService } from './service.js';

const CONSUMER = 'catalog-indexer';
const READ_BATCH = 1000;
/** Fields of a CloudEvent input that are not the function's parameters. */
const CLOUDEVENT_FIELDS = new Set(['specversion', 'id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'data']);

interface FileData {
  size?: number;
  checksums?: Record<string, string>;
  owner?: string;
  activation?: string;
  from?: string;
}

/** The input file of an activation: a trigger's CloudEvent subject, or a `path` given by hand. */
export function inputPathOf(input: unknown): string | undefined {
  if (input === null || typeof input !== 'object') return undefined;
  const o = input as Record<string, unknown>;
  if (o.specversion === '1.0' && typeof o.subject === 'string') return o.subject;
  return typeof o.path === 'string' ? o.path : undefined;
}

export function parametersOf(input: unknown): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  const o = input as Record<string, unknown>;
  if (o.specversion !== '1.0') return o;
  return Object.fromEntries(Object.entries(o).filter(([k]) => !CLOUDEVENT_FIELDS.has(k)));
}

const checksumList = (c: Record<string, string> | undefined) => Object.entries(c ?? {}).map(([type, value]) => ({ type, value }));

export class CatalogIndexer {
  private position = 0;
  private running = false;
  private again = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly deps: { catalog: CatalogService; eventLog: EventLog; invoker: Invoker; log: Logger }) {}

  async start(): Promise<void> {
    const saved = await this.deps.eventLog.position(CONSUMER);
    // A new catalogue starts from what the log still holds.
    this.position = saved > 0 ? saved : (await this.deps.eventLog.oldest()) - 1;
    // After the listeners of the same commit (triggers): the catalogue may lag a moment, a function should not.
    this.unsubscribe = this.deps.eventLog.onAppend(() => setImmediate(() => this.kick()));
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    await this.idle;
  }

  /** Resolves once every event appended so far has been indexed (for tests and orderly shutdown). */
  async caughtUp(): Promise<void> {
    const head = await this.deps.eventLog.head();
    while (this.position < head && !this.stopped) {
      this.kick();
      await this.idle;
      if (this.position < head) await new Promise((r) => setTimeout(r, 10));
    }
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.idle = this.drain().finally(() => {
      this.running = false;
      if (this.again && !this.stopped) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        const events = await this.deps.eventLog.read(this.position, READ_BATCH);
        if (events.length === 0) return;
        for (const e of events) await this.index(e);
        this.position = events.at(-1)!.id;
        await this.deps.eventLog.savePosition(CONSUMER, this.position);
        if (events.length < READ_BATCH) return;
      }
    } catch (err) {
      // The position was not saved past the failing event: it is tried again on the next append.
      this.deps.log.error({ err, position: this.position }, 'catalogue indexing failed; will retry');
    }
  }

  private async index(e: StorageEvent): Promise<void> {
    const data = (e.data ?? {}) as FileData;
    if (e.type === 'IN_MOVED_TO' && data.from) return this.deps.catalog.moved(data.from, e.path);
    if (e.type === 'IN_DELETE' && !e.isDir) return this.deps.catalog.removed(e.path);
    if (e.type !== 'IN_CLOSE_WRITE' || e.isDir) return;
    const activation = data.activation ? this.deps.invoker.find(data.activation) : undefined;
    await this.deps.catalog.upsertFile({
      path: e.path,
      size: data.size ?? 0,
      checksums: checksumList(data.checksums),
      owner: data.owner ?? 'unknown',
      type: data.activation ? 'derived' : 'raw',
      created: new Date(e.time).toISOString(),
    });
    if (activation) await this.recordDerivation(e.path, activation);
    else if (data.activation) this.deps.log.warn({ path: e.path, activation: data.activation }, 'derived file of an unknown activation');
  }

  private async recordDerivation(path: string, a: Activation): Promise<void> {
    const input = inputPathOf(a.input);
    const inputData = (a.input as { data?: { checksums?: Record<string, string> } } | null)?.data;
    const checksum = inputData?.checksums?.adler32 ? `adler32:${inputData.checksums.adler32}` : undefined;
    await this.deps.catalog.recordDerivation({
      path,
      inputs: input && input !== path ? [{ path: input, ...(checksum ? { checksum } : {}) }] : [],
      function: a.function,
      version: a.version,
      activation: a.id,
      parameters: parametersOf(a.input),
    });
  }
}
