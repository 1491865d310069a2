// Tokens over the real HTTP API: issue, use, scope limits, delegation, expiry, revocation, hashing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer, authed, json, type RunningServer } from './support/server.js';

let server: RunningServer;
before(async () => (server = await startServer()));
after(async () => server.stop());

async function issue(body: unknown, token = server.token) {
  const res = await authed(server, token)('/api/v1/tokens', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await json(res)) as { secret: string; token: { id: string; scopes: string[]; subject: string } } & { detail?: string },
  };
}

test('the admin token file is private and the token works', async () => {
  const { stat } = await import('node:fs/promises');
  assert.equal((await stat(join(server.dataDir, 'admin.token'))).mode & 0o777, 0o600);
  const me = await json(await authed(server)('/api/v1/whoami'));
  assert.deepEqual(me.scopes, ['admin']);
});

test('issued tokens carry their scopes and are stored hashed', async () => {
  const { status, body } = await issue({ subject: 'alice', scopes: ['storage.read:/beam', 'storage.create:/beam/raw'] });
  assert.equal(status, 201);
  assert.match(body.secret, /^sluice_[0-9a-f]{12}_/);
  assert.deepEqual(body.token.scopes, ['storage.read:/beam', 'storage.create:/beam/raw']);
  const me = await json(await authed(server, body.secret)('/api/v1/whoami'));
  assert.equal(me.subject, 'alice');
  const db = await readFile(join(server.dataDir, 'state.sqlite'));
  assert.ok(!db.includes(Buffer.from(body.secret)), 'the secret itself must never be stored');
});

test('a token can only hand out what it holds, and only for its own subject', async () => {
  const alice = (await issue({ subject: 'alice', scopes: ['storage.modify:/beam'] })).body.secret;
  const narrower = await issue({ scopes: ['storage.create:/beam/x'], expiresIn: 60 }, alice);
  assert.equal(narrower.status, 201);
  assert.equal(narrower.body.token.subject, 'alice');
  const wider = await issue({ scopes: ['storage.modify:/'] }, alice);
  assert.equal(wider.status, 403);
  assert.match(wider.body.detail!, /cannot grant scopes you do not hold: storage.modify:\//);
  assert.equal((await issue({ subject: 'mallory', scopes: ['storage.create:/beam/x'] }, alice)).status, 403);
});

test('bad requests get precise 400s', async () => {
  const cases: [unknown, RegExp][] = [
    [{ scopes: [] }, /fewer than 1/],
    [{ scopes: ['storage.write:/x'] }, /unknown scope/],
    [{ scopes: ['storage.read:/a/../b'] }, /not allowed/],
    [{ scopes: ['admin'], subject: 'a b' }, /subject must be/],
    [{ scopes: ['admin'], expiresIn: -1 }, /expiresIn/],
    [{ scopes: ['admin'], colour: 'red' }, /additional properties/],
  ];
  for (const [body, detail] of cases) {
    const r = await issue(body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.body.detail!, detail, JSON.stringify(body));
  }
  const res = await authed(server)('/api/v1/tokens', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"scopes": [',
  });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
});

test('expired and revoked tokens are refused with 401', async () => {
  const short = (await issue({ subject: 'eve', scopes: ['storage.read:/'], expiresIn: 0.2 })).body.secret;
  assert.equal((await authed(server, short)('/api/v1/whoami')).status, 200);
  await new Promise((r) => setTimeout(r, 300));
  const expired = await authed(server, short)('/api/v1/whoami');
  assert.equal(expired.status, 401);
  assert.match((await json(expired)).detail, /expired/);

  const { body } = await issue({ subject: 'eve', scopes: ['storage.read:/'] });
  const del = await authed(server)(`/api/v1/tokens/${body.token.id}`, { method: 'DELETE' });
  assert.equal(del.status, 200);
  assert.ok((await json(del)).revoked);
  const revoked = await authed(server, body.secret)('/api/v1/whoami');
  assert.equal(revoked.status, 401);
  assert.match(revoked.headers.get('www-authenticate') ?? '', /Bearer/);
});

test('non-admins see only their own tokens; unknown and malformed tokens get 401', async () => {
  const bob = (await issue({ subject: 'bob', scopes: ['storage.read:/bob'] })).body.secret;
  const list = (await json(await authed(server, bob)('/api/v1/tokens'))) as { subject: string }[];
  assert.ok(list.length >= 1 && list.every((t) => t.subject === 'bob'));
  assert.equal((await authed(server, 'sluice_000000000000_nope')('/api/v1/whoami')).status, 401);
  assert.equal((await fetch(server.url + '/api/v1/whoami', { headers: { authorization: 'Digest x' } })).status, 401);
  const basic = Buffer.from(`anyone:${bob}`).toString('base64');
  assert.equal((await fetch(server.url + '/api/v1/whoami', { headers: { authorization: `Basic ${basic}` } })).status, 200);
});
