// The event relay: copies committed events from the PostgreSQL outbox into the JetStream stream,
// in id order, exactly once, so consumers on every node read them from NATS (event-log.ts).
//
// One relay is active among all nodes: the one holding a PostgreSQL session advisory lock on its
// own connection. The lock goes with the connection, so a relay that crashed or lost PostgreSQL
// loses it, and another node (retrying every second) takes over. Leadership only saves work;
// correctness does not rest on it. Every message is published with
//   - Nats-Expected-Last-Sequence: the stream stores event N only directly after the message it
//     was meant to follow, so a relay whose view is stale (a former leader still draining, a
//     batch buffered across a reconnect) cannot append out of place, and
//   - Nats-Msg-Id = the event id: a second copy inside the duplicate window is acknowledged as a
//     duplicate and not stored.
// A relay never trusts a position of its own: when it starts leading, and after any failure, it
// reads the id of the stream's last message and continues after it. The outbox keeps every event
// until it is pruned (retention), so nothing committed is lost and nothing is stored twice, whatever
// crashed: the relay, PostgreSQL or NATS.
import type { Logger } from 'pino';
import pg from 'pg';
import { jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { JetStreamManager, StreamConfig } from '@nats-io/jetstream';
import { createInbox, headers, nanos } from '@nats-io/transport-node';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import type { PgPool } from '../postgres/database.js';
import type { EventLog } from '../../events/event-log.js';
import type { StorageEvent } from '../../events/types.js';
import {
  EVENT_ID_HEADER,
  EVENT_STREAM,
  EVENT_SUBJECT,
  HEAD_SUBJECT,
  encodeEvent,
  eventIdOf,
  idOfEmptyStream,
  isStreamNotFound,
  readRelayMark,
} from './event-log.js';

/** Relays of one database compete for this session advisory lock ("sluice relay"). */
export const RELAY_LOCK = 0x51_1c_e0_02;

export interface EventRelayOptions {
  nc: NatsConnection;
  /** The outbox's database: the lock is taken on a dedicated connection made from its options. */
  pool: PgPool;
  /** The PostgreSQL event log (read after an id; onAppend is its LISTEN/NOTIFY wake-up). */
  outbox: Pick<EventLog, 'read' | 'onAppend'>;
  /** The event retention: the stream's max_age. */
  retentionMs: number;
  stream?: string;
  /** Stream replicas in a NATS cluster (default 1). */
  replicas?: number;
  /** Events per batch: published back to back, then their acks awaited (default 1000). */
  batchSize?: number;
  /** Reads the outbox this often even without a wake-up (default 1000 ms). */
  pollMs?: number;
  /** Wait before trying to lead again, or after a failed batch (default 1000 ms). */
  retryMs?: number;
  /** How long a batch waits for its acks (default 5000 ms). */
  ackTimeoutMs?: number;
  log?: Logger;
}

/** A JetStream publish ack, or the stream's refusal. */
type Ack = { stream: string; seq: number; duplicate?: boolean } | { error: string };

function parseAck(m: Msg): Ack {
  // No responders (JetStream not up yet after a restart) answers with a bare 503 status.
  if (m.headers && m.headers.code >= 300) return { error: `${m.headers.code} ${m.headers.description}` };
  try {
    const a = m.json<{ stream?: string; seq?: number; duplicate?: boolean; error?: { description?: string } }>();
    if (a.error || typeof a.seq !== 'number') return { error: a.error?.description ?? 'an ack without a sequence' };
    return { stream: a.stream ?? '', seq: a.seq, duplicate: a.duplicate === true };
  } catch {
    return { error: 'an ack that is not JSON' };
  }
}

interface Tail {
  id: number;
  seq: number;
}

export function eventStreamConfig(stream: string, retentionMs: number, replicas: number): Partial<StreamConfig> & { name: string } {
  return {
    name: stream,
    subjects: [EVENT_SUBJECT],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(retentionMs),
    duplicate_window: nanos(Math.min(retentionMs, 5 * 60_000)),
    allow_direct: true,
    num_replicas: replicas,
  };
}

export class EventRelay {
  private readonly stream: string;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly retryMs: number;
  private readonly ackTimeoutMs: number;
  private jsm: JetStreamManager | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private leading = false;
  private lockClient: pg.Client | undefined;
  private wake: (() => void) | undefined;
  private woken = false;
  private unlisten: (() => void) | undefined;
  private tail: Tail = { id: 0, seq: 0 };
  private created = '';
  private markedSeq = 0;
  private markedAt = 0;
  private pgDown = false;
  /** Events this relay has had acknowledged by the stream. */
  relayed = 0;

  constructor(private readonly opts: EventRelayOptions) {
    this.stream = opts.stream ?? EVENT_STREAM;
    this.batchSize = opts.batchSize ?? 1000;
    this.pollMs = opts.pollMs ?? 1000;
    this.retryMs = opts.retryMs ?? 1000;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 5000;
  }

  /** Whether this relay holds the lock now. */
  get isLeader(): boolean {
    return this.leading;
  }

  /** The id of the stream's last event as this relay knows it (0 when not leading). */
  get relayedId(): number {
    return this.leading ? this.tail.id : 0;
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    // Only the leader cares about appends; followers retry the lock on their own clock.
    this.unlisten = this.opts.outbox.onAppend(() => {
      if (this.leading) this.poke();
    });
    this.running = this.run();
  }

  /** Stops relaying and gives up the lock (its connection is closed). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.unlisten?.();
    this.unlisten = undefined;
    this.poke();
    await this.lockClient?.end().catch(() => undefined);
    await this.running;
    this.running = undefined;
  }

  private poke(): void {
    this.woken = true;
    this.wake?.();
  }

  /** Sleeps until poked (an append, a lost connection, stop) or ms passed. */
  private async pause(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
    this.woken = false;
  }

  /** Competes for the lock on one connection; leads while holding it; reconnects when it drops. */
  private async run(): Promise<void> {
    while (!this.stopping) {
      let led = false;
      // keepAlive and a connect timeout: a database that vanished without a reset is noticed.
      const client = new pg.Client({
        ...this.opts.pool.options,
        connectionTimeoutMillis: this.opts.pool.options.connectionTimeoutMillis ?? 10_000,
        keepAlive: true,
      });
      let alive = true;
      const gone = () => {
        alive = false;
        this.leading = false;
        this.poke();
      };
      client.on('error', gone);
      client.on('end', gone);
      this.lockClient = client;
      try {
        await client.connect();
        this.pgDown = false;
        while (!this.stopping && alive) {
          const res = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RELAY_LOCK]);
          if (res.rows[0]?.ok) {
            led = true;
            await this.lead(client, () => alive);
            break;
          }
          await this.pause(this.retryMs);
        }
      } catch (err) {
        // Said once per outage, not every second while PostgreSQL is away.
        if (!this.stopping && !this.pgDown) this.opts.log?.warn({ err }, 'event relay: lost its PostgreSQL connection');
        this.pgDown = true;
      } finally {
        this.leading = false;
        this.lockClient = undefined;
        // Closing the session releases the advisory lock at once.
        await client.end().catch(() => undefined);
      }
      // A relay that just lost the lock sits out a round, so that a healthy follower (which
      // retries every retryMs) takes over rather than the node whose connection just failed.
      if (this.stopping) break;
      this.woken = false; // a poke from the lost connection must not cut the round short
      await this.pause(led ? 2 * this.retryMs : this.retryMs);
    }
  }

  /** One leadership term: resync from the stream, then relay until the lock's connection is gone. */
  private async lead(client: pg.Client, alive: () => boolean): Promise<void> {
    this.leading = true;
    this.opts.log?.info({ stream: this.stream }, 'event relay: leading');
    let synced = false;
    let lastCheck = Date.now();
    while (!this.stopping && alive()) {
      try {
        if (!synced) {
          await this.sync(client);
          synced = true;
          this.notice();
        }
        const events = await this.opts.outbox.read(this.tail.id, this.batchSize);
        if (events.length === 0) {
          await this.mark(client, true);
          await this.pause(this.pollMs);
        } else {
          const outcome = await this.publish(events);
          this.notice();
          await this.mark(client, false);
          if (outcome !== 'stored') synced = false;
          // A refusal or a silent server will not be over at once: do not spin on it.
          if (outcome === 'failed') await this.pause(this.retryMs);
        }
        if (Date.now() - lastCheck >= this.pollMs) {
          // A connection can die without a word (a partition): ask it now and then.
          await client.query('SELECT 1');
          lastCheck = Date.now();
        }
      } catch (err) {
        if (!alive() || this.stopping) break;
        this.opts.log?.warn({ err, after: this.tail.id }, 'event relay: batch failed; resuming from the stream');
        synced = false;
        await this.pause(this.retryMs);
      }
    }
    if (!this.stopping) this.opts.log?.warn({ stream: this.stream }, 'event relay: no longer leading');
  }

  /** Makes sure the stream exists, and reads where it ends: the only position the relay trusts. */
  private async sync(client: pg.Client): Promise<void> {
    this.jsm ??= await jetstreamManager(this.opts.nc, { checkAPI: false });
    const jsm = this.jsm;
    const config = eventStreamConfig(this.stream, this.opts.retentionMs, this.opts.replicas ?? 1);
    let info;
    try {
      info = await jsm.streams.info(this.stream);
    } catch (e) {
      if (!isStreamNotFound(e)) throw e;
      info = await jsm.streams.add(config);
      this.opts.log?.info({ stream: this.stream }, 'event relay: created the stream');
    }
    if (info.config.max_age !== config.max_age || !info.config.allow_direct) {
      info = await jsm.streams.update(this.stream, { ...info.config, max_age: config.max_age, allow_direct: true });
    }
    this.created = info.created;
    const state = info.state;
    if (state.messages > 0) {
      const last = await jsm.direct.getMessage(this.stream, { last_by_subj: EVENT_SUBJECT });
      if (!last) throw new Error('the event stream has messages but no last message');
      this.tail = { id: eventIdOf(last.header, last.seq), seq: last.seq };
    } else {
      // Empty: never used (start from the outbox's beginning), or everything aged out.
      const mark = await readRelayMark(client, this.stream);
      const id = idOfEmptyStream(mark, info.created, state);
      if (id === undefined) {
        this.opts.log?.warn(
          { stream: this.stream, lastSeq: state.last_seq },
          'event relay: the stream aged out and its last id is unknown; relaying the whole outbox',
        );
      }
      this.tail = { id: id ?? 0, seq: state.last_seq };
    }
    this.markedSeq = 0;
  }

  /**
   * Publishes a batch back to back and then awaits the acks: `stored` when the stream took all of
   * it in place; `duplicate` when it already held some (another relay was there first); `failed`
   * at the first refused or unanswered message. The tail advances over the acked prefix only; on
   * anything but `stored` the caller resynchronises from the stream.
   */
  private async publish(events: StorageEvent[]): Promise<'stored' | 'duplicate' | 'failed'> {
    if (events[0]!.id <= this.tail.id) throw new Error(`outbox returned ${events[0]!.id} after ${this.tail.id}`);
    if (this.tail.id > 0 && events[0]!.id !== this.tail.id + 1) {
      this.opts.log?.error(
        { after: this.tail.id, next: events[0]!.id },
        'event relay: events missing from the outbox (pruned before they were relayed)',
      );
    }
    const acks = await this.publishAll(events, this.tail.seq);
    let outcome: 'stored' | 'duplicate' = 'stored';
    for (let i = 0; i < events.length; i++) {
      const ack = acks[i];
      if (!ack || 'error' in ack) {
        this.opts.log?.warn(
          { id: events[i]!.id, error: ack ? ack.error : `no ack in ${this.ackTimeoutMs} ms` },
          'event relay: publish failed; resuming from the stream',
        );
        return 'failed';
      }
      if (ack.duplicate) outcome = 'duplicate';
      else this.relayed++;
      this.tail = { id: events[i]!.id, seq: ack.seq };
    }
    return outcome;
  }

  /**
   * JetStream publishes written all at once with their replies to one wildcard inbox, and the
   * acks collected under one timer: a quarter of the client work of one js.publish() per event
   * (each its own request, subscription and timer), which is what limits a relay on a small host.
   * Each message is stored only directly after sequence base + i (expected last sequence) and
   * carries its event id as Nats-Msg-Id. Resolves with the answers by index; missing ones timed out.
   */
  private publishAll(events: StorageEvent[], base: number): Promise<(Ack | undefined)[]> {
    const inbox = createInbox();
    const acks: (Ack | undefined)[] = new Array<undefined>(events.length);
    let left = events.length;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(acks);
      };
      const timer = setTimeout(done, this.ackTimeoutMs);
      const sub = this.opts.nc.subscribe(`${inbox}.*`, {
        callback: (err, m) => {
          if (err) return done();
          const k = Number(m.subject.slice(inbox.length + 1));
          if (!(k >= 0 && k < events.length) || acks[k] !== undefined) return;
          acks[k] = parseAck(m);
          if (--left === 0) done();
        },
      });
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        const h = headers();
        h.set(EVENT_ID_HEADER, String(e.id));
        h.set('Nats-Msg-Id', String(e.id));
        h.set('Nats-Expected-Last-Sequence', String(base + i));
        this.opts.nc.publish(EVENT_SUBJECT, encodeEvent(e), { headers: h, reply: `${inbox}.${i}` });
      }
    });
  }

  /** Core NATS notice to every node's NatsEventLog: the stream holds events up to this id. */
  private notice(): void {
    if (this.tail.id === 0) return;
    const h = headers();
    h.set(EVENT_ID_HEADER, String(this.tail.id));
    this.opts.nc.publish(HEAD_SUBJECT, String(this.tail.id), { headers: h });
  }

  /** Keeps the relay mark (see natsEventLogMigrations) close: when idle, or once a second. */
  private async mark(client: pg.Client, idle: boolean): Promise<void> {
    if (this.tail.seq === this.markedSeq || this.tail.id === 0) return;
    if (!idle && Date.now() - this.markedAt < 1000) return;
    await client.query(
      `INSERT INTO nats_event_relay (stream, created, last_id, last_seq, updated) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (stream) DO UPDATE SET created = excluded.created, last_id = excluded.last_id,
         last_seq = excluded.last_seq, updated = excluded.updated
       WHERE nats_event_relay.created <> excluded.created OR nats_event_relay.last_seq < excluded.last_seq`,
      [this.stream, this.created, this.tail.id, this.tail.seq, Date.now()],
    );
    this.markedSeq = this.tail.seq;
    this.markedAt = Date.now();
  }
}
