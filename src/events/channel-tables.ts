// Tables owned by the events API: channels and their subscriptions (they survive restarts).
import type { Migration } from '../backends/sqlite/database.js';

export const channelMigrations: Migration[] = [];
