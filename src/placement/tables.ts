// Tables owned by the placement domain (SQLite dialect; the PostgreSQL adapter keeps its own DDL).
import type { Migration } from '../backends/sqlite/database.js';

export const placementMigrations: Migration[] = [
  {
    domain: 'placement',
    version: 1,
    sql: `
      CREATE TABLE storage_elements (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        spec TEXT NOT NULL,
        attributes TEXT NOT NULL,
        -- An unavailable SE (down, decommissioned) is left out of new placements and reads; the
        -- judge moves the copies it held elsewhere.
        available INTEGER NOT NULL DEFAULT 1,
        created INTEGER NOT NULL
      );
      CREATE TABLE rules (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        path TEXT NOT NULL,
        glob TEXT,
        labels TEXT NOT NULL DEFAULT '[]',
        xattrs TEXT NOT NULL DEFAULT '{}',
        copies INTEGER NOT NULL,
        expression TEXT NOT NULL,
        source TEXT,
        grouping TEXT NOT NULL,
        expires INTEGER,
        priority INTEGER NOT NULL,
        activity TEXT NOT NULL,
        comment TEXT,
        file_id TEXT,
        qos TEXT,
        state TEXT NOT NULL,
        reason TEXT,
        -- QoS rules: when the transition they make was completed (QOS_CHANGED sent).
        completed INTEGER,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL
      );
      CREATE INDEX rules_file ON rules (file_id);
      -- A rule's claim on one replica (Rucio's replica lock): the replica is protected while it exists.
      CREATE TABLE rule_locks (
        rule_id TEXT NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
        entry_id INTEGER NOT NULL REFERENCES ns_entries (id) ON DELETE CASCADE,
        se TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        PRIMARY KEY (rule_id, entry_id, se)
      );
      CREATE INDEX rule_locks_entry ON rule_locks (entry_id, se);
      CREATE TABLE transfers (
        id TEXT PRIMARY KEY,
        entry_id INTEGER NOT NULL,
        file_id TEXT NOT NULL,
        path TEXT NOT NULL,
        etag TEXT NOT NULL,
        size INTEGER NOT NULL,
        adler32 TEXT,
        source TEXT,
        destination TEXT NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL,
        activity TEXT NOT NULL,
        rule_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        next_attempt INTEGER NOT NULL,
        bytes_done INTEGER NOT NULL DEFAULT 0,
        mode TEXT,
        error TEXT,
        created INTEGER NOT NULL,
        started INTEGER,
        finished INTEGER
      );
      CREATE INDEX transfers_queue ON transfers (state, priority DESC, created);
      CREATE INDEX transfers_entry ON transfers (entry_id, destination);
      -- Bring-online requests (the WLCG tape REST API's stage requests).
      CREATE TABLE stage_requests (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        created INTEGER NOT NULL,
        started INTEGER,
        completed INTEGER,
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
