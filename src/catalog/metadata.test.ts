// Merge patches for annotations and the flattening that backs metadata field search.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flattenMetadata, fullText, mergePatch } from './metadata.js';

test('mergePatch follows RFC 7396: objects merge, null removes, the rest replaces', () => {
  assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: null, e: 4 }, f: [1] }), { a: 1, b: { d: 3, e: 4 }, f: [1] });
  assert.deepEqual(mergePatch(undefined, { a: { b: 1 } }), { a: { b: 1 } });
  assert.deepEqual(mergePatch({ a: [1, 2] }, { a: [3] }), { a: [3] }, 'arrays are replaced, not merged');
  assert.deepEqual(mergePatch({ a: 1 }, { a: { b: 2 } }), { a: { b: 2 } });
});

test('flattenMetadata: dotted paths from the key, arrays flattened into their parent, scalars typed', () => {
  const values = flattenMetadata({
    nexus: { entry: { title: 'scan 7', energy: 12.5, samples: [{ name: 'Si' }, { name: 'Ge' }], ok: true, note: null } },
    user: { tags: ['a', 'b'] },
  });
  assert.deepEqual(values, [
    { path: 'nexus.entry.title', leaf: 'title', kind: 'text', text: 'scan 7' },
    { path: 'nexus.entry.energy', leaf: 'energy', kind: 'number', num: 12.5, text: '12.5' },
    { path: 'nexus.entry.samples.name', leaf: 'name', kind: 'text', text: 'Si' },
    { path: 'nexus.entry.samples.name', leaf: 'name', kind: 'text', text: 'Ge' },
    { path: 'nexus.entry.ok', leaf: 'ok', kind: 'boolean', text: 'true' },
    { path: 'nexus.entry.note', leaf: 'note', kind: 'null', text: 'null' },
    { path: 'user.tags', leaf: 'tags', kind: 'text', text: 'a' },
    { path: 'user.tags', leaf: 'tags', kind: 'text', text: 'b' },
  ]);
  assert.equal(fullText(values), 'scan 7\n12.5\nSi\nGe\na\nb');
});
