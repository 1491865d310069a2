// Storage events as CloudEvents 1.0 (structured JSON): what functions receive from triggers and
// what webhooks send. Namespace events are org.sluice.storage.<INOTIFY FLAG>; placement events are
// org.sluice.replica.*, org.sluice.qos.CHANGED and org.sluice.rule.STATE. subject = the path.
import { isPlacementType, type PlacementType, type RecordedFlag, type StorageEvent } from './types.js';

export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: Record<string, unknown>;
}

export const STORAGE_EVENT_TYPE_PREFIX = 'org.sluice.storage.';

/** CloudEvent types of the placement events (the log's names are the API's, these are reverse-DNS). */
export const PLACEMENT_CLOUDEVENT_TYPES: Record<PlacementType, string> = {
  REPLICA_AVAILABLE: 'org.sluice.replica.AVAILABLE',
  REPLICA_REMOVED: 'org.sluice.replica.REMOVED',
  REPLICA_BAD: 'org.sluice.replica.BAD',
  REPLICA_FLUSHED: 'org.sluice.replica.FLUSHED',
  REPLICA_STAGED: 'org.sluice.replica.STAGED',
  QOS_CHANGED: 'org.sluice.qos.CHANGED',
  RULE_STATE: 'org.sluice.rule.STATE',
};

/** The CloudEvent `type` of a storage event of this log type. */
export function cloudEventType(type: RecordedFlag): string {
  return isPlacementType(type) ? PLACEMENT_CLOUDEVENT_TYPES[type] : STORAGE_EVENT_TYPE_PREFIX + type;
}

/** `data` is the same shape for every type: the path and isDir, then what the event recorded. */
export function toCloudEvent(e: StorageEvent, source: string): CloudEvent {
  return {
    specversion: '1.0',
    id: String(e.id),
    source,
    type: cloudEventType(e.type),
    subject: e.path,
    time: new Date(e.time).toISOString(),
    datacontenttype: 'application/json',
    data: { path: e.path, isDir: e.isDir, ...(e.cookie ? { cookie: e.cookie } : {}), ...(e.data ?? {}) },
  };
}
