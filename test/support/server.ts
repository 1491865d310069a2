// Test support: start a real sluice server on loopback, in this process or as a child process
// (`node bin/sluice.js serve`), with a fresh data directory and its admin token.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type ConfigOverrides } from '../../src/config.js';
import { createCore, ensureAdminToken, createLogger, type Core } from '../../src/app.js';
import { buildServer } from '../../src/api/server.js';

/** Repository root (tests run from dist/test/...). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SLUICE_BIN = join(REPO_ROOT, 'bin', 'sluice.js');

export interface RunningServer {
  url: string;
  token: string;
  dataDir: string;
  /** Present for in-process servers. */
  core?: Core;
  /** Present for child-process servers. */
  proc?: ChildProcess;
  /** Everything a child server printed so far (stdout and stderr). */
  output?: () => string;
  stop(): Promise<void>;
}

export async function tempDir(prefix = 'sluice-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** An in-process server (fast; use for most integration tests). */
export async function startServer(overrides: ConfigOverrides = {}): Promise<RunningServer> {
  const dataDir = overrides.dataDir ?? (await tempDir());
  const config = loadConfig({ port: 0, logLevel: 'silent', ...overrides, dataDir }, {});
  const core = await createCore(config, createLogger(config.logLevel));
  await ensureAdminToken(core);
  const app = await buildServer(core);
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  return {
    url: address,
    token,
    dataDir,
    core,
    async stop() {
      await core.channels.stop();
      await app.close();
      await core.close();
      if (!overrides.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A child `sluice serve` process (for crash tests and CLI tests). Resolves once it listens. */
export async function startChildServer(
  opts: { dataDir?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningServer> {
  const dataDir = opts.dataDir ?? (await tempDir());
  const proc = spawn(
    process.execPath,
    [SLUICE_BIN, 'serve', '--data', dataDir, '--port', '0', '--log-level', 'warn', ...(opts.extraArgs ?? [])],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(opts.env ?? {}) },
    },
  );
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s:\n${out}\n${err}`)), 20_000);
    proc.stdout!.on('data', () => {
      const m = /^sluice serving .* at (http:\/\/\S+) /m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}\n${err}`));
    });
  });
  const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  return {
    url,
    token,
    dataDir,
    proc,
    output: () => out + err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** fetch with the server's admin token (or another) as bearer. */
export function authed(server: RunningServer, token = server.token) {
  return (path: string, init: RequestInit = {}) =>
    fetch(server.url + path, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) },
    });
}

/** A response body as loosely typed JSON, for assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const json = async (res: Response): Promise<any> => res.json();

/**
 * A request sent byte-for-byte as given (fetch normalizes "%2e%2e" and ".." away, which would hide
 * exactly the traversal attempts tests must send).
 */
export async function rawRequest(
  server: RunningServer,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Promise<{ status: number; headers: import('node:http').IncomingHttpHeaders; body: string }> {
  const { request } = await import('node:http');
  const url = new URL(server.url);
  return new Promise((resolveRes, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path, headers: { authorization: `Bearer ${server.token}`, ...headers } },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => resolveRes({ status: res.statusCode!, headers: res.headers, body: data }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
