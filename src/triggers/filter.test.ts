import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Value } from '@sinclair/typebox/value';
import { compileFilter } from './filter.js';
import { TriggerFilter } from './types.js';
import type { EventId, StorageEvent } from '../events/types.js';

const filter = (f: Partial<TriggerFilter>) => compileFilter(Value.Default(TriggerFilter, structuredClone(f)) as TriggerFilter);
const ev = (path: string, type: StorageEvent['type'] = 'IN_CLOSE_WRITE', size = 10, isDir = false): StorageEvent => ({
  id: 1 as EventId,
  time: 0,
  type,
  path,
  isDir,
  data: { size },
});

test('defaults: files closed after writing or moved in, anywhere below the path', () => {
  const f = filter({ path: '/beamtime' });
  assert.ok(f.matches(ev('/beamtime/a.nxs')));
  assert.ok(f.matches(ev('/beamtime/raw/deep/a.nxs', 'IN_MOVED_TO')));
  assert.ok(!f.matches(ev('/beamtime/a.nxs', 'IN_CREATE')));
  assert.ok(!f.matches(ev('/beamtimes/a.nxs')), 'a sibling with the same prefix is not below');
  assert.ok(!f.matches(ev('/beamtime', 'IN_CLOSE_WRITE')), 'the directory itself is not below itself');
  assert.ok(!f.matches(ev('/beamtime/sub', 'IN_MOVED_TO', 0, true)), 'directories only when asked');
});

test('non-recursive, glob, size range', () => {
  assert.ok(!filter({ path: '/b', recursive: false }).matches(ev('/b/raw/a.nxs')));
  assert.ok(filter({ path: '/b', recursive: false }).matches(ev('/b/a.nxs')));
  const g = filter({ path: '/b', glob: '**/*.nxs' });
  assert.ok(g.matches(ev('/b/x/y/scan_1.nxs')));
  assert.ok(g.matches(ev('/b/scan_1.nxs')));
  assert.ok(!g.matches(ev('/b/x/scan_1.nxs.preview.png')));
  const raw = filter({ path: '/', glob: 'beamtime/*/raw/*.h5' });
  assert.ok(raw.matches(ev('/beamtime/11012345/raw/f.h5')));
  assert.ok(!raw.matches(ev('/beamtime/11012345/processed/f.h5')));
  const s = filter({ path: '/', minSize: 5, maxSize: 20 });
  assert.ok(s.matches(ev('/a', 'IN_CLOSE_WRITE', 5)));
  assert.ok(!s.matches(ev('/a', 'IN_CLOSE_WRITE', 21)));
  assert.ok(!s.matches(ev('/a', 'IN_CLOSE_WRITE', 4)));
});

test('labels and xattrs are checked only when named', () => {
  const plain = filter({});
  assert.equal(plain.needsAttributes, false);
  const f = filter({ labels: ['calibrated'], xattrs: { beamline: 'p11' } });
  assert.equal(f.needsAttributes, true);
  assert.ok(f.attributesMatch({ labels: ['calibrated', 'x'], xattrs: { beamline: 'p11' } }));
  assert.ok(!f.attributesMatch({ labels: [], xattrs: { beamline: 'p11' } }));
  assert.ok(!f.attributesMatch({ labels: ['calibrated'], xattrs: { beamline: 'p10' } }));
});

test('contradictory size range is refused', () => {
  assert.throws(() => filter({ minSize: 10, maxSize: 5 }), /minSize/);
});
