// Tables owned by the activations part of the functions domain.
import type { Migration } from '../backends/sqlite/database.js';

export const activationMigrations: Migration[] = [
  {
    domain: 'activations',
    version: 1,
    sql: `
      CREATE TABLE activations (
        id TEXT PRIMARY KEY,
        function TEXT NOT NULL,
        version TEXT NOT NULL,
        seq INTEGER NOT NULL,
        status TEXT NOT NULL,
        subject TEXT NOT NULL,
        cause TEXT NOT NULL,
        cold INTEGER NOT NULL DEFAULT 0,
        queued_at INTEGER NOT NULL,
        ended_at INTEGER,
        record TEXT NOT NULL
      );
      CREATE INDEX activations_by_function ON activations (function, id);
      CREATE INDEX activations_by_subject ON activations (subject, id);
      CREATE INDEX activations_unfinished ON activations (status) WHERE status IN ('queued', 'running');
      CREATE INDEX activations_by_end ON activations (ended_at);
    `,
  },
  {
    domain: 'activations',
    version: 2,
    sql: `
      -- Idempotency key of calls made for a durable intent (a trigger's delivery: trigger/event), so a
      -- restart finds the call that already succeeded instead of making it again.
      ALTER TABLE activations ADD COLUMN key TEXT;
      CREATE INDEX activations_by_key ON activations (key) WHERE key IS NOT NULL;
    `,
  },
];
