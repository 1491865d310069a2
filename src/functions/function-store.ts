// The function registry's state port: immutable versions per function and the aliases that point
// at them. `latest` is an alias the store maintains itself: it follows every deploy, and moves to the
// newest remaining version when the one it points at is removed. Adapters: backends/sqlite (embedded),
// postgres (scale-out); both keep the contract in test/contract/function-store.contract.ts.
import type { FunctionVersion, Manifest, VersionId } from './types.js';

export const LATEST = 'latest';

export interface NewVersion {
  name: string;
  version: VersionId;
  /** Validated, with defaults filled in: stored as deployed, so later default changes never alter it. */
  manifest: Manifest;
  size: number;
  createdBy: string;
}

export interface FunctionSummary {
  name: string;
  /** The version `latest` points at. */
  latest: FunctionVersion;
  versions: number;
  /** Every alias, `latest` included, and the version it points at. */
  aliases: Record<string, VersionId>;
}

export interface FunctionStore {
  /**
   * Records one deploy, atomically: adds the version with the function's next seq unless that digest
   * is recorded already (then `created` is false and its seq is kept), moves `latest` to it and
   * points each of `aliases` at it.
   */
  recordDeploy(v: NewVersion, aliases: readonly string[]): Promise<{ version: FunctionVersion; created: boolean }>;
  get(name: string, version: VersionId): Promise<FunctionVersion | undefined>;
  bySeq(name: string, seq: number): Promise<FunctionVersion | undefined>;
  /** Versions whose digest starts with prefix, at most `limit` of them. */
  byPrefix(name: string, prefix: string, limit: number): Promise<FunctionVersion[]>;
  /** Every version of a function, newest (highest seq) first; [] for an unknown function. */
  versions(name: string): Promise<FunctionVersion[]>;
  summary(name: string): Promise<FunctionSummary | undefined>;
  /** Every function, by name. */
  list(): Promise<FunctionSummary[]>;
  /** Points alias at a version (NOT_FOUND if there is no such version); refuses `latest`. */
  setAlias(name: string, alias: string, version: VersionId): Promise<void>;
  /** False if there was no such alias; refuses `latest`. */
  removeAlias(name: string, alias: string): Promise<boolean>;
  /**
   * Removes one version. Refused (CONFLICT) while an alias other than `latest` points at it; `latest`
   * moves to the newest remaining version, and removing the only version removes the function.
   */
  removeVersion(name: string, version: VersionId): Promise<{ functionRemoved: boolean }>;
  /** Removes a function with all its versions and aliases; returns the versions removed ([] if unknown). */
  removeFunction(name: string): Promise<FunctionVersion[]>;
  /** Every recorded version, to reconcile the bundles directory with the state at start. */
  allVersions(): Promise<{ name: string; version: VersionId }[]>;
}
