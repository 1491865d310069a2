// Channels and subscriptions of the dCache-compatible events API: their lifecycle (create, limits,
// disconnect timeout and garbage collection, shutdown), subscribing with inotify, placement and
// metronome selectors, and handing a connected client its stream. A subscription lives no longer
// than the token that created it. Knows nothing of HTTP beyond a response.
import { randomBytes, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Db } from '../backends/sqlite/database.js';
import type { SqliteEventLog } from '../backends/sqlite/event-log.js';
import type { Namespace } from '../storage/namespace.js';
import type { Config } from '../config.js';
import { formatScope, type Principal } from '../auth/scopes.js';
import { SluiceError } from '../errors.js';
import { normalizePath, type NsPath } from '../storage/paths.js';
import { ChannelStore, type ChannelRecord, type SubscriptionRecord } from './channel-store.js';
import { ChannelStream, streamWatchOf, type StreamWatch } from './channel-stream.js';
import { echoSelector, mergeFlags, parseInotifySelector, type InotifySelector, type Watch } from './inotify.js';
import { Metronome, parseMetronomeSelector, tickMessage } from './metronome.js';
import { echoPlacementSelector, parsePlacementSelector, placementWatch, type PlacementSelector } from './placement.js';
import { isEventType, type EventType } from './event-types.js';
import { SseWriter } from './sse.js';
import { WatchTracker, readPermission } from './watch-tracker.js';

export interface ChannelServiceDeps {
  db: Db;
  eventLog: SqliteEventLog;
  namespace: Namespace;
  config: Config;
  log: Logger;
}

export const MINIMUM_TIMEOUT_SECONDS = 1;
export const MAX_CLIENT_ID_LENGTH = 256;
const HEARTBEAT_MS = 15_000;
const TOMBSTONE_SWEEP_MS = 10 * 60_000;

/** Where a new connection starts reading: after `position`, with EVENT_LOSS first if events were lost. */
export interface StreamStart {
  position: number;
  eventLoss: boolean;
}

export type SubscribeResult = { status: 'CREATED' | 'MERGED'; type: EventType; id: string };

interface LiveChannel {
  record: ChannelRecord;
  gcTimer: NodeJS.Timeout | undefined;
  stream: ChannelStream | undefined;
  metronomes: Map<string, Metronome>;
}

/** A 16-byte random id in unpadded base64url (22 characters), like dCache's channel ids. */
const newChannelId = (): string => randomBytes(16).toString('base64url');

/** dCache's subscription id of a watch: the file id's bytes in unpadded base64url, stable per object. */
const watchIdOf = (fileId: string): string => Buffer.from(fileId, 'hex').toString('base64url');

export class ChannelService {
  private readonly store: ChannelStore;
  private readonly tracker: WatchTracker;
  private readonly channels = new Map<string, LiveChannel>();
  private sweep: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(readonly deps: ChannelServiceDeps) {
    this.store = new ChannelStore(deps.db);
    this.tracker = new WatchTracker(this.store, deps.eventLog, deps.log);
  }

  async start(): Promise<void> {
    this.tracker.start();
    await this.dropOldTombstones();
    const now = Date.now();
    for (const record of this.store.channels()) {
      if (record.disconnectedAt === undefined) {
        record.disconnectedAt = now;
        this.store.setDisconnectedAt(record.id, now);
      }
      const live: LiveChannel = { record, gcTimer: undefined, stream: undefined, metronomes: new Map() };
      this.channels.set(record.id, live);
      if (record.disconnectedAt + record.timeoutS * 1000 <= now) {
        this.deps.log.info({ channel: record.id, owner: record.owner }, 'channel expired while the server was down; deleted');
        this.deleteChannel(live);
        continue;
      }
      this.scheduleGc(live, record.disconnectedAt + record.timeoutS * 1000 - now);
      for (const s of this.store.liveSubscriptions(record.id)) {
        if (s.type === 'metronome') this.startMetronome(live, s.id, s.selector, s.tokenExpires);
      }
    }
    this.sweep = setInterval(() => void this.dropOldTombstones(), TOMBSTONE_SWEEP_MS);
    this.sweep.unref();
  }

  /** Sends SHUTDOWN to connected clients and stops timers. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.sweep) clearInterval(this.sweep);
    this.tracker.stop();
    const now = Date.now();
    for (const live of this.channels.values()) {
      if (live.gcTimer) clearTimeout(live.gcTimer);
      for (const m of live.metronomes.values()) m.stop();
      if (live.stream) {
        live.stream.end('SHUTDOWN');
        live.stream = undefined;
        this.store.setDisconnectedAt(live.record.id, now);
      }
    }
    this.channels.clear();
  }

  limits() {
    const c = this.deps.config.channels;
    return {
      minimumTimeout: MINIMUM_TIMEOUT_SECONDS,
      maximumTimeout: c.maxTimeoutSeconds,
      defaultTimeout: c.defaultTimeoutSeconds,
      maximumPerUser: c.maxPerUser,
    };
  }

  createChannel(p: Principal, clientId: string | undefined): string {
    if (this.store.countChannelsOf(p.subject) >= this.deps.config.channels.maxPerUser) {
      throw new SluiceError('TOO_MANY_REQUESTS', 'Too Many Channels');
    }
    const now = Date.now();
    const record: ChannelRecord = {
      id: newChannelId(),
      owner: p.subject,
      clientId: clientId ? clientId.slice(0, MAX_CLIENT_ID_LENGTH) : undefined,
      timeoutS: this.deps.config.channels.defaultTimeoutSeconds,
      created: now,
      disconnectedAt: now,
    };
    this.store.insertChannel(record);
    const live: LiveChannel = { record, gcTimer: undefined, stream: undefined, metronomes: new Map() };
    this.channels.set(record.id, live);
    this.scheduleGc(live, record.timeoutS * 1000);
    return record.id;
  }

  /** The caller's channel ids; `clientId` "" or null lists those created without one. */
  listChannels(p: Principal, clientId: string | null | undefined): string[] {
    const wanted = clientId === undefined ? undefined : clientId ? clientId.slice(0, MAX_CLIENT_ID_LENGTH) : null;
    return this.store
      .channelsOf(p.subject)
      .filter((c) => wanted === undefined || (c.clientId ?? null) === wanted)
      .map((c) => c.id);
  }

  /** The channel if the caller owns it: NOT_FOUND or FORBIDDEN otherwise. */
  channel(p: Principal, id: string): ChannelRecord {
    return this.live(p, id).record;
  }

  setTimeout(p: Principal, id: string, seconds: number): void {
    const live = this.live(p, id);
    if (seconds < MINIMUM_TIMEOUT_SECONDS) throw new SluiceError('BAD_REQUEST', 'Timeout shorter than minimum allowed');
    if (seconds > this.deps.config.channels.maxTimeoutSeconds) throw new SluiceError('BAD_REQUEST', 'Timeout longer than maximum allowed');
    this.store.setTimeout(id, seconds);
    live.record.timeoutS = seconds;
    if (!live.stream) {
      const now = Date.now();
      live.record.disconnectedAt = now;
      this.store.setDisconnectedAt(id, now);
      this.scheduleGc(live, seconds * 1000);
    }
  }

  closeChannel(p: Principal, id: string): void {
    this.deleteChannel(this.live(p, id));
  }

  listSubscriptions(p: Principal, channelId: string): { type: EventType; id: string }[] {
    this.live(p, channelId);
    this.tracker.catchUp();
    return this.store.liveSubscriptions(channelId).map((s) => ({ type: s.type, id: s.id }));
  }

  /** The selector of a subscription, as the client supplied it. */
  subscription(p: Principal, channelId: string, type: string, id: string): unknown {
    return this.liveSubscription(p, channelId, type, id).selector;
  }

  async subscribe(p: Principal, channelId: string, type: string, body: unknown): Promise<SubscribeResult> {
    this.live(p, channelId);
    if (!isEventType(type)) throw new SluiceError('BAD_SELECTOR', `Unknown event type: ${type}`);
    if (type === 'metronome') return this.subscribeMetronome(p, channelId, body);
    if (type === 'placement') return this.subscribePlacement(p, channelId, body);
    return this.subscribeInotify(p, channelId, body);
  }

  unsubscribe(p: Principal, channelId: string, type: string, id: string): void {
    const s = this.liveSubscription(p, channelId, type, id);
    this.endSubscription(this.channels.get(channelId)!, s.type, s.id);
  }

  /** Closes every live subscription created with this token (it was revoked); returns how many. */
  closeSubscriptionsOfToken(tokenId: string): number {
    this.tracker.catchUp();
    const subs = this.store.liveSubscriptionsOfToken(tokenId);
    for (const s of subs) {
      const live = this.channels.get(s.channelId);
      if (live) this.endSubscription(live, s.type, s.id);
    }
    return subs.length;
  }

  /** Where a connection with this Last-Event-ID header starts; a non-integer id means "live". */
  async streamStart(lastEventId: string | undefined): Promise<StreamStart> {
    const head = this.tracker.catchUp();
    if (lastEventId === undefined || !/^\s*-?\d+\s*$/.test(lastEventId)) return { position: head, eventLoss: false };
    const n = Number(lastEventId);
    if (n > head || n < 0) return { position: head, eventLoss: true };
    const oldest = await this.deps.eventLog.oldest();
    if (n + 1 < oldest) return { position: oldest - 1, eventLoss: true };
    return { position: n, eventLoss: false };
  }

  /**
   * Takes over the channel's stream with this response (a previous client gets COMPETING_CLIENT and
   * is disconnected) and starts sending from `start`.
   */
  connect(p: Principal, channelId: string, res: ServerResponse, start: StreamStart, urlOf: (type: EventType, id: string) => string): void {
    const live = this.live(p, channelId);
    if (live.stream) live.stream.end('COMPETING_CLIENT');
    this.tracker.catchUp();
    const watches: StreamWatch[] = this.store
      .subscriptionsAt(channelId, start.position)
      .filter((s): s is SubscriptionRecord & { watch: Watch } => s.watch !== undefined)
      .map(streamWatchOf);
    const stream = new ChannelStream({
      eventLog: this.deps.eventLog,
      writer: new SseWriter(res, HEARTBEAT_MS),
      urlOf,
      position: start.position,
      watches,
    });
    if (live.gcTimer) clearTimeout(live.gcTimer);
    live.gcTimer = undefined;
    live.stream = stream;
    live.record.disconnectedAt = undefined;
    this.store.setDisconnectedAt(channelId, undefined);
    stream.onClose(() => {
      if (live.stream !== stream || this.stopped || !this.channels.has(channelId)) return;
      live.stream = undefined;
      const now = Date.now();
      live.record.disconnectedAt = now;
      this.store.setDisconnectedAt(channelId, now);
      this.scheduleGc(live, live.record.timeoutS * 1000);
    });
    if (start.eventLoss) stream.sendEventLoss();
    stream.start();
  }

  private live(p: Principal, id: string): LiveChannel {
    const live = this.channels.get(id);
    if (!live) throw new SluiceError('NOT_FOUND', 'No such channel');
    if (live.record.owner !== p.subject) throw new SluiceError('FORBIDDEN', 'Access denied');
    return live;
  }

  private liveSubscription(p: Principal, channelId: string, type: string, id: string): SubscriptionRecord {
    this.live(p, channelId);
    this.tracker.catchUp();
    const s = this.store.subscription(channelId, id);
    if (!s || s.type !== type || s.closedAfter !== undefined) throw new SluiceError('NOT_FOUND', 'No such subscription');
    return s;
  }

  private checkSubscriptionLimit(channelId: string): void {
    if (this.store.countLiveSubscriptions(channelId) >= this.deps.config.channels.maxSubscriptionsPerChannel) {
      throw new SluiceError('TOO_MANY_REQUESTS', 'Too Many Subscriptions');
    }
  }

  /** The object a selector names: it must exist and the caller must be allowed to read it. */
  private async targetOf(p: Principal, path: NsPath) {
    let entry;
    try {
      entry = await this.deps.namespace.find(p, path);
    } catch (e) {
      if (e instanceof SluiceError && e.code === 'FORBIDDEN') throw new SluiceError('BAD_SELECTOR', 'Permission denied: Not allowed.');
      throw e;
    }
    if (!entry) throw new SluiceError('BAD_SELECTOR', `Not found: Problem with path: No such file or directory: ${path}`);
    return entry;
  }

  private async subscribeInotify(p: Principal, channelId: string, body: unknown): Promise<SubscribeResult> {
    const selector = parseInotifySelector(body);
    const path = normalizePath(selector.path);
    const entry = await this.targetOf(p, path);
    if (selector.onlyDir && entry.type !== 'DIR')
      throw new SluiceError('BAD_SELECTOR', `Failed condition: IN_ONLYDIR with ${entry.type} target`);
    if (selector.recursive && entry.type !== 'DIR')
      throw new SluiceError('BAD_SELECTOR', `Failed condition: recursive with ${entry.type} target`);
    const live = this.channels.get(channelId);
    if (!live) throw new SluiceError('NOT_FOUND', 'No such channel');
    const id = watchIdOf(entry.fileId);
    const echo = echoSelector(body as InotifySelector);
    const head = this.tracker.catchUp();
    let existing = this.store.subscription(channelId, id);
    if (existing && existing.closedAfter === undefined && (existing.tokenExpires ?? Infinity) <= Date.now()) {
      // Its token expired before any event ended it: end it now rather than merge into it.
      this.endSubscription(live, 'inotify', id);
      existing = undefined;
    }
    if (existing?.watch && existing.closedAfter === undefined) {
      const old = existing.watch;
      const watch: Watch = {
        path: old.path,
        isDir: old.isDir,
        flags: new Set(mergeFlags([...old.flags], selector)),
        oneShot: selector.maskAdd ? old.oneShot || selector.oneShot : selector.oneShot,
        recursive: selector.maskAdd ? old.recursive || selector.recursive : selector.recursive,
      };
      this.store.updateWatch(channelId, id, echo, watch);
      this.tracker.track({ ...existing, watch });
      live.stream?.updateWatch(id, watch);
      return { status: 'MERGED', type: 'inotify', id };
    }
    this.checkSubscriptionLimit(channelId);
    const watch: Watch = {
      path,
      isDir: entry.type === 'DIR',
      flags: new Set(selector.flags),
      oneShot: selector.oneShot,
      recursive: selector.recursive,
    };
    const scopes = p.scopes.map(formatScope);
    // With "since", the subscription also covers history still in the log (watching the path as it is now).
    const createdAfter = selector.since === undefined ? head : Math.min(head, selector.since);
    const token = { tokenId: p.tokenId, tokenExpires: p.expires };
    this.store.insertSubscription({ channelId, id, type: 'inotify', selector: echo, watch, scopes, ...token, createdAfter });
    this.tracker.track(this.store.subscription(channelId, id)!);
    live.stream?.newSubscription('inotify', id, {
      id,
      watch: { ...watch },
      createdAfter,
      until: undefined,
      tokenExpires: p.expires,
      mayRead: readPermission(scopes),
    });
    return { status: 'CREATED', type: 'inotify', id };
  }

  /** A new subscription per request (never merged), with a random id like metronome's. */
  private async subscribePlacement(p: Principal, channelId: string, body: unknown): Promise<SubscribeResult> {
    const selector = parsePlacementSelector(body);
    const path = normalizePath(selector.path);
    const entry = await this.targetOf(p, path);
    const watch = placementWatch(selector, path, entry.type === 'DIR', entry.type);
    const live = this.channels.get(channelId);
    if (!live) throw new SluiceError('NOT_FOUND', 'No such channel');
    this.checkSubscriptionLimit(channelId);
    const id = randomUUID();
    const head = this.tracker.catchUp();
    const createdAfter = selector.since === undefined ? head : Math.min(head, selector.since);
    const selectorEcho = echoPlacementSelector(body as PlacementSelector);
    const token = { tokenId: p.tokenId, tokenExpires: p.expires };
    const scopes = p.scopes.map(formatScope);
    this.store.insertSubscription({ channelId, id, type: 'placement', selector: selectorEcho, watch, scopes, ...token, createdAfter });
    const record = this.store.subscription(channelId, id)! as SubscriptionRecord & { watch: Watch };
    this.tracker.track(record);
    live.stream?.newSubscription('placement', id, streamWatchOf(record));
    return { status: 'CREATED', type: 'placement', id };
  }

  private subscribeMetronome(p: Principal, channelId: string, body: unknown): SubscribeResult {
    const selector = parseMetronomeSelector(body);
    this.checkSubscriptionLimit(channelId);
    const live = this.channels.get(channelId)!;
    const id = randomUUID();
    const scopes = p.scopes.map(formatScope);
    this.store.insertSubscription({
      channelId,
      id,
      type: 'metronome',
      selector: selector.echo,
      watch: undefined,
      scopes,
      tokenId: p.tokenId,
      tokenExpires: p.expires,
      createdAfter: this.deps.eventLog.headSync(),
    });
    live.stream?.newSubscription('metronome', id);
    this.startMetronome(live, id, selector.echo, p.expires);
    return { status: 'CREATED', type: 'metronome', id };
  }

  private startMetronome(live: LiveChannel, id: string, echo: unknown, tokenExpires: number | undefined): void {
    const selector = parseMetronomeSelector(echo);
    const metronome = new Metronome(
      selector,
      (n) => {
        if (tokenExpires !== undefined && Date.now() >= tokenExpires) this.endSubscription(live, 'metronome', id);
        else live.stream?.sendMetronomeTick(id, tickMessage(selector.message, live.record.owner, n));
      },
      () => this.endSubscription(live, 'metronome', id),
    );
    live.metronomes.set(id, metronome);
    metronome.start();
  }

  private endSubscription(live: LiveChannel, type: EventType, id: string): void {
    const channelId = live.record.id;
    if (type === 'metronome') {
      live.metronomes.get(id)?.stop();
      live.metronomes.delete(id);
      this.store.deleteSubscription(channelId, id);
    } else {
      this.store.closeSubscription(channelId, id, this.tracker.catchUp());
      this.tracker.untrack(channelId, id);
    }
    live.stream?.subscriptionClosed(type, id);
  }

  private deleteChannel(live: LiveChannel): void {
    const id = live.record.id;
    for (const s of this.store.liveSubscriptions(id)) this.endSubscription(live, s.type, s.id);
    if (live.gcTimer) clearTimeout(live.gcTimer);
    live.stream?.end();
    live.stream = undefined;
    this.channels.delete(id);
    this.store.deleteChannel(id);
  }

  private scheduleGc(live: LiveChannel, delayMs: number): void {
    if (live.gcTimer) clearTimeout(live.gcTimer);
    live.gcTimer = setTimeout(
      () => {
        live.gcTimer = undefined;
        if (live.stream || this.channels.get(live.record.id) !== live) return;
        this.deps.log.info({ channel: live.record.id, owner: live.record.owner }, 'channel without client past its timeout; deleted');
        this.deleteChannel(live);
      },
      Math.max(0, delayMs),
    );
    live.gcTimer.unref();
  }

  private async dropOldTombstones(): Promise<void> {
    try {
      const dropped = this.store.dropTombstonesBefore(await this.deps.eventLog.oldest());
      if (dropped > 0) this.deps.log.debug({ dropped }, 'dropped ended subscriptions older than the event log');
    } catch (err) {
      this.deps.log.error({ err }, 'could not drop ended subscriptions');
    }
  }
}
