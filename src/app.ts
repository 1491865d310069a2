// Composition root of the embedded deployment: opens state, builds each domain's services and
// hands them to the HTTP server. Owns every resource it creates and closes them in order.
import { mkdir, writeFile, chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { openDatabase, migrate, type Db } from './backends/sqlite/database.js';
import { SqliteEventLog } from './backends/sqlite/event-log.js';
import { SqliteNamespaceStore } from './backends/sqlite/namespace-store.js';
import { WalSync } from './backends/sqlite/wal-sync.js';
import { storageMigrations } from './storage/tables.js';
import { eventLogMigrations } from './events/tables.js';
import { authMigrations } from './auth/tables.js';
import { channelMigrations } from './events/channel-tables.js';
import { TokenService } from './auth/tokens.js';
import { LocalStorageElement } from './storage/local-se.js';
import { Namespace } from './storage/namespace.js';
import { ChannelService } from './events/channels.js';
import { functionMigrations } from './functions/tables.js';
import { activationMigrations } from './functions/activation-tables.js';
import { SqliteFunctionStore } from './backends/sqlite/function-store.js';
import { SqliteActivationStore } from './backends/sqlite/activation-store.js';
import { FunctionRegistry } from './functions/registry.js';
import { Invoker } from './functions/invoker.js';
import { Sandbox } from './functions/sandbox.js';
import { ActivationTokens } from './auth/activation-tokens.js';
import { createHash } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { triggerMigrations } from './triggers/tables.js';
import { SqliteTriggerStore } from './backends/sqlite/trigger-store.js';
import { TriggerService } from './triggers/service.js';
import { catalogMigrations } from './catalog/tables.js';
import { SqliteCatalogStore } from './backends/sqlite/catalog-store.js';
import { CatalogService, fileFactsOf } from './catalog/service.js';
import { CatalogIndexer } from './catalog/indexer.js';
import type { NsPath } from './storage/paths.js';
import { placementMigrations } from './placement/tables.js';
import { SqlitePlacementStore } from './backends/sqlite/placement-store.js';
import { SeRegistry } from './placement/se-registry.js';
import { PlacementService } from './placement/service.js';
import { BUILTIN_QOS } from './placement/types.js';

export interface Core {
  config: Config;
  log: Logger;
  db: Db;
  tokens: TokenService;
  eventLog: SqliteEventLog;
  namespace: Namespace;
  channels: ChannelService;
  functions: FunctionRegistry;
  invoker: Invoker;
  triggers: TriggerService;
  catalog: CatalogService;
  /** Keeps the catalogue in step with the namespace (a consumer of the event log). */
  catalogIndexer: CatalogIndexer;
  /** Storage elements, replication rules, transfers, QoS and tape. */
  placement: PlacementService;
  /** The API's unix socket, for function instances (ctx.storage). */
  apiSocket: string;
  /** Stops background work and closes state; the HTTP server is closed by its owner first. */
  close(): Promise<void>;
}

export const ADMIN_TOKEN_FILE = 'admin.token';

/** Loggers never print secrets: authorization headers and token fields are redacted everywhere. */
export function createLogger(level: Config['logLevel']): Logger {
  return pino({
    level,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'secret', 'token', '*.secret', '*.token'],
      censor: '[redacted]',
    },
  });
}

export async function createCore(config: Config, log: Logger = createLogger(config.logLevel)): Promise<Core> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const dbFile = join(config.dataDir, 'state.sqlite');
  const db = openDatabase(dbFile, { groupCommit: true });
  migrate(db, [
    ...storageMigrations,
    ...eventLogMigrations,
    ...authMigrations,
    ...channelMigrations,
    ...functionMigrations,
    ...activationMigrations,
    ...triggerMigrations,
    ...catalogMigrations,
    ...placementMigrations,
  ]);
  const wal = config.fsync ? new WalSync(dbFile + '-wal') : undefined;
  await wal?.init();

  const eventLog = new SqliteEventLog(db);
  const store = new SqliteNamespaceStore(db, eventLog, wal);
  const se = new LocalStorageElement('local', join(config.dataDir, 'se', 'local'), { fsync: config.fsync });
  await se.init();
  const namespace = new Namespace(store, se, log.child({ domain: 'storage' }));
  await namespace.recover();
  const placementStore = new SqlitePlacementStore(db, eventLog, wal);
  const registry = new SeRegistry({
    store: placementStore,
    landing: se,
    landingAttributes: config.placement.landingAttributes,
    fsync: config.fsync,
    dataDir: config.dataDir,
  });
  await registry.init();
  const pc = config.placement;
  const placement = new PlacementService({
    store: placementStore,
    registry,
    eventLog,
    config: {
      maxActive: pc.maxActiveTransfers,
      maxActivePerSe: pc.maxActivePerSe,
      maxActivePerLink: pc.maxActivePerLink,
      maxAttempts: pc.maxTransferAttempts,
      retryBaseSeconds: pc.retryBaseSeconds,
      repairIntervalSeconds: pc.repairIntervalSeconds,
      stageWaitSeconds: pc.stageWaitSeconds,
      pinSeconds: pc.pinSeconds,
      stuckRetrySeconds: pc.stuckRetrySeconds,
      cleanBelowFreeFraction: 0.1,
      cleanUntilFreeFraction: 0.2,
    },
    qosClasses: [...BUILTIN_QOS, ...Object.entries(pc.qosClasses).map(([name, rules]) => ({ name, rules }))],
    locationsOn: (name) => store.locationsOn(name),
    log: log.child({ domain: 'placement' }),
  });
  namespace.attachReplicaSource(placement);
  const tokens = new TokenService(db);
  const channels = new ChannelService({ db, eventLog, namespace, config, log: log.child({ domain: 'events' }) });
  await channels.start();

  const functions = new FunctionRegistry({
    store: new SqliteFunctionStore(db, wal),
    bundlesDir: join(config.dataDir, 'functions'),
    maxBundleBytes: config.functions.maxBundleBytes,
    fsync: config.fsync,
    log: log.child({ domain: 'functions' }),
  });
  await functions.init();
  const activationTokens = await ActivationTokens.open(join(config.dataDir, 'activation.key'));
  tokens.acceptActivationTokens(activationTokens);
  const apiSocket = apiSocketPath(config.dataDir);
  await mkdir(dirname(apiSocket), { recursive: true, mode: 0o700 });
  const activationStore = new SqliteActivationStore(db, wal);
  const invoker = new Invoker({
    config,
    registry: functions,
    store: activationStore,
    sandbox: await Sandbox.detect(config.functions.sandbox, log.child({ domain: 'functions' })),
    activationTokens,
    apiSocket,
    log: log.child({ domain: 'functions' }),
  });
  const catalog = new CatalogService({
    store: new SqliteCatalogStore(db, wal),
    lookupFile: async (p) => fileFactsOf(await store.get(p as NsPath)),
    log: log.child({ domain: 'catalog' }),
  });
  // The indexer can redo its writes from the log (its position is saved after them), so they need no
  // fsync of their own: it gets a catalogue over the same tables without the WAL sync.
  const indexedCatalog = new CatalogService({
    store: new SqliteCatalogStore(db),
    lookupFile: async (p) => fileFactsOf(await store.get(p as NsPath)),
    log: log.child({ domain: 'catalog' }),
  });
  const catalogIndexer = new CatalogIndexer({ catalog: indexedCatalog, eventLog, invoker, log: log.child({ domain: 'catalog' }) });
  const triggerStore = new SqliteTriggerStore(db, () => activationStore.flush());
  const triggers = new TriggerService({
    store: triggerStore,
    eventLog,
    namespace,
    invoker,
    catalog,
    source: `sluice://${hostname()}`,
    log: log.child({ domain: 'triggers' }),
  });

  const prune = setInterval(() => {
    void eventLog
      .prune(Date.now() - config.eventRetentionHours * 3600_000)
      .then((n) => n > 0 && log.info({ pruned: n }, 'pruned storage events past retention'))
      .catch((err: unknown) => log.error({ err }, 'event log pruning failed'));
  }, 60_000);
  prune.unref();

  return {
    config,
    log,
    db,
    tokens,
    eventLog,
    namespace,
    channels,
    functions,
    invoker,
    triggers,
    catalog,
    catalogIndexer,
    placement,
    apiSocket,
    async close() {
      clearInterval(prune);
      await placement.stop();
      await triggers.stop();
      await catalogIndexer.stop();
      await invoker.close();
      triggerStore.flush();
      await channels.stop();
      await wal?.close();
      db.close();
    },
  };
}

/**
 * On first start (no token at all) issues an admin token and stores it in DATA/admin.token, mode 0600.
 * Returns the secret when one was created, so the caller can tell the operator how to use it.
 */
export async function ensureAdminToken(core: Core): Promise<string | undefined> {
  if (!core.tokens.isEmpty()) return undefined;
  const file = join(core.config.dataDir, ADMIN_TOKEN_FILE);
  const { secret } = core.tokens.create({ subject: 'admin', scopes: ['admin'], description: 'created on first start' });
  await writeFile(file, secret + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return secret;
}

/**
 * DATA/run/api.sock, or a socket in the temp directory named after the data directory when that
 * path would be longer than a unix socket address allows (108 bytes on Linux).
 */
export function apiSocketPath(dataDir: string): string {
  const inData = join(dataDir, 'run', 'api.sock');
  if (Buffer.byteLength(inData) <= 100) return inData;
  const tag = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  return join(tmpdir(), `sluice-${tag}`, 'api.sock');
}

export const adminTokenPath = (config: Config): string => join(config.dataDir, ADMIN_TOKEN_FILE);
