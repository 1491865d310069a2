// The namespace state port: entries, replicas and dead properties, each change committed together
// with its storage events in one transaction. Adapters: backends/sqlite (embedded), postgres (scale-out).
import type { NsPath } from './paths.js';
import type { Checksums, DeadProperty, Entry, Replica } from './types.js';

export interface NewFile {
  path: NsPath;
  owner: string;
  mode: number;
  size: number;
  checksums: Checksums;
  contentType: string | undefined;
  replica: { se: string; location: string };
  /** Refuse (EXISTS) if something is already at path. */
  mustNotExist?: boolean;
  /** Refuse (PRECONDITION_FAILED) unless the current etag is one of these. */
  ifMatch?: string[];
  /** Called inside the transaction with the current entry, to veto overwrites (e.g. scope checks). */
  beforeOverwrite?: (current: Entry) => void;
  /** The function activation that wrote it, for provenance (recorded in the file's events). */
  activation?: string;
}

export interface CommitResult {
  entry: Entry;
  created: boolean;
  /** Replicas no longer referenced after the commit: their bytes may be deleted. */
  released: Replica[];
}

export interface CopyItem {
  source: Entry;
  target: NsPath;
  /** New replica of a file (absent for directories). */
  replica?: { se: string; location: string };
}

export interface AttributeChange {
  addLabels?: string[];
  removeLabels?: string[];
  setXattrs?: Record<string, string>;
  removeXattrs?: string[];
  setDeadProps?: DeadProperty[];
  removeDeadProps?: { ns: string; name: string }[];
}

export interface NamespaceStore {
  get(path: NsPath): Promise<Entry | undefined>;
  children(dir: NsPath): Promise<Entry[]>;
  /** Every entry below dir (not dir itself), parents before children. */
  descendants(dir: NsPath): Promise<Entry[]>;
  replicas(path: NsPath): Promise<Replica[]>;
  mkdir(path: NsPath, owner: string, mode: number): Promise<Entry>;
  commitFile(file: NewFile): Promise<CommitResult>;
  /** Removes path and everything below it. */
  remove(path: NsPath, opts?: { ifMatch?: string[] }): Promise<{ removed: Entry[]; released: Replica[] }>;
  move(from: NsPath, to: NsPath, opts: { overwrite: boolean }): Promise<{ entry: Entry; replacedTarget: boolean; released: Replica[] }>;
  /** Commits copies made by the caller; replaces the target tree when overwrite is set. */
  commitCopy(items: CopyItem[], opts: { overwrite: boolean; owner: string }): Promise<{ replacedTarget: boolean; released: Replica[] }>;
  changeAttributes(path: NsPath, change: AttributeChange): Promise<Entry>;
  deadProperties(path: NsPath): Promise<DeadProperty[]>;
  /** Caches a checksum computed later (no event: the content did not change). */
  recordChecksum(path: NsPath, etag: string, checksums: Checksums): Promise<void>;
  /** All replica locations on one SE, to find orphaned bytes after a crash. */
  locationsOn(se: string): Promise<Set<string>>;
}
