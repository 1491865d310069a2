// Tables owned by the triggers domain on PostgreSQL (the SQLite dialect is in triggers/tables.ts):
// triggers with their log positions, their deliveries (one per trigger and event: the idempotency
// key), pipelines and pipeline runs. Same tables, columns and versions; names and ids compare
// byte-wise (COLLATE "C") whatever the database's locale, so listings come in SQLite's order. Specs
// and run records stay TEXT holding JSON, as in SQLite: kept as written and never queried.
import type { PgMigration } from './database.js';

export const pgTriggerMigrations: PgMigration[] = [
  {
    domain: 'triggers',
    version: 1,
    sql: `
      CREATE TABLE triggers (
        id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        enabled BOOLEAN NOT NULL,
        position BIGINT NOT NULL,
        created BIGINT NOT NULL,
        spec TEXT NOT NULL
      );
      CREATE TABLE trigger_deliveries (
        trigger_id TEXT COLLATE "C" NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
        event_id BIGINT NOT NULL,
        path TEXT COLLATE "C" NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before BIGINT NOT NULL DEFAULT 0,
        activation TEXT,
        last_error TEXT,
        updated BIGINT NOT NULL,
        PRIMARY KEY (trigger_id, event_id)
      );
      CREATE INDEX trigger_deliveries_open ON trigger_deliveries (trigger_id, status) WHERE status IN ('pending', 'running', 'dead');
      CREATE TABLE pipelines (
        name TEXT COLLATE "C" PRIMARY KEY,
        owner TEXT NOT NULL,
        created BIGINT NOT NULL,
        spec TEXT NOT NULL
      );
      CREATE TABLE pipeline_runs (
        id TEXT COLLATE "C" PRIMARY KEY,
        pipeline TEXT COLLATE "C" NOT NULL,
        status TEXT NOT NULL,
        created BIGINT NOT NULL,
        record TEXT NOT NULL
      );
      CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (pipeline, created DESC, id DESC);
    `,
  },
];
