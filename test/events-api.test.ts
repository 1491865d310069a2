// The events API's REST surface against a real server: metadata, schemas, channels and
// subscriptions with dCache's statuses, Location headers and error messages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { startServer, authed, type RunningServer } from './support/server.js';
import { normalizePath } from '../src/storage/paths.js';

let server: RunningServer;
let api: ReturnType<typeof authed>;

before(async () => {
  server = await startServer({ channels: { maxPerUser: 3 } });
  api = authed(server);
  const p = server.core!.tokens.authenticate(server.token);
  await server.core!.namespace.mkdir(p, normalizePath('/data'));
  await server.core!.namespace.put(p, normalizePath('/data/file.bin'), Readable.from([Buffer.from('x')]));
});
after(() => server.stop());

const json = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

async function newChannel(token?: string): Promise<string> {
  const res = await authed(server, token)('/api/v1/events/channels', { method: 'POST' });
  assert.equal(res.status, 201);
  return res.headers.get('location')!;
}

test('GET /events is anonymous and reports the channel limits', async () => {
  const res = await fetch(server.url + '/api/v1/events');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    channels: { lifetimeWhenDisconnected: { maximum: 86400, minimum: 1, default: 300 }, maximumPerUser: 3 },
  });
});

test('event types, descriptions and schemas', async () => {
  assert.deepEqual(await (await api('/api/v1/events/eventTypes')).json(), ['inotify', 'metronome', 'placement']);
  assert.deepEqual(await (await api('/api/v1/events/eventTypes/inotify')).json(), {
    description: 'notification of namespace activity, modelled after inotify(7)',
  });
  const selector = (await (await api('/api/v1/events/eventTypes/inotify/selector')).json()) as { $id: string; required: string[] };
  assert.equal(selector.$id, 'http://dcache.org/frontend/events/namespaceSelectors#');
  assert.deepEqual(selector.required, ['path']);
  const event = (await (await api('/api/v1/events/eventTypes/metronome/event')).json()) as { type: string };
  assert.equal(event.type, 'string');
  const missing = await api('/api/v1/events/eventTypes/nope');
  assert.equal(missing.status, 404);
  assert.deepEqual(((await missing.json()) as { errors: unknown }).errors, [{ message: 'Not Found', status: '404' }]);
});

test('a token is required except for GET /events', async () => {
  assert.equal((await fetch(server.url + '/api/v1/events/channels', { method: 'POST' })).status, 401);
  assert.equal((await fetch(server.url + '/api/v1/events/eventTypes')).status, 401);
});

test('channel lifecycle: create, list by client-id, metadata, timeout bounds, delete', async () => {
  const res = await api('/api/v1/events/channels', json({ 'client-id': 'demo' }));
  assert.equal(res.status, 201);
  const url = res.headers.get('location')!;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/api\/v1\/events\/channels\/[A-Za-z0-9_-]{22}$/);
  const path = new URL(url).pathname;
  assert.deepEqual(await (await api('/api/v1/events/channels?client-id=demo')).json(), [url]);
  assert.ok(!((await (await api('/api/v1/events/channels?client-id=')).json()) as string[]).includes(url));
  assert.deepEqual(await (await api(path, { headers: { accept: 'application/json' } })).json(), { timeout: 300 });
  const patch = (timeout: number) =>
    api(path, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ timeout }) });
  assert.equal((await patch(60)).status, 204);
  assert.deepEqual(await (await api(path, { headers: { accept: 'application/json' } })).json(), { timeout: 60 });
  const tooShort = await patch(0);
  assert.equal(tooShort.status, 400);
  assert.equal(((await tooShort.json()) as { errors: { message: string }[] }).errors[0]!.message, 'Timeout shorter than minimum allowed');
  assert.equal((await patch(86401)).status, 400);
  const unknownField = await api('/api/v1/events/channels', json({ foo: 1 }));
  assert.equal(unknownField.status, 400);
  assert.equal(((await unknownField.json()) as { detail: string }).detail, "'foo' is an unrecognized field.");
  assert.equal((await api(path, { method: 'DELETE' })).status, 204);
  assert.equal((await api(path, { headers: { accept: 'application/json' } })).status, 404);
});

test('429 past the per-user channel limit', async () => {
  const bob = (await (await api('/api/v1/tokens', json({ subject: 'limited', scopes: ['storage.read:/data'] }))).json()) as {
    secret: string;
  };
  for (let i = 0; i < 3; i++) await newChannel(bob.secret);
  const res = await authed(server, bob.secret)('/api/v1/events/channels', { method: 'POST' });
  assert.equal(res.status, 429);
  assert.deepEqual(((await res.json()) as { errors: unknown }).errors, [{ message: 'Too Many Requests', status: '429' }]);
});

test("403 on another user's channel", async () => {
  const channel = new URL(await newChannel()).pathname;
  const bob = (await (await api('/api/v1/tokens', json({ subject: 'bob', scopes: ['storage.read:/bob'] }))).json()) as { secret: string };
  const asBob = authed(server, bob.secret);
  assert.equal((await asBob(channel, { headers: { accept: 'application/json' } })).status, 403);
  assert.equal((await asBob(channel, { headers: { accept: 'text/event-stream' } })).status, 403);
  assert.equal((await asBob(channel + '/subscriptions/inotify', json({ path: '/data' }))).status, 403);
  assert.equal((await asBob(channel, { method: 'DELETE' })).status, 403);
  assert.equal((await api(channel, { method: 'DELETE' })).status, 204);
});

test('subscriptions: create, echo, merge with 303, IN_MASK_ADD, list, delete', async () => {
  const channel = new URL(await newChannel()).pathname;
  const res = await api(`${channel}/subscriptions/inotify`, json({ path: '/data', flags: ['IN_CREATE'] }));
  assert.equal(res.status, 201);
  const sub = res.headers.get('location')!;
  assert.match(sub, new RegExp(`${channel}/subscriptions/inotify/[A-Za-z0-9_-]{24}$`));
  const subPath = new URL(sub).pathname;
  assert.deepEqual(await (await api(subPath)).json(), { path: '/data', flags: ['IN_CREATE'] });
  const merged = await api(`${channel}/subscriptions/inotify`, {
    ...json({ path: '/data', flags: ['IN_DELETE', 'IN_MASK_ADD'] }),
    redirect: 'manual',
  });
  assert.equal(merged.status, 303);
  assert.equal(merged.headers.get('location'), sub);
  assert.deepEqual(await (await api(subPath)).json(), { path: '/data', flags: ['IN_DELETE', 'IN_MASK_ADD'] });
  const metronome = await api(`${channel}/subscriptions/metronome`, json({ delay: 100 }));
  assert.equal(metronome.status, 201);
  assert.deepEqual(await (await api(new URL(metronome.headers.get('location')!).pathname)).json(), { delay: 100 });
  assert.deepEqual(await (await api(`${channel}/subscriptions`)).json(), [sub, metronome.headers.get('location')]);
  assert.equal((await api(subPath, { method: 'DELETE' })).status, 204);
  assert.equal((await api(subPath)).status, 404);
  assert.deepEqual(await (await api(`${channel}/subscriptions`)).json(), [metronome.headers.get('location')]);
  await api(channel, { method: 'DELETE' });
});

test('selector errors use dCache messages', async () => {
  const channel = new URL(await newChannel()).pathname;
  const message = async (type: string, body: unknown) => {
    const res = await api(`${channel}/subscriptions/${type}`, body === undefined ? { method: 'POST' } : json(body));
    assert.equal(res.status, 400);
    return ((await res.json()) as { errors: { message: string }[] }).errors[0]!.message;
  };
  assert.equal(await message('inotify', { path: '/nowhere' }), 'Not found: Problem with path: No such file or directory: /nowhere');
  assert.equal(await message('inotify', { path: '/data', flags: ['IN_DONT_FOLLOW'] }), 'Bad selector: Unsupported flags: [IN_DONT_FOLLOW]');
  assert.equal(
    await message('inotify', { path: '/data/file.bin', flags: ['IN_ONLYDIR'] }),
    'Failed condition: IN_ONLYDIR with REGULAR target',
  );
  assert.equal(await message('inotify', {}), 'Bad selector: Missing path');
  assert.equal(await message('inotify', undefined), 'Missing JSON entity in POST request');
  assert.equal(await message('nope', { path: '/data' }), 'Unknown event type: nope');
  assert.equal(await message('metronome', {}), 'Bad selector: either "frequency" or "delay" must be specified');
  const bob = (await (await api('/api/v1/tokens', json({ subject: 'carol', scopes: ['storage.read:/carol'] }))).json()) as {
    secret: string;
  };
  const carolChannel = new URL(await newChannel(bob.secret)).pathname;
  const denied = await authed(server, bob.secret)(`${carolChannel}/subscriptions/inotify`, json({ path: '/data' }));
  assert.equal(((await denied.json()) as { errors: { message: string }[] }).errors[0]!.message, 'Permission denied: Not allowed.');
});

test('the OpenAPI document lists the events routes', async () => {
  const doc = (await (await fetch(server.url + '/api/v1/openapi.json')).json()) as {
    paths: Record<string, Record<string, { tags?: string[] }>>;
  };
  assert.ok(doc.paths['/api/v1/events/channels/{id}/subscriptions/{type}']?.post?.tags?.includes('events'));
});
