// Keeps every inotify watch (and placement subscription, which keeps to its target the same way)
// where its target is, whether or not a client is connected: follows the event log from a durable
// position, moves watches with their targets and ends them when their target is deleted (or after
// one event with IN_ONESHOT, or at the first event after the creating token expired), and records
// that in the channel store.
import type { Logger } from 'pino';
import type { SqliteEventLog } from '../backends/sqlite/event-log.js';
import { mayStorage, parseScope } from '../auth/scopes.js';
import { applyEvent, type Watch } from './inotify.js';
import type { ChannelStore, SubscriptionRecord } from './channel-store.js';
import type { StorageEvent } from './types.js';

const BATCH = 512;

/** Whether a subscriber holding these scopes may learn of changes to a path. */
export function readPermission(scopes: readonly string[]): (path: string) => boolean {
  const principal = { subject: '', tokenId: '', scopes: scopes.map(parseScope) };
  return (path) => mayStorage(principal, 'read', path);
}

/**
 * Whether an event happened once the subscriber's token had expired (`expires` in ms since the
 * epoch): such an event is not delivered and ends the subscription instead.
 */
export function afterTokenExpiry(expires: number | undefined, e: StorageEvent): boolean {
  return expires !== undefined && e.time >= expires;
}

interface TrackedWatch {
  channelId: string;
  id: string;
  watch: Watch;
  createdAfter: number;
  tokenExpires: number | undefined;
  mayRead: (path: string) => boolean;
}

const keyOf = (channelId: string, id: string) => `${channelId}/${id}`;

export class WatchTracker {
  private readonly watches = new Map<string, TrackedWatch>();
  private position = 0;
  private scheduled = false;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly store: ChannelStore,
    private readonly eventLog: SqliteEventLog,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.position = this.store.trackerPosition() ?? this.eventLog.headSync();
    for (const s of this.store.allLiveSubscriptions()) this.track(s);
    this.catchUp();
    this.unsubscribe = this.eventLog.onAppend(() => this.schedule());
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  track(s: SubscriptionRecord): void {
    if (!s.watch) return;
    this.watches.set(keyOf(s.channelId, s.id), {
      channelId: s.channelId,
      id: s.id,
      watch: s.watch,
      createdAfter: s.createdAfter,
      tokenExpires: s.tokenExpires,
      mayRead: readPermission(s.scopes),
    });
  }

  untrack(channelId: string, id: string): void {
    this.watches.delete(keyOf(channelId, id));
  }

  /** Applies every committed event not yet applied; afterwards the store reflects the log head. */
  catchUp(): number {
    for (;;) {
      const batch = this.eventLog.readSync(this.position, BATCH);
      if (batch.length === 0) return this.position;
      this.store.transaction(() => {
        for (const e of batch) {
          for (const [key, t] of this.watches) {
            if (e.id <= t.createdAfter) continue;
            const next = afterTokenExpiry(t.tokenExpires, e) ? undefined : applyEvent(t.watch, e, t.mayRead).next;
            if (!next) {
              this.store.closeSubscription(t.channelId, t.id, e.id);
              this.watches.delete(key);
            } else if (next.path !== t.watch.path) {
              this.store.moveWatch(t.channelId, t.id, e.id, next.path);
              t.watch = next;
            }
          }
          this.position = e.id;
        }
        this.store.setTrackerPosition(this.position);
      });
    }
  }

  private schedule(): void {
    if (this.scheduled || !this.unsubscribe) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      try {
        this.catchUp();
      } catch (err) {
        this.log.error({ err }, 'watch tracker could not apply storage events; retrying on the next append');
      }
    });
  }
}
