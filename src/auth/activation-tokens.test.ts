import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActivationTokens } from './activation-tokens.js';
import { parseScope } from './scopes.js';

test('activation tokens carry their scopes, are bound to the key and expire', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-act-'));
  try {
    const keyFile = join(dir, 'activation.key');
    const tokens = await ActivationTokens.open(keyFile);
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const scopes = [parseScope('storage.read:/data'), parseScope('storage.create:/derived')];
    const secret = tokens.mint('alice', 'a'.repeat(32), scopes, Date.now() + 60_000);
    assert.ok(ActivationTokens.isActivationToken(secret));

    const p = tokens.verify(secret);
    assert.equal(p.subject, 'alice');
    assert.equal(p.tokenId, `activation:${'a'.repeat(32)}`);
    assert.deepEqual(p.scopes, scopes);

    // The same key file gives the same verifier after a restart.
    const reopened = await ActivationTokens.open(keyFile);
    assert.equal(reopened.verify(secret).subject, 'alice');
    assert.ok((await readFile(keyFile, 'utf8')).trim().length >= 43);

    // A payload edited to widen the scopes no longer matches its MAC.
    const [prefix, payload, mac] = [secret.slice(0, 11), ...secret.slice(11).split('.')];
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { scopes: string[] };
    claims.scopes = ['admin'];
    const forged = `${prefix}${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${mac}`;
    assert.throws(() => tokens.verify(forged), { code: 'UNAUTHORIZED' });

    const other = await ActivationTokens.open(join(dir, 'other.key'));
    assert.throws(() => other.verify(secret), { code: 'UNAUTHORIZED' });

    const expired = tokens.mint('alice', 'b'.repeat(32), scopes, Date.now() - 1);
    assert.throws(() => tokens.verify(expired), /expired/);
    assert.throws(() => tokens.verify('sluice_act.nodot'), { code: 'UNAUTHORIZED' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
