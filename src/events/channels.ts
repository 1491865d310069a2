// STUB: channels and subscriptions of the dCache-compatible events API (being written).
import type { Logger } from 'pino';
import type { Db } from '../backends/sqlite/database.js';
import type { SqliteEventLog } from '../backends/sqlite/event-log.js';
import type { Namespace } from '../storage/namespace.js';
import type { Config } from '../config.js';

export interface ChannelServiceDeps {
  db: Db;
  eventLog: SqliteEventLog;
  namespace: Namespace;
  config: Config;
  log: Logger;
}

export class ChannelService {
  constructor(readonly deps: ChannelServiceDeps) {}
  async start(): Promise<void> {}
  /** Sends SHUTDOWN to connected clients and stops timers. */
  async stop(): Promise<void> {}
}
