// Port: where activation records live. The embedded adapter is SQLite; PostgreSQL comes with scale-out.
import type { Activation, ActivationId, ActivationStatus } from './types.js';

export interface ActivationFilter {
  function?: string;
  status?: ActivationStatus;
  /** Only activations of this subject (non-admin callers see their own). */
  subject?: string;
  /** Activations older than this id (ids sort by time): the next page. */
  before?: string;
  limit: number;
}

export interface ActivationStore {
  /** Records the activation's current state; may be written in a later batch. */
  save(activation: Activation): void;
  /** Records it and resolves once it is on disk (for calls acknowledged before they run). */
  saveDurable(activation: Activation): Promise<void>;
  get(id: string): Activation | undefined;
  /** A successful activation recorded under this idempotency key, if there is one. */
  succeededWithKey(key: string): Activation | undefined;
  /** Newest first. */
  list(filter: ActivationFilter): Activation[];
  /** Activations left queued or running by a previous process. */
  unfinished(): Activation[];
  /** Deletes finished activations that ended before `endedBefore` (epoch ms); returns how many. */
  prune(endedBefore: number): number;
  /** Writes whatever is buffered. */
  flush(): void;
}

export type { ActivationId };
