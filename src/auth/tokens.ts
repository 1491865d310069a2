// Bearer tokens: random secrets shown once, stored only as SHA-256 hashes, with scopes and an expiry.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../backends/sqlite/database.js';
import { SluiceError } from '../errors.js';
import { covers, formatScope, parseScope, type Principal, type Scope } from './scopes.js';
import { ActivationTokens } from './activation-tokens.js';

export interface TokenInfo {
  id: string;
  subject: string;
  description: string;
  scopes: string[];
  created: string;
  expires: string | null;
  revoked: string | null;
  createdBy: string | null;
}

export interface NewToken {
  subject: string;
  scopes: string[];
  description?: string;
  /** Seconds from now. */
  expiresIn?: number;
}

interface TokenRow {
  id: string;
  hash: string;
  subject: string;
  description: string;
  scopes: string;
  created: number;
  expires: number | null;
  revoked: number | null;
  created_by: string | null;
}

const hashOf = (secret: string): string => createHash('sha256').update(secret).digest('hex');
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

const SUBJECT_RE = /^[A-Za-z0-9._@-]{1,128}$/;

/** Token service over the SQLite state (the PostgreSQL adapter will implement the same calls). */
export class TokenService {
  private readonly q;
  private activationTokens: ActivationTokens | undefined;
  /**
   * Principals of valid tokens by secret hash, so a busy client costs a hash, not a query and a parse,
   * per request. Revocation removes the entry at once; expiry is checked on every use.
   */
  private readonly known = new Map<string, Principal>();

  constructor(db: Db) {
    this.q = {
      insert: db.prepare(
        'INSERT INTO tokens (id, hash, subject, description, scopes, created, expires, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      byHash: db.prepare('SELECT * FROM tokens WHERE hash = ?'),
      byId: db.prepare('SELECT * FROM tokens WHERE id = ?'),
      all: db.prepare('SELECT * FROM tokens ORDER BY created'),
      bySubject: db.prepare('SELECT * FROM tokens WHERE subject = ? ORDER BY created'),
      revoke: db.prepare('UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL'),
      count: db.prepare('SELECT COUNT(*) AS n FROM tokens'),
    };
  }

  private info(r: TokenRow): TokenInfo {
    return {
      id: r.id,
      subject: r.subject,
      description: r.description,
      scopes: JSON.parse(r.scopes) as string[],
      created: iso(r.created)!,
      expires: iso(r.expires),
      revoked: iso(r.revoked),
      createdBy: r.created_by,
    };
  }

  isEmpty(): boolean {
    return (this.q.count.get() as { n: number }).n === 0;
  }

  /**
   * Issues a token. `issuer` undefined means the server itself (first start); otherwise the issuer
   * may only hand out scopes it holds.
   */
  create(req: NewToken, issuer?: Principal): { secret: string; token: TokenInfo } {
    // An activation's token lives as long as the call; it must not be traded for a lasting one.
    if (issuer?.tokenId.startsWith('activation:')) throw new SluiceError('FORBIDDEN', 'an activation token cannot issue tokens');
    if (!SUBJECT_RE.test(req.subject)) throw new SluiceError('BAD_REQUEST', 'subject must be 1-128 characters of A-Z a-z 0-9 . _ @ -');
    if (!Array.isArray(req.scopes) || req.scopes.length === 0) throw new SluiceError('BAD_REQUEST', 'a token needs at least one scope');
    const scopes: Scope[] = req.scopes.map(parseScope);
    if (issuer) {
      const refused = scopes.filter((s) => !covers(issuer.scopes, s));
      if (refused.length > 0) {
        throw new SluiceError('FORBIDDEN', `cannot grant scopes you do not hold: ${refused.map(formatScope).join(', ')}`);
      }
    }
    if (req.expiresIn !== undefined && !(Number.isFinite(req.expiresIn) && req.expiresIn > 0)) {
      throw new SluiceError('BAD_REQUEST', 'expiresIn must be a positive number of seconds');
    }
    const id = randomBytes(6).toString('hex');
    const secret = `sluice_${id}_${randomBytes(24).toString('base64url')}`;
    const now = Date.now();
    const expires = req.expiresIn === undefined ? null : now + Math.round(req.expiresIn * 1000);
    this.q.insert.run(
      id,
      hashOf(secret),
      req.subject,
      req.description ?? '',
      JSON.stringify(scopes.map(formatScope)),
      now,
      expires,
      issuer?.subject ?? null,
    );
    return { secret, token: this.info(this.q.byId.get(id) as TokenRow) };
  }

  /** Also accept the short-lived tokens minted for running activations. */
  acceptActivationTokens(tokens: ActivationTokens): void {
    this.activationTokens = tokens;
  }

  /** Resolves a presented secret to its principal, or UNAUTHORIZED. */
  authenticate(secret: string): Principal {
    if (this.activationTokens && ActivationTokens.isActivationToken(secret)) return this.activationTokens.verify(secret);
    const hash = hashOf(secret);
    const cached = this.known.get(hash);
    if (cached) {
      if (cached.expires !== undefined && cached.expires <= Date.now()) {
        this.known.delete(hash);
        throw new SluiceError('UNAUTHORIZED', 'token has expired');
      }
      return cached;
    }
    const row = this.q.byHash.get(hash) as TokenRow | undefined;
    // The lookup is by hash; compare again in constant time so a near-miss leaks nothing.
    if (!row || !timingSafeEqual(Buffer.from(row.hash, 'hex'), Buffer.from(hash, 'hex'))) {
      throw new SluiceError('UNAUTHORIZED', 'unknown token');
    }
    if (row.revoked !== null) throw new SluiceError('UNAUTHORIZED', 'token has been revoked');
    if (row.expires !== null && row.expires <= Date.now()) throw new SluiceError('UNAUTHORIZED', 'token has expired');
    const principal: Principal = {
      subject: row.subject,
      tokenId: row.id,
      scopes: (JSON.parse(row.scopes) as string[]).map(parseScope),
      ...(row.expires !== null ? { expires: row.expires } : {}),
    };
    if (this.known.size >= 10_000) this.known.clear();
    this.known.set(hash, principal);
    return principal;
  }

  list(subject?: string): TokenInfo[] {
    const rows = (subject === undefined ? this.q.all.all() : this.q.bySubject.all(subject)) as TokenRow[];
    return rows.map((r) => this.info(r));
  }

  get(id: string): TokenInfo {
    const row = this.q.byId.get(id) as TokenRow | undefined;
    if (!row) throw new SluiceError('NOT_FOUND', `no token ${id}`);
    return this.info(row);
  }

  revoke(id: string): TokenInfo {
    const row = this.q.byId.get(id) as TokenRow | undefined;
    if (!row) throw new SluiceError('NOT_FOUND', `no token ${id}`);
    this.q.revoke.run(Date.now(), id);
    this.known.delete(row.hash);
    return this.info(this.q.byId.get(id) as TokenRow);
  }
}
