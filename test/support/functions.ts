// Test support for functions: deploy a fixture bundle through the real API (packed with the real
// tar), invoke it, and wait for activations.
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { authed, json, tempDir, REPO_ROOT, type RunningServer } from './server.js';

export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'functions');

export async function packDir(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = createTar({ gzip: true, cwd: dir, portable: true }, ['.']);
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Deploys a directory (a fixture name or a path); returns the FunctionVersion JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function deploy(server: RunningServer, dirOrFixture: string, query = ''): Promise<any> {
  const dir = dirOrFixture.includes('/') ? dirOrFixture : join(FIXTURES, dirOrFixture);
  const res = await authed(server)(`/api/v1/functions${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/gzip' },
    body: await packDir(dir),
  });
  const body = await json(res);
  if (res.status !== 201 && res.status !== 200) throw new Error(`deploy ${dir}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** A copy of a fixture in a temp dir, to change and redeploy as a new version. */
export async function fixtureCopy(name: string): Promise<string> {
  const dir = join(await tempDir('sluice-fn-'), name);
  await cp(join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

export interface InvokeResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export async function invoke(
  server: RunningServer,
  name: string,
  input: unknown,
  opts: { blocking?: boolean; version?: string; token?: string } = {},
): Promise<InvokeResponse> {
  const q = new URLSearchParams({ blocking: String(opts.blocking ?? true) });
  if (opts.version) q.set('version', opts.version);
  const res = await authed(server, opts.token)(`/api/v1/functions/${name}/invocations?${q}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  });
  return { status: res.status, headers: res.headers, body: await json(res) };
}

/** The activation of a blocking call, whether it succeeded (200) or failed (502 problem). */
export async function call(
  server: RunningServer,
  name: string,
  input: unknown,
  opts: { version?: string; token?: string } = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<any> {
  const r = await invoke(server, name, input, opts);
  if (r.status === 200) return r.body;
  if (r.status === 502 && r.body.activation) return r.body.activation;
  throw new Error(`invoke ${name}: ${r.status} ${JSON.stringify(r.body)}`);
}

/** Polls an activation until it has finished. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function waitForActivation(server: RunningServer, id: string, timeoutMs = 20_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await authed(server)(`/api/v1/activations/${id}`);
    const a = await json(res);
    if (res.status === 200 && (a.status === 'success' || a.status === 'error')) return a;
    if (Date.now() > until) throw new Error(`activation ${id} did not finish: ${JSON.stringify(a)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
