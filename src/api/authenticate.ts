// Reads the caller's token from "Authorization: Bearer T" or HTTP Basic with T as the password
// (for WebDAV clients that only speak Basic), and resolves it to a principal.
import type { FastifyRequest } from 'fastify';
import { SluiceError } from '../errors.js';
import type { Principal } from '../auth/scopes.js';
import type { TokenService } from '../auth/tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

export function tokenFromHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const value = space < 0 ? '' : header.slice(space + 1).trim();
  if (scheme === 'bearer') return value || undefined;
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? undefined : decoded.slice(colon + 1) || undefined;
  }
  throw new SluiceError('UNAUTHORIZED', `unsupported authorization scheme "${scheme}"; use Bearer`);
}

export function principalOf(req: FastifyRequest, tokens: TokenService): Principal {
  if (req.principal) return req.principal;
  const secret = tokenFromHeader(req.headers.authorization);
  if (!secret) throw new SluiceError('UNAUTHORIZED', 'a bearer token is required');
  req.principal = tokens.authenticate(secret);
  return req.principal;
}
