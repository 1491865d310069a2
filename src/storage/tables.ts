// Tables owned by the storage domain (SQLite dialect; the PostgreSQL adapter keeps its own DDL).
import type { Migration } from '../backends/sqlite/database.js';

export const storageMigrations: Migration[] = [
  {
    domain: 'storage',
    version: 1,
    sql: `
      CREATE TABLE ns_entries (
        id INTEGER PRIMARY KEY,
        file_id TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL UNIQUE,
        parent TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('DIR', 'REGULAR')),
        size INTEGER NOT NULL DEFAULT 0,
        mode INTEGER NOT NULL,
        owner TEXT NOT NULL,
        ctime INTEGER NOT NULL,
        mtime INTEGER NOT NULL,
        adler32 TEXT, md5 TEXT, sha256 TEXT,
        content_type TEXT,
        labels TEXT NOT NULL DEFAULT '[]',
        xattrs TEXT NOT NULL DEFAULT '{}',
        etag TEXT NOT NULL
      );
      CREATE INDEX ns_entries_parent ON ns_entries (parent, name);
      CREATE TABLE replicas (
        entry_id INTEGER NOT NULL REFERENCES ns_entries (id) ON DELETE CASCADE,
        se TEXT NOT NULL,
        location TEXT NOT NULL,
        state TEXT NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY (entry_id, se)
      );
      CREATE INDEX replicas_se ON replicas (se, location);
      CREATE TABLE dead_props (
        entry_id INTEGER NOT NULL REFERENCES ns_entries (id) ON DELETE CASCADE,
        ns TEXT NOT NULL,
        name TEXT NOT NULL,
        xml TEXT NOT NULL,
        PRIMARY KEY (entry_id, ns, name)
      );
    `,
  },
  {
    domain: 'storage',
    version: 2,
    sql: `
      -- Tape replicas: whether the bytes are in the SE's disk buffer, and until when a stage pins them.
      ALTER TABLE replicas ADD COLUMN online INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE replicas ADD COLUMN pinned_until INTEGER;
      -- When the replica's bytes were last read back and found to match the file's checksum.
      ALTER TABLE replicas ADD COLUMN verified INTEGER;
      ALTER TABLE replicas ADD COLUMN reason TEXT;
      CREATE INDEX replicas_state ON replicas (se, state);
    `,
  },
];
