// Crash safety of replication: a `sluice serve` child is SIGKILLed while transfers are copying
// bytes. After the restart no partial replica exists anywhere, every interrupted transfer is
// resumed, each file ends with exactly one verified replica on the target SE, and the rule is OK.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startChildServer, tempDir, authed, json } from './support/server.js';
import { until } from './support/cli.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  }
  return out;
}

test('SIGKILL during replication leaves no partial replica and the rule converges to OK', { timeout: 180_000 }, async () => {
  const dataDir = await tempDir('sluice-pcrash-');
  const seDir = await tempDir('sluice-pcrash-se-');
  await writeFile(
    join(dataDir, 'sluice.json'),
    JSON.stringify({ placement: { retryBaseSeconds: 0.2, repairIntervalSeconds: 0.5, stuckRetrySeconds: 1, maxActivePerLink: 2 } }),
  );
  const first = await startChildServer({ dataDir });
  let api = authed(first);
  const post = async (path: string, body: unknown) =>
    api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  assert.equal(
    (await post('/api/v1/storage-elements', { name: 'disk2', kind: 'local', path: seDir, attributes: { site: 'b' } })).status,
    201,
  );
  assert.equal((await api('/big', { method: 'MKCOL' })).status, 201);
  const bodies = new Map<string, Buffer>();
  for (let i = 0; i < 4; i++) bodies.set(`/big/f${i}.bin`, randomBytes(120 * 1024 * 1024 + i));
  for (let i = 0; i < 20; i++) bodies.set(`/big/small${i}.bin`, randomBytes(4096 + i));
  for (const [path, body] of bodies) assert.equal((await api(path, { method: 'PUT', body })).status, 201);

  const rule = await json(await post('/api/v1/rules', { path: '/big', copies: 1, expression: 'disk2' }));
  // With at most 2 transfers per link, the others wait in the queue: cancel one of them.
  const queued = (await json(await api('/api/v1/transfers?state=QUEUED'))) as { id: string; path: string }[];
  assert.ok(queued.length >= 10, `${queued.length} queued`);
  const victim = queued.find((t) => t.path === '/big/small19.bin') ?? queued.at(-1)!;
  const cancelled = await json(await post(`/api/v1/transfers/${victim.id}/cancel`, {}));
  assert.equal(cancelled.state, 'CANCELLED');
  // Kill while a big copy is under way (bytes flowing, not yet committed); never more than 2 at once.
  let mostActive = 0;
  const active = await until(
    'a transfer copying',
    async () => {
      const list = await json(await api('/api/v1/transfers?state=ACTIVE'));
      mostActive = Math.max(mostActive, list.length);
      return list.find((t: { bytesDone: number; size: number }) => t.bytesDone > 0 && t.bytesDone < t.size);
    },
    60_000,
    2,
  );
  assert.ok(mostActive <= 2, `${mostActive} transfers ran at once on a link limited to 2`);
  first.proc!.kill('SIGKILL');
  await new Promise((r) => first.proc!.once('exit', r));
  assert.ok(active.bytesDone < active.size);

  const second = await startChildServer({ dataDir });
  try {
    api = authed(second);
    await until(
      'rule OK after restart',
      async () => {
        const r = await json(await api(`/api/v1/rules/${rule.id}`));
        return r.state === 'OK' ? r : undefined;
      },
      120_000,
    );
    // The cancelled copy left its lock STUCK; the repairer made it again.
    const again = (await json(await api(`/api/v1/transfers?path=${victim.path}`))) as { id: string; state: string }[];
    assert.deepEqual(again.map((t) => t.state).sort(), ['CANCELLED', 'DONE']);
    // The interrupted transfer was resumed (a second attempt), not lost.
    const resumed = await json(await api(`/api/v1/transfers/${active.id}`));
    assert.equal(resumed.state, 'DONE');
    assert.ok(resumed.attempts >= 2, `attempts ${resumed.attempts}`);

    // Exactly one whole replica per file on disk2, nothing partial or orphaned.
    assert.deepEqual(await readdir(join(seDir, 'tmp')), []);
    const onDisk = await filesBelow(join(seDir, 'data'));
    assert.equal(onDisk.length, bodies.size);
    const expected = new Set([...bodies.values()].map(sha));
    const found = new Set<string>();
    for (const f of onDisk) found.add(sha(await readFile(f)));
    assert.deepEqual(found, expected);
    for (const path of bodies.keys()) {
      const info = await json(await api(`/api/v1/namespace${path}?replicas=true`));
      const states = info.replicas.map((r: { se: string; state: string }) => `${r.se}:${r.state}`).sort();
      assert.deepEqual(states, ['disk2:AVAILABLE', 'local:AVAILABLE'], path);
    }
  } finally {
    await second.stop();
  }
});
