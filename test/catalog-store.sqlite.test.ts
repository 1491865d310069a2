// Runs the catalogue store contract against the embedded SQLite adapter.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { catalogStoreContract } from './contract/catalog-store.contract.js';
import { openDatabase, migrate } from '../src/backends/sqlite/database.js';
import { SqliteCatalogStore } from '../src/backends/sqlite/catalog-store.js';
import { catalogMigrations } from '../src/catalog/tables.js';

catalogStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-catalog-'));
  const db = openDatabase(join(dir, 'state.sqlite'));
  migrate(db, catalogMigrations);
  return {
    store: new SqliteCatalogStore(db),
    async close() {
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
