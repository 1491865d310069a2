// Persistence of channels and subscriptions in the embedded SQLite state. Closed inotify
// subscriptions stay as tombstones (with the log position where they ended) so that a replay from an
// older position reports what happened before the end; they are dropped once the log forgets that far.
import type { Db } from '../backends/sqlite/database.js';
import type { EventType } from './event-types.js';
import type { EventFlag, Watch } from './inotify.js';

export interface ChannelRecord {
  id: string;
  owner: string;
  clientId: string | undefined;
  timeoutS: number;
  created: number;
  /** ms since the epoch; undefined while a client is connected. */
  disconnectedAt: number | undefined;
}

export interface SubscriptionRecord {
  channelId: string;
  id: string;
  type: EventType;
  seq: number;
  /** The selector as supplied; GET echoes it. */
  selector: unknown;
  /** inotify only. */
  watch: Watch | undefined;
  scopes: string[];
  /** The token that created it; undefined for subscriptions older than this column. */
  tokenId: string | undefined;
  /** When that token expires (ms since the epoch): no event after it is delivered. */
  tokenExpires: number | undefined;
  createdAfter: number;
  closedAfter: number | undefined;
}

interface ChannelRow {
  id: string;
  owner: string;
  client_id: string | null;
  timeout_s: number;
  created: number;
  disconnected_at: number | null;
}

interface SubscriptionRow {
  channel_id: string;
  id: string;
  type: string;
  seq: number;
  selector: string;
  watch_path: string | null;
  is_dir: number | null;
  flags: string | null;
  one_shot: number | null;
  recursive: number | null;
  scopes: string;
  token_id: string | null;
  token_expires: number | null;
  created_after: number;
  closed_after: number | null;
}

const channelOf = (r: ChannelRow): ChannelRecord => ({
  id: r.id,
  owner: r.owner,
  clientId: r.client_id ?? undefined,
  timeoutS: r.timeout_s,
  created: r.created,
  disconnectedAt: r.disconnected_at ?? undefined,
});

function subscriptionOf(r: SubscriptionRow, pathOverride?: string): SubscriptionRecord {
  return {
    channelId: r.channel_id,
    id: r.id,
    type: r.type as EventType,
    seq: r.seq,
    selector: JSON.parse(r.selector) as unknown,
    watch:
      r.watch_path === null
        ? undefined
        : {
            path: pathOverride ?? r.watch_path,
            isDir: r.is_dir === 1,
            flags: new Set(JSON.parse(r.flags ?? '[]') as EventFlag[]),
            oneShot: r.one_shot === 1,
            recursive: r.recursive === 1,
          },
    scopes: JSON.parse(r.scopes) as string[],
    tokenId: r.token_id ?? undefined,
    tokenExpires: r.token_expires ?? undefined,
    createdAfter: r.created_after,
    closedAfter: r.closed_after ?? undefined,
  };
}

export class ChannelStore {
  private readonly q;

  constructor(private readonly db: Db) {
    this.q = {
      insertChannel: db.prepare(
        'INSERT INTO channels (id, owner, client_id, timeout_s, created, disconnected_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      channel: db.prepare('SELECT * FROM channels WHERE id = ?'),
      channels: db.prepare('SELECT * FROM channels ORDER BY created'),
      byOwner: db.prepare('SELECT * FROM channels WHERE owner = ? ORDER BY created'),
      countByOwner: db.prepare('SELECT COUNT(*) AS n FROM channels WHERE owner = ?'),
      deleteChannel: db.prepare('DELETE FROM channels WHERE id = ?'),
      setTimeout: db.prepare('UPDATE channels SET timeout_s = ? WHERE id = ?'),
      setDisconnected: db.prepare('UPDATE channels SET disconnected_at = ? WHERE id = ?'),
      insertSub: db.prepare(`INSERT INTO subscriptions
        (channel_id, id, type, seq, selector, watch_path, is_dir, flags, one_shot, recursive, scopes, token_id, token_expires, created_after)
        VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM subscriptions WHERE channel_id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      insertPath: db.prepare('INSERT OR REPLACE INTO watch_paths (channel_id, subscription_id, since, path) VALUES (?, ?, ?, ?)'),
      sub: db.prepare('SELECT * FROM subscriptions WHERE channel_id = ? AND id = ?'),
      liveSubs: db.prepare('SELECT * FROM subscriptions WHERE channel_id = ? AND closed_after IS NULL ORDER BY seq'),
      allLive: db.prepare('SELECT * FROM subscriptions WHERE closed_after IS NULL ORDER BY channel_id, seq'),
      liveByToken: db.prepare('SELECT * FROM subscriptions WHERE token_id = ? AND closed_after IS NULL ORDER BY channel_id, seq'),
      countLive: db.prepare('SELECT COUNT(*) AS n FROM subscriptions WHERE channel_id = ? AND closed_after IS NULL'),
      replaySubs: db.prepare(
        'SELECT * FROM subscriptions WHERE channel_id = ? AND (closed_after IS NULL OR closed_after > ?) ORDER BY seq',
      ),
      pathAt: db.prepare(
        'SELECT path FROM watch_paths WHERE channel_id = ? AND subscription_id = ? AND since <= ? ORDER BY since DESC LIMIT 1',
      ),
      deleteSub: db.prepare('DELETE FROM subscriptions WHERE channel_id = ? AND id = ?'),
      updateWatch: db.prepare(
        'UPDATE subscriptions SET selector = ?, flags = ?, one_shot = ?, recursive = ? WHERE channel_id = ? AND id = ?',
      ),
      moveWatch: db.prepare('UPDATE subscriptions SET watch_path = ? WHERE channel_id = ? AND id = ?'),
      close: db.prepare('UPDATE subscriptions SET closed_after = ? WHERE channel_id = ? AND id = ? AND closed_after IS NULL'),
      dropTombstones: db.prepare('DELETE FROM subscriptions WHERE closed_after IS NOT NULL AND closed_after < ?'),
      trackerPosition: db.prepare('SELECT position FROM watch_tracker WHERE id = 1'),
      setTrackerPosition: db.prepare(
        'INSERT INTO watch_tracker (id, position) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET position = excluded.position',
      ),
    };
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  insertChannel(c: ChannelRecord): void {
    this.q.insertChannel.run(c.id, c.owner, c.clientId ?? null, c.timeoutS, c.created, c.disconnectedAt ?? null);
  }

  channel(id: string): ChannelRecord | undefined {
    const r = this.q.channel.get(id) as ChannelRow | undefined;
    return r && channelOf(r);
  }

  channels(): ChannelRecord[] {
    return (this.q.channels.all() as ChannelRow[]).map(channelOf);
  }

  channelsOf(owner: string): ChannelRecord[] {
    return (this.q.byOwner.all(owner) as ChannelRow[]).map(channelOf);
  }

  countChannelsOf(owner: string): number {
    return (this.q.countByOwner.get(owner) as { n: number }).n;
  }

  deleteChannel(id: string): void {
    this.q.deleteChannel.run(id);
  }

  setTimeout(id: string, seconds: number): void {
    this.q.setTimeout.run(seconds, id);
  }

  setDisconnectedAt(id: string, at: number | undefined): void {
    this.q.setDisconnected.run(at ?? null, id);
  }

  /** Inserts a subscription, replacing a tombstone with the same id. */
  insertSubscription(s: Omit<SubscriptionRecord, 'seq' | 'closedAfter'>): void {
    this.transaction(() => {
      this.q.deleteSub.run(s.channelId, s.id);
      const w = s.watch;
      this.q.insertSub.run(
        s.channelId,
        s.id,
        s.type,
        s.channelId,
        JSON.stringify(s.selector),
        w?.path ?? null,
        w ? (w.isDir ? 1 : 0) : null,
        w ? JSON.stringify([...w.flags]) : null,
        w ? (w.oneShot ? 1 : 0) : null,
        w ? (w.recursive ? 1 : 0) : null,
        JSON.stringify(s.scopes),
        s.tokenId ?? null,
        s.tokenExpires ?? null,
        s.createdAfter,
      );
      if (w) this.q.insertPath.run(s.channelId, s.id, s.createdAfter, w.path);
    });
  }

  subscription(channelId: string, id: string): SubscriptionRecord | undefined {
    const r = this.q.sub.get(channelId, id) as SubscriptionRow | undefined;
    return r && subscriptionOf(r);
  }

  liveSubscriptions(channelId: string): SubscriptionRecord[] {
    return (this.q.liveSubs.all(channelId) as SubscriptionRow[]).map((r) => subscriptionOf(r));
  }

  allLiveSubscriptions(): SubscriptionRecord[] {
    return (this.q.allLive.all() as SubscriptionRow[]).map((r) => subscriptionOf(r));
  }

  liveSubscriptionsOfToken(tokenId: string): SubscriptionRecord[] {
    return (this.q.liveByToken.all(tokenId) as SubscriptionRow[]).map((r) => subscriptionOf(r));
  }

  countLiveSubscriptions(channelId: string): number {
    return (this.q.countLive.get(channelId) as { n: number }).n;
  }

  /** The subscriptions as they were at log position `at`: live ones and those closed later, watches where they were then. */
  subscriptionsAt(channelId: string, at: number): SubscriptionRecord[] {
    return (this.q.replaySubs.all(channelId, at) as SubscriptionRow[]).map((r) => {
      if (r.watch_path === null) return subscriptionOf(r);
      const then = this.q.pathAt.get(r.channel_id, r.id, Math.max(at, r.created_after)) as { path: string } | undefined;
      return subscriptionOf(r, then?.path);
    });
  }

  updateWatch(channelId: string, id: string, selector: unknown, watch: Watch): void {
    this.q.updateWatch.run(
      JSON.stringify(selector),
      JSON.stringify([...watch.flags]),
      watch.oneShot ? 1 : 0,
      watch.recursive ? 1 : 0,
      channelId,
      id,
    );
  }

  /** Records that the watch follows its target to `path` from log position `since` on. */
  moveWatch(channelId: string, id: string, since: number, path: string): void {
    this.q.moveWatch.run(path, channelId, id);
    this.q.insertPath.run(channelId, id, since, path);
  }

  closeSubscription(channelId: string, id: string, closedAfter: number): void {
    this.q.close.run(closedAfter, channelId, id);
  }

  deleteSubscription(channelId: string, id: string): void {
    this.q.deleteSub.run(channelId, id);
  }

  /** Drops tombstones of subscriptions that ended before the oldest event still in the log. */
  dropTombstonesBefore(position: number): number {
    return this.q.dropTombstones.run(position).changes;
  }

  trackerPosition(): number | undefined {
    return (this.q.trackerPosition.get() as { position: number } | undefined)?.position;
  }

  setTrackerPosition(position: number): void {
    this.q.setTrackerPosition.run(position);
  }
}
