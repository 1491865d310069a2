import { test } from 'node:test';
import assert from 'node:assert/strict';
import { instancesToStart, instancesToStop } from './autoscaler.js';

const base = { queued: 0, inFlight: 0, ready: 0, starting: 0, concurrency: 1, min: 0, max: 4 };

test('from zero, one queued call starts one instance', () => {
  assert.equal(instancesToStart({ ...base, queued: 1 }), 1);
});

test('a burst grows the pool to max and not beyond', () => {
  assert.equal(instancesToStart({ ...base, queued: 100 }), 4);
  assert.equal(instancesToStart({ ...base, queued: 96, inFlight: 4, ready: 4 }), 0);
  assert.equal(instancesToStart({ ...base, queued: 50, ready: 1, starting: 2 }), 1);
});

test('concurrency per instance divides the need', () => {
  assert.equal(instancesToStart({ ...base, concurrency: 10, queued: 25 }), 3);
  assert.equal(instancesToStart({ ...base, concurrency: 10, queued: 5, inFlight: 4, ready: 1 }), 0);
});

test('instances starting count towards the need, so a burst does not over-spawn', () => {
  assert.equal(instancesToStart({ ...base, queued: 2, starting: 2 }), 0);
});

test('min keeps instances warm with no load', () => {
  assert.equal(instancesToStart({ ...base, min: 2 }), 2);
  assert.equal(instancesToStart({ ...base, min: 2, ready: 2 }), 0);
});

test('idle instances past the timeout stop, longest idle first, never below min', () => {
  const idle = [
    { id: 'a', idleMs: 5_000 },
    { id: 'b', idleMs: 61_000 },
    { id: 'c', idleMs: 90_000 },
  ];
  assert.deepEqual(instancesToStop(idle, 3, 0, 60_000), ['c', 'b']);
  assert.deepEqual(instancesToStop(idle, 3, 2, 60_000), ['c']);
  assert.deepEqual(instancesToStop(idle, 3, 3, 60_000), []);
  assert.deepEqual(instancesToStop(idle, 5, 0, 100_000), []);
});
