// The function registry: deploys bundles as immutable versions, names them by content digest and
// seq, keeps aliases, resolves references (`echo`, `echo@prod`, `echo@3`, `echo@1a2b3c4`) and removes
// versions and functions, telling listeners ('removed') so running instances can be drained.
//
// Redeploying content that already is a version makes no new version (as an unchanged Knative spec
// makes no new revision): the answer is that version with created=false. `latest` still moves to it,
// because `latest` means "what was deployed last": redeploying an old directory is a rollback.
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { mkdir, readdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';
import { isAdmin, requireScope, type Principal } from '../auth/scopes.js';
import { clearStaging, DEFAULT_UNPACK_LIMITS, installBundle, removeBundleDir, unpackBundle, type UnpackLimits } from './bundle.js';
import { LATEST, type FunctionStore, type FunctionSummary } from './function-store.js';
import { ALIAS_RE, FUNCTION_NAME_RE, type FunctionVersion, type VersionId } from './types.js';
import { DIGEST_PREFIX_RE, MIN_PREFIX, SEQ_RE } from './refs.js';

export { parseFunctionRef, type FunctionRef } from './refs.js';

export interface FunctionRegistryOptions {
  store: FunctionStore;
  /** Where bundles live: <bundlesDir>/<name>/<digest>/ (normally <dataDir>/functions). */
  bundlesDir: string;
  /** Largest archive and largest unpacked bundle, bytes (default 100 MiB). */
  maxBundleBytes?: number;
  /** Most entries in a bundle (default 10,000) and longest path (default 1024 bytes). */
  maxBundleFiles?: number;
  maxBundlePathBytes?: number;
  /** fsync bundles before a deploy is acknowledged (default true). */
  fsync?: boolean;
  log?: Logger;
}

/** What 'removed' carries: a whole function (no version) or one version of it. */
export interface FunctionRemoved {
  name: string;
  version?: VersionId;
}

/** Listing and showing functions needs function.invoke or function.deploy (or admin). */
export function requireFunctionRead(p: Principal): void {
  if (isAdmin(p) || p.scopes.some((s) => s.kind === 'function.invoke' || s.kind === 'function.deploy')) return;
  throw new SluiceError('FORBIDDEN', 'token lacks the function.invoke or function.deploy scope');
}

export class FunctionRegistry extends EventEmitter<{ removed: [FunctionRemoved]; changed: [{ name: string }] }> {
  readonly bundlesDir: string;
  readonly maxBundleBytes: number;
  private readonly store: FunctionStore;
  private readonly limits: UnpackLimits;
  private readonly fsync: boolean;
  private readonly log: Logger | undefined;
  /**
   * Resolved references (`name\0ref` → version): an invocation resolves one on every call, and the
   * store answers an alias with several queries. Every change of a function forgets its entries;
   * this process makes all changes (the scale-out deployment must invalidate across nodes).
   */
  private readonly resolved = new Map<string, FunctionVersion>();
  private generation = 0;
  /** Per-function queue: installs, records and removals of one function never interleave. */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(opts: FunctionRegistryOptions) {
    super();
    this.store = opts.store;
    this.bundlesDir = opts.bundlesDir;
    this.maxBundleBytes = opts.maxBundleBytes ?? DEFAULT_UNPACK_LIMITS.maxBytes;
    this.limits = {
      maxBytes: this.maxBundleBytes,
      maxFiles: opts.maxBundleFiles ?? DEFAULT_UNPACK_LIMITS.maxFiles,
      maxPathBytes: opts.maxBundlePathBytes ?? DEFAULT_UNPACK_LIMITS.maxPathBytes,
    };
    this.fsync = opts.fsync ?? true;
    this.log = opts.log;
  }

  /**
   * Reconciles the bundles directory with the recorded versions before serving: drops what
   * interrupted deploys left (staging, bundles installed but never recorded).
   */
  async init(): Promise<void> {
    await mkdir(this.bundlesDir, { recursive: true, mode: 0o755 });
    await clearStaging(this.bundlesDir);
    const recorded = new Set((await this.store.allVersions()).map((v) => `${v.name}/${v.version}`));
    for (const name of await readdir(this.bundlesDir).catch(() => [] as string[])) {
      if (!FUNCTION_NAME_RE.test(name)) continue;
      const versions = await readdir(join(this.bundlesDir, name)).catch(() => [] as string[]);
      for (const version of versions) {
        if (recorded.has(`${name}/${version}`)) continue;
        this.log?.warn({ function: name, version }, 'removing a bundle no version record refers to (interrupted deploy or removal)');
        await removeBundleDir(join(this.bundlesDir, name, version));
      }
      if (versions.every((v) => !recorded.has(`${name}/${v}`))) await removeBundleDir(join(this.bundlesDir, name));
    }
    for (const key of recorded) {
      const [name, version] = key.split('/') as [string, string];
      const present = await readdir(join(this.bundlesDir, name, version)).then(
        () => true,
        () => false,
      );
      if (!present) this.log?.error({ function: name, version }, 'a recorded function version has no bundle; redeploy it');
    }
  }

  /** Unpacks, validates and records a bundle; see the module header for redeploys. */
  async deploy(
    archive: Readable,
    principal: Principal,
    opts: { aliases?: readonly string[] } = {},
  ): Promise<{ version: FunctionVersion; created: boolean }> {
    requireScope(principal, 'function.deploy');
    const aliases = [...new Set(opts.aliases ?? [])];
    for (const alias of aliases) checkAliasName(alias);
    const staged = await unpackBundle(archive, this.bundlesDir, this.limits, { fsync: this.fsync });
    const name = staged.manifest.name;
    return this.exclusive(name, async () => {
      const installed = await installBundle(staged, this.bundlesDir, { fsync: this.fsync });
      try {
        const result = await this.store.recordDeploy(
          { name, version: staged.digest, manifest: staged.manifest, size: staged.size, createdBy: principal.subject },
          aliases,
        );
        this.log?.info(
          { function: name, version: staged.digest, seq: result.version.seq, created: result.created, by: principal.subject, aliases },
          result.created ? 'function version deployed' : 'function redeployed; latest moved to its existing version',
        );
        return result;
      } catch (e) {
        if (!installed.existed && !(await this.store.get(name, staged.digest))) await removeBundleDir(installed.dir);
        throw e;
      }
    });
  }

  /** The version a reference names: an alias, a seq number or a digest prefix (default `latest`). */
  async resolve(name: string, ref: string = LATEST): Promise<FunctionVersion> {
    const key = `${name}\0${ref}`;
    const hit = this.resolved.get(key);
    if (hit) return hit;
    const generation = this.generation;
    const v = await this.resolveUncached(name, ref);
    // A change that finished while we queried may have made this answer stale: do not keep it.
    if (generation === this.generation) {
      if (this.resolved.size >= 10_000) this.resolved.clear();
      this.resolved.set(key, v);
    }
    return v;
  }

  private forget(name: string): void {
    this.generation++;
    for (const key of this.resolved.keys()) if (key.startsWith(`${name}\0`)) this.resolved.delete(key);
  }

  private async resolveUncached(name: string, ref: string): Promise<FunctionVersion> {
    if (!FUNCTION_NAME_RE.test(name)) throw new SluiceError('BAD_REQUEST', `"${name}" is not a function name`);
    if (SEQ_RE.test(ref)) {
      return (await this.store.bySeq(name, Number(ref))) ?? this.notFound(name, `has no version ${ref}`);
    }
    const lower = ref.toLowerCase();
    if (DIGEST_PREFIX_RE.test(lower)) {
      const found = await this.store.byPrefix(name, lower, 10);
      if (found.length === 1) return found[0]!;
      if (found.length === 0) return this.notFound(name, `has no version ${ref}`);
      throw new SluiceError(
        'CONFLICT',
        `version prefix ${ref} of ${name} is ambiguous (seq ${found.map((v) => v.seq).join(', ')}); give more digits`,
      );
    }
    if (ALIAS_RE.test(ref)) {
      const summary = await this.store.summary(name);
      const digest = summary?.aliases[ref];
      if (!summary) return this.notFound(name, '');
      if (!digest) throw new SluiceError('NOT_FOUND', `function ${name} has no alias "${ref}"`);
      return (await this.store.get(name, digest)) ?? this.notFound(name, `has no version ${digest}`);
    }
    throw new SluiceError(
      'BAD_REQUEST',
      `"${ref}" is not a version reference: use an alias, a seq number or at least ${MIN_PREFIX} hex digits of a digest`,
    );
  }

  /** Where a version's files are (read-only). */
  bundleDir(v: Pick<FunctionVersion, 'name' | 'version'>): string {
    return join(this.bundlesDir, v.name, v.version);
  }

  list(): Promise<FunctionSummary[]> {
    return this.store.list();
  }

  async get(name: string): Promise<FunctionSummary> {
    return (await this.store.summary(name)) ?? this.notFound(name, '');
  }

  /** Every version, newest first. */
  async versions(name: string): Promise<FunctionVersion[]> {
    const all = await this.store.versions(name);
    return all.length > 0 ? all : this.notFound(name, '');
  }

  /** Points alias at the version ref names; returns that version with its aliases. */
  async setAlias(name: string, alias: string, ref: string, principal: Principal): Promise<FunctionVersion> {
    requireScope(principal, 'function.deploy');
    checkAliasName(alias);
    return this.exclusive(name, async () => {
      const target = await this.resolve(name, ref);
      await this.store.setAlias(name, alias, target.version);
      this.log?.info({ function: name, alias, version: target.version, seq: target.seq, by: principal.subject }, 'function alias set');
      return (await this.store.get(name, target.version))!;
    });
  }

  async removeAlias(name: string, alias: string, principal: Principal): Promise<void> {
    requireScope(principal, 'function.deploy');
    if (alias === LATEST) throw latestRefused();
    await this.exclusive(name, async () => {
      if (await this.store.removeAlias(name, alias)) {
        this.log?.info({ function: name, alias, by: principal.subject }, 'function alias removed');
        return;
      }
      await this.get(name);
      throw new SluiceError('NOT_FOUND', `function ${name} has no alias "${alias}"`);
    });
  }

  /** Removes a function: every version, alias and bundle. */
  async remove(name: string, principal: Principal): Promise<void> {
    requireScope(principal, 'function.deploy');
    await this.exclusive(name, async () => {
      const removed = await this.store.removeFunction(name);
      if (removed.length === 0) await this.notFound(name, '');
      this.log?.info({ function: name, versions: removed.length, by: principal.subject }, 'function removed');
      this.emit('removed', { name });
      await removeBundleDir(join(this.bundlesDir, name));
    });
  }

  /** Removes one version; refused (CONFLICT) while an alias other than `latest` points at it. */
  async removeVersion(name: string, ref: string, principal: Principal): Promise<void> {
    requireScope(principal, 'function.deploy');
    await this.exclusive(name, async () => {
      const target = await this.resolve(name, ref);
      const { functionRemoved } = await this.store.removeVersion(name, target.version);
      this.log?.info(
        { function: name, version: target.version, seq: target.seq, functionRemoved, by: principal.subject },
        'function version removed',
      );
      this.emit('removed', { name, version: target.version });
      await removeBundleDir(functionRemoved ? join(this.bundlesDir, name) : this.bundleDir(target));
    });
  }

  private async notFound(name: string, what: string): Promise<never> {
    if (what === '' || !(await this.store.summary(name))) throw new SluiceError('NOT_FOUND', `no function ${name}`);
    throw new SluiceError('NOT_FOUND', `function ${name} ${what}`);
  }

  /** Runs a change of one function after the previous ones; cached references to it are forgotten. */
  private exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    const before = this.locks.get(name) ?? Promise.resolve();
    const change = async () => {
      try {
        return await work();
      } finally {
        this.forget(name);
        this.emit('changed', { name });
      }
    };
    const run = before.then(change, change);
    const settled = run.catch(() => undefined);
    this.locks.set(name, settled);
    void settled.then(() => {
      if (this.locks.get(name) === settled) this.locks.delete(name);
    });
    return run;
  }
}

function checkAliasName(alias: string): void {
  if (alias === LATEST) throw latestRefused();
  if (!ALIAS_RE.test(alias)) {
    throw new SluiceError('BAD_REQUEST', `alias "${alias}" must be lower-case letters, digits and -, start with a letter, at most 32`);
  }
  // A hex-looking alias would read as a digest prefix; refusing it keeps every reference unambiguous.
  if (DIGEST_PREFIX_RE.test(alias)) throw new SluiceError('BAD_REQUEST', `alias "${alias}" looks like a version digest; choose another`);
}

function latestRefused(): SluiceError {
  return new SluiceError('BAD_REQUEST', `"${LATEST}" always points at the newest deploy; it cannot be set or removed by hand`);
}
