import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activationScopes, newActivationId } from './invoker.js';
import { formatScope, parseScope, type Principal } from '../auth/scopes.js';

const principal = (...scopes: string[]): Principal => ({ subject: 'bob', tokenId: 't', scopes: scopes.map(parseScope) });
const granted = (p: Principal, declared?: string[]) => activationScopes(p, declared).map(formatScope);

test('without declared scopes an activation gets the caller’s storage scopes and nothing else', () => {
  assert.deepEqual(granted(principal('storage.read:/a', 'function.invoke')), ['storage.read:/a']);
  assert.deepEqual(granted(principal('admin')), ['storage.read:/', 'storage.modify:/']);
});

test('declared scopes are granted as far as the caller holds them: whole, narrowed, or not at all', () => {
  const bob = principal('storage.read:/beamtime/raw', 'storage.modify:/beamtime/processed');
  assert.deepEqual(granted(bob, ['storage.read:/beamtime/raw/scan1']), ['storage.read:/beamtime/raw/scan1']);
  assert.deepEqual(granted(bob, ['storage.read:/beamtime']), ['storage.read:/beamtime/raw']);
  assert.deepEqual(granted(bob, ['storage.create:/beamtime']), ['storage.create:/beamtime/processed']);
  assert.deepEqual(granted(bob, ['storage.modify:/other']), []);
  assert.deepEqual(granted(bob, ['storage.read:/beamtime/raw', 'admin']), ['storage.read:/beamtime/raw']);
});

test('activation ids sort by time and are unique', () => {
  const a = newActivationId(1_000);
  const b = newActivationId(2_000);
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.ok(a < b);
  assert.notEqual(newActivationId(5), newActivationId(5));
});
