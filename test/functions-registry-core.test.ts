// The FunctionRegistry itself, without HTTP: references, start-up reconciliation of the bundles
// directory, concurrent deploys and the 'removed' events.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { tempDir } from './support/server.js';
import { nodeBundle, tarGz } from './support/tar.js';
import { openDatabase, migrate, type Db } from '../src/backends/sqlite/database.js';
import { SqliteFunctionStore } from '../src/backends/sqlite/function-store.js';
import { functionMigrations } from '../src/functions/tables.js';
import { FunctionRegistry, parseFunctionRef, type FunctionRemoved } from '../src/functions/registry.js';
import type { Principal } from '../src/auth/scopes.js';

let dir: string;
let db: Db;
let registry: FunctionRegistry;
const deployer: Principal = { subject: 'carol', tokenId: 't1', scopes: [{ kind: 'function.deploy' }] };
const invoker: Principal = { subject: 'dan', tokenId: 't2', scopes: [{ kind: 'function.invoke' }] };

before(async () => {
  dir = await tempDir('sluice-registry-');
  db = openDatabase(join(dir, 'state.sqlite'));
  migrate(db, functionMigrations);
  registry = new FunctionRegistry({ store: new SqliteFunctionStore(db), bundlesDir: join(dir, 'functions'), fsync: false });
  await registry.init();
});
after(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

const archive = (name: string, code?: string) => Readable.from([tarGz(nodeBundle(name, {}, code))]);

test('parseFunctionRef splits NAME@REF and refuses what is not a function name', () => {
  assert.deepEqual(parseFunctionRef('echo@prod'), { name: 'echo', ref: 'prod' });
  assert.deepEqual(parseFunctionRef('echo@3'), { name: 'echo', ref: '3' });
  assert.deepEqual(parseFunctionRef('echo'), { name: 'echo', ref: undefined });
  assert.throws(() => parseFunctionRef('Echo@prod'), { code: 'BAD_REQUEST' });
  assert.throws(() => parseFunctionRef('echo@'), /nothing after @/);
  assert.throws(() => parseFunctionRef('@prod'), { code: 'BAD_REQUEST' });
});

test('deploying needs function.deploy; nothing is read or written without it', async () => {
  const body = archive('nope');
  await assert.rejects(registry.deploy(body, invoker), { code: 'FORBIDDEN' });
  assert.equal(body.readableDidRead, false);
  await assert.rejects(registry.resolve('nope'), { code: 'NOT_FOUND' });
});

test('concurrent deploys of the same content make one version', async () => {
  const results = await Promise.all([1, 2, 3].map(() => registry.deploy(archive('twice'), deployer)));
  assert.deepEqual(results.map((r) => r.created).sort(), [false, false, true]);
  assert.equal(new Set(results.map((r) => r.version.version)).size, 1);
  assert.deepEqual(await readdir(join(dir, 'functions', 'twice')), [results[0]!.version.version]);
  assert.deepEqual(await readdir(join(dir, 'functions', '.staging')), []);
});

test('removals emit removed events for the invoker to drain instances', async () => {
  const events: FunctionRemoved[] = [];
  const listener = (e: FunctionRemoved) => events.push(e);
  registry.on('removed', listener);
  const v1 = (await registry.deploy(archive('gone', 'export const handler = () => 1;'), deployer)).version;
  const v2 = (await registry.deploy(archive('gone', 'export const handler = () => 2;'), deployer)).version;
  await assert.rejects(registry.removeVersion('gone', '1', invoker), { code: 'FORBIDDEN' });
  await registry.removeVersion('gone', '1', deployer);
  await registry.removeVersion('gone', v2.version, deployer);
  registry.off('removed', listener);
  assert.deepEqual(events, [
    { name: 'gone', version: v1.version },
    { name: 'gone', version: v2.version },
  ]);
  assert.ok(!existsSync(join(dir, 'functions', 'gone')), 'the last version took the function with it');
  await assert.rejects(registry.get('gone'), { code: 'NOT_FOUND' });
});

test('init drops staging leftovers and bundles no version refers to, and keeps the rest', async () => {
  const kept = (await registry.deploy(archive('kept'), deployer)).version;
  const orphan = join(dir, 'functions', 'kept', 'f'.repeat(64));
  const orphanFunction = join(dir, 'functions', 'ghost', 'e'.repeat(64));
  const leftover = join(dir, 'functions', '.staging', 'b-half');
  for (const d of [orphan, orphanFunction, leftover]) {
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'x'), 'x');
  }
  await registry.init();
  assert.ok(existsSync(registry.bundleDir(kept)));
  assert.ok(!existsSync(orphan));
  assert.ok(!existsSync(join(dir, 'functions', 'ghost')));
  assert.ok(!existsSync(leftover));
});
