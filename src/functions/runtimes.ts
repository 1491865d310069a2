// How each runtime starts: the argv, environment and bind mounts of an instance (or, for exec, of
// one call's process), as seen from inside the sandbox.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionsConfig } from '../config.js';
import type { Sandbox, SandboxSpec } from './sandbox.js';
import { PROTOCOL_VERSION, type FunctionVersion, type InvokeMessage } from './types.js';

/** The shipped runtime shims (runtimes/node, runtimes/python) at the package root. */
export const RUNTIMES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'runtimes');

/** The fd on which a launch's environment is handed to the sandbox (after stdio and the protocol's fd 3). */
export const ENV_FD = 4;

const INSIDE = { bundle: '/fn', runtimes: '/opt/sluice/runtimes', socket: '/run/sluice/api.sock' };

export interface RuntimeHost {
  sandbox: Sandbox;
  config: FunctionsConfig;
  /** Host path of the API's unix socket, given to instances for ctx.storage. */
  apiSocket: string;
}

/** Where the API socket appears inside an instance. */
export function insideSocket(host: RuntimeHost): string {
  return host.sandbox.kind === 'bubblewrap' ? INSIDE.socket : host.apiSocket;
}

/** The sandbox spec of an instance of `v` (or of one exec call, with its invoke message). */
export function instanceSpec(host: RuntimeHost, v: FunctionVersion, bundleDir: string, call?: InvokeMessage): SandboxSpec {
  const m = v.manifest;
  const sandboxed = host.sandbox.kind === 'bubblewrap';
  const bundle = sandboxed ? INSIDE.bundle : bundleDir;
  const runtimes = sandboxed ? INSIDE.runtimes : RUNTIMES_DIR;
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    ...m.env,
    SLUICE_PROTOCOL: String(PROTOCOL_VERSION),
    SLUICE_FUNCTION: v.name,
    SLUICE_VERSION: v.version,
  };
  let argv: string[];
  switch (m.runtime) {
    case 'node':
      // No V8 flags: any flag makes node reject its built-in code cache, a fifth of its start. The
      // memory limit is enforced by the instance's RSS watch instead of --max-old-space-size.
      argv = [host.config.node, join(runtimes, 'node', 'instance.cjs')];
      break;
    case 'python':
      env.PYTHONDONTWRITEBYTECODE = '1';
      // glibc gives each thread its own 64 MiB malloc arena; under the RLIMIT_AS backstop that caps a
      // concurrent instance at a dozen threads. Two arenas serve any thread count.
      env.MALLOC_ARENA_MAX = '2';
      // The entry imports sluice_instance, read from the __pycache__ that the build precompiles.
      argv = [host.config.python, '-s', join(runtimes, 'python', 'sluice_runtime.py')];
      break;
    case 'custom':
    case 'exec':
      argv = [join(bundle, m.handler)];
      break;
  }
  if (call) {
    env.SLUICE_ACTIVATION_ID = call.id;
    env.SLUICE_DEADLINE = String(call.deadline);
    env.SLUICE_API_SOCKET = call.storage.socket;
    env.SLUICE_TOKEN = call.storage.token;
  }
  return {
    bundleDir,
    argv,
    env,
    // The environment (manifest values, an exec call's token) reaches bwrap through a pipe, not on
    // its command line, which every local user can read in /proc.
    envFd: ENV_FD,
    network: m.network,
    binds: [
      ...(m.runtime === 'node' || m.runtime === 'python' ? [{ host: RUNTIMES_DIR, inside: INSIDE.runtimes }] : []),
      { host: host.apiSocket, inside: INSIDE.socket },
    ],
    limits: {
      memoryMb: m.limits.memoryMb,
      openFiles: m.limits.openFiles,
      ...(m.limits.cpuSeconds !== undefined ? { cpuSeconds: m.limits.cpuSeconds } : {}),
      // V8 reserves far more address space than it uses, and exec/custom may be anything (a node
      // script too): only python, whose interpreter we know, gets the RLIMIT_AS backstop.
      addressSpace: m.runtime === 'python',
    },
  };
}
