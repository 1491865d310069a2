// Process trees of function instances, read from Linux /proc: who descends from an instance, how
// much resident memory the whole tree holds, and how to kill all of it without leaving survivors.
// Linux only (the sandbox is too); everything tolerates processes vanishing mid-walk.
import { readdirSync, readFileSync } from 'node:fs';

/** Children of every thread of `pid` (a thread that forks is the parent, not the main thread). */
function children(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tasks) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1');
    } catch {
      continue;
    }
    for (const word of text.split(' ')) {
      const child = Number(word);
      if (child > 0) out.push(child);
    }
  }
  return out;
}

/** All live descendants of `pid` (not `pid` itself), parents before their children. */
export function descendants(pid: number): number[] {
  const seen = new Set<number>([pid]);
  const out: number[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const child of children(next)) {
      if (seen.has(child)) continue;
      seen.add(child);
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

let pageSize: number | undefined;

/** The kernel's page size from the auxiliary vector (AT_PAGESZ), which statm counts in. */
function kernelPageSize(): number {
  if (pageSize !== undefined) return pageSize;
  pageSize = 4096;
  try {
    const auxv = readFileSync('/proc/self/auxv');
    for (let at = 0; at + 16 <= auxv.length; at += 16) {
      const key = auxv.readBigUInt64LE(at);
      if (key === 0n) break;
      if (key === 6n) pageSize = Number(auxv.readBigUInt64LE(at + 8));
    }
  } catch {
    // No auxv (not Linux, or a restricted /proc): 4 KiB is the page size of every platform sluice runs on.
  }
  return pageSize;
}

function rssPages(pid: number): number {
  try {
    // statm is "size resident shared text lib data dt", in pages; the cheapest RSS the kernel offers.
    const resident = Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]);
    return Number.isFinite(resident) ? resident : 0;
  } catch {
    return 0;
  }
}

/**
 * Resident bytes of `pid` and all its descendants; 0 if it is gone. Pages shared between processes
 * (libraries, copy-on-write after fork) count once per process, so this errs on the high side,
 * which is the safe side for a memory limit.
 */
export function treeRssBytes(pid: number): number {
  let pages = rssPages(pid);
  if (pages === 0) return 0;
  for (const child of descendants(pid)) pages += rssPages(child);
  return pages * kernelPageSize();
}

function signal(target: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(target, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/**
 * Signals the process group `pid` leads (children are spawned detached, so their group id is their
 * pid) and every descendant, including those that left the group (setsid, bwrap --new-session).
 * For SIGKILL the tree is first frozen with SIGSTOP until no new process appears: a process killed
 * before its children are known would orphan them to init, out of reach. Call it only while the
 * child has not been reaped, or the pid may already name someone else.
 */
export function killTree(pid: number, sig: NodeJS.Signals = 'SIGKILL'): void {
  // kill(-0) and kill(-1) would signal our own group or every process we may signal
  if (!Number.isInteger(pid) || pid <= 1) throw new RangeError(`killTree: not a child pid: ${pid}`);
  const tree = new Set<number>();
  if (sig === 'SIGKILL') {
    // A stopped process cannot fork, so a few rounds reach a fixed point even against a fork loop.
    for (let round = 0; round < 16; round++) {
      const fresh = [pid, ...descendants(pid)].filter((p) => !tree.has(p));
      if (fresh.length === 0) break;
      for (const p of fresh) {
        tree.add(p);
        signal(p, 'SIGSTOP');
      }
    }
  } else {
    for (const p of [pid, ...descendants(pid)]) tree.add(p);
  }
  signal(-pid, sig);
  for (const p of tree) signal(p, sig);
}
