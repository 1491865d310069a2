// Storage events as CloudEvents 1.0 (structured JSON): what functions receive from triggers and
// what webhooks send. type org.sluice.storage.<INOTIFY FLAG>, subject = the path.
import type { StorageEvent } from './types.js';

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

export function toCloudEvent(e: StorageEvent, source: string): CloudEvent {
  return {
    specversion: '1.0',
    id: String(e.id),
    source,
    type: STORAGE_EVENT_TYPE_PREFIX + e.type,
    subject: e.path,
    time: new Date(e.time).toISOString(),
    datacontenttype: 'application/json',
    data: { path: e.path, isDir: e.isDir, ...(e.cookie ? { cookie: e.cookie } : {}), ...(e.data ?? {}) },
  };
}
