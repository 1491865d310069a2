// Which files a rule covers, and which SEs it would choose for a file: pure functions the judge
// applies (kept apart so they can be tested without state).
import picomatch from 'picomatch';
import { createHash } from 'node:crypto';
import type { Entry, Replica } from '../storage/types.js';
import type { Rule } from './types.js';

const globs = new Map<string, (p: string) => boolean>();

function globMatcher(glob: string): (p: string) => boolean {
  let m = globs.get(glob);
  if (!m) {
    m = picomatch(glob, { dot: true });
    globs.set(glob, m);
  }
  return m;
}

export function isWithinScope(path: string, scope: string): boolean {
  return scope === '/' || path === scope || path.startsWith(scope + '/');
}

/** Whether a rule covers a file (its path scope, glob, labels and xattrs; or the one file of a QoS rule). */
export function ruleCovers(rule: Rule, entry: Entry): boolean {
  if (entry.type !== 'REGULAR') return false;
  if (rule.fileId !== undefined) return rule.fileId === entry.fileId;
  if (!isWithinScope(entry.path, rule.path)) return false;
  if (rule.glob !== undefined) {
    const rel = rule.path === '/' ? entry.path.slice(1) : entry.path.slice(rule.path.length + 1);
    if (!globMatcher(rule.glob)(rel)) return false;
  }
  for (const l of rule.labels) if (!entry.labels.includes(l)) return false;
  for (const [k, v] of Object.entries(rule.xattrs)) if (entry.xattrs[k] !== v) return false;
  return true;
}

/** How a replica counts for a rule: good (the copy is there), pending (on its way) or missing. */
export function replicaStanding(replica: Replica | undefined, seKind: string | undefined): 'good' | 'pending' | 'missing' {
  if (!replica || replica.state === 'BAD') return 'missing';
  if (replica.state === 'COPYING') return 'pending';
  // On tape, a copy counts once it is flushed; until then it is only in the SE's disk buffer.
  if (seKind === 'tape') return replica.state === 'NEARLINE' ? 'good' : 'pending';
  return replica.state === 'AVAILABLE' || replica.state === 'NEARLINE' ? 'good' : 'missing';
}

export interface ChoiceInput {
  copies: number;
  candidates: readonly string[];
  /** SEs this rule already locks for this file, in the order they were chosen. */
  locked: readonly string[];
  /** SEs holding a good or pending replica of the file. */
  holding: ReadonlySet<string>;
  /** For grouped rules: SEs the rule's other files (of the group) use, most used first. */
  groupSes: readonly string[];
  /** Free bytes per SE (unknown counts as 0). */
  free: ReadonlyMap<string, number>;
  /** Spread rules order the rest by a hash of the file, so files scatter evenly but stably. */
  spreadKey: string | undefined;
}

/**
 * Chooses `copies` SEs among the candidates: keep what the rule already locks, then SEs that
 * already hold the file (no copy needed), then the SEs of the file's group, then the rest, by
 * free space or by the file's hash for spread rules. Returns fewer when there are not enough.
 */
export function chooseSes(c: ChoiceInput): string[] {
  const candidates = new Set(c.candidates);
  const chosen: string[] = [];
  const take = (se: string) => {
    if (chosen.length < c.copies && candidates.has(se) && !chosen.includes(se)) chosen.push(se);
  };
  for (const se of c.locked) take(se);
  for (const se of [...c.holding].sort()) take(se);
  for (const se of c.groupSes) take(se);
  const rest = [...candidates].filter((se) => !chosen.includes(se));
  if (c.spreadKey !== undefined) {
    const key = c.spreadKey;
    const h = (se: string) => createHash('sha1').update(key).update('\0').update(se).digest().readUInt32BE(0);
    rest.sort((a, b) => h(a) - h(b) || a.localeCompare(b));
  } else {
    rest.sort((a, b) => (c.free.get(b) ?? 0) - (c.free.get(a) ?? 0) || a.localeCompare(b));
  }
  for (const se of rest) take(se);
  return chosen;
}
