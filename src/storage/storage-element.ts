// The storage-element port: a named place that holds replicas' bytes. Backends: local (a directory),
// webdav (any WebDAV URL: another sluice, dCache, nginx) and tape (a disk buffer in front of a
// nearline store with flush and stage latency). The namespace and the transfer workers use only this.
import type { Readable } from 'node:stream';
import type { ChecksumType, Checksums } from './types.js';

export type SeKind = 'local' | 'webdav' | 'tape';

export interface ReceivedData {
  location: string;
  size: number;
  /** At least adler32, computed over the bytes as they were written. */
  checksums: Checksums;
}

export interface ReceiveOptions {
  /** Checksums beyond ADLER32 to compute while streaming. */
  extraChecksums: ReadonlySet<ChecksumType>;
  /** Declared length; a stream that ends short or long is refused. */
  expectedSize?: number;
  /** Refuse more than this many bytes. */
  maxSize?: number;
}

export interface SpaceInfo {
  /** Bytes the SE may hold (its configured capacity, or the filesystem's size). */
  total: number;
  free: number;
}

export interface StorageElement {
  readonly name: string;
  readonly kind: SeKind;
  init(): Promise<void>;
  /**
   * Streams `source` into a new replica. Resolves once the bytes are durable and complete under
   * their final location; on any failure nothing is left behind (partial data is never exposed).
   */
  receive(source: Readable | AsyncIterable<Uint8Array>, opts: ReceiveOptions): Promise<ReceivedData>;
  /** Byte range [start, end] inclusive, or the whole replica. */
  read(location: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Deletes a replica's bytes; a missing one is not an error. */
  remove(location: string): Promise<void>;
  space(): Promise<SpaceInfo>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
