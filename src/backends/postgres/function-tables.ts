// Tables owned by the function registry on PostgreSQL (the SQLite dialect is in functions/tables.ts):
// functions, their immutable versions and their aliases. Names, digests and aliases compare byte-wise
// (COLLATE "C") whatever the database's locale, so ordering and digest-prefix ranges match SQLite.
import type { PgMigration } from './database.js';

export const pgFunctionMigrations: PgMigration[] = [
  {
    domain: 'functions',
    version: 1,
    sql: `
      CREATE TABLE functions (
        name TEXT COLLATE "C" PRIMARY KEY,
        -- seq numbers are never reused while the function exists, so "echo@3" always means one version
        next_seq INTEGER NOT NULL,
        created BIGINT NOT NULL
      );
      CREATE TABLE function_versions (
        name TEXT COLLATE "C" NOT NULL REFERENCES functions (name) ON DELETE RESTRICT,
        digest TEXT COLLATE "C" NOT NULL,
        seq INTEGER NOT NULL,
        -- JSON, not JSONB: the manifest is kept exactly as deployed (key order included) and never queried
        manifest JSON NOT NULL,
        size BIGINT NOT NULL,
        created BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (name, digest),
        UNIQUE (name, seq)
      );
      CREATE TABLE function_aliases (
        name TEXT COLLATE "C" NOT NULL,
        alias TEXT COLLATE "C" NOT NULL,
        digest TEXT COLLATE "C" NOT NULL,
        updated BIGINT NOT NULL,
        PRIMARY KEY (name, alias),
        FOREIGN KEY (name, digest) REFERENCES function_versions (name, digest) ON DELETE RESTRICT
      );
      CREATE INDEX function_aliases_by_version ON function_aliases (name, digest);
    `,
  },
];
