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
];
