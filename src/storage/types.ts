// Namespace entries and replicas as the rest of sluice sees them.
import type { NsPath } from './paths.js';

export type FileType = 'DIR' | 'REGULAR';
export type ReplicaState = 'COPYING' | 'AVAILABLE' | 'NEARLINE' | 'BAD';
export type ChecksumType = 'adler32' | 'md5' | 'sha256';

export interface Checksums {
  /** 8 lowercase hex digits. */
  adler32?: string;
  /** Lowercase hex. */
  md5?: string;
  /** Lowercase hex. */
  sha256?: string;
}

export interface Replica {
  se: string;
  /** Backend-specific key of the bytes on that storage element. */
  location: string;
  state: ReplicaState;
  created: number;
  /** False for a tape replica whose bytes are only on tape (a read needs a stage first). */
  online: boolean;
  /** A staged tape replica stays online at least until then (ms since the epoch). */
  pinnedUntil?: number;
  /** When the bytes were last read back and matched the file's checksum. */
  verified?: number;
  /** Why the replica is BAD. */
  reason?: string;
}

export interface Entry {
  /** Stable id that survives renames (dCache's pnfsId). */
  fileId: string;
  path: NsPath;
  name: string;
  type: FileType;
  size: number;
  mode: number;
  owner: string;
  /** Milliseconds since the epoch. */
  ctime: number;
  mtime: number;
  checksums: Checksums;
  contentType: string | undefined;
  labels: string[];
  xattrs: Record<string, string>;
  /** Changes whenever content changes; strong validator for HTTP. */
  etag: string;
}

/** A WebDAV dead property: namespace URI, local name and its XML value (inner markup). */
export interface DeadProperty {
  ns: string;
  name: string;
  xml: string;
}
