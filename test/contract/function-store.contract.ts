// The contract every FunctionStore adapter must keep (SQLite now, PostgreSQL for scale-out): seq
// numbers per function, `latest` following deploys, aliases, and removals that respect aliases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FunctionStore, NewVersion } from '../../src/functions/function-store.js';
import { validateManifest } from '../../src/functions/manifest.js';
import type { VersionId } from '../../src/functions/types.js';

export interface FunctionStoreUnderTest {
  store: FunctionStore;
  close(): Promise<void>;
}

/** A fake digest: 64 hex digits starting with `prefix`. */
export const digest = (prefix: string): VersionId => prefix.padEnd(64, '0') as VersionId;

const version = (name: string, d: string, extra: Partial<NewVersion> = {}): NewVersion => ({
  name,
  version: digest(d),
  manifest: validateManifest({ name, runtime: 'node', handler: 'main.handler', description: `v ${d}` }),
  size: 42,
  createdBy: 'alice',
  ...extra,
});

export function functionStoreContract(name: string, open: () => Promise<FunctionStoreUnderTest>): void {
  const withStore = (title: string, fn: (store: FunctionStore) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const s = await open();
      try {
        await fn(s.store);
      } finally {
        await s.close();
      }
    });

  withStore('deploys get seq 1, 2, 3 per function and latest follows them', async (store) => {
    const a = await store.recordDeploy(version('echo', 'a1'), []);
    assert.equal(a.created, true);
    assert.equal(a.version.seq, 1);
    assert.deepEqual(a.version.aliases, ['latest']);
    assert.equal(a.version.createdBy, 'alice');
    assert.equal(a.version.size, 42);
    assert.equal(a.version.manifest.limits.timeoutSeconds, 60);
    assert.ok(!Number.isNaN(Date.parse(a.version.created)));
    const other = await store.recordDeploy(version('other', 'c1'), []);
    assert.equal(other.version.seq, 1, 'seq counts per function');
    const b = await store.recordDeploy(version('echo', 'b2'), []);
    assert.equal(b.version.seq, 2);
    assert.deepEqual(b.version.aliases, ['latest']);
    assert.deepEqual((await store.get('echo', digest('a1')))?.aliases, []);
    assert.deepEqual(
      (await store.versions('echo')).map((v) => v.seq),
      [2, 1],
    );
    assert.deepEqual(await store.versions('nothing'), []);
  });

  withStore('recording known content again keeps its seq, moves latest back to it and adds aliases', async (store) => {
    await store.recordDeploy(version('echo', 'a1'), []);
    await store.recordDeploy(version('echo', 'b2'), []);
    const again = await store.recordDeploy(version('echo', 'a1', { createdBy: 'bob' }), ['prod']);
    assert.equal(again.created, false);
    assert.equal(again.version.seq, 1);
    assert.equal(again.version.createdBy, 'alice', 'the first deploy stays the record');
    assert.deepEqual(again.version.aliases, ['latest', 'prod']);
    const next = await store.recordDeploy(version('echo', 'c3'), []);
    assert.equal(next.version.seq, 3);
  });

  withStore('lookups by digest, seq and prefix', async (store) => {
    await store.recordDeploy(version('echo', 'abcdef01'), []);
    await store.recordDeploy(version('echo', 'abcdef02'), []);
    await store.recordDeploy(version('echo', 'fedcba'), []);
    assert.equal((await store.get('echo', digest('fedcba')))?.seq, 3);
    assert.equal(await store.get('other', digest('fedcba')), undefined);
    assert.equal((await store.bySeq('echo', 2))?.version, digest('abcdef02'));
    assert.equal(await store.bySeq('echo', 9), undefined);
    assert.deepEqual(
      (await store.byPrefix('echo', 'abcdef0', 5)).map((v) => v.seq),
      [2, 1],
    );
    assert.equal((await store.byPrefix('echo', 'abcdef0', 1)).length, 1);
    assert.deepEqual(
      (await store.byPrefix('echo', 'abcdef01', 5)).map((v) => v.seq),
      [1],
    );
    assert.deepEqual(await store.byPrefix('echo', '0000000', 5), []);
  });

  withStore('aliases point at versions, move, and are removed; latest is off limits', async (store) => {
    await store.recordDeploy(version('echo', 'a1'), []);
    await store.recordDeploy(version('echo', 'b2'), ['prod']);
    await store.setAlias('echo', 'prod', digest('a1'));
    await store.setAlias('echo', 'beta', digest('b2'));
    assert.deepEqual((await store.get('echo', digest('a1')))?.aliases, ['prod']);
    assert.deepEqual((await store.get('echo', digest('b2')))?.aliases, ['beta', 'latest']);
    await assert.rejects(store.setAlias('echo', 'prod', digest('ff')), { code: 'NOT_FOUND' });
    await assert.rejects(store.setAlias('echo', 'latest', digest('a1')), { code: 'BAD_REQUEST' });
    await assert.rejects(store.removeAlias('echo', 'latest'), { code: 'BAD_REQUEST' });
    await assert.rejects(store.recordDeploy(version('echo', 'c3'), ['latest']), { code: 'BAD_REQUEST' });
    assert.equal(await store.removeAlias('echo', 'beta'), true);
    assert.equal(await store.removeAlias('echo', 'beta'), false);
    assert.deepEqual((await store.summary('echo'))?.aliases, { latest: digest('b2'), prod: digest('a1') });
  });

  withStore('summaries list every function with its latest version, count and aliases', async (store) => {
    await store.recordDeploy(version('zeta', 'a1'), []);
    await store.recordDeploy(version('echo', 'a1'), []);
    await store.recordDeploy(version('echo', 'b2'), ['prod']);
    const list = await store.list();
    assert.deepEqual(
      list.map((s) => [s.name, s.latest.seq, s.versions]),
      [
        ['echo', 2, 2],
        ['zeta', 1, 1],
      ],
    );
    assert.deepEqual(list[0]!.aliases, { latest: digest('b2'), prod: digest('b2') });
    assert.deepEqual(list[0]!.latest.aliases, ['latest', 'prod']);
    assert.equal(list[0]!.latest.manifest.description, 'v b2');
    assert.equal(await store.summary('nothing'), undefined);
    assert.equal((await store.summary('zeta'))?.versions, 1);
  });

  withStore('a version held by an alias other than latest cannot be removed', async (store) => {
    await store.recordDeploy(version('echo', 'a1'), ['prod', 'beta']);
    await store.recordDeploy(version('echo', 'b2'), []);
    await assert.rejects(store.removeVersion('echo', digest('a1')), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CONFLICT');
      assert.match(e.message, /still aliased as beta, prod/);
      return true;
    });
    await assert.rejects(store.removeVersion('echo', digest('ff')), { code: 'NOT_FOUND' });
    assert.equal((await store.versions('echo')).length, 2, 'nothing was removed');
  });

  withStore('removing the latest version moves latest to the newest remaining one; seq is never reused', async (store) => {
    await store.recordDeploy(version('echo', 'a1'), []);
    await store.recordDeploy(version('echo', 'b2'), []);
    await store.recordDeploy(version('echo', 'c3'), []);
    assert.deepEqual(await store.removeVersion('echo', digest('c3')), { functionRemoved: false });
    assert.deepEqual((await store.get('echo', digest('b2')))?.aliases, ['latest']);
    assert.deepEqual(await store.removeVersion('echo', digest('a1')), { functionRemoved: false });
    assert.deepEqual((await store.get('echo', digest('b2')))?.aliases, ['latest']);
    const d = await store.recordDeploy(version('echo', 'd4'), []);
    assert.equal(d.version.seq, 4);
  });

  withStore('removing the only version removes the function', async (store) => {
    await store.recordDeploy(version('echo', 'a1'), []);
    assert.deepEqual(await store.removeVersion('echo', digest('a1')), { functionRemoved: true });
    assert.equal(await store.summary('echo'), undefined);
    assert.deepEqual(await store.list(), []);
    assert.equal((await store.recordDeploy(version('echo', 'b2'), [])).version.seq, 1, 'a new function starts again at 1');
  });

  withStore('removing a function removes its versions and aliases only', async (store) => {
    await store.recordDeploy(version('echo', 'a1'), ['prod']);
    await store.recordDeploy(version('echo', 'b2'), []);
    await store.recordDeploy(version('keep', 'a1'), ['prod']);
    const removed = await store.removeFunction('echo');
    assert.deepEqual(
      removed.map((v) => v.seq),
      [2, 1],
    );
    assert.deepEqual(await store.versions('echo'), []);
    assert.equal(await store.summary('echo'), undefined);
    assert.deepEqual(await store.removeFunction('echo'), []);
    assert.deepEqual((await store.summary('keep'))?.aliases, { latest: digest('a1'), prod: digest('a1') });
    assert.deepEqual(await store.allVersions(), [{ name: 'keep', version: digest('a1') }]);
  });

  withStore('concurrent deploys of one function get distinct seq numbers', async (store) => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.recordDeploy(version('busy', `e${i}`), [])));
    assert.deepEqual(
      results.map((r) => r.version.seq).sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert.equal((await store.summary('busy'))?.versions, 8);
  });
}
