// Runs the trigger store contract against the embedded SQLite adapter; the peer store is a second
// adapter over the same database (its own, empty, update buffer), as after a restart.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { triggerStoreContract } from './contract/trigger-store.contract.js';
import { openDatabase, migrate } from '../src/backends/sqlite/database.js';
import { SqliteTriggerStore } from '../src/backends/sqlite/trigger-store.js';
import { triggerMigrations } from '../src/triggers/tables.js';

triggerStoreContract('sqlite', async (opts) => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-trigger-store-'));
  const db = openDatabase(join(dir, 'state.sqlite'));
  migrate(db, triggerMigrations);
  const store = new SqliteTriggerStore(db, opts.writeFirst);
  return {
    store,
    peer: new SqliteTriggerStore(db),
    async close() {
      store.flush();
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
