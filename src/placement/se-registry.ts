// The storage elements this server knows: the landing SE where uploads arrive (always there), and
// those added by operators (local directories, WebDAV endpoints, tape). Builds one backend per SE,
// keeps attributes for SE expressions and reports space.
import { isAbsolute, join } from 'node:path';
import { SluiceError } from '../errors.js';
import type { StorageElement } from '../storage/storage-element.js';
import { LocalStorageElement } from '../storage/local-se.js';
import { TapeStorageElement } from '../storage/tape-se.js';
import { WebDavStorageElement } from '../storage/webdav-se.js';
import type { PlacementStore } from './placement-store.js';
import { SE_NAME_RE, type SeSpec, type StorageElementInfo } from './types.js';
import type { SeInfo } from './se-expression.js';

export const LANDING_SE = 'local';
const FREE_SPACE_CACHE_MS = 2000;

interface Registered {
  info: StorageElementInfo;
  spec: SeSpec;
  backend: StorageElement;
}

export interface SeSpace {
  total: number;
  free: number;
  used: number;
  files: number;
}

/** What API responses show of a spec: no secrets. */
function publicSpec(spec: SeSpec): Record<string, unknown> {
  const { token, ...rest } = spec as SeSpec & { token?: string };
  return token !== undefined ? { ...rest, token: '[set]' } : rest;
}

/** Default attributes: the medium follows the backend unless given. */
function withDefaults(spec: SeSpec): Record<string, string> {
  return { medium: spec.kind === 'tape' ? 'tape' : 'disk', ...(spec.attributes ?? {}) };
}

export class SeRegistry {
  private readonly ses = new Map<string, Registered>();

  constructor(
    private readonly deps: {
      store: PlacementStore;
      landing: LocalStorageElement;
      landingAttributes: Record<string, string>;
      fsync: boolean;
      dataDir: string;
    },
  ) {}

  /** Loads the SEs recorded in state and builds their backends. */
  async init(): Promise<void> {
    const landingSpec: SeSpec = { name: LANDING_SE, kind: 'local', path: this.deps.landing.root, attributes: this.deps.landingAttributes };
    const rows = await this.deps.store.listSes();
    if (!rows.some((r) => r.name === LANDING_SE)) {
      await this.deps.store.insertSe(LANDING_SE, 'local', publicSpec(landingSpec), withDefaults(landingSpec));
    }
    for (const row of await this.deps.store.listSes()) {
      const spec = { ...(row.spec as SeSpec), attributes: row.attributes } as SeSpec;
      const backend = row.name === LANDING_SE ? this.deps.landing : this.build(spec);
      // In the background: an unreachable or hanging endpoint must not hold up the server's start;
      // its transfers fail and retry until it answers.
      if (row.name !== LANDING_SE) void backend.init().catch(() => undefined);
      this.ses.set(row.name, { spec, backend, info: this.infoOf(spec, row.created, row.available) });
    }
  }

  private infoOf(spec: SeSpec, created: number, available = true): StorageElementInfo {
    return {
      available,
      name: spec.name,
      kind: spec.kind,
      attributes: withDefaults(spec),
      spec: publicSpec(spec),
      landing: spec.name === LANDING_SE,
      created,
    };
  }

  private build(spec: SeSpec): StorageElement {
    switch (spec.kind) {
      case 'local':
        return new LocalStorageElement(spec.name, spec.path, { fsync: this.deps.fsync });
      case 'tape':
        return new TapeStorageElement(spec.name, spec.path, {
          fsync: this.deps.fsync,
          flushDelaySeconds: spec.flushDelaySeconds ?? 60,
          stageDelaySeconds: spec.stageDelaySeconds ?? 30,
        });
      case 'webdav':
        return new WebDavStorageElement({
          name: spec.name,
          url: spec.url,
          ...(spec.token !== undefined ? { token: spec.token } : {}),
          ...(spec.thirdPartyCopy !== undefined ? { thirdPartyCopy: spec.thirdPartyCopy } : {}),
          ...(spec.capacityBytes !== undefined ? { capacityBytes: spec.capacityBytes } : {}),
        });
    }
  }

  /** Adds an SE; its backend must initialise (directory created, endpoint reachable) first. */
  async add(spec: SeSpec): Promise<StorageElementInfo> {
    if (!SE_NAME_RE.test(spec.name)) throw new SluiceError('BAD_REQUEST', `bad SE name ${JSON.stringify(spec.name)}`);
    if (this.ses.has(spec.name)) throw new SluiceError('CONFLICT', `storage element ${spec.name} already exists`);
    if ((spec.kind === 'local' || spec.kind === 'tape') && !isAbsolute(spec.path)) {
      throw new SluiceError('BAD_REQUEST', `path must be absolute, got ${JSON.stringify(spec.path)}`);
    }
    if (
      (spec.kind === 'local' || spec.kind === 'tape') &&
      (spec.path === this.deps.dataDir || spec.path.startsWith(join(this.deps.dataDir, 'se', LANDING_SE)))
    ) {
      throw new SluiceError('BAD_REQUEST', `path ${spec.path} overlaps the landing SE`);
    }
    const backend = this.build(spec);
    try {
      await backend.init();
    } catch (e) {
      await backend.close().catch(() => undefined);
      throw new SluiceError('BAD_REQUEST', `storage element ${spec.name} cannot be initialised: ${(e as Error).message}`);
    }
    const attributes = withDefaults(spec);
    await this.deps.store.insertSe(spec.name, spec.kind, { ...spec, attributes: undefined }, attributes);
    const registered = { spec: { ...spec, attributes }, backend, info: this.infoOf({ ...spec, attributes }, Date.now()) };
    this.ses.set(spec.name, registered);
    return registered.info;
  }

  async setAttributes(name: string, set: Record<string, string>, remove: string[]): Promise<StorageElementInfo> {
    const r = this.require(name);
    const attributes = { ...r.info.attributes, ...set };
    for (const k of remove) delete attributes[k];
    await this.deps.store.setSeAttributes(name, attributes);
    r.spec = { ...r.spec, attributes };
    r.info = this.infoOf(r.spec, r.info.created, r.info.available);
    return r.info;
  }

  async setAvailable(name: string, available: boolean): Promise<StorageElementInfo> {
    const r = this.require(name);
    if (name === LANDING_SE && !available) throw new SluiceError('CONFLICT', 'the landing SE cannot be taken out of service');
    await this.deps.store.setSeAvailable(name, available);
    r.info = { ...r.info, available };
    return r.info;
  }

  /** Known and in service: may be read from and written to. */
  usable(name: string): boolean {
    return this.ses.get(name)?.info.available === true;
  }

  async remove(name: string): Promise<void> {
    const r = this.require(name);
    if (name === LANDING_SE) throw new SluiceError('CONFLICT', 'the landing SE cannot be removed');
    const n = await this.deps.store.replicaCountOn(name);
    if (n > 0) throw new SluiceError('CONFLICT', `storage element ${name} still holds ${n} replicas`);
    await this.deps.store.deleteSe(name);
    this.ses.delete(name);
    await r.backend.close();
  }

  private require(name: string): Registered {
    const r = this.ses.get(name);
    if (!r) throw new SluiceError('NOT_FOUND', `no storage element ${name}`);
    return r;
  }

  has(name: string): boolean {
    return this.ses.has(name);
  }

  info(name: string): StorageElementInfo {
    return this.require(name).info;
  }

  list(): StorageElementInfo[] {
    return [...this.ses.values()].map((r) => r.info).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Name and attributes of every SE in service, for SE expressions. */
  expressionUniverse(): SeInfo[] {
    return this.list()
      .filter((i) => i.available)
      .map((i) => ({ name: i.name, attributes: i.attributes }));
  }

  backend(name: string): StorageElement | undefined {
    return this.ses.get(name)?.backend;
  }

  maxActive(name: string): number | undefined {
    return this.ses.get(name)?.spec.maxActiveTransfers;
  }

  medium(name: string): string | undefined {
    return this.ses.get(name)?.info.attributes.medium;
  }

  async space(name: string): Promise<SeSpace> {
    const r = this.require(name);
    const used = await this.deps.store.usedBytesOn(name);
    const files = await this.deps.store.replicaCountOn(name);
    let fs: { total: number; free: number };
    try {
      fs = await r.backend.space();
    } catch {
      fs = { total: 0, free: 0 };
    }
    const cap = r.spec.capacityBytes;
    if (cap === undefined) return { ...fs, used, files };
    return { total: cap, free: Math.max(0, Math.min(fs.free, cap - used)), used, files };
  }

  private readonly freeCache = new Map<string, { at: number; free: number }>();

  /** Free bytes for new replicas, cached for a moment (asked once per transfer). */
  async freeBytes(name: string): Promise<number> {
    const cached = this.freeCache.get(name);
    if (cached && Date.now() - cached.at < FREE_SPACE_CACHE_MS) return cached.free;
    const r = this.require(name);
    const free =
      r.spec.capacityBytes !== undefined ? (await this.space(name)).free : (await r.backend.space().catch(() => ({ free: Infinity }))).free;
    this.freeCache.set(name, { at: Date.now(), free });
    return free;
  }

  /** Counts bytes just written against the cached free space, until the cache is refreshed. */
  consumed(name: string, bytes: number): void {
    const cached = this.freeCache.get(name);
    if (cached) cached.free -= bytes;
  }

  async close(): Promise<void> {
    for (const r of this.ses.values()) if (r.info.name !== LANDING_SE) await r.backend.close().catch(() => undefined);
  }
}
