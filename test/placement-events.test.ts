// Placement events (replica added/removed/bad, flushed, staged, QoS and rule state changes) through
// the events API's `placement` event type with a real SSE client, and through triggers into a real
// function as CloudEvents. The placement engine is not wired here: the test appends its events to
// the durable log the way the namespace store appends its own (one transaction, then a wake-up).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { startServer, authed, tempDir, type RunningServer } from './support/server.js';
import { until } from './support/cli.js';
import { deploy } from './support/functions.js';
import { connectSse, type ReceivedEvent, type SseClient } from './support/sse.js';
import { normalizePath } from '../src/storage/paths.js';
import { transactWithEvents } from '../src/backends/sqlite/transact.js';
import type { Principal } from '../src/auth/scopes.js';
import { PLACEMENT_TYPES, type EventId, type NewStorageEvent, type PlacementType } from '../src/events/types.js';
import { cloudEventType, toCloudEvent } from '../src/events/cloudevents.js';
import { compileFilter } from '../src/triggers/filter.js';
import type { TriggerFilter } from '../src/triggers/types.js';

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

const ns = (s = server) => s.core!.namespace;
const put = (path: string, text = 'data', s = server) =>
  ns(s).put(s.core!.tokens.authenticate(s.token), normalizePath(path), Readable.from([Buffer.from(text)]));
const mkdir = (path: string, s = server) => ns(s).mkdir(s.core!.tokens.authenticate(s.token), normalizePath(path));
const json = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/** Appends events as the placement engine will (one outbox transaction, consumers woken after it). Returns the new head. */
async function append(events: NewStorageEvent[], s = server): Promise<number> {
  const { db, eventLog } = s.core!;
  await transactWithEvents(db, eventLog, undefined, (out) => void out.push(...events));
  return eventLog.headSync();
}

const available = (path: string, fileId: string, se = 'disk1', size = 4): NewStorageEvent => ({
  type: 'REPLICA_AVAILABLE',
  path,
  isDir: false,
  data: { fileId, se, size, rule: 'rule-1', transfer: 'tr-1' },
});
const flushed = (path: string, fileId: string, se = 'tape1'): NewStorageEvent => ({
  type: 'REPLICA_FLUSHED',
  path,
  isDir: false,
  data: { fileId, se },
});

async function channel(token = server.token, s = server): Promise<string> {
  return (await authed(s, token)('/api/v1/events/channels', { method: 'POST' })).headers.get('location')!;
}

async function subscribe(channelUrl: string, type: string, selector: unknown, token = server.token, s = server): Promise<string> {
  const res = await authed(s, token)(new URL(channelUrl).pathname + `/subscriptions/${type}`, json(selector));
  assert.equal(res.status, 201, await res.clone().text());
  return res.headers.get('location')!;
}

/** A real SSE client (the `eventsource` package), closed after the tests. */
async function listen(channelUrl: string, token = server.token, headers: Record<string, string> = {}): Promise<SseClient> {
  const client = await connectSse(channelUrl, token, headers);
  open.push(client);
  return client;
}

const of = (type: string) => (e: ReceivedEvent) => e.type === type;
const payloads = (events: ReceivedEvent[], type = 'placement') => events.filter(of(type)).map((e) => (e.data as { event: unknown }).event);
const fileIdOf = async (path: string) => (await ns().find(admin, normalizePath(path)))!.fileId;
const settle = () => new Promise((r) => setTimeout(r, 150));

test('CloudEvent types: placement events under org.sluice.replica/qos/rule, inotify under org.sluice.storage', () => {
  assert.deepEqual(
    PLACEMENT_TYPES.map((t) => cloudEventType(t)),
    [
      'org.sluice.replica.AVAILABLE',
      'org.sluice.replica.REMOVED',
      'org.sluice.replica.BAD',
      'org.sluice.replica.FLUSHED',
      'org.sluice.replica.STAGED',
      'org.sluice.qos.CHANGED',
      'org.sluice.rule.STATE',
    ],
  );
  assert.equal(cloudEventType('IN_CLOSE_WRITE'), 'org.sluice.storage.IN_CLOSE_WRITE');
  const e = toCloudEvent(
    { id: 7 as EventId, time: 0, type: 'REPLICA_STAGED', path: '/t/f', isDir: false, data: { fileId: 'ab', se: 'tape', pinnedUntil: 5 } },
    'sluice://h',
  );
  assert.equal(e.type, 'org.sluice.replica.STAGED');
  assert.equal(e.subject, '/t/f');
  assert.deepEqual(e.data, { path: '/t/f', isDir: false, fileId: 'ab', se: 'tape', pinnedUntil: 5 });
});

test('trigger filters on placement events: path and glob as for files, RULE_STATE at its scope, size looked up when not carried', () => {
  const f = (filter: Partial<TriggerFilter>) =>
    compileFilter({ events: ['REPLICA_FLUSHED', 'RULE_STATE'], path: '/t', recursive: true, directories: false, ...filter });
  const ev = (type: PlacementType, path: string, isDir = false, data: Record<string, unknown> = {}) => ({
    id: 1 as EventId,
    time: 0,
    type,
    path,
    isDir,
    data,
  });
  assert.ok(f({}).matches(ev('REPLICA_FLUSHED', '/t/raw/a.nxs')));
  assert.ok(!f({}).matches(ev('REPLICA_FLUSHED', '/u/a.nxs')));
  assert.ok(!f({}).matches(ev('REPLICA_STAGED', '/t/a.nxs')), 'a type not selected');
  assert.ok(!f({ recursive: false }).matches(ev('REPLICA_FLUSHED', '/t/raw/a.nxs')));
  assert.ok(f({ glob: '**/*.nxs' }).matches(ev('REPLICA_FLUSHED', '/t/raw/a.nxs')));
  assert.ok(!f({ glob: '**/*.nxs' }).matches(ev('REPLICA_FLUSHED', '/t/raw/a.h5')));
  assert.ok(f({}).matches(ev('RULE_STATE', '/t', true)), 'a rule scoped at the path itself, not gated by `directories`');
  assert.ok(f({}).matches(ev('RULE_STATE', '/t/raw', true)));
  const sized = f({ minSize: 5 });
  assert.ok(sized.matches(ev('REPLICA_FLUSHED', '/t/a')), 'no size in the event: decided on the file');
  assert.ok(sized.needsAttributesOf(ev('REPLICA_FLUSHED', '/t/a')));
  assert.ok(sized.attributesMatch({ labels: [], xattrs: {}, size: 5 }, ev('REPLICA_FLUSHED', '/t/a')));
  assert.ok(!sized.attributesMatch({ labels: [], xattrs: {}, size: 4 }, ev('REPLICA_FLUSHED', '/t/a')));
  assert.ok(!sized.matches(ev('RULE_STATE', '/t/raw', true)), 'a rule has no size');
  const available = compileFilter({ events: ['REPLICA_AVAILABLE'], path: '/t', recursive: true, directories: false, minSize: 5 });
  const small = { ...ev('REPLICA_FLUSHED', '/t/a', false, { size: 4 }), type: 'REPLICA_AVAILABLE' as const };
  assert.ok(!available.matches(small), 'REPLICA_AVAILABLE carries its size');
  assert.ok(!available.needsAttributesOf(small));
});

test('the placement event type is listed with its description and JSON Schemas', async () => {
  assert.deepEqual(await (await api('/api/v1/events/eventTypes')).json(), ['inotify', 'metronome', 'placement']);
  const { description } = (await (await api('/api/v1/events/eventTypes/placement')).json()) as { description: string };
  assert.match(description, /replicas/);
  const selector = (await (await api('/api/v1/events/eventTypes/placement/selector')).json()) as {
    $id: string;
    required: string[];
    properties: { types: { items: { enum: string[] } } };
    additionalProperties: boolean;
  };
  assert.equal(selector.$id, 'https://sluice.dev/events/placementSelectors#');
  assert.deepEqual(selector.required, ['path']);
  assert.deepEqual(selector.properties.types.items.enum, [...PLACEMENT_TYPES]);
  assert.equal(selector.additionalProperties, false);
  const event = (await (await api('/api/v1/events/eventTypes/placement/event')).json()) as {
    $id: string;
    required: string[];
    oneOf: unknown[];
  };
  assert.equal(event.$id, 'https://sluice.dev/events/placementEvents#');
  assert.deepEqual(event.required, ['type']);
  assert.equal(event.oneOf.length, PLACEMENT_TYPES.length);
});

test('a placement subscription on a directory gets the selected placement events of files below it; inotify does not', async () => {
  await mkdir('/tape');
  await mkdir('/tape/raw');
  await put('/tape/raw/scan.nxs');
  await put('/tape/direct.nxs');
  const scan = await fileIdOf('/tape/raw/scan.nxs');
  const direct = await fileIdOf('/tape/direct.nxs');
  const ch = await channel();
  const client = await listen(ch);
  const inotify = await subscribe(ch, 'inotify', { path: '/tape', recursive: true });
  const selected = await subscribe(ch, 'placement', { path: '/tape', types: ['REPLICA_AVAILABLE', 'REPLICA_FLUSHED'] });
  const shallow = await subscribe(ch, 'placement', { path: '/tape', recursive: false, types: ['REPLICA_FLUSHED'] });
  const everything = await subscribe(ch, 'placement', { path: '/tape/raw/scan.nxs' });
  assert.match(selected, /\/subscriptions\/placement\/[0-9a-f-]{36}$/);
  await client.waitFor((e) => e.type === 'SYSTEM', 4);

  const first = await append([
    available('/tape/raw/scan.nxs', scan),
    { type: 'REPLICA_BAD', path: '/tape/raw/scan.nxs', isDir: false, data: { fileId: scan, se: 'disk2', reason: 'checksum mismatch' } },
  ]);
  await append([flushed('/tape/raw/scan.nxs', scan), flushed('/elsewhere/x.nxs', 'ff')]);
  const last = await append([
    flushed('/tape/direct.nxs', direct),
    { type: 'RULE_STATE', path: '/tape', isDir: true, data: { rule: 'r-tape', state: 'REPLICATING', previous: 'OK' } },
  ]);
  await put('/tape/marker');
  await client.waitFor((e) => e.type === 'inotify' && (e.data as { event: { name: string } }).event.name === 'marker');
  await settle();

  const placement = client.events.filter(of('placement'));
  const bySub = (url: string) => payloads(placement.filter((e) => (e.data as { subscription: string }).subscription === url));
  assert.deepEqual(bySub(selected), [
    { type: 'REPLICA_AVAILABLE', name: 'raw/scan.nxs', fileId: scan, se: 'disk1', size: 4, rule: 'rule-1', transfer: 'tr-1' },
    { type: 'REPLICA_FLUSHED', name: 'raw/scan.nxs', fileId: scan, se: 'tape1' },
    { type: 'REPLICA_FLUSHED', name: 'direct.nxs', fileId: direct, se: 'tape1' },
  ]);
  assert.deepEqual(bySub(shallow), [{ type: 'REPLICA_FLUSHED', name: 'direct.nxs', fileId: direct, se: 'tape1' }]);
  assert.deepEqual(
    bySub(everything).map((p) => (p as { type: string }).type),
    ['REPLICA_AVAILABLE', 'REPLICA_BAD', 'REPLICA_FLUSHED'],
    'a file subscription: its own events, without name',
  );
  assert.ok(bySub(everything).every((p) => !('name' in (p as object))));
  assert.equal(placement.length, 3 + 1 + 3, 'RULE_STATE was not selected by the typed subscriptions, nor is the file its scope');
  assert.deepEqual(
    [...new Set(placement.map((e) => Number(e.lastEventId)))],
    [first - 1, first, first + 1, last - 1],
    'ids are the log ids: AVAILABLE, BAD, FLUSHED of scan.nxs, FLUSHED of direct.nxs',
  );
  const inotifyEvents = payloads(client.events, 'inotify') as { mask: string[] }[];
  assert.ok(inotifyEvents.length > 0 && inotifyEvents.every((p) => p.mask[0]!.startsWith('IN_')), 'inotify saw only its own events');
  assert.ok(
    client.events.filter(of('inotify')).every((e) => (e.data as { subscription: string }).subscription === inotify),
    'and only on the inotify subscription',
  );

  // RULE_STATE of a rule scoped at the watched directory comes without name.
  const rules = await subscribe(ch, 'placement', { path: '/tape', types: ['RULE_STATE'] });
  const head = await append([
    { type: 'RULE_STATE', path: '/tape', isDir: true, data: { rule: 'r-tape', state: 'OK', previous: 'REPLICATING' } },
  ]);
  const [rule] = await client.waitFor((e) => e.type === 'placement' && (e.data as { subscription: string }).subscription === rules);
  assert.deepEqual(rule!.data, {
    event: { type: 'RULE_STATE', rule: 'r-tape', state: 'OK', previous: 'REPLICATING' },
    subscription: rules,
  });
  assert.equal(rule!.lastEventId, String(head));
});

test('a placement subscription follows its directory, and reports nothing the subscriber may not read', async () => {
  await mkdir('/perm');
  await mkdir('/perm/open');
  await mkdir('/perm/secret');
  await put('/perm/open/a.h5');
  const id = await fileIdOf('/perm/open/a.h5');
  const res = await api('/api/v1/tokens', json({ subject: 'pia', scopes: ['storage.read:/perm/open'] }));
  const token = ((await res.json()) as { secret: string }).secret;
  const ch = await channel(token);
  const pia = await listen(ch, token);
  const sub = await subscribe(ch, 'placement', { path: '/perm/open' }, token);
  const forbidden = await authed(server, token)(new URL(ch).pathname + '/subscriptions/placement', json({ path: '/perm/secret' }));
  assert.equal(forbidden.status, 400);
  assert.equal(((await forbidden.json()) as { errors: { message: string }[] }).errors[0]!.message, 'Permission denied: Not allowed.');

  await append([available('/perm/open/a.h5', id)]);
  await pia.waitFor(of('placement'));
  await ns().move(admin, normalizePath('/perm/open'), normalizePath('/perm/secret/open'), { overwrite: false });
  await append([flushed('/perm/secret/open/a.h5', id)]);
  // An admin subscription shows the watch followed the rename (the event is reported with its name).
  const ach = await channel();
  const adm = await listen(ach);
  const asub = await subscribe(ach, 'placement', { path: '/perm/secret' });
  await append([
    { type: 'REPLICA_REMOVED', path: '/perm/secret/open/a.h5', isDir: false, data: { fileId: id, se: 'disk1', reason: 'rule expired' } },
  ]);
  const [removed] = await adm.waitFor(of('placement'));
  assert.deepEqual(removed!.data, {
    event: { type: 'REPLICA_REMOVED', name: 'open/a.h5', fileId: id, se: 'disk1', reason: 'rule expired' },
    subscription: asub,
  });
  await settle();
  assert.deepEqual(payloads(pia.events), [
    { type: 'REPLICA_AVAILABLE', name: 'a.h5', fileId: id, se: 'disk1', size: 4, rule: 'rule-1', transfer: 'tr-1' },
  ]);
  assert.deepEqual(
    pia.events.filter(of('SYSTEM')).map((e) => e.data),
    [{ type: 'NEW_SUBSCRIPTION', subscription: sub }],
  );
});

test('a deleted target ends a placement subscription with SUBSCRIPTION_CLOSED (no IN_IGNORED)', async () => {
  await mkdir('/gone');
  await put('/gone/f');
  const id = await fileIdOf('/gone/f');
  const ch = await channel();
  const client = await listen(ch);
  const sub = await subscribe(ch, 'placement', { path: '/gone/f' });
  await append([flushed('/gone/f', id)]);
  await ns().remove(admin, normalizePath('/gone/f'));
  await append([{ type: 'REPLICA_REMOVED', path: '/gone/f', isDir: false, data: { fileId: id, se: 'tape1', reason: 'file deleted' } }]);
  await client.waitFor((e) => e.type === 'SYSTEM' && (e.data as { type: string }).type === 'SUBSCRIPTION_CLOSED');
  await settle();
  assert.deepEqual(
    client.events.map((e) => [e.type, e.data]),
    [
      ['SYSTEM', { type: 'NEW_SUBSCRIPTION', subscription: sub }],
      ['placement', { event: { type: 'REPLICA_FLUSHED', fileId: id, se: 'tape1' }, subscription: sub }],
      ['SYSTEM', { type: 'SUBSCRIPTION_CLOSED', subscription: sub }],
    ],
  );
  assert.equal((await api(new URL(sub).pathname)).status, 404);
});

test('a reconnect with Last-Event-ID gets exactly the missed placement events', async () => {
  await mkdir('/resume-p');
  await put('/resume-p/f');
  const id = await fileIdOf('/resume-p/f');
  const ch = await channel();
  const sub = await subscribe(ch, 'placement', { path: '/resume-p', types: ['REPLICA_STAGED', 'REPLICA_FLUSHED'] });
  const first = await listen(ch);
  await append([flushed('/resume-p/f', id)]);
  const [seen] = await first.waitFor(of('placement'));
  first.close();
  await append([
    { type: 'REPLICA_STAGED', path: '/resume-p/f', isDir: false, data: { fileId: id, se: 'tape1', pinnedUntil: 1_900_000_000_000 } },
  ]);
  await append([available('/resume-p/f', id)]);
  const qos = await append([
    { type: 'QOS_CHANGED', path: '/resume-p/f', isDir: false, data: { fileId: id, qos: 'disk+tape', previous: 'tape' } },
  ]);
  const second = await listen(ch, server.token, { 'last-event-id': seen!.lastEventId });
  const [missed] = await second.waitFor(of('placement'));
  assert.deepEqual(missed!.data, {
    event: { type: 'REPLICA_STAGED', name: 'f', fileId: id, se: 'tape1', pinnedUntil: 1_900_000_000_000 },
    subscription: sub,
  });
  assert.equal(Number(missed!.lastEventId), qos - 2);
  await settle();
  assert.equal(second.events.length, 1, 'nothing beyond the missed event');
});

test('placement selector errors use dCache-style messages; GET echoes the selector', async () => {
  await mkdir('/sel');
  await put('/sel/file');
  const ch = new URL(await channel()).pathname;
  const message = async (body: unknown) => {
    const res = await api(`${ch}/subscriptions/placement`, body === undefined ? { method: 'POST' } : json(body));
    assert.equal(res.status, 400);
    const problem = (await res.json()) as { detail: string; errors: { message: string }[] };
    assert.equal(problem.detail, problem.errors[0]!.message);
    return problem.errors[0]!.message;
  };
  assert.equal(
    await message({ path: '/sel', types: ['REPLICA_LOST'] }),
    `Bad selector: Bad selector value: "REPLICA_LOST": not one of the values accepted: [${PLACEMENT_TYPES.join(', ')}]`,
  );
  assert.match(await message({ path: '/sel', types: ['IN_CLOSE_WRITE'] }), /"IN_CLOSE_WRITE": not one of the values accepted/);
  assert.equal(
    await message({ path: '/sel', types: [] }),
    'Bad selector: Bad selector value: "types" must be a non-empty array of strings',
  );
  assert.equal(await message({ path: '/sel', flags: ['IN_CREATE'] }), 'Bad selector: Bad selector value: Unrecognized field "flags"');
  assert.equal(await message({}), 'Bad selector: Missing path');
  assert.equal(await message(undefined), 'Missing JSON entity in POST request');
  assert.equal(await message({ path: '/nowhere' }), 'Not found: Problem with path: No such file or directory: /nowhere');
  assert.equal(await message({ path: '/sel/file', recursive: true }), 'Failed condition: recursive with REGULAR target');
  assert.equal(
    await message({ path: '/sel', since: -1 }),
    'Bad selector: Bad selector value: "since" must be a non-negative integer event id',
  );

  const sub = await subscribe(server.url + ch, 'placement', { path: '/sel', types: ['QOS_CHANGED'] });
  assert.deepEqual(await (await api(new URL(sub).pathname)).json(), { path: '/sel', types: ['QOS_CHANGED'] });
  assert.deepEqual(await (await api(`${ch}/subscriptions`)).json(), [sub]);
  assert.equal((await api(new URL(sub).pathname, { method: 'DELETE' })).status, 204);
  assert.equal((await api(new URL(sub).pathname)).status, 404);
});

test('"since" replays placement events still in the log', async () => {
  await mkdir('/hist-p');
  await put('/hist-p/f');
  const id = await fileIdOf('/hist-p/f');
  const before = await append([flushed('/hist-p/f', id)]);
  const ch = await channel();
  await subscribe(ch, 'placement', { path: '/hist-p', since: before - 1 });
  const client = await listen(ch, server.token, { 'last-event-id': String(before - 1) });
  const [old] = await client.waitFor(of('placement'));
  assert.equal(old!.lastEventId, String(before));
  assert.deepEqual((old!.data as { event: unknown }).event, { type: 'REPLICA_FLUSHED', name: 'f', fileId: id, se: 'tape1' });
});

test('a placement subscription survives a restart and resumes from Last-Event-ID', async () => {
  const dataDir = await tempDir();
  let s = await startServer({ dataDir });
  try {
    await mkdir('/keep', s);
    await put('/keep/f', 'data', s);
    const id = (await ns(s).find(s.core!.tokens.authenticate(s.token), normalizePath('/keep/f')))!.fileId;
    const ch = await channel(s.token, s);
    const chPath = new URL(ch).pathname;
    const sub = await subscribe(ch, 'placement', { path: '/keep', types: ['REPLICA_FLUSHED', 'REPLICA_STAGED'] }, s.token, s);
    const subPath = new URL(sub).pathname;
    const seenAt = await append([flushed('/keep/f', id)], s);
    await s.stop();

    s = await startServer({ dataDir });
    assert.deepEqual(await (await authed(s)(subPath)).json(), { path: '/keep', types: ['REPLICA_FLUSHED', 'REPLICA_STAGED'] });
    const staged = await append(
      [{ type: 'REPLICA_STAGED', path: '/keep/f', isDir: false, data: { fileId: id, se: 'tape1', pinnedUntil: 1 } }],
      s,
    );
    const client = await listen(new URL(chPath, s.url).href, s.token, { 'last-event-id': String(seenAt - 1) });
    const got = await client.waitFor(of('placement'), 2);
    assert.deepEqual(
      got.map((e) => [Number(e.lastEventId), (e.data as { event: { type: string } }).event.type]),
      [
        [seenAt, 'REPLICA_FLUSHED'],
        [staged, 'REPLICA_STAGED'],
      ],
    );
    assert.ok(got.every((e) => (e.data as { subscription: string }).subscription === new URL(subPath, s.url).href));
    client.close();
  } finally {
    await s.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a trigger on REPLICA_FLUSHED below a path runs its function with an org.sluice.replica.FLUSHED CloudEvent', async () => {
  await deploy(server, 'faults-node');
  await mkdir('/archive');
  await mkdir('/archive/raw');
  await mkdir('/not-archive');
  await put('/archive/raw/big.nxs', 'nexus bytes');
  await put('/archive/raw/small.nxs', 'x');
  await put('/not-archive/big.nxs', 'nexus bytes');
  const big = await fileIdOf('/archive/raw/big.nxs');
  const created = await api(
    '/api/v1/triggers',
    json({
      name: 'on-flushed',
      filter: { events: ['REPLICA_FLUSHED'], path: '/archive', glob: '**/*.nxs', minSize: 5 },
      target: { function: 'faults-node' },
      params: { note: 'flushed' },
    }),
  );
  assert.equal(created.status, 201, await created.clone().text());
  await put('/archive/raw/later.nxs', 'closed, not flushed');
  const flushedAt = await append([
    available('/archive/raw/big.nxs', big),
    flushed('/archive/raw/big.nxs', big),
    flushed('/archive/raw/small.nxs', await fileIdOf('/archive/raw/small.nxs')),
    flushed('/not-archive/big.nxs', await fileIdOf('/not-archive/big.nxs')),
  ]);
  const t = await until('the delivery', async () => {
    const r = (await (await api('/api/v1/triggers/on-flushed')).json()) as { deliveries: { succeeded: number }; lag: number };
    return r.deliveries.succeeded >= 1 && r.lag === 0 ? r : undefined;
  });
  await settle();
  const activations = (await (await api('/api/v1/activations?function=faults-node&limit=100')).json()) as { id: string; cause: string }[];
  const mine = activations.filter((a) => a.cause === 'trigger:on-flushed');
  assert.equal(mine.length, 1, `only the big .nxs flushed below /archive: ${JSON.stringify(t)}`);
  const full = (await (await api(`/api/v1/activations/${mine[0]!.id}`)).json()) as {
    input: Record<string, unknown>;
    result: { echo: { type: string } };
  };
  const { time, source, ...input } = full.input;
  assert.match(source as string, /^sluice:\/\//);
  assert.equal(typeof time, 'string');
  assert.deepEqual(input, {
    note: 'flushed',
    specversion: '1.0',
    id: String(flushedAt - 2),
    type: 'org.sluice.replica.FLUSHED',
    subject: '/archive/raw/big.nxs',
    datacontenttype: 'application/json',
    data: { path: '/archive/raw/big.nxs', isDir: false, fileId: big, se: 'tape1' },
  });
  assert.equal(full.result.echo.type, 'org.sluice.replica.FLUSHED');
});
