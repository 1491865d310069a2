// Invocations and activations: POST /functions/{name}/invocations (blocking or async), and the
// activation records (GET /activations, /activations/{id}, /logs, /result).
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Core } from '../../app.js';
import { principalOf } from '../authenticate.js';
import { SluiceError } from '../../errors.js';
import type { Activation } from '../../functions/types.js';

const ActivationError = Type.Object({
  code: Type.String(),
  message: Type.String(),
  name: Type.Optional(Type.String()),
  stack: Type.Optional(Type.String()),
});

const ActivationSchema = Type.Object(
  {
    id: Type.String(),
    function: Type.String(),
    version: Type.String(),
    seq: Type.Integer(),
    status: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('success'), Type.Literal('error')]),
    subject: Type.String(),
    cause: Type.String(),
    blocking: Type.Boolean(),
    input: Type.Optional(Type.Unknown()),
    scopes: Type.Array(Type.String()),
    result: Type.Optional(Type.Unknown()),
    error: Type.Optional(ActivationError),
    logs: Type.Optional(Type.Array(Type.String())),
    cold: Type.Boolean(),
    instance: Type.Optional(Type.String()),
    queuedAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
    endedAt: Type.Optional(Type.String({ format: 'date-time' })),
    waitMs: Type.Optional(Type.Number()),
    durationMs: Type.Optional(Type.Number()),
    initMs: Type.Optional(Type.Number()),
    attempts: Type.Integer(),
  },
  { $id: 'Activation' },
);

const NameParams = Type.Object({ name: Type.String({ pattern: '^[a-z][a-z0-9-]{0,62}$' }) });
const InvokeQuery = Type.Object(
  {
    blocking: Type.Boolean({ default: true, description: 'wait for the result (up to functions.blockingTimeoutSeconds)' }),
    version: Type.Optional(Type.String({ description: 'alias, seq number or digest prefix (default: latest)' })),
    result: Type.Boolean({ default: false, description: 'answer with the result only' }),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{32}$' }) });
const ListQuery = Type.Object(
  {
    function: Type.Optional(Type.String()),
    status: Type.Optional(Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('success'), Type.Literal('error')])),
    before: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32}$', description: 'next page: activations older than this id' })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
  },
  { additionalProperties: false },
);

/** The listing leaves out the bulky parts; GET /activations/{id} has them. */
function summary(a: Activation): Omit<Activation, 'input' | 'result' | 'logs'> {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { input, result, logs, ...rest } = a;
  return rest;
}

export const invocationRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  const functions = core.invoker;
  app.addSchema(ActivationSchema);

  app.post<{ Params: Static<typeof NameParams>; Querystring: Static<typeof InvokeQuery>; Body: unknown }>(
    '/functions/:name/invocations',
    {
      bodyLimit: core.config.functions.maxPayloadBytes,
      schema: {
        tags: ['functions'],
        summary: 'Invoke a function (blocking: 200 with the activation, 502 if it failed; async: 202 with the activation id)',
        params: NameParams,
        querystring: InvokeQuery,
        response: {
          200: Type.Unknown(),
          202: Type.Object({ activationId: Type.String(), status: Type.String() }),
        },
      },
    },
    async (req, reply) => {
      const principal = principalOf(req, core.tokens);
      const activation = await functions.invoke({
        name: req.params.name,
        ...(req.query.version !== undefined ? { ref: req.query.version } : {}),
        input: req.body ?? {},
        principal,
        blocking: req.query.blocking,
      });
      const location = `/api/v1/activations/${activation.id}`;
      if (activation.status === 'queued' || activation.status === 'running') {
        return reply.code(202).header('location', location).send({ activationId: activation.id, status: activation.status });
      }
      void reply.header('x-activation-id', activation.id).header('location', location);
      if (activation.status === 'error') {
        throw new SluiceError('FUNCTION_FAILED', `${activation.function} failed: ${activation.error!.code}: ${activation.error!.message}`, {
          activation,
        });
      }
      return req.query.result ? reply.send(activation.result ?? null) : reply.send(activation);
    },
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/activations',
    {
      schema: {
        tags: ['functions'],
        summary: 'List activations, newest first (admin: all; others: their own)',
        querystring: ListQuery,
        response: { 200: Type.Array(Type.Unknown()) },
      },
    },
    async (req) => {
      const principal = principalOf(req, core.tokens);
      const { function: fn, status, before, limit } = req.query;
      return functions
        .list(
          { limit, ...(fn !== undefined ? { function: fn } : {}), ...(status ? { status } : {}), ...(before ? { before } : {}) },
          principal,
        )
        .map(summary);
    },
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/activations/:id',
    { schema: { tags: ['functions'], summary: 'One activation with its input, result or error, and logs', params: IdParams } },
    async (req) => functions.get(req.params.id, principalOf(req, core.tokens)),
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/activations/:id/logs',
    {
      schema: {
        tags: ['functions'],
        summary: 'The log lines of an activation',
        params: IdParams,
        response: { 200: Type.Object({ logs: Type.Array(Type.String()) }) },
      },
    },
    async (req) => ({ logs: functions.get(req.params.id, principalOf(req, core.tokens)).logs }),
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/activations/:id/result',
    {
      schema: {
        tags: ['functions'],
        summary: 'The result (or error) of an activation',
        params: IdParams,
        response: {
          200: Type.Object({ status: Type.String(), result: Type.Optional(Type.Unknown()), error: Type.Optional(ActivationError) }),
        },
      },
    },
    async (req) => {
      const a = functions.get(req.params.id, principalOf(req, core.tokens));
      return { status: a.status, ...(a.result !== undefined ? { result: a.result } : {}), ...(a.error ? { error: a.error } : {}) };
    },
  );
};
