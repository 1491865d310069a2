// One connected client of a channel: reads the durable event log from its own position, applies
// each event to the channel's watches (inotify and placement subscriptions) and writes the
// resulting SSE frames. Reading pauses while the
// socket buffer is full, so a slow client only delays itself.
import type { SqliteEventLog } from '../backends/sqlite/event-log.js';
import type { PlacementType, StorageEvent } from './types.js';
import { applyEvent, IGNORED, type InotifyPayload, type Watch } from './inotify.js';
import { placementPayload, placementTypesOf, type PlacementPayload } from './placement.js';
import type { SubscriptionRecord } from './channel-store.js';
import { SYSTEM, systemData } from './system-events.js';
import type { SseFrame, SseWriter } from './sse.js';
import type { EventType } from './event-types.js';
import { afterTokenExpiry, readPermission } from './watch-tracker.js';

const BATCH = 256;

/** A watch as this connection sees it (it may be replaying from an older position than the tracker). */
export interface StreamWatch {
  id: string;
  watch: Watch;
  /** The types a placement subscription selects; absent for an inotify watch. */
  placement?: ReadonlySet<PlacementType>;
  createdAfter: number;
  /** For subscriptions closed by the API: forget them once the stream passes this position. */
  until: number | undefined;
  /** When the creating token expires (ms since the epoch): later events end the subscription. */
  tokenExpires: number | undefined;
  mayRead: (path: string) => boolean;
}

/** A stored inotify or placement subscription as a stream sees it. */
export function streamWatchOf(s: SubscriptionRecord & { watch: Watch }): StreamWatch {
  return {
    id: s.id,
    watch: s.watch,
    ...(s.type === 'placement' ? { placement: placementTypesOf(s.selector) } : {}),
    createdAfter: s.createdAfter,
    until: s.closedAfter,
    tokenExpires: s.tokenExpires,
    mayRead: readPermission(s.scopes),
  };
}

export interface ChannelStreamOptions {
  eventLog: SqliteEventLog;
  writer: SseWriter;
  /** Absolute URL of a subscription of this channel. */
  urlOf: (type: EventType, id: string) => string;
  /** Log position to start after. */
  position: number;
  watches: StreamWatch[];
}

export class ChannelStream {
  private readonly eventLog: SqliteEventLog;
  private readonly writer: SseWriter;
  private readonly urlOf: (type: EventType, id: string) => string;
  private readonly watches: StreamWatch[];
  private position: number;
  private scheduled = false;
  private waitingForDrain = false;
  private unsubscribe: (() => void) | undefined;

  constructor(opts: ChannelStreamOptions) {
    this.eventLog = opts.eventLog;
    this.writer = opts.writer;
    this.urlOf = opts.urlOf;
    this.watches = opts.watches;
    this.position = opts.position;
    this.writer.onClose(() => this.stop());
  }

  get closed(): boolean {
    return this.writer.closed;
  }

  onClose(listener: () => void): void {
    this.writer.onClose(listener);
  }

  start(): void {
    this.unsubscribe = this.eventLog.onAppend(() => this.schedule());
    this.schedule();
  }

  /** Ends the response (after a last SYSTEM message, if given). */
  end(finalSystemType?: 'COMPETING_CLIENT' | 'SHUTDOWN'): void {
    if (finalSystemType) this.send({ event: SYSTEM, data: systemData(finalSystemType) });
    this.stop();
    this.writer.end();
  }

  sendEventLoss(): void {
    this.send({ event: SYSTEM, data: systemData('EVENT_LOSS') });
  }

  sendMetronomeTick(subscriptionId: string, message: string): void {
    if (this.writer.full) return;
    this.send({ event: 'metronome', data: JSON.stringify({ event: message, subscription: this.urlOf('metronome', subscriptionId) }) });
  }

  newSubscription(type: EventType, id: string, watch?: StreamWatch): void {
    if (watch) this.watches.push(watch);
    this.send({ event: SYSTEM, data: systemData('NEW_SUBSCRIPTION', this.urlOf(type, id)) });
  }

  updateWatch(id: string, watch: Watch): void {
    const w = this.watches.find((x) => x.id === id);
    if (w) w.watch = { ...watch, path: w.watch.path };
  }

  /** A subscription ended outside the log (DELETE, metronome count reached, channel deleted). */
  subscriptionClosed(type: EventType, id: string): void {
    const i = this.watches.findIndex((x) => x.id === id);
    if (i >= 0) this.watches.splice(i, 1);
    this.send({ event: SYSTEM, data: systemData('SUBSCRIPTION_CLOSED', this.urlOf(type, id)) });
    if (type === 'inotify') this.sendInotify(id, IGNORED, this.position);
  }

  private stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private send(frame: SseFrame): boolean {
    return this.writer.send(frame);
  }

  private sendInotify(id: string, payload: InotifyPayload, eventId: number): void {
    this.send({ event: 'inotify', id: eventId, data: JSON.stringify({ event: payload, subscription: this.urlOf('inotify', id) }) });
  }

  private sendPlacement(id: string, payload: PlacementPayload, eventId: number): void {
    this.send({ event: 'placement', id: eventId, data: JSON.stringify({ event: payload, subscription: this.urlOf('placement', id) }) });
  }

  private schedule(): void {
    if (this.scheduled || this.waitingForDrain || !this.unsubscribe) return;
    this.scheduled = true;
    setImmediate(() => this.pump());
  }

  private pump(): void {
    this.scheduled = false;
    if (!this.unsubscribe || this.closed) return;
    const batch = this.eventLog.readSync(this.position, BATCH);
    for (const e of batch) {
      this.deliver(e);
      this.position = e.id;
      if (this.writer.full) {
        this.waitingForDrain = true;
        this.writer.onDrain(() => {
          this.waitingForDrain = false;
          this.schedule();
        });
        return;
      }
    }
    if (batch.length === BATCH) this.schedule();
  }

  private deliver(e: StorageEvent): void {
    for (let i = 0; i < this.watches.length; i++) {
      const w = this.watches[i]!;
      if (e.id <= w.createdAfter) continue;
      if (w.until !== undefined && e.id > w.until) {
        this.watches.splice(i--, 1);
        continue;
      }
      const expired = afterTokenExpiry(w.tokenExpires, e);
      // For a placement subscription, applyEvent only keeps the watch on its target (it selects no inotify flag).
      const { payloads, next } = expired ? { payloads: [], next: undefined } : applyEvent(w.watch, e, w.mayRead);
      for (const p of payloads) this.sendInotify(w.id, p, e.id);
      const placement = w.placement && !expired ? placementPayload(w.watch, w.placement, e, w.mayRead) : undefined;
      if (placement) this.sendPlacement(w.id, placement, e.id);
      if (next) {
        w.watch = next;
        continue;
      }
      this.watches.splice(i--, 1);
      this.send({ event: SYSTEM, data: systemData('SUBSCRIPTION_CLOSED', this.urlOf(w.placement ? 'placement' : 'inotify', w.id)) });
      if (!w.placement) this.sendInotify(w.id, IGNORED, e.id);
    }
  }
}
