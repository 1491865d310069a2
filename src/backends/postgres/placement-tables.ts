// Tables owned by the placement domain on PostgreSQL (the SQLite dialect is in placement/tables.ts):
// storage elements, rules with their locks, transfers and stage requests. Same tables, columns and
// versions; times and sizes BIGINT, flags BOOLEAN, JSON kept as TEXT (never queried). Paths, SE names
// and ids compare byte-wise (COLLATE "C") so orderings and the path range scans match SQLite's.
// rule_locks references storage's ns_entries: migrate with [...pgStorageMigrations,
// ...pgPlacementMigrations] (migratePg keeps the order of domains it is given).
import type { PgMigration } from './database.js';

export const pgPlacementMigrations: PgMigration[] = [
  {
    domain: 'placement',
    version: 1,
    sql: `
      CREATE TABLE storage_elements (
        name TEXT COLLATE "C" PRIMARY KEY,
        kind TEXT NOT NULL,
        spec TEXT NOT NULL,
        attributes TEXT NOT NULL,
        -- An unavailable SE (down, decommissioned) is left out of new placements and reads; the
        -- judge moves the copies it held elsewhere.
        available BOOLEAN NOT NULL DEFAULT TRUE,
        created BIGINT NOT NULL
      );
      CREATE TABLE rules (
        id TEXT COLLATE "C" PRIMARY KEY,
        owner TEXT NOT NULL,
        path TEXT COLLATE "C" NOT NULL,
        glob TEXT,
        labels TEXT NOT NULL DEFAULT '[]',
        xattrs TEXT NOT NULL DEFAULT '{}',
        copies INTEGER NOT NULL,
        expression TEXT NOT NULL,
        source TEXT,
        grouping TEXT NOT NULL,
        expires BIGINT,
        priority INTEGER NOT NULL,
        activity TEXT NOT NULL,
        comment TEXT,
        file_id TEXT COLLATE "C",
        qos TEXT,
        state TEXT NOT NULL,
        reason TEXT,
        -- QoS rules: when the transition they make was completed (QOS_CHANGED sent).
        completed BIGINT,
        created BIGINT NOT NULL,
        updated BIGINT NOT NULL
      );
      CREATE INDEX rules_file ON rules (file_id);
      -- A rule's claim on one replica (Rucio's replica lock): the replica is protected while it exists.
      CREATE TABLE rule_locks (
        rule_id TEXT COLLATE "C" NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
        entry_id BIGINT NOT NULL REFERENCES ns_entries (id) ON DELETE CASCADE,
        se TEXT COLLATE "C" NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        PRIMARY KEY (rule_id, entry_id, se)
      );
      CREATE INDEX rule_locks_entry ON rule_locks (entry_id, se);
      CREATE TABLE transfers (
        id TEXT COLLATE "C" PRIMARY KEY,
        entry_id BIGINT NOT NULL,
        file_id TEXT NOT NULL,
        path TEXT COLLATE "C" NOT NULL,
        etag TEXT NOT NULL,
        size BIGINT NOT NULL,
        adler32 TEXT,
        source TEXT,
        destination TEXT COLLATE "C" NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL,
        activity TEXT NOT NULL,
        rule_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        next_attempt BIGINT NOT NULL,
        bytes_done BIGINT NOT NULL DEFAULT 0,
        mode TEXT,
        error TEXT,
        created BIGINT NOT NULL,
        started BIGINT,
        finished BIGINT
      );
      CREATE INDEX transfers_queue ON transfers (state, priority DESC, created);
      CREATE INDEX transfers_entry ON transfers (entry_id, destination);
      -- Bring-online requests (the WLCG tape REST API's stage requests).
      CREATE TABLE stage_requests (
        id TEXT COLLATE "C" PRIMARY KEY,
        owner TEXT NOT NULL,
        created BIGINT NOT NULL,
        started BIGINT,
        completed BIGINT,
        files TEXT NOT NULL
      );
    `,
  },
  {
    domain: 'placement',
    version: 2,
    sql: `
      -- A rule's state comes from counting its locks by state: an index answers that without reading
      -- every lock of a rule over many files (the primary key starts with rule_id, not state).
      CREATE INDEX rule_locks_rule_state ON rule_locks (rule_id, state);
    `,
  },
];
