// Prewarmed instances ("stem cells", as OpenWhisk calls its prewarmed containers): sandboxed node and
// python runtimes started before any function needs them, each with an empty directory of its own
// bound read-only at /fn. A cold start of a function with the default profile (no network, default
// memory and file limits) links the function's bundle into a cell's directory and sends init: the
// sandbox and interpreter start are already paid. A cell serves one function version for its whole
// life and is never handed to another; a replacement cell is started after each adoption.
import { link, mkdir, readdir, rm, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Value } from '@sinclair/typebox/value';
import { Instance } from './instance.js';
import { instanceSpec, type RuntimeHost } from './runtimes.js';
import { Manifest, type FunctionVersion, type InitMessage, type VersionId } from './types.js';

type CellRuntime = 'node' | 'python';

/** Limits every manifest gets by default: the profile cells are started with. */
const DEFAULT_LIMITS = Value.Default(Manifest.properties.limits, {}) as Manifest['limits'];
/** Bundles with more files than this start fresh: linking them would cost what the cell saves. */
const MAX_LINKED_FILES = 256;
/** Let the cold start that took a cell have the CPU before its replacement starts. */
const REPLENISH_DELAY_MS = 200;

export interface StemCellOptions {
  host: RuntimeHost;
  /** Directory holding one subdirectory per cell (emptied at start). */
  cellsDir: string;
  /** Cells kept per runtime; 0 disables prewarming. */
  perRuntime: number;
  log: Logger;
}

interface Cell {
  instance: Instance;
  dir: string;
}

export class StemCells {
  private readonly cells = new Map<CellRuntime, Cell[]>();
  private readonly wanted = new Set<CellRuntime>();
  private readonly starting = new Map<CellRuntime, number>();
  private readonly fileCounts = new Map<string, number>();
  private closed = false;
  private seq = 0;

  constructor(private readonly opts: StemCellOptions) {}

  async init(): Promise<void> {
    await rm(this.opts.cellsDir, { recursive: true, force: true });
    await mkdir(this.opts.cellsDir, { recursive: true, mode: 0o755 });
  }

  /** Keeps cells of this runtime ready from now on (called when a function of that runtime exists). */
  want(runtime: string): void {
    if (this.opts.perRuntime <= 0 || this.closed || (runtime !== 'node' && runtime !== 'python')) return;
    if (this.wanted.has(runtime)) return;
    this.wanted.add(runtime);
    this.replenish(runtime);
  }

  /** Whether a version can be served by a cell: the default profile and a small bundle. */
  private async fits(v: FunctionVersion, bundleDir: string): Promise<boolean> {
    const m = v.manifest;
    if ((m.runtime !== 'node' && m.runtime !== 'python') || m.network) return false;
    if (
      m.limits.memoryMb !== DEFAULT_LIMITS.memoryMb ||
      m.limits.openFiles !== DEFAULT_LIMITS.openFiles ||
      m.limits.cpuSeconds !== undefined
    ) {
      return false;
    }
    let files = this.fileCounts.get(v.version);
    if (files === undefined) {
      files = await countFiles(bundleDir, MAX_LINKED_FILES + 1);
      this.fileCounts.set(v.version, files);
    }
    return files <= MAX_LINKED_FILES;
  }

  /**
   * A ready-to-init instance for `v` with its bundle linked in, or undefined when no cell fits or
   * none is ready. The caller owns the returned instance from then on.
   */
  async take(v: FunctionVersion, bundleDir: string, init: InitMessage, onExit: (i: Instance) => void): Promise<Instance | undefined> {
    if (this.closed || !(await this.fits(v, bundleDir))) return undefined;
    const runtime = v.manifest.runtime as CellRuntime;
    this.want(runtime);
    const list = this.cells.get(runtime) ?? [];
    const index = list.findIndex((c) => c.instance.unadopted);
    if (index < 0) return undefined;
    const [cell] = list.splice(index, 1);
    try {
      await linkTree(bundleDir, cell!.dir);
    } catch (err) {
      this.opts.log.warn({ err, function: v.name }, 'could not link a bundle into a prewarmed instance; starting a fresh one');
      cell!.instance.kill({ code: 'CANCELLED', message: 'prewarmed instance discarded' });
      this.replenishSoon(runtime);
      return undefined;
    }
    const dir = cell!.dir;
    cell!.instance.adopt(init, v.manifest.limits, (i) => {
      void rm(dir, { recursive: true, force: true });
      onExit(i);
    });
    this.replenishSoon(runtime);
    return cell!.instance;
  }

  /** The prewarmed instances waiting now (pids are host pids of the sandbox processes). */
  status(): { runtime: CellRuntime; id: string; pid: number | undefined; ready: boolean }[] {
    return [...this.cells.entries()].flatMap(([runtime, list]) =>
      list.map((c) => ({ runtime, id: c.instance.id, pid: c.instance.pid, ready: c.instance.unadopted })),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.cells.values()].flat();
    this.cells.clear();
    for (const c of all) c.instance.stop();
    await Promise.all(all.map((c) => c.instance.gone));
  }

  private replenishSoon(runtime: CellRuntime): void {
    setTimeout(() => this.replenish(runtime), REPLENISH_DELAY_MS).unref();
  }

  private replenish(runtime: CellRuntime): void {
    if (this.closed) return;
    const list = this.cells.get(runtime) ?? [];
    this.cells.set(runtime, list);
    const missing = this.opts.perRuntime - list.length - (this.starting.get(runtime) ?? 0);
    for (let n = 0; n < missing; n++) {
      this.starting.set(runtime, (this.starting.get(runtime) ?? 0) + 1);
      this.spawn(runtime)
        .then((cell) => {
          if (this.closed) cell.instance.stop();
          else list.push(cell);
        })
        .catch((err: unknown) => this.opts.log.error({ err, runtime }, 'could not start a prewarmed instance'))
        .finally(() => this.starting.set(runtime, (this.starting.get(runtime) ?? 1) - 1));
    }
  }

  private async spawn(runtime: CellRuntime): Promise<Cell> {
    const id = `cell-${process.pid}-${++this.seq}`;
    const dir = join(this.opts.cellsDir, id);
    const profile = {
      name: 'stem-cell',
      version: '0'.repeat(64) as VersionId,
      seq: 0,
      manifest: Value.Default(Manifest, { name: 'stem-cell', runtime, handler: 'main.handler' }) as Manifest,
      size: 0,
      created: '',
      createdBy: '',
      aliases: [],
    } satisfies FunctionVersion;
    // The directory must exist before bwrap binds it.
    await mkdir(dir, { mode: 0o755 });
    const instance = new Instance({
      id,
      launch: this.opts.host.sandbox.wrap(instanceSpec(this.opts.host, profile, dir)),
      limits: DEFAULT_LIMITS,
      log: this.opts.log,
      onExit: () => {
        // Died before anyone adopted it (killed, or the runtime broke): forget it and start another.
        const list = this.cells.get(runtime) ?? [];
        const at = list.findIndex((c) => c.instance === instance);
        if (at >= 0) list.splice(at, 1);
        void rm(dir, { recursive: true, force: true });
        if (!this.closed) this.replenishSoon(runtime);
      },
    });
    return { instance, dir };
  }
}

async function countFiles(dir: string, stopAt: number): Promise<number> {
  let n = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (n >= stopAt) return;
      n++;
      if (e.isDirectory()) await walk(join(d, e.name));
    }
  };
  await walk(dir);
  return n;
}

/** Mirrors a read-only bundle into a cell's directory with hard links (copies across filesystems). */
async function linkTree(from: string, to: string): Promise<void> {
  for (const e of await readdir(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isDirectory()) {
      await mkdir(dst, { mode: 0o755 });
      await linkTree(src, dst);
    } else {
      await link(src, dst).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EXDEV') throw err;
        await copyFile(src, dst);
      });
    }
  }
}
