// Channels and subscriptions survive a restart of `sluice serve`: a client reconnects with
// Last-Event-ID and gets the events it missed, including those from before the restart, with the
// watch where it was at that position (it followed a rename while nobody was connected).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { startChildServer, authed, tempDir } from './support/server.js';
import { connectSse, inotifyEvents, isSystem } from './support/sse.js';

const json = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

test('a channel survives a restart and resumes from Last-Event-ID', async () => {
  const dataDir = await tempDir();
  let server = await startChildServer({ dataDir });
  try {
    let api = authed(server);
    assert.equal((await api('/api/v1/namespace/', json({ action: 'mkdir', name: 'raw' }))).status, 201);
    const ch = (await api('/api/v1/events/channels', { method: 'POST' })).headers.get('location')!;
    const chPath = new URL(ch).pathname;
    const sub = await api(chPath + '/subscriptions/inotify', json({ path: '/raw', flags: ['IN_CREATE', 'IN_MOVE_SELF'] }));
    assert.equal(sub.status, 201);
    const subPath = new URL(sub.headers.get('location')!).pathname;

    const client = await connectSse(ch, server.token);
    await api('/api/v1/namespace/raw', json({ action: 'mkdir', name: 'scan1' }));
    const [first] = await client.waitFor((e) => e.type === 'inotify');
    client.close();
    await api('/api/v1/namespace/raw', json({ action: 'mkdir', name: 'scan2' }));
    await api('/api/v1/namespace/raw', json({ action: 'mv', destination: '/renamed' }));
    await api('/api/v1/namespace/renamed', json({ action: 'mkdir', name: 'scan3' }));

    await server.stop();
    server = await startChildServer({ dataDir });
    api = authed(server);
    assert.deepEqual(await (await api(subPath)).json(), { path: '/raw', flags: ['IN_CREATE', 'IN_MOVE_SELF'] });
    await api('/api/v1/namespace/renamed', json({ action: 'mkdir', name: 'scan4' }));

    const resumed = await connectSse(new URL(chPath, server.url).href, server.token, { 'last-event-id': first!.lastEventId });
    try {
      const got = await resumed.waitFor((e) => e.type === 'inotify', 4);
      assert.deepEqual(inotifyEvents(got), [
        { name: 'scan2', mask: ['IN_CREATE', 'IN_ISDIR'] },
        { mask: ['IN_MOVE_SELF', 'IN_ISDIR'] },
        { name: 'scan3', mask: ['IN_CREATE', 'IN_ISDIR'] },
        { name: 'scan4', mask: ['IN_CREATE', 'IN_ISDIR'] },
      ]);
      assert.ok(!resumed.events.some(isSystem('EVENT_LOSS')));
    } finally {
      resumed.close();
    }
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
