// Token management: issue (never wider than the caller's own scopes), list, show, revoke (which also
// closes the event subscriptions the token created); and whoami.
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Core } from '../../app.js';
import { principalOf } from '../authenticate.js';
import { formatScope, isAdmin } from '../../auth/scopes.js';
import { SluiceError } from '../../errors.js';

const TokenInfo = Type.Object({
  id: Type.String(),
  subject: Type.String(),
  description: Type.String(),
  scopes: Type.Array(Type.String()),
  created: Type.String({ format: 'date-time' }),
  expires: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  revoked: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  createdBy: Type.Union([Type.String(), Type.Null()]),
});

const NewToken = Type.Object(
  {
    subject: Type.Optional(
      Type.String({ description: 'Who the token is for; defaults to the caller. Only admin may name another subject.' }),
    ),
    scopes: Type.Array(Type.String(), {
      minItems: 1,
      maxItems: 64,
      description: 'e.g. storage.read:/beamtime, storage.modify:/beamtime/raw, admin',
    }),
    description: Type.Optional(Type.String({ maxLength: 512 })),
    expiresIn: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Lifetime in seconds' })),
  },
  { additionalProperties: false },
);

const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{12}$' }) });

export const tokenRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  const tokens = core.tokens;

  app.post<{ Body: Static<typeof NewToken> }>(
    '/tokens',
    {
      schema: {
        tags: ['tokens'],
        summary: 'Issue a bearer token (the secret is returned once)',
        body: NewToken,
        response: { 201: Type.Object({ secret: Type.String(), token: TokenInfo }) },
      },
    },
    async (req, reply) => {
      const caller = principalOf(req, tokens);
      const subject = req.body.subject ?? caller.subject;
      if (subject !== caller.subject && !isAdmin(caller))
        throw new SluiceError('FORBIDDEN', 'only admin may issue tokens for another subject');
      const created = tokens.create(
        {
          subject,
          scopes: req.body.scopes,
          ...(req.body.description !== undefined ? { description: req.body.description } : {}),
          ...(req.body.expiresIn !== undefined ? { expiresIn: req.body.expiresIn } : {}),
        },
        caller,
      );
      req.log.info({ tokenId: created.token.id, subject, by: caller.subject }, 'token issued');
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/tokens',
    { schema: { tags: ['tokens'], summary: 'List tokens (admin: all; others: their own)', response: { 200: Type.Array(TokenInfo) } } },
    async (req) => {
      const caller = principalOf(req, tokens);
      return tokens.list(isAdmin(caller) ? undefined : caller.subject);
    },
  );

  const own = (req: Parameters<typeof principalOf>[0], id: string) => {
    const caller = principalOf(req, tokens);
    const info = tokens.get(id);
    if (!isAdmin(caller) && info.subject !== caller.subject) throw new SluiceError('NOT_FOUND', `no token ${id}`);
    return info;
  };

  app.get<{ Params: Static<typeof IdParams> }>(
    '/tokens/:id',
    { schema: { tags: ['tokens'], summary: 'Show one token', params: IdParams, response: { 200: TokenInfo } } },
    async (req) => own(req, req.params.id),
  );

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/tokens/:id',
    { schema: { tags: ['tokens'], summary: 'Revoke a token', params: IdParams, response: { 200: TokenInfo } } },
    async (req) => {
      own(req, req.params.id);
      const info = tokens.revoke(req.params.id);
      const subscriptions = core.channels.closeSubscriptionsOfToken(info.id);
      req.log.info({ tokenId: info.id, subscriptions }, 'token revoked; its event subscriptions closed');
      return info;
    },
  );

  app.get(
    '/whoami',
    {
      schema: {
        tags: ['tokens'],
        summary: 'The caller as the server sees it',
        response: {
          200: Type.Object({ status: Type.String(), subject: Type.String(), tokenId: Type.String(), scopes: Type.Array(Type.String()) }),
        },
      },
    },
    async (req) => {
      const p = principalOf(req, tokens);
      return { status: 'AUTHENTICATED', subject: p.subject, tokenId: p.tokenId, scopes: p.scopes.map(formatScope) };
    },
  );
};
