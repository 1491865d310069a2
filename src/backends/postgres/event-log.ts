// PostgreSQL adapter of the event log: the events table written inside the caller's transaction
// (outbox), ids dense and visible in commit order, and wake-ups across nodes through LISTEN/NOTIFY.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import pg from 'pg';
import type { QueryResultRow } from 'pg';
import { inTransaction, translatePgError } from './database.js';
import type { PgClient, PgPool } from './database.js';
import type { EventLog } from '../../events/event-log.js';
import type { EventId, NewStorageEvent, RecordedFlag, StorageEvent } from '../../events/types.js';

/** The NOTIFY channel; the payload is the new head. */
export const EVENTS_CHANNEL = 'sluice_events';

interface EventRow {
  id: number;
  time: number;
  type: string;
  path: string;
  is_dir: boolean;
  cookie: string | null;
  data: string | null;
}

function fromRow(r: EventRow): StorageEvent {
  const e: StorageEvent = { id: r.id as EventId, time: r.time, type: r.type as RecordedFlag, path: r.path, isDir: r.is_dir };
  if (r.cookie !== null) e.cookie = r.cookie;
  if (r.data !== null) e.data = JSON.parse(r.data) as Record<string, unknown>;
  return e;
}

// One statement, run as the LAST step before COMMIT (requirement 1: ids visible in order):
// - The UPDATE locks the one event_head row until this transaction ends, so committing writers
//   take ids one after the other and a writer's ids are only handed out once every writer before
//   it has committed (its row lock is released after its commit became visible). Ids are dense
//   (head-n+1..head, no sequence gaps from rollbacks) and become visible in id order: a reader
//   never sees id 5 before id 4. Taking the lock last keeps the serialised part of a transaction
//   to this statement and the COMMIT.
// - The times come from the server's clock after the lock, so they also grow with the ids across
//   nodes and prune(olderThan) drops a prefix of the log.
// - pg_notify is delivered at commit, to every node LISTENing (requirement 3), never for a
//   rollback.
const APPEND = `
  WITH h AS (UPDATE event_head SET head = head + $1 RETURNING head),
  ins AS (
    INSERT INTO events (id, time, type, path, is_dir, cookie, data)
    SELECT h.head - $1 + e.ord, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, e.type, e.path, e.is_dir, e.cookie, e.data
    FROM h, unnest($2::text[], $3::text[], $4::boolean[], $5::text[], $6::text[]) WITH ORDINALITY AS e(type, path, is_dir, cookie, data, ord)
  )
  SELECT head, pg_notify('${EVENTS_CHANNEL}', head::text) FROM h`;

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

export class PgEventLog implements EventLog {
  private readonly emitter = new EventEmitter();
  private announcedHead = 0;
  private closed = false;
  private listenClient: pg.Client | undefined;
  private listening: Promise<void> | undefined;
  private wakeRetry: (() => void) | undefined;

  private constructor(
    private readonly pool: PgPool,
    private readonly logger: Logger | undefined,
  ) {
    this.emitter.setMaxListeners(0);
  }

  /** A log on the pool's database, listening for other nodes' commits once this resolves. */
  static async open(pool: PgPool, opts: { log?: Logger } = {}): Promise<PgEventLog> {
    const log = new PgEventLog(pool, opts.log);
    await new Promise<void>((resolve, reject) => {
      log.listening = log.listenLoop(resolve, reject);
    });
    return log;
  }

  /**
   * Appends inside the caller's open transaction and returns the new head (0 when there is
   * nothing to append); call `committed(head)` once the transaction has committed. Must be the
   * caller's last statement before COMMIT: it holds the log's one write lock until then.
   */
  async appendInTransaction(client: PgClient, events: readonly NewStorageEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    const res = await client.query<{ head: number }>(APPEND, [
      events.length,
      events.map((e) => e.type),
      events.map((e) => e.path),
      events.map((e) => e.isDir),
      events.map((e) => e.cookie ?? null),
      events.map((e) => (e.data ? JSON.stringify(e.data) : null)),
    ]);
    return res.rows[0]!.head;
  }

  /** Wakes this node's consumers after a commit that appended events up to `head`. */
  committed(head: number): void {
    this.announce(head);
  }

  private announce(head: number): void {
    if (head === 0 || head <= this.announcedHead) return;
    this.announcedHead = head;
    this.emitter.emit('append', head as EventId);
  }

  /** A query on the pool; a lost database shows as UNAVAILABLE. */
  private async query<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (e) {
      throw translatePgError(e);
    }
  }

  async read(afterId: number, limit: number): Promise<StorageEvent[]> {
    const res = await this.query<EventRow>('SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2', [afterId, limit]);
    return res.rows.map(fromRow);
  }

  async head(): Promise<number> {
    const res = await this.query<{ head: number }>('SELECT head FROM event_head');
    return res.rows[0]?.head ?? 0;
  }

  async oldest(): Promise<number> {
    const res = await this.query<{ oldest: number }>(
      'SELECT COALESCE((SELECT MIN(id) FROM events), (SELECT head FROM event_head) + 1) AS oldest',
    );
    return res.rows[0]!.oldest;
  }

  onAppend(listener: (head: EventId) => void): () => void {
    this.emitter.on('append', listener);
    return () => this.emitter.off('append', listener);
  }

  async position(consumer: string): Promise<number> {
    const res = await this.query<{ position: number }>('SELECT position FROM consumer_positions WHERE name = $1', [consumer]);
    return res.rows[0]?.position ?? 0;
  }

  async savePosition(consumer: string, position: number): Promise<void> {
    // GREATEST: a late or duplicate save (another node, an older acknowledgement) never moves back.
    await this.query(
      `INSERT INTO consumer_positions (name, position) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET position = GREATEST(consumer_positions.position, excluded.position)`,
      [consumer, position],
    );
  }

  async prune(olderThan: number): Promise<number> {
    const res = await this.query('DELETE FROM events WHERE time < $1', [olderThan]);
    return res.rowCount ?? 0;
  }

  /** Stops listening; the pool stays with its owner. */
  async close(): Promise<void> {
    this.closed = true;
    this.wakeRetry?.();
    await this.listenClient?.end().catch(() => undefined);
    await this.listening;
  }

  /**
   * Keeps one dedicated connection LISTENing (requirement 3). When it drops (server restart,
   * network) it reconnects with backoff, and then wakes the listeners once with the current head:
   * commits notified while it was away would otherwise leave consumers waiting for ever.
   */
  private async listenLoop(ready: () => void, failed: (e: unknown) => void): Promise<void> {
    let first = true;
    let delay = RECONNECT_MIN_MS;
    while (!this.closed) {
      // keepAlive and a connect timeout: a peer that vanished without a reset is noticed, not waited for.
      const client = new pg.Client({
        ...this.pool.options,
        connectionTimeoutMillis: this.pool.options.connectionTimeoutMillis ?? 10_000,
        keepAlive: true,
      });
      const lost = new Promise<unknown>((resolve) => {
        client.on('error', (err) => resolve(err));
        client.on('end', () => resolve(undefined));
      });
      try {
        await client.connect();
        client.on('notification', (n) => {
          if (n.channel === EVENTS_CHANNEL && n.payload) this.announce(Number(n.payload));
        });
        await client.query(`LISTEN ${EVENTS_CHANNEL}`);
        this.listenClient = client;
        if (this.closed) continue;
        delay = RECONNECT_MIN_MS;
        if (first) {
          first = false;
          ready();
        } else {
          const head = await this.head();
          this.announcedHead = Math.max(this.announcedHead, head);
          this.logger?.info({ head }, 'event log: listening again for commits of other nodes');
          this.emitter.emit('append', head as EventId);
        }
        const err = await lost;
        if (!this.closed) this.logger?.warn({ err }, 'event log: the LISTEN connection was lost; reconnecting');
      } catch (err) {
        if (first) {
          this.closed = true;
          failed(err);
        } else {
          this.logger?.warn({ err, retryMs: delay }, 'event log: cannot listen for commits of other nodes yet; retrying');
        }
      } finally {
        this.listenClient = undefined;
        await client.end().catch(() => undefined);
      }
      if (this.closed) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wakeRetry = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeRetry = undefined;
      delay = Math.min(delay * 2, RECONNECT_MAX_MS);
    }
  }
}

/**
 * Runs fn in one transaction together with the storage events it pushes (outbox, requirement 2):
 * the change and its events commit together or not at all. The events are appended last, just
 * before COMMIT; this node's consumers are woken once the commit is done, other nodes' by NOTIFY.
 */
export async function transactWithEvents<T>(
  pool: PgPool,
  log: PgEventLog,
  fn: (client: PgClient, events: NewStorageEvent[]) => Promise<T>,
): Promise<T> {
  const { result, head } = await inTransaction(pool, async (client) => {
    // Fresh for every attempt: a retried transaction must not append the first attempt's events.
    const events: NewStorageEvent[] = [];
    const result = await fn(client, events);
    const head = await log.appendInTransaction(client, events);
    return { result, head };
  });
  log.committed(head);
  return result;
}
