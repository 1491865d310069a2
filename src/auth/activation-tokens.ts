// Short-lived tokens handed to one activation for ctx.storage. They are self-contained and signed
// (HMAC-SHA256 with a server key kept 0600 in the data directory), so minting one costs
// microseconds on the invocation hot path and nothing is written to state. They expire with the
// activation's deadline and never carry more than the storage scopes they were minted with.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile, chmod } from 'node:fs/promises';
import { SluiceError } from '../errors.js';
import { ACTIVATION_TOKEN_ID_PREFIX, formatScope, parseScope, type Principal, type Scope } from './scopes.js';

export const ACTIVATION_TOKEN_PREFIX = 'sluice_act.';

interface Claims {
  /** subject of the caller on whose behalf the activation runs */
  sub: string;
  /** activation id */
  act: string;
  scopes: string[];
  /** expiry, epoch ms */
  exp: number;
}

export class ActivationTokens {
  private constructor(private readonly key: Buffer) {}

  /** Loads the signing key from `file`, creating it (0600) on first start. */
  static async open(file: string): Promise<ActivationTokens> {
    let key: Buffer;
    try {
      key = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64url');
      if (key.length < 32) throw new SluiceError('INTERNAL', `signing key in ${file} is too short`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      key = randomBytes(32);
      await writeFile(file, key.toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
      await chmod(file, 0o600);
    }
    return new ActivationTokens(key);
  }

  mint(subject: string, activationId: string, scopes: readonly Scope[], expires: number): string {
    const claims: Claims = { sub: subject, act: activationId, scopes: scopes.map(formatScope), exp: expires };
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${ACTIVATION_TOKEN_PREFIX}${payload}.${this.sign(payload)}`;
  }

  static isActivationToken(secret: string): boolean {
    return secret.startsWith(ACTIVATION_TOKEN_PREFIX);
  }

  verify(secret: string, now = Date.now()): Principal {
    const body = secret.slice(ACTIVATION_TOKEN_PREFIX.length);
    const dot = body.indexOf('.');
    if (dot < 0) throw new SluiceError('UNAUTHORIZED', 'malformed activation token');
    const payload = body.slice(0, dot);
    const mac = Buffer.from(body.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.sign(payload), 'base64url');
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw new SluiceError('UNAUTHORIZED', 'unknown token');
    // The MAC matched, so the payload is one we wrote.
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Claims;
    if (claims.exp <= now) throw new SluiceError('UNAUTHORIZED', 'activation token has expired');
    return {
      subject: claims.sub,
      tokenId: `${ACTIVATION_TOKEN_ID_PREFIX}${claims.act}`,
      scopes: claims.scopes.map(parseScope),
      expires: claims.exp,
    };
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}
