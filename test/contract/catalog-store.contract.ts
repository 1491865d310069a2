// The contract every CatalogStore adapter must keep (SQLite now, PostgreSQL for scale-out): records
// per path that follow renames and survive removal, metadata merges, derivations by id, the search
// language's semantics and the readable-prefix filter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CatalogStore, NewFile, PathFilter, PlaceholderFor } from '../../src/catalog/catalog-store.js';
import { parseQuery } from '../../src/catalog/query.js';
import { SluiceError } from '../../src/errors.js';

export interface CatalogStoreUnderTest {
  store: CatalogStore;
  close(): Promise<void>;
}

const T0 = Date.parse('2024-03-01T12:00:00Z');
const DAY = 86_400_000;
const ALL: PathFilter = { kind: 'all' };
const PAGE = { limit: 100, offset: 0 };

const file = (path: string, extra: Partial<NewFile> = {}): NewFile => ({
  path,
  type: 'raw',
  owner: 'alice',
  size: 100,
  checksums: [{ type: 'adler32', value: '0000aaaa' }],
  created: T0,
  ...extra,
});

/** Placeholders as the service makes them without a namespace to ask: stubs. */
const stubs: PlaceholderFor = (path) => ({ path, type: 'raw', owner: '', size: 0, checksums: [], gone: false });

const annotation = (path: string, key: string, metadata: Record<string, unknown>, replace = false) => ({
  path,
  key,
  metadata,
  replace,
  source: {},
  maxBytes: 1024 * 1024,
});

const derivation = (path: string, inputs: string[], activation = 'act-1') => ({
  path,
  inputs: inputs.map((p) => ({ path: p })),
  function: 'reduce',
  version: 'f'.repeat(64),
  activation,
  parameters: { threshold: 3 },
});

export function catalogStoreContract(name: string, open: () => Promise<CatalogStoreUnderTest>): void {
  const withStore = (title: string, fn: (store: CatalogStore) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const s = await open();
      try {
        await fn(s.store);
      } finally {
        await s.close();
      }
    });

  const paths = async (store: CatalogStore, q: string, filter: PathFilter = ALL, page = PAGE) =>
    (await store.search(parseQuery(q), filter, page)).map((r) => r.path);

  withStore('upsertFile creates one current record per path and updates it in place, keeping metadata', async (store) => {
    const a = await store.upsertFile(file('/a/x.nxs'), T0);
    assert.match(a.id, /^rec_[0-9a-f]{24}$/);
    assert.equal(a.path, '/a/x.nxs');
    assert.equal(a.type, 'raw');
    assert.equal(a.owner, 'alice');
    assert.equal(a.created, '2024-03-01T12:00:00.000Z');
    assert.equal(a.deleted, false);
    assert.deepEqual(a.metadata, {});
    assert.equal(a.provenance, undefined);
    await store.annotate(annotation('/a/x.nxs', 'user', { sample: 'Si' }), undefined, T0 + 1);
    const b = await store.upsertFile(
      file('/a/x.nxs', { size: 200, checksums: [{ type: 'adler32', value: '0000bbbb' }], created: undefined }),
      T0 + 2,
    );
    assert.equal(b.id, a.id, 'same record');
    assert.equal(b.size, 200);
    assert.deepEqual(b.checksums, [{ type: 'adler32', value: '0000bbbb' }]);
    assert.equal(b.created, a.created, 'created stays when not given');
    const later = await store.upsertFile(file('/a/x.nxs', { size: 200, checksums: b.checksums, created: T0 + DAY }), T0 + 3);
    assert.equal(later.created, a.created, 'an overwrite does not move created');
    const earlier = await store.upsertFile(file('/a/x.nxs', { size: 200, checksums: b.checksums, created: T0 - DAY }), T0 + 4);
    assert.equal(earlier.created, new Date(T0 - DAY).toISOString(), 'an earlier time does');
    assert.deepEqual(b.metadata, { user: { sample: 'Si' } });
    assert.equal(b.updated, new Date(T0 + 2).toISOString());
    assert.deepEqual(await store.get(a.id), earlier);
    assert.deepEqual(await store.atPath('/a/x.nxs'), earlier);
    assert.equal(await store.atPath('/a/none'), undefined);
  });

  withStore(
    'annotate merges (RFC 7396) or replaces a key, notes the source, and refuses unknown paths without a placeholder',
    async (store) => {
      await store.upsertFile(file('/a/x'), T0);
      await store.annotate(annotation('/a/x', 'nexus', { entry: { title: 'scan', energy: 12 } }), undefined, T0);
      let r = await store.annotate(
        {
          ...annotation('/a/x', 'nexus', { entry: { energy: null, mode: 'fly' } }),
          source: { producedBy: { function: 'nx', version: 'v', activation: 'a1' } },
        },
        undefined,
        T0 + 5,
      );
      assert.deepEqual(r.metadata, { nexus: { entry: { title: 'scan', mode: 'fly' } } });
      assert.deepEqual(r.metadataSources.nexus, {
        updated: new Date(T0 + 5).toISOString(),
        producedBy: { function: 'nx', version: 'v', activation: 'a1' },
      });
      r = await store.annotate(annotation('/a/x', 'nexus', { only: 1 }, true), undefined, T0);
      assert.deepEqual(r.metadata, { nexus: { only: 1 } });
      r = await store.annotate({ ...annotation('/a/x', 'user', { k: 'v' }), source: { by: 'bob' } }, undefined, T0);
      assert.deepEqual(Object.keys(r.metadata).sort(), ['nexus', 'user']);
      assert.equal(r.metadataSources.user?.by, 'bob');

      await assert.rejects(
        store.annotate(annotation('/a/none', 'user', {}), undefined, T0),
        (e: unknown) => e instanceof SluiceError && e.code === 'NOT_FOUND',
      );
      const made = await store.annotate(annotation('/a/new', 'user', { k: 1 }), stubs, T0);
      assert.equal(made.owner, '');
      assert.deepEqual(made.metadata, { user: { k: 1 } });
      await assert.rejects(
        store.annotate({ ...annotation('/a/x', 'big', { blob: 'x'.repeat(2000) }), maxBytes: 1000 }, undefined, T0),
        (e: unknown) => e instanceof SluiceError && e.code === 'PAYLOAD_TOO_LARGE',
      );
      assert.equal((await store.atPath('/a/x'))?.metadata.big, undefined, 'a refused annotation changes nothing');
    },
  );

  withStore('recordDerivation links the output to its inputs by id, remembers their checksums, and replaces itself', async (store) => {
    const raw = await store.upsertFile(
      file('/a/raw', {
        checksums: [
          { type: 'adler32', value: '11111111' },
          { type: 'sha256', value: 'ab'.repeat(32) },
        ],
      }),
      T0,
    );
    await store.upsertFile(file('/a/out', { type: 'raw' }), T0);
    let out = await store.recordDerivation(
      { ...derivation('/a/out', ['/a/raw', '/a/cal']), inputs: [{ path: '/a/raw' }, { path: '/a/cal', checksum: 'md5:cc' }] },
      stubs,
      T0 + 1,
    );
    assert.equal(out.type, 'derived');
    const cal = await store.atPath('/a/cal');
    assert.ok(cal, 'an unknown input gets a record');
    assert.deepEqual(out.provenance, {
      function: 'reduce',
      version: 'f'.repeat(64),
      activation: 'act-1',
      parameters: { threshold: 3 },
      recorded: new Date(T0 + 1).toISOString(),
      inputs: [
        { id: raw.id, path: '/a/raw', checksum: `sha256:${'ab'.repeat(32)}` },
        { id: cal.id, path: '/a/cal', checksum: 'md5:cc' },
      ],
    });
    out = await store.recordDerivation(derivation('/a/out', ['/a/raw'], 'act-2'), stubs, T0 + 2);
    assert.equal(out.provenance?.activation, 'act-2');
    assert.deepEqual(
      out.provenance?.inputs.map((i) => i.id),
      [raw.id],
      'a new derivation replaces the old one',
    );
    const again = await store.recordDerivation(derivation('/a/out', ['/a/raw'], 'act-2'), stubs, T0 + 2);
    assert.deepEqual(again, out, 'idempotent');
    // A missing output is created, as derived.
    const fresh = await store.recordDerivation(derivation('/a/fresh', ['/a/out']), (p) => ({ ...stubs(p), type: 'derived' }), T0);
    assert.equal(fresh.type, 'derived');
    assert.deepEqual(await store.edges([raw.id], 'down'), [
      {
        from: raw.id,
        to: out.id,
        function: 'reduce',
        version: 'f'.repeat(64),
        activation: 'act-2',
        inputPath: '/a/raw',
        inputChecksum: `sha256:${'ab'.repeat(32)}`,
      },
    ]);
    const up = (await store.edges([fresh.id, out.id], 'up')).map((e) => `${e.from}>${e.to}`).sort();
    assert.deepEqual(up, [`${raw.id}>${out.id}`, `${out.id}>${fresh.id}`].sort());
  });

  withStore('a gone input is recorded deleted, and the last deleted record at that path is reused', async (store) => {
    const gone: PlaceholderFor = (p) => ({ ...stubs(p), gone: p === '/a/gone' });
    await store.recordDerivation(derivation('/a/out', ['/a/gone']), gone, T0);
    const first = await store.atPath('/a/gone');
    assert.equal(first?.deleted, true);
    const other = await store.recordDerivation(derivation('/a/out2', ['/a/gone']), gone, T0);
    assert.equal(other.provenance?.inputs[0]?.id, first.id);
  });

  withStore('upsertFile of changed content as raw drops a derivation that no longer describes it; unchanged keeps it', async (store) => {
    await store.upsertFile(file('/a/raw'), T0);
    await store.upsertFile(file('/a/out'), T0);
    await store.recordDerivation(derivation('/a/out', ['/a/raw']), stubs, T0);
    let out = await store.upsertFile(file('/a/out', { type: 'raw' }), T0 + 1);
    assert.equal(out.type, 'derived', 'same content: still derived');
    assert.ok(out.provenance);
    out = await store.upsertFile(file('/a/out', { type: 'raw', checksums: [{ type: 'adler32', value: '99999999' }] }), T0 + 2);
    assert.equal(out.type, 'raw');
    assert.equal(out.provenance, undefined);
    // A stub (no checksums yet) filled in by upsertFile is not a content change.
    await store.recordDerivation(derivation('/a/late', ['/a/raw']), stubs, T0);
    const late = await store.upsertFile(file('/a/late', { type: 'raw' }), T0);
    assert.equal(late.type, 'derived');
    assert.equal(late.owner, 'alice');
  });

  withStore('moved renames a file or a whole directory; what the rename replaced is marked deleted; ids and edges stay', async (store) => {
    const raw = await store.upsertFile(file('/d/raw'), T0);
    const sub = await store.upsertFile(file('/d/sub/x'), T0);
    const other = await store.upsertFile(file('/d2/other'), T0);
    const replaced = await store.upsertFile(file('/e/raw'), T0);
    await store.recordDerivation(derivation('/d2/other', ['/d/raw']), stubs, T0);
    assert.equal(await store.moved('/d', '/e', T0 + 1), 2);
    assert.equal((await store.get(raw.id))?.path, '/e/raw');
    assert.equal((await store.get(sub.id))?.path, '/e/sub/x');
    assert.equal((await store.get(replaced.id))?.deleted, true);
    assert.equal((await store.atPath('/e/raw'))?.id, raw.id, 'the current record wins over the deleted one');
    assert.equal(await store.atPath('/d/raw'), undefined);
    const edges = await store.edges([other.id], 'up');
    assert.deepEqual(
      edges.map((e) => [e.from, e.inputPath]),
      [[raw.id, '/d/raw']],
      'edges keep the path the input had when it was read',
    );
    assert.deepEqual(await paths(store, 'path~/e/'), ['/e/sub/x', '/e/raw']);
    assert.deepEqual(await paths(store, 'raw'), ['/e/raw'], 'full text follows the new path');
    // A sibling whose name merely starts like the moved directory stays.
    await store.upsertFile(file('/e-not/y'), T0);
    assert.equal(await store.moved('/e', '/f', T0 + 2), 2);
    assert.equal((await store.atPath('/e-not/y'))?.path, '/e-not/y');
  });

  withStore('removed marks a file or a directory deleted and keeps everything else', async (store) => {
    const a = await store.upsertFile(file('/r/a'), T0);
    await store.upsertFile(file('/r/sub/b'), T0);
    await store.upsertFile(file('/rr/c'), T0);
    await store.annotate(annotation('/r/a', 'user', { k: 'v' }), undefined, T0);
    assert.equal(await store.removed('/r', T0 + 1), 2);
    const gone = await store.get(a.id);
    assert.equal(gone?.deleted, true);
    assert.equal(gone?.deletedAt, new Date(T0 + 1).toISOString());
    assert.deepEqual(gone?.metadata, { user: { k: 'v' } });
    assert.equal((await store.atPath('/r/a'))?.id, a.id, 'the deleted record is found by its last path');
    assert.deepEqual(await paths(store, ''), ['/rr/c']);
    assert.deepEqual((await paths(store, 'deleted:true')).sort(), ['/r/a', '/r/sub/b']);
    assert.equal((await paths(store, 'deleted:any')).length, 3);
    // A new file at the same path is a new record; the old one stays.
    const again = await store.upsertFile(file('/r/a'), T0 + 2);
    assert.notEqual(again.id, a.id);
    assert.equal((await store.atPath('/r/a'))?.id, again.id);
    assert.equal(await store.removed('/r', T0 + 3), 1);
    assert.equal((await store.atPath('/r/a'))?.id, again.id, 'the one deleted last');
  });

  withStore('search: record fields, ranges, dates, metadata paths, suffixes, full text, negation, order and pages', async (store) => {
    await store.upsertFile(file('/b/scan_0001.nxs', { size: 1000, created: T0, owner: 'alice' }), T0);
    await store.upsertFile(file('/b/scan_0002.nxs', { size: 5000, created: T0 + DAY, owner: 'bob' }), T0);
    await store.upsertFile(
      file('/b/proc/map.h5', { size: 20, created: T0 + 2 * DAY, owner: 'Ålice', checksums: [{ type: 'md5', value: 'abcdef' }] }),
      T0,
    );
    await store.annotate(
      annotation('/b/scan_0001.nxs', 'nexus', {
        entry: { title: 'Silicon wafer scan', energy: 12.4, start_time: '2024-03-01T10:00:00+01:00', samples: ['Si', 'SiO2'] },
      }),
      undefined,
      T0,
    );
    await store.annotate(
      annotation('/b/scan_0002.nxs', 'nexus', { entry: { title: 'Germanium', energy: 8, start_time: '2024-03-02T10:00:00Z', flag: true } }),
      undefined,
      T0,
    );
    await store.annotate(
      annotation('/b/proc/map.h5', 'user', { title: 'map of scan 1', nested: { entry: { title: 'deep' } } }),
      undefined,
      T0,
    );
    await store.recordDerivation(derivation('/b/proc/map.h5', ['/b/scan_0001.nxs']), stubs, T0);

    const all = ['/b/proc/map.h5', '/b/scan_0002.nxs', '/b/scan_0001.nxs'];
    assert.deepEqual(await paths(store, ''), all, 'newest first');
    assert.deepEqual(await paths(store, 'owner:alice'), ['/b/scan_0001.nxs'], 'exact is exact');
    assert.deepEqual(await paths(store, 'owner~ALICE'), ['/b/scan_0001.nxs'], 'contains is case-insensitive');
    assert.deepEqual(await paths(store, 'owner~åli'), ['/b/proc/map.h5'], 'contains folds case beyond ASCII');
    assert.deepEqual(await paths(store, 'path~/PROC/'), ['/b/proc/map.h5']);
    assert.deepEqual(await paths(store, 'size>1000'), ['/b/scan_0002.nxs']);
    assert.deepEqual(await paths(store, 'size>=1000'), ['/b/scan_0002.nxs', '/b/scan_0001.nxs']);
    assert.deepEqual(await paths(store, 'size<=20'), ['/b/proc/map.h5']);
    assert.deepEqual(await paths(store, 'size:5000'), ['/b/scan_0002.nxs']);
    assert.deepEqual(await paths(store, 'created:2024-03-02'), ['/b/scan_0002.nxs']);
    assert.deepEqual(await paths(store, 'created>2024-03-01'), ['/b/proc/map.h5', '/b/scan_0002.nxs']);
    assert.deepEqual(await paths(store, 'created<=2024-03-02'), ['/b/scan_0002.nxs', '/b/scan_0001.nxs']);
    assert.deepEqual(await paths(store, 'created<2024-03-01T12:00:01Z'), ['/b/scan_0001.nxs']);
    assert.deepEqual(await paths(store, 'created>=2024-03 created<2024-04'), all);
    assert.deepEqual(await paths(store, 'type:derived'), ['/b/proc/map.h5']);
    assert.deepEqual(await paths(store, '-type:derived'), ['/b/scan_0002.nxs', '/b/scan_0001.nxs']);
    assert.deepEqual(await paths(store, 'checksum:md5:abcdef'), ['/b/proc/map.h5']);
    assert.deepEqual(await paths(store, 'checksum:ABCDEF'), ['/b/proc/map.h5'], 'a bare value, case-insensitive hex');
    assert.deepEqual(await paths(store, 'function:reduce'), ['/b/proc/map.h5']);
    assert.deepEqual(await paths(store, 'provenance.inputs.path:/b/scan_0001.nxs'), ['/b/proc/map.h5']);
    assert.deepEqual(await paths(store, 'provenance.activation~act'), ['/b/proc/map.h5']);

    assert.deepEqual(await paths(store, 'metadata.nexus.entry.title~silicon'), ['/b/scan_0001.nxs']);
    assert.deepEqual(await paths(store, 'metadata.nexus.entry.title:Germanium'), ['/b/scan_0002.nxs']);
    assert.deepEqual(await paths(store, 'metadata.nexus.entry.title:germanium'), [], ': is exact');
    assert.deepEqual(await paths(store, 'entry.title~scan'), ['/b/scan_0001.nxs'], 'suffix: nexus.entry.title and user.nested.entry.title');
    assert.deepEqual(await paths(store, 'entry.title~deep'), ['/b/proc/map.h5']);
    assert.deepEqual(await paths(store, 'title~scan'), ['/b/proc/map.h5', '/b/scan_0001.nxs'], 'any key ending in title');
    assert.deepEqual(await paths(store, 'entry.energy>10'), ['/b/scan_0001.nxs']);
    assert.deepEqual(await paths(store, 'entry.energy<=8'), ['/b/scan_0002.nxs']);
    assert.deepEqual(await paths(store, 'entry.energy:12.4'), ['/b/scan_0001.nxs']);
    assert.deepEqual(await paths(store, 'entry.flag:true'), ['/b/scan_0002.nxs']);
    assert.deepEqual(await paths(store, 'entry.samples:SiO2'), ['/b/scan_0001.nxs'], 'any element of an array');
    assert.deepEqual(
      await paths(store, 'start_time<2024-03-01T09:30Z'),
      ['/b/scan_0001.nxs'],
      'dates compare as instants (10:00+01:00 is 09:00Z)',
    );
    assert.deepEqual(await paths(store, 'start_time>=2024-03-02'), ['/b/scan_0002.nxs']);
    assert.deepEqual(await paths(store, 'start_time:2024-03-01'), ['/b/scan_0001.nxs'], 'a date matches the times within it');
    assert.deepEqual(await paths(store, 'nope.title~scan'), []);

    assert.deepEqual(await paths(store, 'wafer'), ['/b/scan_0001.nxs'], 'full text over metadata values');
    assert.deepEqual(await paths(store, 'silicon WAFER'), ['/b/scan_0001.nxs']);
    assert.deepEqual(await paths(store, '"wafer scan"'), ['/b/scan_0001.nxs'], 'a phrase');
    assert.deepEqual(await paths(store, '"scan wafer"'), [], 'a phrase keeps its order');
    assert.deepEqual(await paths(store, 'proc'), ['/b/proc/map.h5'], 'full text over the path');
    assert.deepEqual(await paths(store, 'scan_0002'), ['/b/scan_0002.nxs']);
    assert.deepEqual(await paths(store, 'germ*'), ['/b/scan_0002.nxs'], 'a prefix');
    assert.deepEqual(await paths(store, 'nxs -germanium'), ['/b/scan_0001.nxs']);
    assert.deepEqual(await paths(store, '12.4'), ['/b/scan_0001.nxs'], 'numbers are words too');
    assert.deepEqual(await paths(store, 'OR'), [], 'FTS5 syntax is not interpreted');
    assert.deepEqual(await paths(store, '"a" OR "b" NEAR(x)'), []);

    assert.deepEqual(await paths(store, '', ALL, { limit: 2, offset: 0 }), all.slice(0, 2));
    assert.deepEqual(await paths(store, '', ALL, { limit: 2, offset: 2 }), all.slice(2));
  });

  withStore('search filters by readable prefixes, exactly at segment boundaries', async (store) => {
    for (const p of ['/a/1', '/a/sub/2', '/ab/3', '/b/4', '/c']) await store.upsertFile(file(p), T0);
    const under = (...prefixes: string[]): PathFilter => ({ kind: 'under', prefixes });
    assert.deepEqual((await paths(store, '', under('/a'))).sort(), ['/a/1', '/a/sub/2']);
    assert.deepEqual((await paths(store, '', under('/a/sub', '/b'))).sort(), ['/a/sub/2', '/b/4']);
    assert.deepEqual(await paths(store, '', under('/c')), ['/c'], 'a prefix that is a file');
    assert.deepEqual(await paths(store, '', under()), []);
    assert.deepEqual((await paths(store, 'size:100', under('/'))).length, 5);
  });

  withStore('values with SQL and FTS metacharacters are data, not syntax', async (store) => {
    await store.upsertFile(file("/q/it's 100%_done"), T0);
    await store.annotate(
      annotation("/q/it's 100%_done", 'user', { note: `a'; DROP TABLE catalog_records; --`, pct: '50%' }),
      undefined,
      T0,
    );
    assert.deepEqual(await paths(store, `path~"'s 100%_"`), ["/q/it's 100%_done"]);
    assert.deepEqual(await paths(store, 'path~%'), ["/q/it's 100%_done"]);
    assert.deepEqual(await paths(store, 'note~"drop table"'), ["/q/it's 100%_done"]);
    assert.deepEqual(await paths(store, 'pct:50%'), ["/q/it's 100%_done"]);
    assert.deepEqual(await paths(store, 'pct:5_%'), []);
    assert.deepEqual(await paths(store, '"\'; DROP"'), ["/q/it's 100%_done"]);
    assert.equal((await paths(store, '')).length, 1);
  });
}
