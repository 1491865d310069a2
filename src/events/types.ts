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
export type InotifyFlag = (typeof RECORDED_FLAGS)[number];

/**
 * Placement events, beyond dCache's inotify vocabulary (its users asked for them): a replica became
 * available or went away or bad, a tape replica was flushed or staged, a rule changed state.
 * `path` is the file's path (for RULE_STATE the rule's path scope); `data` names the SE or rule.
 */
export const PLACEMENT_TYPES = [
  'REPLICA_AVAILABLE',
  'REPLICA_REMOVED',
  'REPLICA_BAD',
  'REPLICA_FLUSHED',
  'REPLICA_STAGED',
  'QOS_CHANGED',
  'RULE_STATE',
] as const;
export type PlacementType = (typeof PLACEMENT_TYPES)[number];

export type RecordedFlag = InotifyFlag | PlacementType;

export const isInotifyFlag = (t: string): t is InotifyFlag => (RECORDED_FLAGS as readonly string[]).includes(t);
export const isPlacementType = (t: string): t is PlacementType => (PLACEMENT_TYPES as readonly string[]).includes(t);

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
