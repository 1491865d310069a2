// Tables owned by the triggers domain: triggers with their log positions, their deliveries (one per
// trigger and event: the idempotency key), pipelines and pipeline runs.
import type { Migration } from '../backends/sqlite/database.js';

export const triggerMigrations: Migration[] = [
  {
    domain: 'triggers',
    version: 1,
    sql: `
      CREATE TABLE triggers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        position INTEGER NOT NULL,
        created INTEGER NOT NULL,
        spec TEXT NOT NULL
      );
      CREATE TABLE trigger_deliveries (
        trigger_id TEXT NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
        event_id INTEGER NOT NULL,
        path TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before INTEGER NOT NULL DEFAULT 0,
        activation TEXT,
        last_error TEXT,
        updated INTEGER NOT NULL,
        PRIMARY KEY (trigger_id, event_id)
      );
      CREATE INDEX trigger_deliveries_open ON trigger_deliveries (trigger_id, status) WHERE status IN ('pending', 'running', 'dead');
      CREATE TABLE pipelines (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        created INTEGER NOT NULL,
        spec TEXT NOT NULL
      );
      CREATE TABLE pipeline_runs (
        id TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        status TEXT NOT NULL,
        created INTEGER NOT NULL,
        record TEXT NOT NULL
      );
      CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (pipeline, id);
    `,
  },
];
