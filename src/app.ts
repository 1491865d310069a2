// Composition root of the embedded deployment: opens state, builds each domain's services and
// hands them to the HTTP server. Owns every resource it creates and closes them in order.
import { mkdir, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
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

export interface Core {
  config: Config;
  log: Logger;
  db: Db;
  tokens: TokenService;
  eventLog: SqliteEventLog;
  namespace: Namespace;
  channels: ChannelService;
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
  migrate(db, [...storageMigrations, ...eventLogMigrations, ...authMigrations, ...channelMigrations]);
  const wal = config.fsync ? new WalSync(dbFile + '-wal') : undefined;
  await wal?.init();

  const eventLog = new SqliteEventLog(db);
  const store = new SqliteNamespaceStore(db, eventLog, wal);
  const se = new LocalStorageElement('local', join(config.dataDir, 'se', 'local'), { fsync: config.fsync });
  await se.init();
  const namespace = new Namespace(store, se, log.child({ domain: 'storage' }));
  await namespace.recover();
  const tokens = new TokenService(db);
  const channels = new ChannelService({ db, eventLog, namespace, config, log: log.child({ domain: 'events' }) });
  await channels.start();

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
    async close() {
      clearInterval(prune);
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

export const adminTokenPath = (config: Config): string => join(config.dataDir, ADMIN_TOKEN_FILE);
