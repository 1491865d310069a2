// The contract every NamespaceStore adapter must keep (SQLite now, PostgreSQL for scale-out):
// each change and its storage events commit together, and failures leave nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NamespaceStore } from '../../src/storage/namespace-store.js';
import type { EventLog } from '../../src/events/event-log.js';
import { normalizePath as P } from '../../src/storage/paths.js';

export interface StoreUnderTest {
  store: NamespaceStore;
  log: EventLog;
  close(): Promise<void>;
}

const file = (path: string, location: string, extra: Record<string, unknown> = {}) => ({
  path: P(path),
  owner: 'alice',
  mode: 0o644,
  size: 3,
  checksums: { adler32: '024d0127' },
  contentType: undefined,
  replica: { se: 'local', location },
  ...extra,
});

async function eventsAfter(log: EventLog, after: number) {
  return (await log.read(after, 1000)).map((e) => `${e.type} ${e.path}${e.isDir ? ' dir' : ''}`);
}

export function namespaceStoreContract(name: string, open: () => Promise<StoreUnderTest>): void {
  const withStore = (title: string, fn: (s: StoreUnderTest) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const s = await open();
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    });

  withStore('the root exists and is a directory', async ({ store }) => {
    const root = await store.get(P('/'));
    assert.equal(root?.type, 'DIR');
  });

  withStore('a new file commits with IN_CREATE, IN_OPEN, IN_MODIFY, IN_CLOSE_WRITE, IN_ATTRIB', async ({ store, log }) => {
    await store.mkdir(P('/beam'), 'alice', 0o755);
    const head = await log.head();
    const r = await store.commitFile(file('/beam/f', 'l1'));
    assert.equal(r.created, true);
    assert.deepEqual(r.released, []);
    assert.deepEqual(await eventsAfter(log, head), [
      'IN_CREATE /beam/f',
      'IN_OPEN /beam/f',
      'IN_MODIFY /beam/f',
      'IN_CLOSE_WRITE /beam/f',
      'IN_ATTRIB /beam/f',
    ]);
    const replicas = await store.replicas(P('/beam/f'));
    assert.deepEqual(
      replicas.map((x) => [x.se, x.location, x.state]),
      [['local', 'l1', 'AVAILABLE']],
    );
  });

  withStore('an overwrite keeps the file id, changes the etag and releases the old replica', async ({ store, log }) => {
    const first = await store.commitFile(file('/f', 'l1'));
    const head = await log.head();
    const second = await store.commitFile(file('/f', 'l2', { size: 5 }));
    assert.equal(second.created, false);
    assert.equal(second.entry.fileId, first.entry.fileId);
    assert.notEqual(second.entry.etag, first.entry.etag);
    assert.equal(second.entry.size, 5);
    assert.deepEqual(
      second.released.map((r) => r.location),
      ['l1'],
    );
    assert.deepEqual(await eventsAfter(log, head), ['IN_OPEN /f', 'IN_MODIFY /f', 'IN_CLOSE_WRITE /f', 'IN_ATTRIB /f']);
  });

  withStore('refused changes commit nothing and append no event', async ({ store, log }) => {
    await store.commitFile(file('/f', 'l1'));
    const head = await log.head();
    await assert.rejects(store.commitFile(file('/missing/f', 'l2')), { code: 'CONFLICT' });
    await assert.rejects(store.commitFile(file('/f', 'l3', { mustNotExist: true })), { code: 'EXISTS' });
    await assert.rejects(store.commitFile(file('/f', 'l4', { ifMatch: ['nope'] })), { code: 'PRECONDITION_FAILED' });
    await assert.rejects(
      store.commitFile(
        file('/f', 'l5', {
          beforeOverwrite: () => {
            throw Object.assign(new Error('vetoed'), { code: 'FORBIDDEN' });
          },
        }),
      ),
      { code: 'FORBIDDEN' },
    );
    await assert.rejects(store.mkdir(P('/f'), 'alice', 0o755), { code: 'EXISTS' });
    await assert.rejects(store.remove(P('/nothing')), { code: 'NOT_FOUND' });
    assert.equal(await log.head(), head);
    assert.deepEqual(
      (await store.replicas(P('/f'))).map((r) => r.location),
      ['l1'],
    );
  });

  withStore('a directory rename moves the subtree and records one cookie for both halves', async ({ store, log }) => {
    await store.mkdir(P('/a'), 'alice', 0o755);
    await store.mkdir(P('/a/sub'), 'alice', 0o755);
    await store.commitFile(file('/a/sub/f', 'l1'));
    const head = await log.head();
    await store.move(P('/a'), P('/b'), { overwrite: false });
    assert.equal(await store.get(P('/a/sub/f')), undefined);
    assert.equal((await store.get(P('/b/sub/f')))?.size, 3);
    assert.deepEqual(
      (await store.children(P('/b/sub'))).map((e) => e.name),
      ['f'],
    );
    const events = await log.read(head, 10);
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.path}`),
      ['IN_MOVED_FROM /a', 'IN_MOVED_TO /b'],
    );
    assert.ok(events[0]!.cookie && events[0]!.cookie === events[1]!.cookie);
    await assert.rejects(store.move(P('/b'), P('/b/sub/x'), { overwrite: false }), { code: 'CONFLICT' });
  });

  withStore('move onto an existing target needs overwrite and releases its replicas', async ({ store }) => {
    await store.commitFile(file('/x', 'l1'));
    await store.commitFile(file('/y', 'l2'));
    await assert.rejects(store.move(P('/x'), P('/y'), { overwrite: false }), { code: 'PRECONDITION_FAILED' });
    const r = await store.move(P('/x'), P('/y'), { overwrite: true });
    assert.equal(r.replacedTarget, true);
    assert.deepEqual(
      r.released.map((x) => x.location),
      ['l2'],
    );
    assert.deepEqual(
      (await store.replicas(P('/y'))).map((x) => x.location),
      ['l1'],
    );
  });

  withStore('removing a tree reports children before parents and releases every replica', async ({ store, log }) => {
    await store.mkdir(P('/t'), 'alice', 0o755);
    await store.mkdir(P('/t/d'), 'alice', 0o755);
    await store.commitFile(file('/t/d/f', 'l1'));
    await store.commitFile(file('/t/g', 'l2'));
    await store.commitFile(file('/tt', 'l3'));
    const head = await log.head();
    const r = await store.remove(P('/t'));
    assert.deepEqual(r.released.map((x) => x.location).sort(), ['l1', 'l2']);
    const evs = await eventsAfter(log, head);
    assert.ok(evs.indexOf('IN_DELETE /t/d/f') < evs.indexOf('IN_DELETE /t/d dir'));
    assert.equal(evs.at(-1), 'IN_DELETE /t dir');
    assert.ok(await store.get(P('/tt')), 'a sibling sharing the prefix survives');
  });

  withStore('attributes, labels and dead properties', async ({ store, log }) => {
    await store.commitFile(file('/f', 'l1'));
    const head = await log.head();
    const e = await store.changeAttributes(P('/f'), {
      addLabels: ['raw', 'scan'],
      setXattrs: { sample: 'lysozyme' },
      setDeadProps: [{ ns: 'urn:x', name: 'p', xml: 'v' }],
    });
    assert.deepEqual(e.labels, ['raw', 'scan']);
    assert.deepEqual(e.xattrs, { sample: 'lysozyme' });
    assert.deepEqual(await store.deadProperties(P('/f')), [{ ns: 'urn:x', name: 'p', xml: 'v' }]);
    const after = await store.changeAttributes(P('/f'), {
      removeLabels: ['raw'],
      removeXattrs: ['sample'],
      removeDeadProps: [{ ns: 'urn:x', name: 'p' }],
    });
    assert.deepEqual(after.labels, ['scan']);
    assert.deepEqual(after.xattrs, {});
    assert.deepEqual(await store.deadProperties(P('/f')), []);
    assert.deepEqual(await eventsAfter(log, head), ['IN_ATTRIB /f', 'IN_ATTRIB /f']);
  });

  withStore('copies commit a whole tree at once', async ({ store }) => {
    await store.mkdir(P('/src'), 'alice', 0o755);
    await store.commitFile(file('/src/f', 'l1'));
    const items = [
      { source: (await store.get(P('/src')))!, target: P('/dst') },
      { source: (await store.get(P('/src/f')))!, target: P('/dst/f'), replica: { se: 'local', location: 'l9' } },
    ];
    await store.commitCopy(items, { overwrite: false, owner: 'bob' });
    assert.equal((await store.get(P('/dst/f')))?.owner, 'bob');
    assert.deepEqual(
      (await store.replicas(P('/dst/f'))).map((r) => r.location),
      ['l9'],
    );
    await assert.rejects(store.commitCopy(items, { overwrite: false, owner: 'bob' }), { code: 'PRECONDITION_FAILED' });
    assert.deepEqual([...(await store.locationsOn('local'))].sort(), ['l1', 'l9']);
  });

  withStore('event ids increase monotonically and wake consumers after commit', async ({ store, log }) => {
    const heads: number[] = [];
    const off = log.onAppend((h) => heads.push(h));
    await store.mkdir(P('/m1'), 'alice', 0o755);
    await store.mkdir(P('/m2'), 'alice', 0o755);
    await assert.rejects(store.mkdir(P('/m2'), 'alice', 0o755));
    off();
    assert.equal(heads.length, 2);
    assert.ok(heads[1]! > heads[0]!);
    const all = await log.read(0, 100);
    for (let i = 1; i < all.length; i++) assert.ok(all[i]!.id > all[i - 1]!.id);
  });
}
