import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WalSync } from './wal-sync.js';

test('concurrent callers share fsyncs, and each waits for one that started after its call', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'walsync-')), 'x-wal');
  writeFileSync(file, 'x');
  const wal = new WalSync(file);
  await wal.init();
  const fh = (wal as unknown as { fh: { datasync: () => Promise<void> } }).fh;
  const original = fh.datasync.bind(fh);
  const started: number[] = [];
  fh.datasync = async () => {
    started.push(performance.now());
    await new Promise((r) => setTimeout(r, 20));
    return original();
  };
  const calls: number[] = [];
  const waits = Array.from({ length: 50 }, (_, i) => {
    calls[i] = performance.now();
    return wal.durable().then(() => performance.now());
  });
  // A second wave while the first fsync runs must get a fresh one.
  await new Promise((r) => setTimeout(r, 5));
  const lateCall = performance.now();
  const late = wal.durable();
  await Promise.all([...waits, late]);
  assert.equal(started.length, 2, `expected 2 shared fsyncs, got ${started.length}`);
  assert.ok(started[1]! >= lateCall, 'the late caller waited for an fsync that began after its call');
  await wal.close();
});
