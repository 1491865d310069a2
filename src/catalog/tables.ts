// Tables owned by the catalogue (SQLite dialect; the PostgreSQL adapter keeps its own DDL).
// Records are never deleted: a removed file's record is marked and stays, so lineage never breaks.
// catalog_values flattens metadata for indexed field search; catalog_fts is the full-text index.
import type { Migration } from '../backends/sqlite/database.js';

export const catalogMigrations: Migration[] = [
  {
    domain: 'catalog',
    version: 1,
    sql: `
      CREATE TABLE catalog_records (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('raw', 'derived')),
        owner TEXT NOT NULL,
        size INTEGER NOT NULL,
        checksums TEXT NOT NULL DEFAULT '[]',
        metadata TEXT NOT NULL DEFAULT '{}',
        sources TEXT NOT NULL DEFAULT '{}',
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        -- when the file left the namespace; NULL while it is there
        deleted INTEGER
      );
      -- one current record per path; deleted ones keep the path they had last
      CREATE UNIQUE INDEX catalog_records_current ON catalog_records (path) WHERE deleted IS NULL;
      CREATE INDEX catalog_records_path ON catalog_records (path, deleted);
      CREATE INDEX catalog_records_created ON catalog_records (created);

      CREATE TABLE catalog_values (
        record INTEGER NOT NULL REFERENCES catalog_records (seq) ON DELETE CASCADE,
        path TEXT NOT NULL,
        leaf TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('text', 'number', 'boolean', 'null')),
        num REAL,
        text TEXT NOT NULL
      );
      CREATE INDEX catalog_values_path ON catalog_values (path, num);
      CREATE INDEX catalog_values_leaf ON catalog_values (leaf);
      CREATE INDEX catalog_values_record ON catalog_values (record);

      -- the derivation of a record's current content: at most one per record
      CREATE TABLE catalog_derivations (
        output INTEGER PRIMARY KEY REFERENCES catalog_records (seq) ON DELETE CASCADE,
        function TEXT NOT NULL,
        version TEXT NOT NULL,
        activation TEXT NOT NULL,
        parameters TEXT NOT NULL,
        recorded INTEGER NOT NULL
      );
      CREATE INDEX catalog_derivations_activation ON catalog_derivations (activation);
      CREATE TABLE catalog_inputs (
        output INTEGER NOT NULL REFERENCES catalog_derivations (output) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        input INTEGER NOT NULL REFERENCES catalog_records (seq),
        -- the input's path and checksum when the derivation was recorded
        path TEXT NOT NULL,
        checksum TEXT,
        PRIMARY KEY (output, position)
      );
      CREATE INDEX catalog_inputs_input ON catalog_inputs (input);

      CREATE VIRTUAL TABLE catalog_fts USING fts5 (
        path, body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
      );
    `,
  },
  {
    domain: 'catalog',
    version: 2,
    // SQLite cannot change the CHECK on type, so what a record describes is a column of its own.
    sql: `
      ALTER TABLE catalog_records ADD COLUMN kind TEXT NOT NULL DEFAULT 'file' CHECK (kind IN ('file', 'dataset'));
    `,
  },
];
