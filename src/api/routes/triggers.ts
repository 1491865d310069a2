// Triggers (filters over storage events bound to a function or pipeline), their dead letters and
// replays; pipelines and their runs. Bodies are validated by the triggers domain (one schema, with
// defaults and field-precise errors); routes only translate.
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Core } from '../../app.js';
import { principalOf } from '../authenticate.js';
import { NewPipeline, NewTrigger } from '../../triggers/types.js';
import { SluiceError } from '../../errors.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 64, description: 'trigger id or name' }) });
const NameParams = Type.Object({ name: Type.String({ maxLength: 64 }) });
const RunParams = Type.Object({ id: Type.String({ pattern: '^run_[0-9a-f]{16}$' }) });
const Limit = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }, { additionalProperties: false });
const ReplayBody = Type.Object(
  {
    events: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1 }), { maxItems: 10000, description: 'only these events (default: all dead)' }),
    ),
  },
  { additionalProperties: false },
);

export const triggerRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  const triggers = core.triggers;
  const who = (req: Parameters<typeof principalOf>[0]) => principalOf(req, core.tokens);

  app.post(
    '/triggers',
    {
      schema: { tags: ['triggers'], summary: 'Create a trigger', body: NewTrigger },
      // The triggers domain validates with the same schema and names the field and the allowed
      // values in its error; ajv's messages for unions ("must be equal to constant" once per literal) help nobody.
      validatorCompiler: () => () => true,
    },
    async (req, reply) => {
      const t = await triggers.create(req.body, who(req));
      return reply.code(201).header('location', `/api/v1/triggers/${t.id}`).send(t);
    },
  );

  app.get('/triggers', { schema: { tags: ['triggers'], summary: 'List triggers with delivery counts and lag' } }, async (req) =>
    triggers.list(who(req)),
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/triggers/:id',
    { schema: { tags: ['triggers'], summary: 'One trigger with delivery counts and lag', params: IdParams } },
    async (req) => triggers.get(req.params.id, who(req)),
  );

  for (const [action, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    app.post<{ Params: Static<typeof IdParams> }>(
      `/triggers/:id/${action}`,
      { schema: { tags: ['triggers'], summary: `${action[0]!.toUpperCase()}${action.slice(1)} a trigger`, params: IdParams } },
      async (req) => triggers.setEnabled(req.params.id, enabled, who(req)),
    );
  }

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/triggers/:id',
    { schema: { tags: ['triggers'], summary: 'Remove a trigger and its deliveries', params: IdParams } },
    async (req, reply) => {
      await triggers.remove(req.params.id, who(req));
      return reply.code(204).send();
    },
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof Limit> }>(
    '/triggers/:id/dead-letters',
    {
      schema: {
        tags: ['triggers'],
        summary: 'Deliveries that failed every attempt, with the last error',
        params: IdParams,
        querystring: Limit,
      },
    },
    async (req) => triggers.deadLetters(req.params.id, who(req), req.query.limit),
  );

  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof ReplayBody> }>(
    '/triggers/:id/replay',
    { schema: { tags: ['triggers'], summary: 'Deliver dead letters again with fresh attempts', params: IdParams, body: ReplayBody } },
    async (req) => {
      const revived = await triggers.replay(req.params.id, who(req), req.body?.events);
      return { replayed: revived.length, events: revived.map((d) => d.event) };
    },
  );

  app.put<{ Params: Static<typeof NameParams> }>(
    '/pipelines/:name',
    {
      schema: { tags: ['pipelines'], summary: 'Create or replace a pipeline', params: NameParams, body: Type.Omit(NewPipeline, ['name']) },
    },
    async (req) => triggers.savePipeline({ ...(req.body as object), name: req.params.name }, who(req)),
  );

  app.get('/pipelines', { schema: { tags: ['pipelines'], summary: 'List pipelines' } }, async (req) => triggers.listPipelines(who(req)));

  app.get<{ Params: Static<typeof NameParams> }>(
    '/pipelines/:name',
    { schema: { tags: ['pipelines'], summary: 'One pipeline', params: NameParams } },
    async (req) => triggers.getPipeline(req.params.name, who(req)),
  );

  app.delete<{ Params: Static<typeof NameParams> }>(
    '/pipelines/:name',
    { schema: { tags: ['pipelines'], summary: 'Remove a pipeline no trigger targets', params: NameParams } },
    async (req, reply) => {
      await triggers.removePipeline(req.params.name, who(req));
      return reply.code(204).send();
    },
  );

  app.post<{ Params: Static<typeof NameParams>; Body: unknown }>(
    '/pipelines/:name/runs',
    {
      bodyLimit: core.config.functions.maxPayloadBytes,
      schema: { tags: ['pipelines'], summary: 'Run a pipeline with this input and wait for the end', params: NameParams },
    },
    async (req, reply) => {
      const run = await triggers.runPipeline(req.params.name, req.body ?? {}, who(req));
      if (run.status !== 'succeeded') throw new SluiceError('FUNCTION_FAILED', `pipeline ${run.pipeline} failed: ${run.error}`, { run });
      return reply.send(run);
    },
  );

  app.get<{ Params: Static<typeof NameParams>; Querystring: Static<typeof Limit> }>(
    '/pipelines/:name/runs',
    { schema: { tags: ['pipelines'], summary: 'Runs of a pipeline, newest first', params: NameParams, querystring: Limit } },
    async (req) => triggers.listRuns(req.params.name, who(req), req.query.limit),
  );

  app.get<{ Params: Static<typeof RunParams> }>(
    '/pipeline-runs/:id',
    { schema: { tags: ['pipelines'], summary: 'One pipeline run with the activation of every step', params: RunParams } },
    async (req) => triggers.getRun(req.params.id, who(req)),
  );
};
