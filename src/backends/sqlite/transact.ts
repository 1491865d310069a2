// One transaction together with the storage events it appends (the outbox pattern), made durable
// before it resolves; event consumers are woken only then, so none acts on an event a power loss
// could still take back.
import type { Db } from './database.js';
import type { SqliteEventLog } from './event-log.js';
import type { WalSync } from './wal-sync.js';
import type { NewStorageEvent } from '../../events/types.js';

export async function transactWithEvents<T>(
  db: Db,
  log: SqliteEventLog,
  wal: WalSync | undefined,
  fn: (events: NewStorageEvent[]) => T,
): Promise<T> {
  const events: NewStorageEvent[] = [];
  let result: T;
  try {
    result = db.transaction(() => {
      const r = fn(events);
      log.appendInTransaction(events);
      return r;
    })();
  } catch (e) {
    log.rolledBack();
    throw e;
  }
  const head = log.takePendingHead();
  await wal?.durable();
  log.committed(head);
  return result;
}
