// Tables owned by the events domain: the durable storage-event log.
import type { Migration } from '../backends/sqlite/database.js';

export const eventLogMigrations: Migration[] = [
  {
    domain: 'events',
    version: 1,
    sql: `
      -- AUTOINCREMENT: ids are never reused, even after the newest events were pruned.
      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time INTEGER NOT NULL,
        type TEXT NOT NULL,
        path TEXT NOT NULL,
        is_dir INTEGER NOT NULL,
        cookie TEXT,
        data TEXT
      );
      CREATE INDEX events_time ON events (time);
    `,
  },
  {
    domain: 'events',
    version: 2,
    sql: `
      -- Positions of the server's own log consumers (the catalogue indexer, …); triggers keep theirs with them.
      CREATE TABLE consumer_positions (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL
      );
    `,
  },
];
