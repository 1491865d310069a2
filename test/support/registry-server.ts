// Test support: a real in-process server whose function registry the test configures (small caps,
// no fsync). Works before and after the registry is wired into the core: the test's registry is
// handed to buildServer as core.functions, and the routes are registered here only if the server
// did not register them itself.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createCore, ensureAdminToken, createLogger, type Core } from '../../src/app.js';
import { buildServer } from '../../src/api/server.js';
import { migrate } from '../../src/backends/sqlite/database.js';
import { SqliteFunctionStore } from '../../src/backends/sqlite/function-store.js';
import { functionMigrations } from '../../src/functions/tables.js';
import { FunctionRegistry, type FunctionRegistryOptions } from '../../src/functions/registry.js';
import { functionRoutes } from '../../src/api/routes/functions.js';
import { tempDir, type RunningServer } from './server.js';

export interface RegistryServer extends RunningServer {
  core: Core;
  functions: FunctionRegistry;
  store: SqliteFunctionStore;
}

export async function startRegistryServer(
  opts: Partial<Omit<FunctionRegistryOptions, 'store' | 'bundlesDir'>> = {},
): Promise<RegistryServer> {
  const dataDir = await tempDir();
  const config = loadConfig({ port: 0, logLevel: 'silent', dataDir }, {});
  const core = await createCore(config, createLogger(config.logLevel));
  await ensureAdminToken(core);
  migrate(core.db, functionMigrations);
  const store = new SqliteFunctionStore(core.db);
  const bundlesDir = join(dataDir, 'functions');
  await mkdir(bundlesDir, { recursive: true });
  const functions = new FunctionRegistry({ store, bundlesDir, fsync: false, ...opts });
  await functions.init();
  const testCore = { ...core, functions } as Core & { functions: FunctionRegistry };
  const app = await buildServer(testCore);
  if (!app.hasRoute({ method: 'POST', url: '/api/v1/functions' })) {
    await app.register(functionRoutes, { prefix: '/api/v1', core: testCore });
  }
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  return {
    url,
    token,
    dataDir,
    core,
    functions,
    store,
    async stop() {
      await core.channels.stop();
      await app.close();
      await core.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
