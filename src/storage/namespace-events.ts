// Which storage events each namespace change produces (the inotify semantics, independent of storage).
import type { NewStorageEvent } from '../events/types.js';
import type { Entry } from './types.js';

function facts(e: Entry): Record<string, unknown> {
  return e.type === 'DIR' ? { fileId: e.fileId } : { fileId: e.fileId, size: e.size, checksums: e.checksums, owner: e.owner };
}

/** A PUT: IN_CREATE when new, then open/modify/close-write, then the attribute update of the commit. */
export function fileWritten(entry: Entry, created: boolean, activation?: string): NewStorageEvent[] {
  // A file a function wrote names the activation: derived data can be traced to what made it.
  const base = { path: entry.path, isDir: false, data: { ...facts(entry), ...(activation ? { activation } : {}) } };
  const types = created
    ? (['IN_CREATE', 'IN_OPEN', 'IN_MODIFY', 'IN_CLOSE_WRITE', 'IN_ATTRIB'] as const)
    : (['IN_OPEN', 'IN_MODIFY', 'IN_CLOSE_WRITE', 'IN_ATTRIB'] as const);
  return types.map((type) => ({ type, ...base }));
}

export function directoryCreated(entry: Entry): NewStorageEvent[] {
  return [{ type: 'IN_CREATE', path: entry.path, isDir: true, data: facts(entry) }];
}

/** Deletion of a tree: children before their parents, as a recursive rm would report them. */
export function removed(entries: Entry[]): NewStorageEvent[] {
  return [...entries]
    .sort((a, b) => b.path.length - a.path.length)
    .map((e) => ({ type: 'IN_DELETE', path: e.path, isDir: e.type === 'DIR', data: { fileId: e.fileId } }));
}

export function moved(entry: Entry, from: string, to: string, cookie: string): NewStorageEvent[] {
  const isDir = entry.type === 'DIR';
  return [
    { type: 'IN_MOVED_FROM', path: from, isDir, cookie, data: { fileId: entry.fileId, to } },
    { type: 'IN_MOVED_TO', path: to, isDir, cookie, data: { fileId: entry.fileId, from } },
  ];
}

export function attributesChanged(entry: Entry): NewStorageEvent[] {
  return [{ type: 'IN_ATTRIB', path: entry.path, isDir: entry.type === 'DIR', data: facts(entry) }];
}
