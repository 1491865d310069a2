// Tables owned by the auth domain.
import type { Migration } from '../backends/sqlite/database.js';

export const authMigrations: Migration[] = [
  {
    domain: 'auth',
    version: 1,
    sql: `
      CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        scopes TEXT NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER,
        revoked INTEGER,
        created_by TEXT
      );
    `,
  },
];
