// PostgreSQL DDL of the storage and events domains (the scale-out twins of storage/tables.ts and
// events/tables.ts): same tables, columns and versions, in PostgreSQL's dialect.
import type { PgMigration } from './database.js';

export const pgStorageMigrations: PgMigration[] = [
  {
    domain: 'storage',
    version: 1,
    // Paths, parents and names compare byte-wise (COLLATE "C", as SQLite's BINARY) whatever the
    // database's locale: the subtree scans `path >= '/a/' AND path < '/a0'` rely on '/' < '0' and
    // on a parent sorting before its children, and only then can they use the path index.
    sql: `
      CREATE TABLE ns_entries (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        file_id TEXT NOT NULL UNIQUE,
        path TEXT COLLATE "C" NOT NULL UNIQUE,
        parent TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('DIR', 'REGULAR')),
        size BIGINT NOT NULL DEFAULT 0,
        mode INTEGER NOT NULL,
        owner TEXT NOT NULL,
        ctime BIGINT NOT NULL,
        mtime BIGINT NOT NULL,
        adler32 TEXT, md5 TEXT, sha256 TEXT,
        content_type TEXT,
        labels TEXT NOT NULL DEFAULT '[]',
        xattrs TEXT NOT NULL DEFAULT '{}',
        etag TEXT NOT NULL
      );
      CREATE INDEX ns_entries_parent ON ns_entries (parent, name);
      CREATE TABLE replicas (
        entry_id BIGINT NOT NULL REFERENCES ns_entries (id) ON DELETE CASCADE,
        se TEXT NOT NULL,
        location TEXT NOT NULL,
        state TEXT NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (entry_id, se)
      );
      CREATE INDEX replicas_se ON replicas (se, location);
      CREATE TABLE dead_props (
        entry_id BIGINT NOT NULL REFERENCES ns_entries (id) ON DELETE CASCADE,
        ns TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
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
      ALTER TABLE replicas ADD COLUMN online BOOLEAN NOT NULL DEFAULT TRUE;
      ALTER TABLE replicas ADD COLUMN pinned_until BIGINT;
      -- When the replica's bytes were last read back and found to match the file's checksum.
      ALTER TABLE replicas ADD COLUMN verified BIGINT;
      ALTER TABLE replicas ADD COLUMN reason TEXT;
      CREATE INDEX replicas_state ON replicas (se, state);
    `,
  },
];

export const pgEventLogMigrations: PgMigration[] = [
  {
    domain: 'events',
    version: 1,
    // Event ids come from event_head, not from a sequence: a sequence hands out ids when a writer
    // asks, so concurrent transactions would commit them out of order (5 visible before 4) and a
    // consumer reading "id > position" would skip 4 for ever. Bumping the one counter row as the
    // last step of a transaction makes ids dense and visible in commit order (event-log.ts).
    sql: `
      CREATE TABLE events (
        id BIGINT PRIMARY KEY,
        time BIGINT NOT NULL,
        type TEXT NOT NULL,
        path TEXT NOT NULL,
        is_dir BOOLEAN NOT NULL,
        cookie TEXT,
        data TEXT
      );
      CREATE INDEX events_time ON events (time);
      -- The id of the newest event ever appended; never moves back, even when the log is pruned.
      CREATE TABLE event_head (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        head BIGINT NOT NULL
      );
      INSERT INTO event_head (head) VALUES (0);
    `,
  },
  {
    domain: 'events',
    version: 2,
    sql: `
      -- Positions of the server's own log consumers (the catalogue indexer, …); triggers keep theirs with them.
      CREATE TABLE consumer_positions (
        name TEXT PRIMARY KEY,
        position BIGINT NOT NULL
      );
    `,
  },
];
