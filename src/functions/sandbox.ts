// The function sandbox: turns "run this argv on this bundle with these limits" into the command line
// that child_process.spawn runs. With bubblewrap, the process sees a read-only /usr, a few files of
// /etc, its bundle at /fn, private /tmp and /dev/shm, and nothing else of the host; it runs in its
// own user, pid, ipc, uts, cgroup and (unless allowed out) network namespaces, as uid 65534, with
// no capabilities. Without bubblewrap ('none') only the resource limits, a clean environment and the
// working directory remain. Resource limits are set by util-linux prlimit in front of either.
import { execFile } from 'node:child_process';
import { lstatSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, basename, isAbsolute, relative, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import { SluiceError } from '../errors.js';

export type SandboxMode = 'auto' | 'bubblewrap' | 'none';

export interface SandboxSpec {
  /** Host directory of the function bundle; visible read-only at /fn inside, which is the cwd. */
  bundleDir: string;
  /** argv to run; argv[0] is an absolute host path of an interpreter or a path inside /fn. */
  argv: string[];
  /** The complete environment of the process (nothing is inherited from the server); PWD is set to the cwd. */
  env: Record<string, string>;
  network: boolean;
  /**
   * An inherited fd (a pipe the caller opens at this stdio index) through which bwrap reads the
   * environment, instead of its command line: /proc/<pid>/cmdline is readable by every local user,
   * so tokens and manifest secrets should not travel there. The caller writes Launch.envFdData to it
   * and ends it. Without envFd the environment goes on bwrap's command line.
   */
  envFd?: number;
  /** Extra read-only (or writable) bind mounts, e.g. the runtime shim directory, the API unix socket. */
  binds?: { host: string; inside: string; writable?: boolean }[];
  limits: {
    memoryMb: number;
    openFiles: number;
    cpuSeconds?: number;
    /**
     * Apply RLIMIT_AS of addressSpaceBytes(memoryMb): for python and exec, never for node. V8 reserves
     * address space up front: node 20 needs ≥ ~712 MiB just to start (its CodeRange), each Worker more,
     * a WebAssembly.Memory ~10 GiB of guard regions, and hitting the limit aborts the process
     * (SIGTRAP/SIGABRT) instead of raising an error. Node is held to memoryMb by the RSS watchdog only.
     */
    addressSpace?: boolean;
    /** Size of the private /tmp in MiB (tmpfs: host memory not counted in the RSS); default memoryMb. */
    tmpMb?: number;
  };
}

/** What child_process.spawn runs; spawn it detached so killTree can signal its process group. */
export interface Launch {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** With spec.envFd: what to write to that fd before ending it (empty when there is nothing to pass). */
  envFdData?: Buffer;
}

export interface SandboxOptions {
  /** Paths of the tools, for tests and unusual installs. */
  bwrap?: string;
  prlimit?: string;
}

/** Where the bundle appears inside bubblewrap. */
export const BUNDLE_INSIDE = '/fn';
/** The uid and gid of a sandboxed process as it sees itself: nobody/nogroup. */
export const SANDBOX_UID = 65534;
const MIB = 1024 * 1024;
/** /dev/shm is for semaphores and shared arrays between a function's own processes; it needs little. */
const SHM_MAX_MB = 64;

/**
 * RLIMIT_AS for interpreters that do not reserve address space up front (python, exec): a backstop
 * behind the RSS watchdog, loose enough for allocator arenas and thread stacks.
 */
export function addressSpaceBytes(memoryMb: number): number {
  return (memoryMb * 2 + 256) * MIB;
}

/** Whether `path` is `dir` or inside it (both absolute and normalised). */
function isWithin(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** How the host's root is laid out, read once: merged-usr symlinks or real directories. */
interface HostLayout {
  /** bwrap arguments giving the read-only system: /usr and the top-level /bin, /lib… beside it. */
  system: string[];
  /** Absolute paths the system arguments make visible at the same place inside. */
  visible: string[];
}

// Top-level directories that hold programs and libraries. On merged-usr systems (Debian 12) they are
// symlinks into /usr, which costs one symlink each instead of a bind.
const TOP_SYSTEM_DIRS = ['/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32'];

function readHostLayout(): HostLayout {
  const system = ['--ro-bind', '/usr', '/usr'];
  const visible = ['/usr'];
  for (const dir of TOP_SYSTEM_DIRS) {
    let stat;
    try {
      stat = lstatSync(dir);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) system.push('--symlink', readlinkSync(dir), dir);
    else if (stat.isDirectory()) system.push('--ro-bind', dir, dir);
    else continue;
    visible.push(dir);
  }
  return { system, visible };
}

// /etc holds the host's secrets and configuration; a function gets only what runtimes read.
// --ro-bind-try: a file the host lacks is simply absent inside.
const ETC_ALWAYS = [
  // the dynamic linker finds multiarch libraries through its cache
  ['/etc/ld.so.cache', '/etc/ld.so.cache'],
  // Debian's program aliases (awk, editor…), only symlinks into /usr
  ['/etc/alternatives', '/etc/alternatives'],
  // The package's pristine account lists, not the host's: getpwuid(65534) and os.userInfo() work,
  // and no host account is revealed.
  ['/usr/share/base-passwd/passwd.master', '/etc/passwd'],
  ['/usr/share/base-passwd/group.master', '/etc/group'],
];
// Name resolution and TLS trust, which only make sense with a network.
const ETC_NETWORK = [
  '/etc/resolv.conf',
  '/etc/hosts',
  '/etc/nsswitch.conf',
  '/etc/host.conf',
  '/etc/gai.conf',
  '/etc/services',
  '/etc/protocols',
  '/etc/ssl',
  '/etc/ca-certificates.conf',
];

function etcArgs(network: boolean): string[] {
  const args: string[] = [];
  for (const [host, inside] of ETC_ALWAYS) args.push('--ro-bind-try', host!, inside!);
  if (network) for (const file of ETC_NETWORK) args.push('--ro-bind-try', file, file);
  return args;
}

/** The hard RLIMIT_NOFILE of this process; a non-root child cannot be given more. */
function hardOpenFiles(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'latin1')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const hard = Number(line?.split(/\s+/)[4]);
    return Number.isFinite(hard) && hard > 0 ? hard : Infinity;
  } catch {
    return Infinity;
  }
}

// Trial runs are remembered per command line: every server a process starts (tests start many) shares them.
const trials = new Map<string, Promise<{ ok: boolean; why: string }>>();

function trial(file: string, args: string[]): Promise<{ ok: boolean; why: string }> {
  const key = [file, ...args].join('\0');
  let result = trials.get(key);
  if (!result) trials.set(key, (result = run(file, args)));
  return result;
}

function run(file: string, args: string[]): Promise<{ ok: boolean; why: string }> {
  return new Promise((done) => {
    execFile(file, args, { env: {}, timeout: 10_000 }, (err, _stdout, stderr) => {
      if (!err) return done({ ok: true, why: '' });
      const why = String(stderr).trim() || err.message;
      done({ ok: false, why: why.split('\n')[0]!.slice(0, 300) });
    });
  });
}

export class Sandbox {
  readonly kind: 'bubblewrap' | 'none';
  private readonly bwrap: string;
  private readonly prlimit: string;
  private readonly layout: HostLayout;
  /** bubblewrap ≥ 0.8: --disable-userns and --size. */
  private readonly modern: boolean;
  private readonly maxOpenFiles: number;
  private readonly log: Logger;
  private readonly warned = new Set<string>();

  private constructor(
    kind: 'bubblewrap' | 'none',
    log: Logger,
    options: Required<SandboxOptions> & { modern: boolean; maxOpenFiles: number },
  ) {
    this.kind = kind;
    this.log = log;
    this.bwrap = options.bwrap;
    this.prlimit = options.prlimit;
    this.modern = options.modern;
    this.maxOpenFiles = options.maxOpenFiles;
    this.layout = kind === 'bubblewrap' ? readHostLayout() : { system: [], visible: [] };
  }

  /**
   * Chooses the sandbox, at server start. 'auto' and 'bubblewrap' make one trial run of the exact
   * command line functions get (bwrap can be installed while user namespaces are disabled).
   */
  static async detect(mode: SandboxMode, log: Logger, options: SandboxOptions = {}): Promise<Sandbox> {
    const tools = { bwrap: options.bwrap ?? '/usr/bin/bwrap', prlimit: options.prlimit ?? '/usr/bin/prlimit' };
    // A non-root server cannot raise a hard limit, so larger openFiles are clamped rather than failing every start.
    const maxOpenFiles = process.getuid?.() === 0 ? Infinity : hardOpenFiles();
    const prlimitWorks = await trial(tools.prlimit, ['--core=0', '--', '/usr/bin/true']);
    if (!prlimitWorks.ok)
      throw new SluiceError('UNAVAILABLE', `prlimit (util-linux) is needed to limit functions: ${prlimitWorks.why}`, tools);

    if (mode === 'none') {
      log.info('function sandbox disabled by configuration: functions run with the server’s user rights');
      return new Sandbox('none', log, { ...tools, modern: false, maxOpenFiles });
    }
    let why = '';
    // bubblewrap ≥ 0.8 can keep functions from making user namespaces of their own (a large kernel
    // attack surface) and bound the size of /tmp; older ones (Debian 11) still isolate without that.
    for (const modern of [true, false]) {
      const candidate = new Sandbox('bubblewrap', log, { ...tools, modern, maxOpenFiles });
      const launch = candidate.wrap({
        bundleDir: '/usr/share',
        argv: ['/usr/bin/true'],
        env: {},
        network: false,
        limits: { memoryMb: 16, openFiles: 64 },
      });
      const result = await trial(launch.file, launch.args);
      if (result.ok) {
        if (modern) log.debug({ bwrap: tools.bwrap }, 'function sandbox: bubblewrap');
        else
          log.warn(
            { bwrap: tools.bwrap, reason: why },
            'function sandbox: old bubblewrap, functions may create user namespaces and fill /tmp without bound; bubblewrap ≥ 0.8 is recommended',
          );
        return candidate;
      }
      why ||= result.why;
    }
    if (mode === 'bubblewrap')
      throw new SluiceError('UNAVAILABLE', `bubblewrap cannot sandbox functions here: ${why}`, { bwrap: tools.bwrap });
    log.warn(
      { bwrap: tools.bwrap, reason: why },
      `function sandbox unavailable, functions run UNSANDBOXED with the server's user rights (bubblewrap failed: ${why}); ` +
        'install bubblewrap and allow unprivileged user namespaces, or set functions.sandbox to "none" to accept this',
    );
    return new Sandbox('none', log, { ...tools, modern: false, maxOpenFiles });
  }

  /** Path where `hostPath` appears to the process ("/fn/…" for the bundle with bubblewrap, itself without). */
  insidePath(hostPath: string, spec: SandboxSpec): string {
    if (this.kind === 'none') return hostPath;
    const path = resolve(hostPath);
    const bundle = resolve(spec.bundleDir);
    if (isWithin(path, bundle)) return resolve(BUNDLE_INSIDE, relative(bundle, path));
    for (const bind of spec.binds ?? []) {
      const host = resolve(bind.host);
      if (isWithin(path, host)) return resolve(bind.inside, relative(host, path));
    }
    return path;
  }

  /** The command that runs `spec`: prlimit, then bwrap (unless 'none'), then the argv. */
  wrap(spec: SandboxSpec): Launch {
    if (spec.argv.length === 0) throw new SluiceError('BAD_REQUEST', 'sandbox: empty argv');
    const limits = this.limitArgs(spec);
    if (this.kind === 'none') {
      // the environment of a process is readable by its own user only: no need for the fd here
      const cwd = resolve(spec.bundleDir);
      const launch: Launch = { file: this.prlimit, args: [...limits, '--', ...spec.argv], env: { ...spec.env, PWD: cwd }, cwd };
      if (spec.envFd !== undefined) launch.envFdData = Buffer.alloc(0);
      return launch;
    }
    const launch: Launch = { file: this.prlimit, args: [...limits, '--', this.bwrap, ...this.bwrapArgs(spec)], env: {}, cwd: '/' };
    if (spec.envFd !== undefined) {
      // NUL-separated arguments, spliced by bwrap where --args stands; it closes the fd after reading
      const setenv = Object.entries(spec.env).flatMap(([name, value]) => ['--setenv', name, value]);
      launch.envFdData = Buffer.from(setenv.map((arg) => arg + '\0').join(''));
    }
    return launch;
  }

  private limitArgs(spec: SandboxSpec): string[] {
    const { openFiles, cpuSeconds, addressSpace, memoryMb } = spec.limits;
    const nofile = Math.min(openFiles, this.maxOpenFiles);
    // soft = hard: the function cannot raise them again. No RLIMIT_NPROC: it counts every process of
    // the host uid (the server and all instances share one), and root is exempt from it anyway.
    const args = [`--nofile=${nofile}:${nofile}`, '--core=0'];
    // SIGXCPU at the soft limit names the cause in the exit signal; SIGKILL a second later if ignored.
    if (cpuSeconds !== undefined) args.push(`--cpu=${cpuSeconds}:${cpuSeconds + 1}`);
    if (addressSpace) {
      const bytes = addressSpaceBytes(memoryMb);
      args.push(`--as=${bytes}:${bytes}`);
    }
    return args;
  }

  private bwrapArgs(spec: SandboxSpec): string[] {
    const bundle = resolve(spec.bundleDir);
    const tmpBytes = (spec.limits.tmpMb ?? spec.limits.memoryMb) * MIB;
    const shmBytes = Math.min(SHM_MAX_MB * MIB, tmpBytes);
    const args = [
      '--unshare-all',
      ...(spec.network ? ['--share-net'] : []),
      // --unshare-all only tries a user namespace; insist, since it is what makes uid 65534 and
      // cap-drop meaningful for a server running as root.
      '--unshare-user',
      '--uid',
      String(SANDBOX_UID),
      '--gid',
      String(SANDBOX_UID),
      ...(this.modern ? ['--disable-userns'] : []),
      '--cap-drop',
      'ALL',
      '--die-with-parent',
      // a new session: no controlling terminal to push input into (TIOCSTI)
      '--new-session',
      // the host's name is none of the function's business
      '--hostname',
      'sluice',
      ...this.layout.system,
      ...etcArgs(spec.network),
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      // tmpfs pages are host memory the RSS watchdog does not see, so they get a size
      ...(this.modern ? ['--size', String(tmpBytes)] : []),
      '--tmpfs',
      '/tmp',
      ...(this.modern ? ['--size', String(shmBytes)] : []),
      '--tmpfs',
      '/dev/shm',
      '--ro-bind',
      bundle,
      BUNDLE_INSIDE,
      ...this.interpreterBinds(spec, bundle),
    ];
    for (const bind of spec.binds ?? []) args.push(bind.writable ? '--bind' : '--ro-bind', resolve(bind.host), bind.inside);
    // bwrap's root and /dev are unbounded tmpfs; once every mount point exists neither needs writing
    args.push('--remount-ro', '/dev', '--remount-ro', '/', '--chdir', BUNDLE_INSIDE, '--clearenv');
    if (spec.envFd !== undefined) args.push('--args', String(spec.envFd));
    else for (const [name, value] of Object.entries(spec.env)) args.push('--setenv', name, value);
    const argv = [...spec.argv];
    if (isWithin(resolve(argv[0]!), bundle)) argv[0] = this.insidePath(argv[0]!, spec);
    args.push('--', ...argv);
    return args;
  }

  /**
   * An interpreter outside /usr (/opt/node, ~/.nvm, ~/.pyenv/versions/X, a virtualenv) is bound
   * read-only at its own path: its installation prefix only (the directory above bin/), for every
   * link on the way from argv[0] to the real file.
   */
  private interpreterBinds(spec: SandboxSpec, bundle: string): string[] {
    const exe = spec.argv[0]!;
    if (!isAbsolute(exe)) return [];
    const insideOnly = [BUNDLE_INSIDE, ...(spec.binds ?? []).map((b) => b.inside)];
    if (isWithin(exe, bundle) || insideOnly.some((dir) => isWithin(exe, dir))) return [];
    const prefixes = new Set<string>();
    for (const link of this.linkChain(exe)) {
      if (this.layout.visible.some((dir) => isWithin(link, dir))) continue;
      prefixes.add(this.safePrefix(link, spec, bundle));
    }
    return [...prefixes].flatMap((p) => ['--ro-bind', p, p]);
  }

  /** argv[0], each symlink it leads through, and its real path. */
  private linkChain(exe: string): string[] {
    const chain = [resolve(exe)];
    for (let hop = 0; hop < 40; hop++) {
      const last = chain[chain.length - 1]!;
      let target: string;
      try {
        target = readlinkSync(last);
      } catch {
        break; // not a symlink, or missing
      }
      chain.push(resolve(dirname(last), target));
    }
    try {
      chain.push(realpathSync.native(exe));
    } catch {
      // missing: nothing more to bind
    }
    return [...new Set(chain)].filter((path) => {
      try {
        lstatSync(path);
        return true;
      } catch {
        return false; // bwrap then reports the missing command, not a missing bind source
      }
    });
  }

  /** The server account's home from the password database, which $HOME may disagree with. */
  private accountHome(): string[] {
    try {
      return [userInfo().homedir];
    } catch {
      return []; // no passwd entry for this uid
    }
  }

  /**
   * The installation prefix of `file`, unless binding it would expose what a function must not see:
   * a home directory, a top-level directory, the data directory holding the bundle or a bind. Then
   * only the file itself is bound, which is enough for a static executable.
   */
  private safePrefix(file: string, spec: SandboxSpec, bundle: string): string {
    const dir = dirname(file);
    const prefix = ['bin', 'sbin'].includes(basename(dir)) ? dirname(dir) : dir;
    const depth = prefix.split(sep).filter(Boolean).length;
    const homes = [homedir(), ...this.accountHome()];
    const guarded = [bundle, ...(spec.binds ?? []).map((b) => resolve(b.host))];
    const unsafe =
      depth < 2 ||
      homes.some((home) => isWithin(home, prefix)) ||
      (depth === 2 && prefix.startsWith('/home/')) ||
      guarded.some((inner) => isWithin(inner, prefix));
    if (!unsafe) return prefix;
    if (!this.warned.has(file)) {
      this.warned.add(file);
      this.log.warn({ interpreter: file, prefix }, 'sandbox: interpreter prefix too broad to expose; binding only the executable');
    }
    return file;
  }
}
