import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, pathFromUrl, userPath, parentOf, nameOf, isWithin, relativeTo, encodePath } from './paths.js';

test('normalizePath gives one canonical form', () => {
  assert.equal(normalizePath('/'), '/');
  assert.equal(normalizePath('/a/b/'), '/a/b');
  assert.equal(normalizePath('//a///b'), '/a/b');
});

test('normalizePath refuses traversal, NUL, control characters and relative paths', () => {
  for (const bad of ['/a/../b', '/..', '/a/./b', '/a\u0000b', '/a\nb', 'a/b', '', '/a\\b']) {
    assert.throws(
      () => normalizePath(bad),
      (e: { code?: string }) => e.code === 'BAD_PATH',
      JSON.stringify(bad),
    );
  }
});

test('pathFromUrl decodes once and still refuses encoded traversal', () => {
  assert.equal(pathFromUrl('/scan%20one/f%C3%BC.h5'), '/scan one/fü.h5');
  assert.throws(() => pathFromUrl('/a/%2e%2e/b'), /not allowed/);
  assert.throws(() => pathFromUrl('/a/%00'), /control/);
  assert.throws(() => pathFromUrl('/a/%zz'), /percent/);
  // Double encoding is not decoded twice: %252e%252e is the literal name "%2e%2e".
  assert.equal(pathFromUrl('/%252e%252e'), '/%2e%2e');
});

test('userPath refuses the reserved /api prefix but allows look-alikes', () => {
  assert.throws(
    () => userPath('/api'),
    (e: { code?: string }) => e.code === 'RESERVED_PATH',
  );
  assert.throws(
    () => userPath('/api/v1/x'),
    (e: { code?: string }) => e.code === 'RESERVED_PATH',
  );
  assert.equal(userPath('/apiary'), '/apiary');
});

test('path helpers', () => {
  assert.equal(parentOf(normalizePath('/a/b')), '/a');
  assert.equal(parentOf(normalizePath('/a')), '/');
  assert.equal(nameOf(normalizePath('/a/b')), 'b');
  assert.ok(isWithin('/a/b', '/a'));
  assert.ok(isWithin('/a', '/a'));
  assert.ok(!isWithin('/ab', '/a'));
  assert.ok(isWithin('/anything', '/'));
  assert.equal(relativeTo('/a/b/c', '/a'), 'b/c');
  assert.equal(encodePath('/a b/c#d'), '/a%20b/c%23d');
});
