// Tables owned by the catalogue on PostgreSQL (the SQLite dialect is in catalog/tables.ts). Records
// are never deleted: a removed file's record is marked and stays, so lineage never breaks.
// catalog_values flattens metadata for indexed field search (the instant of ISO date text computed
// at write time); full text is two tsvector columns of each record, its path and its metadata
// values, built by the adapter's own tokenizer (the same on both sides, whatever the server's locale)
// and indexed with GIN. Paths compare byte-wise (COLLATE "C"), so the range conditions that find a
// directory's records work under any database locale. catalog_fold is `~`'s case folding: Unicode
// lower case by ICU, else by glibc's C.utf8, else by the database's default collation (a server with
// neither and a C locale folds ASCII only).
import type { PgMigration } from './database.js';

export const pgCatalogMigrations: PgMigration[] = [
  {
    domain: 'catalog',
    version: 1,
    sql: `
      DO $do$
      DECLARE
        folding TEXT;
      BEGIN
        SELECT collname INTO folding FROM pg_collation
          WHERE collname IN ('und-x-icu', 'C.utf8') AND collencoding IN (-1, pg_char_to_encoding(current_setting('server_encoding')))
          ORDER BY collname = 'und-x-icu' DESC LIMIT 1;
        EXECUTE format(
          'CREATE FUNCTION catalog_fold(t TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$ SELECT lower(t COLLATE %I) $f$',
          coalesce(folding, 'default'));
      END
      $do$;

      CREATE TABLE catalog_records (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT COLLATE "C" NOT NULL UNIQUE,
        path TEXT COLLATE "C" NOT NULL,
        kind TEXT NOT NULL DEFAULT 'file' CHECK (kind IN ('file', 'dataset')),
        type TEXT NOT NULL CHECK (type IN ('raw', 'derived')),
        owner TEXT NOT NULL,
        size BIGINT NOT NULL,
        -- JSONB: searched by containment (GIN) and element by element
        checksums JSONB NOT NULL DEFAULT '[]',
        -- JSON, not JSONB: kept exactly as written (key order included); searched through catalog_values
        metadata JSON NOT NULL DEFAULT '{}',
        sources JSON NOT NULL DEFAULT '{}',
        created BIGINT NOT NULL,
        updated BIGINT NOT NULL,
        -- when the file left the namespace; NULL while it is there
        deleted BIGINT,
        path_fts TSVECTOR NOT NULL DEFAULT '',
        body_fts TSVECTOR NOT NULL DEFAULT ''
      );
      -- one current record per path; deleted ones keep the path they had last
      CREATE UNIQUE INDEX catalog_records_current ON catalog_records (path) WHERE deleted IS NULL;
      CREATE INDEX catalog_records_path ON catalog_records (path, deleted);
      CREATE INDEX catalog_records_created ON catalog_records (created DESC, seq DESC);
      CREATE INDEX catalog_records_checksums ON catalog_records USING GIN (checksums jsonb_path_ops);
      CREATE INDEX catalog_records_path_fts ON catalog_records USING GIN (path_fts);
      CREATE INDEX catalog_records_body_fts ON catalog_records USING GIN (body_fts);

      CREATE TABLE catalog_values (
        record BIGINT NOT NULL REFERENCES catalog_records (seq) ON DELETE CASCADE,
        path TEXT COLLATE "C" NOT NULL,
        leaf TEXT COLLATE "C" NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('text', 'number', 'boolean', 'null')),
        num DOUBLE PRECISION,
        text TEXT NOT NULL,
        -- text that reads as an ISO date or time: its instant, ms since the epoch
        instant BIGINT
      );
      CREATE INDEX catalog_values_path ON catalog_values (path, num);
      CREATE INDEX catalog_values_path_instant ON catalog_values (path, instant) WHERE instant IS NOT NULL;
      CREATE INDEX catalog_values_leaf ON catalog_values (leaf);
      CREATE INDEX catalog_values_record ON catalog_values (record);

      -- the derivation of a record's current content: at most one per record
      CREATE TABLE catalog_derivations (
        output BIGINT PRIMARY KEY REFERENCES catalog_records (seq) ON DELETE CASCADE,
        function TEXT NOT NULL,
        version TEXT NOT NULL,
        activation TEXT NOT NULL,
        parameters JSON NOT NULL,
        recorded BIGINT NOT NULL
      );
      CREATE INDEX catalog_derivations_activation ON catalog_derivations (activation);
      CREATE TABLE catalog_inputs (
        output BIGINT NOT NULL REFERENCES catalog_derivations (output) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        input BIGINT NOT NULL REFERENCES catalog_records (seq),
        -- the input's path and checksum when the derivation was recorded
        path TEXT COLLATE "C" NOT NULL,
        checksum TEXT,
        PRIMARY KEY (output, position)
      );
      CREATE INDEX catalog_inputs_input ON catalog_inputs (input);
    `,
  },
];
