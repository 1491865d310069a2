// The autoscaler's decisions, as pure functions of a pool's state (what Knative's KPA does with
// observed concurrency, done per call here): start enough instances that every queued and in-flight
// call has a slot, never more than max; stop instances idle longer than the idle timeout, never below min.

export interface PoolLoad {
  /** Calls waiting for a slot. */
  queued: number;
  /** Calls running on instances now. */
  inFlight: number;
  /** Instances up and serving. */
  ready: number;
  /** Instances spawned but not ready yet. */
  starting: number;
  concurrency: number;
  min: number;
  max: number;
}

/** How many new instances to spawn now. */
export function instancesToStart(load: PoolLoad): number {
  const { queued, inFlight, ready, starting, concurrency, min, max } = load;
  const wanted = Math.max(min, Math.ceil((queued + inFlight) / concurrency));
  const have = ready + starting;
  return Math.max(0, Math.min(wanted, max) - have);
}

export interface IdleInstance {
  id: string;
  /** ms since its last call ended (or since it became ready). */
  idleMs: number;
}

/** Which idle instances to stop: the longest idle first, keeping at least `min` instances in all. */
export function instancesToStop(idle: readonly IdleInstance[], total: number, min: number, idleTimeoutMs: number): string[] {
  const expired = idle.filter((i) => i.idleMs >= idleTimeoutMs).sort((a, b) => b.idleMs - a.idleMs);
  const removable = Math.max(0, total - min);
  return expired.slice(0, removable).map((i) => i.id);
}
