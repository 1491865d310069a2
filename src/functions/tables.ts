// Tables owned by the function registry: functions, their immutable versions and their aliases.
// (Activations live in their own tables, owned by the activations part of this domain.)
import type { Migration } from '../backends/sqlite/database.js';

export const functionMigrations: Migration[] = [
  {
    domain: 'functions',
    version: 1,
    sql: `
      CREATE TABLE functions (
        name TEXT PRIMARY KEY,
        -- seq numbers are never reused while the function exists, so "echo@3" always means one version
        next_seq INTEGER NOT NULL,
        created INTEGER NOT NULL
      );
      CREATE TABLE function_versions (
        name TEXT NOT NULL REFERENCES functions(name) ON DELETE RESTRICT,
        digest TEXT NOT NULL,
        seq INTEGER NOT NULL,
        manifest TEXT NOT NULL,
        size INTEGER NOT NULL,
        created INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (name, digest),
        UNIQUE (name, seq)
      );
      CREATE TABLE function_aliases (
        name TEXT NOT NULL,
        alias TEXT NOT NULL,
        digest TEXT NOT NULL,
        updated INTEGER NOT NULL,
        PRIMARY KEY (name, alias),
        FOREIGN KEY (name, digest) REFERENCES function_versions(name, digest) ON DELETE RESTRICT
      );
      CREATE INDEX function_aliases_by_version ON function_aliases (name, digest);
    `,
  },
];
