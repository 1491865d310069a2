// Storage events: the inotify vocabulary sluice records for every namespace change.
export type EventId = number & { readonly __brand: 'EventId' };

/** Flags that a namespace change records in the log (one per logged event). */
export const RECORDED_FLAGS = [
  'IN_ACCESS',
  'IN_ATTRIB',
  'IN_CLOSE_WRITE',
  'IN_CLOSE_NOWRITE',
  'IN_CREATE',
  'IN_DELETE',
  'IN_MODIFY',
  'IN_MOVED_FROM',
  'IN_MOVED_TO',
  'IN_OPEN',
] as const;
export type RecordedFlag = (typeof RECORDED_FLAGS)[number];

/** One entry in the durable storage-event log. `path` is the object the change happened to. */
export interface StorageEvent {
  id: EventId;
  /** Milliseconds since the epoch. */
  time: number;
  type: RecordedFlag;
  path: string;
  isDir: boolean;
  /** Shared by the IN_MOVED_FROM / IN_MOVED_TO pair of one rename. */
  cookie?: string;
  /** Extra facts for consumers (size, checksum, file id), never needed to interpret the event. */
  data?: Record<string, unknown>;
}

export type NewStorageEvent = Omit<StorageEvent, 'id' | 'time'>;
