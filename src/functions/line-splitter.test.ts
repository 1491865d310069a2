import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter } from './line-splitter.js';

function collect(max: number) {
  const lines: string[] = [];
  const overflows: { head: string; bytes: number }[] = [];
  const s = new LineSplitter(max, { line: (t) => lines.push(t), overflow: (head, bytes) => overflows.push({ head, bytes }) });
  return { s, lines, overflows };
}

test('splits lines across chunk boundaries', () => {
  const { s, lines } = collect(100);
  s.push(Buffer.from('{"a":1}\n{"b"'));
  s.push(Buffer.from(':2}\n\n{"c":3}'));
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '']);
  s.end();
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '', '{"c":3}']);
});

test('multi-byte characters split between chunks survive', () => {
  const { s, lines } = collect(100);
  const bytes = Buffer.from('grüße\n');
  s.push(bytes.subarray(0, 3));
  s.push(bytes.subarray(3));
  assert.deepEqual(lines, ['grüße']);
});

test('an over-long line is reported once with its head, skipped, and the next line is intact', () => {
  const { s, lines, overflows } = collect(10);
  s.push(Buffer.from('{"type":"result",'));
  s.push(Buffer.from('x'.repeat(1000)));
  s.push(Buffer.from('y\nok\n'));
  assert.equal(overflows.length, 1);
  assert.ok(overflows[0]!.head.startsWith('{"type":"result",'));
  assert.deepEqual(lines, ['ok']);
});

test('a line of exactly the cap passes', () => {
  const { s, lines, overflows } = collect(5);
  s.push(Buffer.from('12345\n123456\n'));
  assert.deepEqual(lines, ['12345']);
  assert.equal(overflows.length, 1);
});
