// Runs the placement store contract against the embedded SQLite adapter, with the namespace store
// and the event log over the same database, as createCore builds them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { placementStoreContract } from './contract/placement-store.contract.js';
import { openDatabase, migrate } from '../src/backends/sqlite/database.js';
import { SqliteEventLog } from '../src/backends/sqlite/event-log.js';
import { SqliteNamespaceStore } from '../src/backends/sqlite/namespace-store.js';
import { SqlitePlacementStore } from '../src/backends/sqlite/placement-store.js';
import { storageMigrations } from '../src/storage/tables.js';
import { eventLogMigrations } from '../src/events/tables.js';
import { placementMigrations } from '../src/placement/tables.js';

placementStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-placement-store-'));
  const db = openDatabase(join(dir, 'state.sqlite'));
  migrate(db, [...storageMigrations, ...eventLogMigrations, ...placementMigrations]);
  const log = new SqliteEventLog(db);
  return {
    store: new SqlitePlacementStore(db, log),
    namespace: new SqliteNamespaceStore(db, log),
    log,
    async close() {
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
