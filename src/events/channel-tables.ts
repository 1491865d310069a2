// Tables owned by the events API: channels and their subscriptions (they survive restarts), the
// path history of each watch (to replay from an old log position with the watch where it was then)
// and the position of the watch tracker in the event log.
import type { Migration } from '../backends/sqlite/database.js';

export const channelMigrations: Migration[] = [
  {
    domain: 'channels',
    version: 1,
    sql: `
      CREATE TABLE channels (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        client_id TEXT,
        timeout_s INTEGER NOT NULL,
        created INTEGER NOT NULL,
        -- ms since the epoch; NULL while a client is connected.
        disconnected_at INTEGER
      );
      CREATE INDEX channels_owner ON channels (owner);

      CREATE TABLE subscriptions (
        channel_id TEXT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        seq INTEGER NOT NULL,
        -- the selector as supplied, echoed by GET
        selector TEXT NOT NULL,
        -- inotify only: what is watched and how
        watch_path TEXT,
        is_dir INTEGER,
        flags TEXT,
        one_shot INTEGER,
        recursive INTEGER,
        -- the subscriber's scopes: events are reported only for paths they may read
        scopes TEXT NOT NULL,
        -- the log head when created: only later events match
        created_after INTEGER NOT NULL,
        -- the log position at which it ended; the row stays for replays until the log forgets it
        closed_after INTEGER,
        PRIMARY KEY (channel_id, id)
      );

      CREATE TABLE watch_paths (
        channel_id TEXT NOT NULL,
        subscription_id TEXT NOT NULL,
        since INTEGER NOT NULL,
        path TEXT NOT NULL,
        PRIMARY KEY (channel_id, subscription_id, since),
        FOREIGN KEY (channel_id, subscription_id) REFERENCES subscriptions (channel_id, id) ON DELETE CASCADE
      );

      CREATE TABLE watch_tracker (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        position INTEGER NOT NULL
      );
    `,
  },
  {
    domain: 'channels',
    version: 2,
    // The token that created a subscription: revoking it closes the subscription, and no event after
    // its expiry (ms since the epoch) is delivered. NULL for subscriptions created before this version.
    sql: `
      ALTER TABLE subscriptions ADD COLUMN token_id TEXT;
      ALTER TABLE subscriptions ADD COLUMN token_expires INTEGER;
      CREATE INDEX subscriptions_token ON subscriptions (token_id);
    `,
  },
];
