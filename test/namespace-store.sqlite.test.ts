// Runs the namespace store contract against the embedded SQLite adapter.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { namespaceStoreContract } from './contract/namespace-store.contract.js';
import { openDatabase, migrate } from '../src/backends/sqlite/database.js';
import { SqliteEventLog } from '../src/backends/sqlite/event-log.js';
import { SqliteNamespaceStore } from '../src/backends/sqlite/namespace-store.js';
import { storageMigrations } from '../src/storage/tables.js';
import { eventLogMigrations } from '../src/events/tables.js';

namespaceStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-store-'));
  const db = openDatabase(join(dir, 'state.sqlite'));
  migrate(db, [...storageMigrations, ...eventLogMigrations]);
  const log = new SqliteEventLog(db);
  return {
    store: new SqliteNamespaceStore(db, log),
    log,
    async close() {
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
