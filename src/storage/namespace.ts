// The namespace service: what every door calls. Applies scope checks, moves bytes through the
// storage element and commits metadata plus events through the namespace store.
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import { ACTIVATION_TOKEN_ID_PREFIX, requireStorage, mayStorage, type Principal } from '../auth/scopes.js';
import type { NamespaceStore, AttributeChange, CopyItem } from './namespace-store.js';
import type { LocalStorageElement } from './local-se.js';
import { ChecksumAccumulator } from './checksums.js';
import { parentOf, type NsPath } from './paths.js';
import type { ChecksumType, Checksums, DeadProperty, Entry, Replica } from './types.js';

export interface PutOptions {
  expectedSize?: number;
  contentType?: string;
  /** Hex MD5 the client declared (Content-MD5); a mismatch stores nothing. */
  expectedMd5?: string;
  /** Checksums beyond ADLER32 to compute while streaming. */
  extraChecksums?: ReadonlySet<ChecksumType>;
  ifMatch?: string[];
  /** If-None-Match: * — only create. */
  mustNotExist?: boolean;
  /** Create missing parent directories (the CLI's put; WebDAV refuses with 409 instead). */
  createParents?: boolean;
  /**
   * Checks what was received (its size and the checksums computed on the way) before it is
   * committed; throwing stores nothing. A third-party copy compares the source's Digest here.
   */
  beforeCommit?: (received: { size: number; checksums: Checksums }) => void;
}

/**
 * Replicas beyond the landing SE (other SEs, tape, remote endpoints): the placement domain
 * provides this, so the namespace can read from the best replica and free released ones.
 */
export interface ReplicaSource {
  /** Opens the best available replica, staging it from tape if needed. */
  open(entry: Entry, replicas: Replica[], range?: { start: number; end: number }): Promise<Readable>;
  /** Deletes the bytes of a replica no entry references any more. */
  release(replica: Replica): Promise<void>;
}

const DEFAULT_FILE_MODE = 0o644;
const DEFAULT_DIR_MODE = 0o755;

export class Namespace {
  private replicaSource: ReplicaSource | undefined;

  constructor(
    private readonly store: NamespaceStore,
    private readonly se: LocalStorageElement,
    private readonly log: Logger,
  ) {}

  /** Lets reads and releases reach replicas on other storage elements. */
  attachReplicaSource(source: ReplicaSource): void {
    this.replicaSource = source;
  }

  /** Removes what a crash left on the storage element (partial uploads, uncommitted replicas). */
  async recover(): Promise<void> {
    const swept = await this.se.sweep(await this.store.locationsOn(this.se.name));
    if (swept.partial + swept.orphaned > 0) {
      this.log.warn({ se: this.se.name, ...swept }, 'removed partial uploads and uncommitted replicas left by an unclean stop');
    }
  }

  async stat(p: Principal, path: NsPath): Promise<Entry> {
    requireStorage(p, 'read', path);
    const e = await this.store.get(path);
    if (!e) throw new SluiceError('NOT_FOUND', `${path} does not exist`);
    return e;
  }

  /** Like stat, but undefined instead of NOT_FOUND (still FORBIDDEN without read rights). */
  async find(p: Principal, path: NsPath): Promise<Entry | undefined> {
    requireStorage(p, 'read', path);
    return this.store.get(path);
  }

  async list(p: Principal, path: NsPath): Promise<{ entry: Entry; children: Entry[] }> {
    const entry = await this.stat(p, path);
    if (entry.type !== 'DIR') return { entry, children: [] };
    return { entry, children: await this.store.children(path) };
  }

  async descendants(p: Principal, path: NsPath): Promise<Entry[]> {
    requireStorage(p, 'read', path);
    return this.store.descendants(path);
  }

  async replicas(p: Principal, path: NsPath): Promise<Replica[]> {
    requireStorage(p, 'read', path);
    return this.store.replicas(path);
  }

  async mkdir(p: Principal, path: NsPath, opts: { parents?: boolean } = {}): Promise<Entry> {
    requireStorage(p, 'create', path);
    if (opts.parents) await this.ensureParents(p, path);
    return this.store.mkdir(path, p.subject, DEFAULT_DIR_MODE);
  }

  private async ensureParents(p: Principal, path: NsPath): Promise<void> {
    const missing: NsPath[] = [];
    for (let dir = parentOf(path); dir !== '/'; dir = parentOf(dir)) {
      const e = await this.store.get(dir);
      if (e) {
        if (e.type !== 'DIR') throw new SluiceError('NOT_A_DIRECTORY', `${dir} is not a directory`);
        break;
      }
      missing.unshift(dir);
    }
    for (const dir of missing) {
      requireStorage(p, 'create', dir);
      try {
        await this.store.mkdir(dir, p.subject, DEFAULT_DIR_MODE);
      } catch (e) {
        // A concurrent request made it first: that is what we wanted.
        if (!(e instanceof SluiceError && e.code === 'EXISTS')) throw e;
      }
    }
  }

  /** Streams a body into a new replica and commits it; acknowledged data is durable. */
  async put(p: Principal, path: NsPath, body: Readable, opts: PutOptions = {}): Promise<{ entry: Entry; created: boolean }> {
    if (path === '/') throw new SluiceError('IS_A_DIRECTORY', '/ is a directory');
    const current = await this.store.get(path);
    requireStorage(p, current ? 'modify' : 'create', path);
    if (current?.type === 'DIR') throw new SluiceError('IS_A_DIRECTORY', `${path} is a directory`);
    if (opts.mustNotExist && current) throw new SluiceError('PRECONDITION_FAILED', `${path} exists (If-None-Match: *)`);
    if (opts.ifMatch && (!current || !opts.ifMatch.includes(current.etag))) {
      throw new SluiceError('PRECONDITION_FAILED', `${path} does not match If-Match`);
    }
    if (opts.createParents) await this.ensureParents(p, path);
    else {
      const parent = await this.store.get(parentOf(path));
      if (!parent) throw new SluiceError('CONFLICT', `parent ${parentOf(path)} does not exist`);
      if (parent.type !== 'DIR') throw new SluiceError('NOT_A_DIRECTORY', `parent ${parentOf(path)} is not a directory`);
    }
    const extra = new Set(opts.extraChecksums ?? []);
    if (opts.expectedMd5) extra.add('md5');
    const received = await this.se.receive(body, {
      extraChecksums: extra,
      ...(opts.expectedSize !== undefined ? { expectedSize: opts.expectedSize } : {}),
    });
    try {
      opts.beforeCommit?.(received);
      if (opts.expectedMd5 && received.checksums.md5 !== opts.expectedMd5) {
        throw new SluiceError(
          'CHECKSUM_MISMATCH',
          `Content-MD5 mismatch: received data has MD5 ${Buffer.from(received.checksums.md5!, 'hex').toString('base64')}`,
        );
      }
      const result = await this.store.commitFile({
        path,
        owner: p.subject,
        mode: DEFAULT_FILE_MODE,
        size: received.size,
        checksums: received.checksums,
        contentType: opts.contentType,
        replica: { se: this.se.name, location: received.location },
        ...(opts.mustNotExist ? { mustNotExist: true } : {}),
        ...(opts.ifMatch ? { ifMatch: opts.ifMatch } : {}),
        beforeOverwrite: () => requireStorage(p, 'modify', path),
        ...(p.tokenId.startsWith(ACTIVATION_TOKEN_ID_PREFIX) ? { activation: p.tokenId.slice(ACTIVATION_TOKEN_ID_PREFIX.length) } : {}),
      });
      await this.release(result.released);
      return { entry: result.entry, created: result.created };
    } catch (e) {
      await this.se.remove(received.location);
      throw e;
    }
  }

  /** Opens a file for reading, optionally a byte range (inclusive). */
  async open(p: Principal, path: NsPath, range?: { start: number; end: number }): Promise<{ entry: Entry; stream: Readable }> {
    const entry = await this.stat(p, path);
    return { entry, stream: await this.openEntry(p, entry, range) };
  }

  /** Opens an entry the caller already has from stat (a door's GET: one lookup, not two). */
  async openEntry(p: Principal, entry: Entry, range?: { start: number; end: number }): Promise<Readable> {
    requireStorage(p, 'read', entry.path);
    if (entry.type === 'DIR') throw new SluiceError('IS_A_DIRECTORY', `${entry.path} is a directory`);
    const replicas = await this.store.replicas(entry.path);
    const replica = replicas.find((r) => r.state === 'AVAILABLE' && r.se === this.se.name);
    if (entry.size === 0) return Readable.from([]);
    // An explicit end lets the read stream size its buffers to the file, not 1 MiB per small GET.
    const wanted = range ?? { start: 0, end: entry.size - 1 };
    if (replica) return this.se.readSync(replica.location, wanted);
    if (this.replicaSource) return this.replicaSource.open(entry, replicas, wanted);
    throw new SluiceError('NOT_FOUND', `${entry.path} has no available replica`);
  }

  /** Returns the requested checksums, computing and caching those not yet known. */
  async checksums(p: Principal, path: NsPath, types: readonly ChecksumType[]): Promise<Checksums> {
    const entry = await this.stat(p, path);
    if (entry.type === 'DIR') return {};
    const missing = types.filter((t) => entry.checksums[t] === undefined);
    if (missing.length === 0) return entry.checksums;
    const { stream } = await this.open(p, path);
    const acc = new ChecksumAccumulator(new Set(missing));
    for await (const chunk of stream as AsyncIterable<Uint8Array>) acc.update(chunk);
    const computed = acc.digest();
    await this.store.recordChecksum(path, entry.etag, computed);
    return { ...computed, ...entry.checksums };
  }

  async remove(p: Principal, path: NsPath, opts: { ifMatch?: string[] } = {}): Promise<Entry[]> {
    requireStorage(p, 'modify', path);
    const { removed, released } = await this.store.remove(path, opts);
    await this.release(released);
    return removed;
  }

  async move(p: Principal, from: NsPath, to: NsPath, opts: { overwrite: boolean }): Promise<{ entry: Entry; replacedTarget: boolean }> {
    requireStorage(p, 'modify', from);
    const target = await this.store.get(to);
    requireStorage(p, target ? 'modify' : 'create', to);
    const result = await this.store.move(from, to, opts);
    await this.release(result.released);
    return { entry: result.entry, replacedTarget: result.replacedTarget };
  }

  /** Copies a file, or a directory (depth infinity, or only the collection itself with shallow). */
  async copy(
    p: Principal,
    from: NsPath,
    to: NsPath,
    opts: { overwrite: boolean; shallow?: boolean },
  ): Promise<{ replacedTarget: boolean }> {
    if (to === from) throw new SluiceError('FORBIDDEN', 'source and destination are the same');
    if (to.startsWith(from + '/')) throw new SluiceError('CONFLICT', 'cannot copy a directory into itself');
    const source = await this.stat(p, from);
    const target = await this.store.get(to);
    requireStorage(p, target ? 'modify' : 'create', to);
    if (target && !opts.overwrite) throw new SluiceError('PRECONDITION_FAILED', `${to} exists and Overwrite is F`);
    const parent = await this.store.get(parentOf(to));
    if (!parent) throw new SluiceError('CONFLICT', `destination parent ${parentOf(to)} does not exist`);
    const sources = source.type === 'DIR' && !opts.shallow ? [source, ...(await this.store.descendants(from))] : [source];
    const items: CopyItem[] = [];
    try {
      for (const s of sources) {
        const targetPath = (to + s.path.slice(from.length)) as NsPath;
        if (s.type === 'DIR') {
          items.push({ source: s, target: targetPath });
          continue;
        }
        if (!mayStorage(p, 'read', s.path)) throw new SluiceError('FORBIDDEN', `token may not read ${s.path}`);
        const replicas = await this.store.replicas(s.path);
        const replica = replicas.find((r) => r.state === 'AVAILABLE' && r.se === this.se.name);
        let location: string;
        if (replica) location = await this.se.duplicate(replica.location);
        else if (this.replicaSource) {
          // Only elsewhere (another SE, tape): the copy is made on the landing SE from the best replica.
          const stream = s.size === 0 ? Readable.from([]) : await this.replicaSource.open(s, replicas, { start: 0, end: s.size - 1 });
          location = (await this.se.receive(stream, { extraChecksums: new Set(), expectedSize: s.size })).location;
        } else throw new SluiceError('CONFLICT', `${s.path} has no available replica to copy`);
        items.push({ source: s, target: targetPath, replica: { se: this.se.name, location } });
      }
      const result = await this.store.commitCopy(items, { overwrite: opts.overwrite, owner: p.subject });
      await this.release(result.released);
      return { replacedTarget: result.replacedTarget };
    } catch (e) {
      for (const item of items) if (item.replica) await this.se.remove(item.replica.location);
      throw e;
    }
  }

  async changeAttributes(p: Principal, path: NsPath, change: AttributeChange): Promise<Entry> {
    requireStorage(p, 'modify', path);
    return this.store.changeAttributes(path, change);
  }

  async deadProperties(p: Principal, path: NsPath): Promise<DeadProperty[]> {
    requireStorage(p, 'read', path);
    return this.store.deadProperties(path);
  }

  /** Deletes bytes no replica references any more. Failures are logged: the sweep at start catches them. */
  private async release(replicas: readonly Replica[]): Promise<void> {
    for (const r of replicas) {
      if (r.location === '') continue; // a copy that was still being made
      const removal = r.se === this.se.name ? this.se.remove(r.location) : this.replicaSource?.release(r);
      await removal?.catch((e: unknown) => this.log.warn({ err: e, se: r.se, location: r.location }, 'could not delete released replica'));
    }
  }
}
