// Test support: the real `sluice` binary as a child process against a running server, and a poll
// helper for what happens in the background (triggers, the catalogue indexer).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { SLUICE_BIN, type RunningServer } from './server.js';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** A URL instead of the server's: e.g. one where nothing listens, to prove nothing was sent. */
  url?: string;
  stdin?: string;
}

/** Runs `sluice ARGS` with SLUICE_URL and SLUICE_TOKEN of `target`; never throws on a failing exit. */
export function runCli(target: RunningServer, args: string[], opts: CliOptions = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [SLUICE_BIN, ...args],
      { env: { ...process.env, SLUICE_URL: opts.url ?? target.url, SLUICE_TOKEN: target.token }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(opts.stdin);
  });
}

export async function cliOk(target: RunningServer, args: string[], opts?: CliOptions): Promise<Run> {
  const r = await runCli(target, args, opts);
  assert.equal(r.code, 0, `sluice ${args.join(' ')} failed:\n${r.stderr}`);
  return r;
}

export async function cliFails(target: RunningServer, args: string[], opts?: CliOptions): Promise<Run> {
  const r = await runCli(target, args, opts);
  assert.equal(r.code, 1, `sluice ${args.join(' ')} should have failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Polls `probe` until it gives a value (not undefined); fails naming `what` after the timeout. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
