// The `exec` runtime: one sandboxed process per call, like a CGI script or OpenFaaS's classic
// watchdog. The event goes to stdin as JSON, the result comes back on stdout as JSON, stderr is the
// log. Same limits as warm instances: timeout and memory kill the process, stdout past
// maxOutputBytes is cut and fails the call.
import { spawn } from 'node:child_process';
import type { Launch } from './sandbox.js';
import { killTree, treeRssBytes } from './process-tree.js';
import { LogCollector, OutputTail } from './log-collector.js';
import { LineSplitter } from './line-splitter.js';
import { passEnvironment, type CallOutcome } from './instance.js';
import type { ActivationError, Manifest } from './types.js';

const MEMORY_POLL_MS = 50;

export function runExecCall(launch: Launch, event: unknown, limits: Manifest['limits'], timeoutMs: number): Promise<CallOutcome> {
  return new Promise<CallOutcome>((resolve) => {
    const logs = new LogCollector(limits.maxLogBytes);
    const tail = new OutputTail(5);
    const out: Buffer[] = [];
    let outBytes = 0;
    let failure: ActivationError | undefined;

    const proc = spawn(launch.file, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      stdio: ['pipe', 'pipe', 'pipe', 'ignore', 'pipe'],
      detached: true,
    });
    passEnvironment(proc, launch);
    const kill = (reason: ActivationError) => {
      failure ??= reason;
      if (proc.pid !== undefined) killTree(proc.pid, 'SIGKILL');
    };

    const timer = setTimeout(
      () => kill({ code: 'TIMEOUT', message: `call ran longer than limits.timeoutSeconds (${timeoutMs / 1000} s); process killed` }),
      timeoutMs,
    );
    const limitBytes = limits.memoryMb * 1024 * 1024;
    const memory = setInterval(() => {
      if (proc.pid === undefined) return;
      const rss = treeRssBytes(proc.pid);
      if (rss > limitBytes) {
        kill({
          code: 'MEMORY_LIMIT',
          message: `process used ${Math.round(rss / 1048576)} MiB, over limits.memoryMb (${limits.memoryMb} MiB); killed`,
        });
      }
    }, MEMORY_POLL_MS);

    proc.stdout!.on('data', (chunk: Buffer) => {
      if (failure) return;
      outBytes += chunk.length;
      if (outBytes > limits.maxOutputBytes) {
        kill({ code: 'OUTPUT_LIMIT', message: `stdout exceeds limits.maxOutputBytes (${limits.maxOutputBytes} bytes); process killed` });
        return;
      }
      out.push(chunk);
    });
    const stderr = new LineSplitter(16 * 1024, {
      line: (text) => {
        const line = `${new Date().toISOString()} stderr: ${text}`;
        logs.add(line);
        tail.add(text);
      },
      overflow: (head) => logs.add(`${new Date().toISOString()} stderr: ${head} [line cut]`),
    });
    proc.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    proc.stdin!.on('error', () => undefined); // a process that does not read its input is its own business
    proc.stdin!.end(JSON.stringify(event));

    let spawnError: Error | undefined;
    proc.on('error', (err) => (spawnError = err));
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(memory);
      stderr.end();
      const done = (o: { ok: true; result: unknown } | { ok: false; error: ActivationError }) => resolve({ ...o, logs: logs.lines() });
      if (failure) return done({ ok: false, error: failure });
      if (spawnError) return done({ ok: false, error: { code: 'INIT_FAILED', message: `could not start: ${spawnError.message}` } });
      const last = tail.lines().join(' | ').slice(0, 500);
      if (signal)
        return done({
          ok: false,
          error: { code: 'INSTANCE_EXITED', message: `process was killed by ${signal}${last ? `: ${last}` : ''}` },
        });
      if (code !== 0)
        return done({ ok: false, error: { code: 'APPLICATION_ERROR', message: `exited with code ${code}${last ? `: ${last}` : ''}` } });
      const text = Buffer.concat(out).toString('utf8').trim();
      if (text === '') return done({ ok: true, result: null });
      try {
        return done({ ok: true, result: JSON.parse(text) as unknown });
      } catch {
        return done({ ok: false, error: { code: 'PROTOCOL_ERROR', message: `stdout is not JSON: ${text.slice(0, 200)}` } });
      }
    });
  });
}
