// No secret is ever logged: a server at trace level serves authenticated requests, issues and revokes
// tokens, and refuses bad ones; its whole output must not contain any token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startChildServer, json } from './support/server.js';

test('tokens never appear in the server log, even at trace level', { timeout: 60_000 }, async () => {
  const server = await startChildServer({ extraArgs: ['--log-level', 'trace'] });
  try {
    const admin = { authorization: `Bearer ${server.token}` };
    const issued = await json(
      await fetch(`${server.url}/api/v1/tokens`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/json' },
        body: JSON.stringify({ subject: 'alice', scopes: ['storage.read:/'] }),
      }),
    );
    const secret = issued.secret as string;
    const basic = 'Basic ' + Buffer.from(`alice:${secret}`).toString('base64');
    await fetch(`${server.url}/api/v1/whoami`, { headers: { authorization: basic } });
    await fetch(`${server.url}/api/v1/namespace/?children=true`, { headers: { authorization: `Bearer ${secret}` } });
    await fetch(`${server.url}/api/v1/tokens/${issued.token.id}`, { method: 'DELETE', headers: admin });
    await fetch(`${server.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${secret}` } });
    await fetch(`${server.url}/api/v1/whoami`, { headers: { authorization: 'Bearer sluice_000000000000_guessed-secret' } });
    await new Promise((r) => setTimeout(r, 200));
    const log = server.output!();
    assert.ok(log.length > 0 && /whoami/.test(log), 'trace logging should record the requests');
    for (const s of [server.token, secret, 'guessed-secret', basic.slice(6)]) {
      assert.ok(!log.includes(s), `the log contains a secret: ${s.slice(0, 12)}…`);
    }
  } finally {
    await server.stop();
  }
});
