import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMetronomeSelector, tickMessage } from './metronome.js';

test('metronome selectors are validated with dCache messages', () => {
  assert.throws(() => parseMetronomeSelector({}), /either "frequency" or "delay" must be specified/);
  assert.throws(() => parseMetronomeSelector({ delay: 1, frequency: 1 }), /"frequency" and "delay" cannot both be specified/);
  assert.throws(() => parseMetronomeSelector({ delay: 301 }), /Bad selector: "delay" is too big \(more than 300\)/);
  assert.throws(() => parseMetronomeSelector({ frequency: 0.001 }), /"frequency" is too small/);
  assert.throws(() => parseMetronomeSelector({ delay: 1, message: '' }), /"message" cannot be empty/);
  assert.throws(() => parseMetronomeSelector({ delay: 1, count: -1 }), /"count" must be non-negative/);
  const s = parseMetronomeSelector({ frequency: 4, count: 0 });
  assert.deepEqual([s.periodMs, s.message, s.count, s.echo], [250, 'tick', 0, { frequency: 4 }]);
});

test('messages substitute ${username} and the 1-based ${count}', () => {
  assert.equal(tickMessage('${username}: ${count}/${count}', 'alice', 3), 'alice: 3/3');
});
