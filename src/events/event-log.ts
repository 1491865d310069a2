// The durable storage-event log port. Appends happen inside the namespace store's transaction
// (outbox pattern); consumers read from their own position and are woken after each commit.
import type { EventId, StorageEvent } from './types.js';

export interface EventLog {
  /** Events with id > afterId, oldest first, at most `limit`. */
  read(afterId: number, limit: number): Promise<StorageEvent[]>;
  /** Id of the newest event, 0 when the log is empty. */
  head(): Promise<number>;
  /** Id of the oldest event still kept, or head + 1 when none is kept. */
  oldest(): Promise<number>;
  /** Called with the new head after every commit that appended events. Returns an unsubscribe. */
  onAppend(listener: (head: EventId) => void): () => void;
  /** The saved position of a named consumer (0 when it has none). */
  position(consumer: string): Promise<number>;
  /** Saves a named consumer's position (never moves it back). */
  savePosition(consumer: string, position: number): Promise<void>;
  /** Drops events older than the given time (ms); returns how many. */
  prune(olderThan: number): Promise<number>;
}
