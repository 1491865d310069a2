import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScope, formatScope, mayStorage, covers, type Principal } from './scopes.js';

const principal = (...scopes: string[]): Principal => ({ subject: 'u', tokenId: 't', scopes: scopes.map(parseScope) });

test('parseScope reads WLCG storage scopes and plain scopes', () => {
  assert.deepEqual(parseScope('storage.read:/beam'), { kind: 'storage.read', path: '/beam' });
  assert.deepEqual(parseScope('storage.read'), { kind: 'storage.read', path: '/' });
  assert.deepEqual(parseScope('storage.modify:/a/'), { kind: 'storage.modify', path: '/a' });
  assert.deepEqual(parseScope('admin'), { kind: 'admin' });
  assert.equal(formatScope(parseScope('storage.create:/x')), 'storage.create:/x');
  assert.throws(() => parseScope('storage.write:/x'), /unknown scope/);
  assert.throws(() => parseScope('storage.read:/a/../b'), /not allowed/);
});

test('storage scopes grant by path prefix on whole segments', () => {
  const p = principal('storage.read:/beam', 'storage.create:/beam/raw');
  assert.ok(mayStorage(p, 'read', '/beam/raw/x'));
  assert.ok(!mayStorage(p, 'read', '/beamtime'));
  assert.ok(mayStorage(p, 'create', '/beam/raw/new'));
  assert.ok(!mayStorage(p, 'modify', '/beam/raw/new'));
  assert.ok(!mayStorage(p, 'create', '/beam/other'));
});

test('modify implies create; admin implies everything', () => {
  assert.ok(mayStorage(principal('storage.modify:/a'), 'create', '/a/b'));
  assert.ok(!mayStorage(principal('storage.modify:/a'), 'read', '/a/b'));
  assert.ok(mayStorage(principal('admin'), 'modify', '/anything'));
});

test('delegation never widens rights', () => {
  const held = [parseScope('storage.modify:/a'), parseScope('function.invoke')];
  assert.ok(covers(held, parseScope('storage.create:/a/b')));
  assert.ok(covers(held, parseScope('storage.modify:/a/b')));
  assert.ok(!covers(held, parseScope('storage.read:/a')));
  assert.ok(!covers(held, parseScope('storage.modify:/')));
  assert.ok(covers(held, parseScope('function.invoke')));
  assert.ok(!covers(held, parseScope('admin')));
  assert.ok(covers([parseScope('admin')], parseScope('admin')));
});
