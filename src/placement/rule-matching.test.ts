import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseSes, replicaStanding, ruleCovers } from './rule-matching.js';
import type { Rule } from './types.js';
import type { Entry, Replica } from '../storage/types.js';

const entry = (path: string, extra: Partial<Entry> = {}): Entry => ({
  fileId: 'F1',
  path: path as Entry['path'],
  name: path.split('/').pop()!,
  type: 'REGULAR',
  size: 10,
  mode: 0o644,
  owner: 'u',
  ctime: 0,
  mtime: 0,
  checksums: {},
  contentType: undefined,
  labels: [],
  xattrs: {},
  etag: 'e',
  ...extra,
});

const rule = (extra: Partial<Rule> = {}): Rule => ({
  id: 'r',
  owner: 'u',
  path: '/data',
  glob: undefined,
  labels: [],
  xattrs: {},
  copies: 1,
  expression: '*',
  source: undefined,
  grouping: 'DATASET',
  expires: undefined,
  priority: 3,
  activity: 'a',
  comment: undefined,
  fileId: undefined,
  qos: undefined,
  completed: undefined,
  state: 'OK',
  reason: undefined,
  locks: { ok: 0, replicating: 0, stuck: 0 },
  created: 0,
  updated: 0,
  ...extra,
});

const replica = (se: string, state: Replica['state'], online = true): Replica => ({ se, location: 'x', state, created: 0, online });

test('ruleCovers: scope, glob relative to the scope, labels, xattrs, QoS rules by file id', () => {
  assert.equal(ruleCovers(rule(), entry('/data/a.h5')), true);
  assert.equal(ruleCovers(rule(), entry('/data/sub/a.h5')), true);
  assert.equal(ruleCovers(rule(), entry('/database/a.h5')), false, 'a sibling with the same prefix is outside');
  assert.equal(ruleCovers(rule({ path: '/' }), entry('/x')), true);
  assert.equal(ruleCovers(rule({ glob: '**/*.nxs' }), entry('/data/raw/s.nxs')), true);
  assert.equal(ruleCovers(rule({ glob: '*.nxs' }), entry('/data/raw/s.nxs')), false);
  assert.equal(ruleCovers(rule({ labels: ['keep'] }), entry('/data/a', { labels: ['keep', 'x'] })), true);
  assert.equal(ruleCovers(rule({ labels: ['keep'] }), entry('/data/a')), false);
  assert.equal(ruleCovers(rule({ xattrs: { beamline: 'p05' } }), entry('/data/a', { xattrs: { beamline: 'p05' } })), true);
  assert.equal(ruleCovers(rule({ xattrs: { beamline: 'p05' } }), entry('/data/a', { xattrs: { beamline: 'p06' } })), false);
  assert.equal(ruleCovers(rule({ fileId: 'F1', path: '/elsewhere' }), entry('/moved/a')), true, 'a QoS rule follows its file');
  assert.equal(ruleCovers(rule({ fileId: 'F2' }), entry('/data/a')), false);
  assert.equal(ruleCovers(rule(), entry('/data', { type: 'DIR' })), false);
});

test('replicaStanding: tape copies count once flushed; BAD and absent are missing', () => {
  assert.equal(replicaStanding(replica('d', 'AVAILABLE'), 'local'), 'good');
  assert.equal(replicaStanding(replica('d', 'COPYING'), 'local'), 'pending');
  assert.equal(replicaStanding(replica('d', 'BAD'), 'local'), 'missing');
  assert.equal(replicaStanding(undefined, 'local'), 'missing');
  assert.equal(replicaStanding(replica('t', 'AVAILABLE'), 'tape'), 'pending', 'in the tape buffer, not yet on tape');
  assert.equal(replicaStanding(replica('t', 'NEARLINE', false), 'tape'), 'good');
});

test('chooseSes: keeps locks, prefers holders, then the group, then free space or a stable spread', () => {
  const base = {
    copies: 2,
    candidates: ['a', 'b', 'c', 'd'],
    locked: [],
    holding: new Set<string>(),
    groupSes: [],
    free: new Map<string, number>(),
    spreadKey: undefined,
  };
  assert.deepEqual(
    chooseSes({
      ...base,
      free: new Map([
        ['a', 1],
        ['b', 5],
        ['c', 9],
        ['d', 2],
      ]),
    }),
    ['c', 'b'],
  );
  assert.deepEqual(chooseSes({ ...base, locked: ['d'] }), ['d', 'a']);
  assert.deepEqual(chooseSes({ ...base, locked: ['x'] }), ['a', 'b'], 'a locked SE no longer selected is dropped');
  assert.deepEqual(chooseSes({ ...base, holding: new Set(['c']) }), ['c', 'a']);
  assert.deepEqual(chooseSes({ ...base, groupSes: ['d', 'b'] }), ['d', 'b']);
  assert.deepEqual(chooseSes({ ...base, copies: 5 }), ['a', 'b', 'c', 'd'], 'fewer than asked when there are not enough');
  // Spread: stable per file, and different files land on different SEs.
  const spread = (key: string) => chooseSes({ ...base, copies: 1, spreadKey: key })[0];
  assert.equal(spread('f1'), spread('f1'));
  const used = new Set(Array.from({ length: 40 }, (_, i) => spread(`file-${i}`)));
  assert.equal(used.size, 4);
});
