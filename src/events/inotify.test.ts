import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEvent, mergeFlags, parseInotifySelector, type Watch } from './inotify.js';
import type { EventId, RecordedFlag, StorageEvent } from './types.js';

const ev = (type: RecordedFlag, path: string, extra: Partial<StorageEvent> = {}): StorageEvent => ({
  id: 1 as EventId,
  time: 0,
  type,
  path,
  isDir: false,
  ...extra,
});
const dirWatch = (flags: string[] = ['IN_ALL_EVENTS'], more: Partial<Watch> = {}): Watch => ({
  path: '/d',
  isDir: true,
  flags: new Set(parseInotifySelector({ path: '/d', flags }).flags),
  oneShot: false,
  recursive: false,
  ...more,
});
const all = () => true;

test('selectors: defaults, macros, unsupported and unknown flags', () => {
  assert.equal(parseInotifySelector({ path: '/d' }).flags.length, 12);
  assert.deepEqual(parseInotifySelector({ path: '/d', flags: [] }).flags, []);
  assert.deepEqual(parseInotifySelector({ path: '/d', flags: ['IN_MOVE', 'IN_CLOSE'] }).flags, [
    'IN_CLOSE_WRITE',
    'IN_CLOSE_NOWRITE',
    'IN_MOVED_FROM',
    'IN_MOVED_TO',
  ]);
  assert.throws(
    () => parseInotifySelector({ path: '/d', flags: ['IN_EXCL_UNLINK'] }),
    /Bad selector: Unsupported flags: \[IN_EXCL_UNLINK\]/,
  );
  assert.throws(() => parseInotifySelector({ path: '/d', flags: ['IN_FOO'] }), /Bad selector: Bad selector value: "IN_FOO"/);
  assert.throws(() => parseInotifySelector({ path: '/d/' }), /Bad selector/);
  assert.throws(() => parseInotifySelector({ path: '/d', x: 1 }), /Unrecognized field "x"/);
  const s = parseInotifySelector({ path: '/d', flags: ['IN_CREATE', 'IN_ONESHOT', 'IN_MASK_ADD'], recursive: true });
  assert.deepEqual([s.oneShot, s.maskAdd, s.recursive], [true, true, true]);
});

test('IN_MASK_ADD unions flags, otherwise they are replaced', () => {
  assert.deepEqual(mergeFlags(['IN_CREATE'], parseInotifySelector({ path: '/d', flags: ['IN_DELETE', 'IN_MASK_ADD'] })), [
    'IN_CREATE',
    'IN_DELETE',
  ]);
  assert.deepEqual(mergeFlags(['IN_CREATE'], parseInotifySelector({ path: '/d', flags: ['IN_DELETE'] })), ['IN_DELETE']);
});

test('children are reported by name, with IN_ISDIR and cookies; grandchildren only when recursive', () => {
  assert.deepEqual(applyEvent(dirWatch(), ev('IN_CREATE', '/d/x', { isDir: true }), all).payloads, [
    { name: 'x', mask: ['IN_CREATE', 'IN_ISDIR'] },
  ]);
  assert.deepEqual(applyEvent(dirWatch(), ev('IN_MOVED_TO', '/d/y', { cookie: 'c1' }), all).payloads, [
    { name: 'y', cookie: 'c1', mask: ['IN_MOVED_TO'] },
  ]);
  assert.deepEqual(applyEvent(dirWatch(), ev('IN_CREATE', '/d/x/y'), all).payloads, []);
  assert.deepEqual(applyEvent(dirWatch(undefined, { recursive: true }), ev('IN_CREATE', '/d/x/y'), all).payloads, [
    { name: 'x/y', mask: ['IN_CREATE'] },
  ]);
  assert.deepEqual(applyEvent(dirWatch(['IN_DELETE']), ev('IN_CREATE', '/d/x'), all).payloads, []);
  assert.deepEqual(applyEvent(dirWatch(), ev('IN_CREATE', '/dx'), all).payloads, []);
});

test('events on the watched object itself come without name', () => {
  const file: Watch = { ...dirWatch(), path: '/f', isDir: false };
  assert.deepEqual(applyEvent(file, ev('IN_CLOSE_WRITE', '/f'), all).payloads, [{ mask: ['IN_CLOSE_WRITE'] }]);
  assert.deepEqual(applyEvent(dirWatch(), ev('IN_ATTRIB', '/d', { isDir: true }), all).payloads, [{ mask: ['IN_ATTRIB', 'IN_ISDIR'] }]);
});

test('the watch follows moves of its target and of its ancestors', () => {
  const self = applyEvent(dirWatch(), ev('IN_MOVED_FROM', '/d', { isDir: true, data: { to: '/e' } }), all);
  assert.deepEqual(self.payloads, [{ mask: ['IN_MOVE_SELF', 'IN_ISDIR'] }]);
  assert.equal(self.next?.path, '/e');
  const ancestor = applyEvent({ ...dirWatch(), path: '/a/d' }, ev('IN_MOVED_FROM', '/a', { isDir: true, data: { to: '/b' } }), all);
  assert.deepEqual(ancestor.payloads, []);
  assert.equal(ancestor.next?.path, '/b/d');
});

test('deletion ends the watch; IN_DELETE_SELF only when selected', () => {
  const deleted = applyEvent(dirWatch(), ev('IN_DELETE', '/d', { isDir: true }), all);
  assert.deepEqual([deleted.payloads, deleted.next], [[{ mask: ['IN_DELETE_SELF'] }], undefined]);
  const quiet = applyEvent(dirWatch(['IN_CREATE']), ev('IN_DELETE', '/d', { isDir: true }), all);
  assert.deepEqual([quiet.payloads, quiet.next], [[], undefined]);
});

test('IN_ONESHOT ends after the first reported event; unreadable paths are not reported', () => {
  const once = dirWatch(['IN_CREATE'], { oneShot: true });
  assert.equal(applyEvent(once, ev('IN_DELETE', '/d/x'), all).next, once);
  assert.equal(applyEvent(once, ev('IN_CREATE', '/d/x'), all).next, undefined);
  const hidden = applyEvent(once, ev('IN_CREATE', '/d/secret'), (p) => !p.includes('secret'));
  assert.deepEqual([hidden.payloads, hidden.next], [[], once]);
});
