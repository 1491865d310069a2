// Writes docs/openapi.json from a freshly started server (`npm run openapi`): the document is generated
// from the route schemas, so it is taken from a running `sluice serve` rather than written by hand.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] ?? join(root, 'docs', 'openapi.json');
const dataDir = await mkdtemp(join(tmpdir(), 'sluice-openapi-'));
const server = spawn(process.execPath, [join(root, 'bin', 'sluice.js'), 'serve', '--data', dataDir, '--port', '0', '--log-level', 'warn'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});

try {
  const url = await new Promise((resolveUrl, reject) => {
    let seen = '';
    server.stdout.on('data', (d) => {
      seen += d;
      const m = /at (http:\/\/\S+) /.exec(seen);
      if (m) resolveUrl(m[1]);
    });
    server.once('exit', (code) => reject(new Error(`sluice serve exited with ${code} before listening`)));
  });
  const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  const res = await fetch(`${url}/api/v1/openapi.json`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET /api/v1/openapi.json answered ${res.status}: ${await res.text()}`);
  const doc = await res.json();
  // Formatted as the repository's prettier config wants it, so `npm run lint` stays clean after a regeneration.
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(out)) ?? {};
  await writeFile(out, await prettier.format(JSON.stringify(doc), { ...options, filepath: out }));
  console.log(`wrote ${out}: ${Object.keys(doc.paths ?? {}).length} paths, OpenAPI ${doc.openapi}`);
} finally {
  if (server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  await rm(dataDir, { recursive: true, force: true });
}
