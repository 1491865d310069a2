// The events API's SSE streams with a real client (the `eventsource` package): inotify sequences of
// namespace changes, Last-Event-ID replay from the durable log, recursive watches, competing
// clients, permission filtering, metronome ticks and channel garbage collection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { startServer, authed, type RunningServer } from './support/server.js';
import { connectSse, inotifyEvents, isSystem, type SseClient } from './support/sse.js';
import { normalizePath } from '../src/storage/paths.js';
import type { Principal } from '../src/auth/scopes.js';

let server: RunningServer;
let api: ReturnType<typeof authed>;
let admin: Principal;
const open: SseClient[] = [];

before(async () => {
  server = await startServer();
  api = authed(server);
  admin = server.core!.tokens.authenticate(server.token);
});
after(async () => {
  for (const c of open) c.close();
  await server.stop();
});

const ns = () => server.core!.namespace;
const put = (path: string, text = 'data') => ns().put(admin, normalizePath(path), Readable.from([Buffer.from(text)]));
const mkdir = (path: string) => ns().mkdir(admin, normalizePath(path));
const json = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

async function channel(token = server.token): Promise<string> {
  return (await authed(server, token)('/api/v1/events/channels', { method: 'POST' })).headers.get('location')!;
}

async function watch(channelUrl: string, selector: unknown, token = server.token): Promise<string> {
  const res = await authed(server, token)(new URL(channelUrl).pathname + '/subscriptions/inotify', json(selector));
  assert.equal(res.status, 201, await res.clone().text());
  return res.headers.get('location')!;
}

async function listen(channelUrl: string, token = server.token, headers: Record<string, string> = {}): Promise<SseClient> {
  const c = await connectSse(channelUrl, token, headers);
  open.push(c);
  return c;
}

test('a PUT, a rename and a delete in a watched directory give the dCache sequence', async () => {
  await mkdir('/seq');
  const ch = await channel();
  const client = await listen(ch);
  const sub = await watch(ch, { path: '/seq' });
  await client.waitFor(isSystem('NEW_SUBSCRIPTION'));
  assert.deepEqual(client.events[0]!.data, { type: 'NEW_SUBSCRIPTION', subscription: sub });

  await put('/seq/a.txt');
  await ns().move(admin, normalizePath('/seq/a.txt'), normalizePath('/seq/b.txt'), { overwrite: false });
  await ns().remove(admin, normalizePath('/seq/b.txt'));
  await mkdir('/seq/sub');
  const got = await client.waitFor((e) => e.type === 'inotify', 9);
  const events = inotifyEvents(got);
  const cookie = (events[5] as { cookie: string }).cookie;
  assert.equal(typeof cookie, 'string');
  assert.deepEqual(events, [
    { name: 'a.txt', mask: ['IN_CREATE'] },
    { name: 'a.txt', mask: ['IN_OPEN'] },
    { name: 'a.txt', mask: ['IN_MODIFY'] },
    { name: 'a.txt', mask: ['IN_CLOSE_WRITE'] },
    { name: 'a.txt', mask: ['IN_ATTRIB'] },
    { name: 'a.txt', cookie, mask: ['IN_MOVED_FROM'] },
    { name: 'b.txt', cookie, mask: ['IN_MOVED_TO'] },
    { name: 'b.txt', mask: ['IN_DELETE'] },
    { name: 'sub', mask: ['IN_CREATE', 'IN_ISDIR'] },
  ]);
  for (const e of got) assert.equal((e.data as { subscription: string }).subscription, sub);
  const ids = got.map((e) => Number(e.lastEventId));
  assert.deepEqual(
    ids,
    [...ids].sort((a, b) => a - b),
  );
});

test('the watch follows its target, and its deletion closes it: IN_DELETE_SELF, SUBSCRIPTION_CLOSED, IN_IGNORED', async () => {
  await mkdir('/follow');
  const ch = await channel();
  const client = await listen(ch);
  const sub = await watch(ch, { path: '/follow', flags: ['IN_CREATE', 'IN_MOVE_SELF', 'IN_DELETE_SELF'] });
  await ns().move(admin, normalizePath('/follow'), normalizePath('/followed'), { overwrite: false });
  await put('/followed/x');
  await ns().remove(admin, normalizePath('/followed'));
  await client.waitFor((e) => e.type === 'inotify' && (e.data as { event: { mask: string[] } }).event.mask[0] === 'IN_IGNORED');
  assert.deepEqual(
    client.events
      .slice(1)
      .map((e) => [e.type, e.type === 'SYSTEM' ? (e.data as { type: string }).type : (e.data as { event: unknown }).event]),
    [
      ['inotify', { mask: ['IN_MOVE_SELF', 'IN_ISDIR'] }],
      ['inotify', { name: 'x', mask: ['IN_CREATE'] }],
      ['inotify', { mask: ['IN_DELETE_SELF'] }],
      ['SYSTEM', 'SUBSCRIPTION_CLOSED'],
      ['inotify', { mask: ['IN_IGNORED'] }],
    ],
  );
  assert.equal((await api(new URL(sub).pathname)).status, 404);
});

test('a reconnect with Last-Event-ID gets exactly the missed events', async () => {
  await mkdir('/resume');
  const ch = await channel();
  await watch(ch, { path: '/resume', flags: ['IN_CLOSE_WRITE'] });
  const first = await listen(ch);
  await put('/resume/one');
  const [seen] = await first.waitFor((e) => e.type === 'inotify');
  first.close();
  await put('/resume/two');
  await put('/resume/three');
  const second = await listen(ch, server.token, { 'last-event-id': seen!.lastEventId });
  const missed = await second.waitFor((e) => e.type === 'inotify', 2);
  assert.deepEqual(inotifyEvents(missed), [
    { name: 'two', mask: ['IN_CLOSE_WRITE'] },
    { name: 'three', mask: ['IN_CLOSE_WRITE'] },
  ]);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(second.events.length, 2, 'nothing beyond the missed events');
});

test('a Last-Event-ID older than the log gives EVENT_LOSS first', async () => {
  const ch = await channel();
  await server.core!.db.prepare('DELETE FROM events WHERE id < ?').run(server.core!.eventLog.headSync());
  const client = await listen(ch, server.token, { 'last-event-id': '0' });
  await client.waitFor(isSystem('EVENT_LOSS'));
});

test('a recursive watch sees a file created in a new subdirectory', async () => {
  await mkdir('/tree');
  const ch = await channel();
  const client = await listen(ch);
  await watch(ch, { path: '/tree', flags: ['IN_CREATE'], recursive: true });
  await mkdir('/tree/new');
  await put('/tree/new/file.h5');
  const got = await client.waitFor((e) => e.type === 'inotify', 2);
  assert.deepEqual(inotifyEvents(got), [
    { name: 'new', mask: ['IN_CREATE', 'IN_ISDIR'] },
    { name: 'new/file.h5', mask: ['IN_CREATE'] },
  ]);
});

test('a second client takes the channel over: the first gets COMPETING_CLIENT', async () => {
  const ch = await channel();
  const first = await listen(ch);
  const closed = new Promise<void>((resolve) => first.source.addEventListener('SYSTEM', () => (first.close(), resolve())));
  const second = await listen(ch);
  await closed;
  assert.ok(isSystem('COMPETING_CLIENT')(first.events.at(-1)!));
  assert.equal(second.events.length, 0);
});

test('events on paths the subscriber may not read are not delivered', async () => {
  await mkdir('/shared');
  await mkdir('/shared/open');
  await mkdir('/shared/secret');
  const token = (
    (await (await api('/api/v1/tokens', json({ subject: 'dora', scopes: ['storage.read:/shared/open'] }))).json()) as { secret: string }
  ).secret;
  const ch = await channel(token);
  const dora = await listen(ch, token);
  await watch(ch, { path: '/shared/open', flags: ['IN_CREATE'] }, token);
  await put('/shared/open/o.txt');
  await ns().move(admin, normalizePath('/shared/open'), normalizePath('/shared/secret/open'), { overwrite: false });
  await put('/shared/secret/open/s.txt');
  await mkdir('/shared/open');
  await put('/shared/open/later.txt');
  await dora.waitFor((e) => e.type === 'inotify');
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(
    inotifyEvents(dora.events),
    [{ name: 'o.txt', mask: ['IN_CREATE'] }],
    'the watch followed its directory to where dora may not read',
  );
});

test('metronome ticks carry the message with ${username} and ${count}, then the subscription closes', async () => {
  const ch = await channel();
  const client = await listen(ch);
  const res = await api(
    new URL(ch).pathname + '/subscriptions/metronome',
    json({ delay: 0.01, count: 2, message: '${username}-${count}' }),
  );
  const sub = res.headers.get('location')!;
  await client.waitFor(isSystem('SUBSCRIPTION_CLOSED'));
  assert.deepEqual(
    client.events.map((e) => e.data),
    [
      { type: 'NEW_SUBSCRIPTION', subscription: sub },
      { event: 'admin-1', subscription: sub },
      { event: 'admin-2', subscription: sub },
      { type: 'SUBSCRIPTION_CLOSED', subscription: sub },
    ],
  );
});

test('DELETE of a subscription sends SUBSCRIPTION_CLOSED and IN_IGNORED', async () => {
  await mkdir('/cancel');
  const ch = await channel();
  const client = await listen(ch);
  const sub = await watch(ch, { path: '/cancel' });
  assert.equal((await api(new URL(sub).pathname, { method: 'DELETE' })).status, 204);
  await client.waitFor((e) => e.type === 'inotify');
  assert.deepEqual(
    client.events.slice(1).map((e) => e.data),
    [
      { type: 'SUBSCRIPTION_CLOSED', subscription: sub },
      { event: { mask: ['IN_IGNORED'] }, subscription: sub },
    ],
  );
});

test('a channel without a client is deleted after its timeout', async () => {
  const ch = new URL(await channel()).pathname;
  assert.equal(
    (await api(ch, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ timeout: 1 }) })).status,
    204,
  );
  assert.equal((await api(ch, { headers: { accept: 'application/json' } })).status, 200);
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal((await api(ch, { headers: { accept: 'application/json' } })).status, 404);
});

test('stopping the server sends SHUTDOWN to connected clients', async () => {
  const other = await startServer();
  const ch = (await authed(other)('/api/v1/events/channels', { method: 'POST' })).headers.get('location')!;
  const client = await connectSse(ch, other.token);
  const shutdown = new Promise<void>((resolve) => client.source.addEventListener('SYSTEM', () => (client.close(), resolve())));
  await other.stop();
  await shutdown;
  assert.ok(isSystem('SHUTDOWN')(client.events[0]!));
});

test('"since" lets a new channel replay history still in the log', async () => {
  await mkdir('/hist');
  const before = server.core!.eventLog.headSync();
  await put('/hist/old-1');
  await put('/hist/old-2');
  const ch = await channel();
  await watch(ch, { path: '/hist', flags: ['IN_CLOSE_WRITE'], since: before });
  const client = await listen(ch, server.token, { 'last-event-id': String(before) });
  await put('/hist/new');
  const got = await client.waitFor((e) => e.type === 'inotify', 3);
  assert.deepEqual(
    got.map((e) => (e.data as { event: { name: string } }).event.name),
    ['old-1', 'old-2', 'new'],
  );
  const bad = await api(new URL(ch).pathname + '/subscriptions/inotify', json({ path: '/hist', since: -1 }));
  assert.equal(bad.status, 400);
});

async function newToken(body: {
  subject: string;
  scopes: string[];
  expiresIn?: number;
}): Promise<{ secret: string; id: string; expires: string | null }> {
  const res = await api('/api/v1/tokens', json(body));
  assert.equal(res.status, 201, await res.clone().text());
  const { secret, token } = (await res.json()) as { secret: string; token: { id: string; expires: string | null } };
  return { secret, id: token.id, expires: token.expires };
}

test('revoking a token closes the subscriptions it created: SUBSCRIPTION_CLOSED, and later events are not delivered', async () => {
  await mkdir('/x');
  const bob = await newToken({ subject: 'bob', scopes: ['storage.read:/x'] });
  const ch = await channel(bob.secret);
  const client = await listen(ch, bob.secret);
  const sub = await watch(ch, { path: '/x', flags: ['IN_CLOSE_WRITE'] }, bob.secret);
  await put('/x/before');
  await client.waitFor((e) => e.type === 'inotify');

  assert.equal((await api(`/api/v1/tokens/${bob.id}`, { method: 'DELETE' })).status, 200);
  await client.waitFor((e) => e.type === 'inotify' && (e.data as { event: { mask: string[] } }).event.mask[0] === 'IN_IGNORED');
  await put('/x/after');
  await expectOnlyBeforeThenClosed(client, sub);
  const other = await newToken({ subject: 'bob', scopes: ['storage.read:/x'] });
  assert.deepEqual(await (await authed(server, other.secret)(new URL(ch).pathname + '/subscriptions')).json(), []);
});

/** The client saw its subscription open, the event on "before", then the close, and nothing after. */
async function expectOnlyBeforeThenClosed(client: SseClient, sub: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(
    client.events.map((e) => e.data),
    [
      { type: 'NEW_SUBSCRIPTION', subscription: sub },
      { event: { name: 'before', mask: ['IN_CLOSE_WRITE'] }, subscription: sub },
      { type: 'SUBSCRIPTION_CLOSED', subscription: sub },
      { event: { mask: ['IN_IGNORED'] }, subscription: sub },
    ],
  );
}

test('a subscription from before tokens were recorded (token_id NULL) survives a revocation', async () => {
  await mkdir('/legacy');
  const old = await newToken({ subject: 'lena', scopes: ['storage.read:/legacy'] });
  const ch = await channel(old.secret);
  const sub = await watch(ch, { path: '/legacy' }, old.secret);
  server.core!.db.prepare('UPDATE subscriptions SET token_id = NULL, token_expires = NULL WHERE token_id = ?').run(old.id);
  assert.equal((await api(`/api/v1/tokens/${old.id}`, { method: 'DELETE' })).status, 200);
  const now = await newToken({ subject: 'lena', scopes: ['storage.read:/legacy'] });
  assert.deepEqual(await (await authed(server, now.secret)(new URL(ch).pathname + '/subscriptions')).json(), [sub]);
});

test('a subscription stops with its expiring token: no event after the expiry, SUBSCRIPTION_CLOSED instead', async () => {
  await mkdir('/exp');
  const eve = await newToken({ subject: 'eve', scopes: ['storage.read:/exp'], expiresIn: 1 });
  const ch = await channel(eve.secret);
  const client = await listen(ch, eve.secret);
  const sub = await watch(ch, { path: '/exp', flags: ['IN_CLOSE_WRITE'] }, eve.secret);
  await put('/exp/before');
  await client.waitFor((e) => e.type === 'inotify');

  await new Promise((r) => setTimeout(r, Date.parse(eve.expires!) - Date.now() + 50));
  await put('/exp/after');
  await client.waitFor((e) => e.type === 'inotify' && (e.data as { event: { mask: string[] } }).event.mask[0] === 'IN_IGNORED');
  await put('/exp/later');
  await expectOnlyBeforeThenClosed(client, sub);
});

test('a client that never reads its stream holds up neither other channels nor other requests', async () => {
  await mkdir('/slow');
  await mkdir('/fast');
  const slowCh = await channel();
  await watch(slowCh, { path: '/slow' });
  const { request } = await import('node:http');
  const stalled = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = request(slowCh, { headers: { authorization: `Bearer ${server.token}`, accept: 'text/event-stream' } }, (res) => {
      res.pause();
      resolve(res);
    });
    req.on('error', reject);
    req.end();
  });
  try {
    const fastCh = await channel();
    const fast = await listen(fastCh);
    await watch(fastCh, { path: '/fast', flags: ['IN_CREATE'] });

    // Five events of a few hundred bytes each per PUT: megabytes the stalled client never takes.
    const padding = 'x'.repeat(200);
    let slowestHealthMs = 0;
    for (let i = 0; i < 3000; i += 30) {
      await Promise.all(Array.from({ length: 30 }, (_, j) => put(`/slow/${i + j}-${padding}`)));
      if (i % 150 === 120) {
        await mkdir(`/fast/d${(i + 30) / 150}`);
        const t0 = performance.now();
        assert.equal((await fetch(server.url + '/api/v1/health')).status, 200);
        slowestHealthMs = Math.max(slowestHealthMs, performance.now() - t0);
      }
    }
    const got = await fast.waitFor((e) => e.type === 'inotify', 20, 2000);
    assert.deepEqual(
      inotifyEvents(got).map((e) => (e as { name: string }).name),
      Array.from({ length: 20 }, (_, i) => `d${i + 1}`),
    );
    assert.ok(slowestHealthMs < 500, `health answered in ${slowestHealthMs} ms`);
  } finally {
    stalled.destroy();
  }
});
