// Runs the function store contract against the embedded SQLite adapter.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { functionStoreContract } from './contract/function-store.contract.js';
import { openDatabase, migrate } from '../src/backends/sqlite/database.js';
import { SqliteFunctionStore } from '../src/backends/sqlite/function-store.js';
import { functionMigrations } from '../src/functions/tables.js';

functionStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-fnstore-'));
  const db = openDatabase(join(dir, 'state.sqlite'));
  migrate(db, functionMigrations);
  return {
    store: new SqliteFunctionStore(db),
    async close() {
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
