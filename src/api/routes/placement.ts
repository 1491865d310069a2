// Storage elements, replication rules and transfers. Bodies are validated by the placement domain's
// schemas (field-precise errors); routes only translate.
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Core } from '../../app.js';
import { principalOf } from '../authenticate.js';
import { checkBody } from '../../validation.js';
import { RuleSpec, SeSpec, TRANSFER_STATES, type TransferState } from '../../placement/types.js';
import { userPath } from '../../storage/paths.js';
import { SluiceError } from '../../errors.js';

const NameParams = Type.Object({ name: Type.String({ maxLength: 64 }) });
const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const Page = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 10000, default: 100 }),
    offset: Type.Integer({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false },
);
const TransferFilter = Type.Object(
  {
    state: Type.Optional(Type.Union(TRANSFER_STATES.map((s) => Type.Literal(s)))),
    path: Type.Optional(Type.String({ description: 'a file, or a directory: transfers of files below it' })),
    rule: Type.Optional(Type.String({ maxLength: 64 })),
    limit: Type.Integer({ minimum: 1, maximum: 10000, default: 100 }),
    offset: Type.Integer({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false },
);
const AttributeChange = Type.Object(
  {
    set: Type.Optional(Type.Record(Type.String(), Type.String())),
    remove: Type.Optional(Type.Array(Type.String())),
    available: Type.Optional(Type.Boolean({ description: 'false takes the SE out of service: its copies are made again elsewhere' })),
  },
  { additionalProperties: false },
);
const VerifyBody = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false });

/** Validates the SE spec of the kind it names, so errors speak of that kind only. */
function checkSeSpec(body: unknown): SeSpec {
  const kind = (body as { kind?: unknown } | null)?.kind;
  const variant = SeSpec.anyOf.find((v) => v.properties.kind.const === kind);
  if (!variant)
    throw new SluiceError('BAD_REQUEST', `storage element: "kind" must be one of local, webdav, tape (got ${JSON.stringify(kind)})`);
  return checkBody<SeSpec>(variant, body, 'storage element');
}

export const placementRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  const placement = core.placement;
  const who = (req: Parameters<typeof principalOf>[0]) => principalOf(req, core.tokens);
  const noAjv = { validatorCompiler: () => () => true };

  // ---- storage elements ----------------------------------------------------------------------------

  app.get(
    '/storage-elements',
    { schema: { tags: ['placement'], summary: 'Storage elements with their attributes and space' } },
    async (req) => {
      const p = who(req);
      return Promise.all(placement.listSes(p).map((se) => placement.showSe(se.name)));
    },
  );

  app.post(
    '/storage-elements',
    { schema: { tags: ['placement'], summary: 'Add a storage element (admin)', body: SeSpec }, ...noAjv },
    async (req, reply) => {
      const info = await placement.addSe(who(req), checkSeSpec(req.body));
      return reply
        .code(201)
        .header('location', `/api/v1/storage-elements/${info.name}`)
        .send(await placement.showSe(info.name));
    },
  );

  app.get<{ Params: Static<typeof NameParams> }>(
    '/storage-elements/:name',
    { schema: { tags: ['placement'], summary: 'One storage element with used and free space', params: NameParams } },
    async (req) => {
      who(req);
      return placement.showSe(req.params.name);
    },
  );

  app.patch<{ Params: Static<typeof NameParams>; Body: Static<typeof AttributeChange> }>(
    '/storage-elements/:name',
    {
      schema: {
        tags: ['placement'],
        summary: 'Set or remove attributes of a storage element (admin)',
        params: NameParams,
        body: AttributeChange,
      },
    },
    async (req) => {
      const p = who(req);
      if (req.body.set !== undefined || req.body.remove !== undefined) {
        await placement.setSeAttributes(p, req.params.name, req.body.set ?? {}, req.body.remove ?? []);
      }
      if (req.body.available !== undefined) await placement.setSeAvailable(p, req.params.name, req.body.available);
      return placement.showSe(req.params.name);
    },
  );

  app.delete<{ Params: Static<typeof NameParams> }>(
    '/storage-elements/:name',
    { schema: { tags: ['placement'], summary: 'Remove an empty storage element (admin)', params: NameParams } },
    async (req, reply) => {
      await placement.removeSe(who(req), req.params.name);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: Static<typeof NameParams>; Body: Static<typeof VerifyBody> }>(
    '/storage-elements/:name/verify',
    {
      schema: {
        tags: ['placement'],
        summary: 'Read every replica back and compare its ADLER32; mismatches are marked BAD and copied again (admin)',
        params: NameParams,
        body: VerifyBody,
      },
    },
    async (req) => placement.verifySe(who(req), req.params.name, req.body?.limit),
  );

  // ---- rules -------------------------------------------------------------------------------------

  app.post(
    '/rules',
    { schema: { tags: ['placement'], summary: 'Create a replication rule', body: RuleSpec }, ...noAjv },
    async (req, reply) => {
      const rule = await placement.createRule(who(req), checkBody<RuleSpec>(RuleSpec, req.body, 'rule'));
      return reply.code(201).header('location', `/api/v1/rules/${rule.id}`).send(rule);
    },
  );

  app.get('/rules', { schema: { tags: ['placement'], summary: 'Replication rules the token may see' } }, async (req) =>
    placement.listRules(who(req)),
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/rules/:id',
    { schema: { tags: ['placement'], summary: 'One rule with its state and lock counts', params: IdParams } },
    async (req) => placement.getRule(who(req), req.params.id),
  );

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof Page> }>(
    '/rules/:id/locks',
    {
      schema: {
        tags: ['placement'],
        summary: 'The replicas a rule holds (its locks), with their state',
        params: IdParams,
        querystring: Page,
      },
    },
    async (req) => placement.ruleLocks(who(req), req.params.id, req.query.limit, req.query.offset),
  );

  for (const [action, suspended] of [
    ['suspend', true],
    ['resume', false],
  ] as const) {
    app.post<{ Params: Static<typeof IdParams> }>(
      `/rules/:id/${action}`,
      { schema: { tags: ['placement'], summary: `${action[0]!.toUpperCase()}${action.slice(1)} a rule`, params: IdParams } },
      async (req) => placement.suspendRule(who(req), req.params.id, suspended),
    );
  }

  app.delete<{ Params: Static<typeof IdParams> }>(
    '/rules/:id',
    { schema: { tags: ['placement'], summary: 'Delete a rule; the replicas it protected become deletable', params: IdParams } },
    async (req, reply) => {
      await placement.deleteRule(who(req), req.params.id);
      return reply.code(204).send();
    },
  );

  // ---- transfers -----------------------------------------------------------------------------------

  app.get<{ Querystring: Static<typeof TransferFilter> }>(
    '/transfers',
    { schema: { tags: ['placement'], summary: 'Transfers, newest first', querystring: TransferFilter } },
    async (req) => {
      const q = req.query;
      return placement.listTransfers(who(req), {
        ...(q.state ? { state: q.state as TransferState } : {}),
        ...(q.path ? { path: userPath(q.path) } : {}),
        ...(q.rule ? { ruleId: q.rule } : {}),
        limit: q.limit,
        offset: q.offset,
      });
    },
  );

  app.get<{ Params: Static<typeof IdParams> }>(
    '/transfers/:id',
    { schema: { tags: ['placement'], summary: 'One transfer with its progress', params: IdParams } },
    async (req) => placement.getTransfer(who(req), req.params.id),
  );

  app.post<{ Params: Static<typeof IdParams> }>(
    '/transfers/:id/cancel',
    { schema: { tags: ['placement'], summary: 'Cancel a queued or running transfer', params: IdParams } },
    async (req) => placement.cancelTransfer(who(req), req.params.id),
  );

  app.get('/qos', { schema: { tags: ['placement'], summary: 'QoS classes and the rules they stand for' } }, async (req) => {
    who(req);
    return placement.qos.classes();
  });
};
