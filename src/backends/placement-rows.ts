// Row shapes and mappers both placement-store adapters share (SQLite and PostgreSQL return the
// transfers table with the same column types).
import type { Transfer } from '../placement/types.js';

/** null from the database as undefined in the domain. */
export const u = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

export interface TransferRow {
  id: string;
  entry_id: number;
  file_id: string;
  path: string;
  etag: string;
  size: number;
  adler32: string | null;
  source: string | null;
  destination: string;
  state: Transfer['state'];
  priority: number;
  activity: string;
  rule_id: string | null;
  attempts: number;
  max_attempts: number;
  next_attempt: number;
  bytes_done: number;
  mode: Transfer['mode'] | null;
  error: string | null;
  created: number;
  started: number | null;
  finished: number | null;
}

export function toTransfer(r: TransferRow): Transfer & { entryId: number } {
  return {
    id: r.id,
    entryId: r.entry_id,
    fileId: r.file_id,
    path: r.path,
    etag: r.etag,
    size: r.size,
    adler32: u(r.adler32),
    source: u(r.source),
    destination: r.destination,
    state: r.state,
    priority: r.priority,
    activity: r.activity,
    ruleId: u(r.rule_id),
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    nextAttempt: r.next_attempt,
    bytesDone: r.bytes_done,
    mode: u(r.mode),
    error: u(r.error),
    created: r.created,
    started: u(r.started),
    finished: u(r.finished),
  };
}

/** Range bounds for "everything strictly below dir" on a path index ('0' sorts right after '/'). */
export function below(dir: string): [string, string] {
  return dir === '/' ? ['/', '0'] : [dir + '/', dir + '0'];
}
