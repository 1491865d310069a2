// Crash safety: a `sluice serve` child is killed with SIGKILL in the middle of many concurrent PUTs.
// After restart every acknowledged PUT is readable with the right bytes and has its IN_CLOSE_WRITE in
// the durable log; nothing partial is visible; unacknowledged uploads are either absent or whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startChildServer, startServer, tempDir } from './support/server.js';
import { normalizePath } from '../src/storage/paths.js';
import { adler32, adler32Hex } from '../src/storage/checksums.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('SIGKILL during concurrent PUTs loses no acknowledged write and no event', { timeout: 120_000 }, async () => {
  const dataDir = await tempDir('sluice-crash-');
  const child = await startChildServer({ dataDir });
  const auth = { authorization: `Bearer ${child.token}` };
  assert.equal((await fetch(`${child.url}/crash`, { method: 'MKCOL', headers: auth })).status, 201);

  const bodies = new Map<string, Buffer>();
  for (let i = 0; i < 400; i++) bodies.set(`/crash/f${String(i).padStart(3, '0')}`, randomBytes(1024 + ((i * 7919) % (768 * 1024))));

  const acked = new Set<string>();
  let killed = false;
  const queue = [...bodies.keys()];
  const worker = async () => {
    for (let path = queue.shift(); path !== undefined && !killed; path = queue.shift()) {
      try {
        const res = await fetch(child.url + path, { method: 'PUT', headers: auth, body: bodies.get(path)! });
        if (res.status === 201) acked.add(path);
        else assert.fail(`PUT ${path} answered ${res.status}`);
      } catch {
        // Connection reset by the kill: not acknowledged.
      }
    }
  };
  const workers = Array.from({ length: 12 }, worker);
  // Kill once a good share is acknowledged, while many uploads are still in flight.
  while (acked.size < 60) await new Promise((r) => setTimeout(r, 5));
  child.proc!.kill('SIGKILL');
  killed = true;
  await Promise.all(workers);
  assert.ok(acked.size >= 60 && acked.size < bodies.size, `acknowledged ${acked.size} of ${bodies.size}`);

  const server = await startServer({ dataDir });
  try {
    const core = server.core!;
    const admin = core.tokens.authenticate(server.token);
    const closeWrites = new Set<string>();
    for (let after = 0; ;) {
      const batch = await core.eventLog.read(after, 1000);
      if (batch.length === 0) break;
      for (const e of batch) if (e.type === 'IN_CLOSE_WRITE') closeWrites.add(e.path);
      after = batch.at(-1)!.id;
    }
    const entries = await core.namespace.descendants(admin, normalizePath('/crash'));
    const present = new Set(entries.map((e) => e.path as string));

    for (const path of acked) {
      assert.ok(present.has(path), `acknowledged ${path} is missing after restart`);
      assert.ok(closeWrites.has(path), `acknowledged ${path} has no IN_CLOSE_WRITE`);
      const res = await fetch(server.url + path, { headers: { authorization: `Bearer ${server.token}` } });
      assert.equal(res.status, 200);
      assert.equal(sha(new Uint8Array(await res.arrayBuffer())), sha(bodies.get(path)!), `${path} content`);
    }
    for (const e of entries) {
      // Every visible file is whole: exactly one of the bodies we sent, with its events.
      const sent = bodies.get(e.path);
      assert.ok(sent, `unexpected entry ${e.path}`);
      assert.equal(e.size, sent.length, `${e.path} is torn`);
      assert.equal(e.checksums.adler32, adler32Hex(adler32(sent)));
      assert.ok(closeWrites.has(e.path), `${e.path} is visible without its IN_CLOSE_WRITE`);
    }
    // Recovery swept partial uploads and bytes whose commit never happened.
    const se = join(dataDir, 'se', 'local');
    assert.deepEqual(await readdir(join(se, 'tmp')), []);
    let dataFiles = 0;
    for (const a of await readdir(join(se, 'data')))
      for (const b of await readdir(join(se, 'data', a))) dataFiles += (await readdir(join(se, 'data', a, b))).length;
    assert.equal(dataFiles, entries.filter((e) => e.type === 'REGULAR').length);
    console.log(`# crash: ${acked.size} acknowledged, ${entries.length} visible after restart, all intact`);
  } finally {
    await server.stop();
  }
});
