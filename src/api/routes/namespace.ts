// dCache-compatible namespace REST API: GET /api/v1/namespace/{path} with children, checksum,
// locality, qos, xattr and label flags; POST actions mkdir, mv, rm, set-label, rm-label, set-xattr,
// rm-xattr; DELETE. Successful POSTs answer 201 {"status":"success"} as dCache does.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Core } from '../../app.js';
import { principalOf } from '../authenticate.js';
import { SluiceError } from '../../errors.js';
import { join, parentOf, pathFromUrl, userPath, type NsPath } from '../../storage/paths.js';
import type { Entry } from '../../storage/types.js';
import { localityOf } from '../../placement/service.js';
import { DCACHE_CHECKSUM_NAMES } from '../../storage/checksums.js';
import type { ChecksumType } from '../../storage/types.js';

const PREFIX = '/api/v1/namespace';

const Flags = Type.Object(
  {
    children: Type.Optional(Type.Boolean()),
    checksum: Type.Optional(Type.Boolean()),
    locality: Type.Optional(Type.Boolean()),
    locations: Type.Optional(Type.Boolean()),
    replicas: Type.Optional(Type.Boolean({ description: 'sluice extension: each replica with its SE and state' })),
    qos: Type.Optional(Type.Boolean()),
    xattr: Type.Optional(Type.Boolean()),
    labels: Type.Optional(Type.Boolean()),
    optional: Type.Optional(Type.Boolean()),
    limit: Type.Optional(Type.Integer({ minimum: 0 })),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
type FlagsT = Static<typeof Flags>;

const ACTIONS = [
  Type.Object(
    { action: Type.Literal('mkdir'), name: Type.String({ minLength: 1 }), parents: Type.Optional(Type.Boolean()) },
    { additionalProperties: false },
  ),
  Type.Object(
    { action: Type.Literal('mv'), destination: Type.String({ minLength: 1 }), overwrite: Type.Optional(Type.Boolean()) },
    { additionalProperties: false },
  ),
  Type.Object({ action: Type.Literal('rm'), recursive: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
  Type.Object({ action: Type.Literal('set-label'), label: Type.String({ minLength: 1, maxLength: 255 }) }, { additionalProperties: false }),
  Type.Object({ action: Type.Literal('rm-label'), label: Type.String({ minLength: 1, maxLength: 255 }) }, { additionalProperties: false }),
  Type.Object(
    {
      action: Type.Literal('set-xattr'),
      mode: Type.Optional(Type.Union([Type.Literal('CREATE'), Type.Literal('MODIFY'), Type.Literal('EITHER')])),
      attributes: Type.Record(Type.String({ minLength: 1, maxLength: 255 }), Type.String({ maxLength: 65536 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    { action: Type.Literal('rm-xattr'), names: Type.Union([Type.String(), Type.Array(Type.String())]) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      action: Type.Literal('qos'),
      target: Type.String({ minLength: 1, description: 'QoS class: disk, tape, disk+tape or one the operator defined' }),
    },
    { additionalProperties: false },
  ),
] as const;
const Action = Type.Union([...ACTIONS]);
type ActionT = Static<typeof Action>;

/** Validates against the one variant the "action" names, so errors speak of that action only. */
const actionValidators = new Map(ACTIONS.map((schema) => [schema.properties.action.const as string, TypeCompiler.Compile(schema)]));
function validateAction(body: unknown): { value: unknown } | { error: Error } {
  const action = (body as { action?: unknown } | null)?.action;
  const check = typeof action === 'string' ? actionValidators.get(action) : undefined;
  if (!check) {
    return { error: new SluiceError('BAD_REQUEST', `unknown or missing "action"; one of: ${[...actionValidators.keys()].join(', ')}`) };
  }
  const first = check.Errors(body).First();
  if (!first) return { value: body };
  return { error: new SluiceError('BAD_REQUEST', `action ${action}: ${first.path || 'body'} ${first.message}`) };
}

const Success = Type.Object({ status: Type.Literal('success') });

/** The namespace path addressed by a request URL below /api/v1/namespace. */
function pathOf(req: FastifyRequest): NsPath {
  const raw = req.url.split('?')[0]!.slice(PREFIX.length);
  return pathFromUrl(raw === '' ? '/' : raw);
}

async function describe(core: Core, req: FastifyRequest, e: Entry, flags: FlagsT): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {
    fileMimeType: e.type === 'DIR' ? 'application/vnd.dcache.folder' : (e.contentType ?? 'application/octet-stream'),
    fileType: e.type,
    pnfsId: e.fileId,
    nlink: e.type === 'DIR' ? 2 : 1,
    mtime: e.mtime,
    creationTime: e.ctime,
    size: e.size,
  };
  const p = principalOf(req, core.tokens);
  if (e.type === 'REGULAR' && (flags.locality || flags.qos || flags.locations || flags.replicas)) {
    const replicas = await core.namespace.replicas(p, e.path);
    if (flags.locality) out.fileLocality = localityOf(replicas);
    if (flags.locations) out.locations = replicas.filter((r) => r.state !== 'BAD' && r.state !== 'COPYING').map((r) => r.se);
    if (flags.qos) Object.assign(out, await core.placement.qosOf(p, e.path));
    // sluice extension: every replica with its SE and state (COPYING, AVAILABLE, NEARLINE, BAD).
    if (flags.replicas) {
      out.replicas = replicas.map((r) => ({
        se: r.se,
        state: r.state,
        online: r.online,
        created: r.created,
        ...(r.pinnedUntil !== undefined ? { pinnedUntil: r.pinnedUntil } : {}),
        ...(r.verified !== undefined ? { verified: r.verified } : {}),
        ...(r.reason !== undefined ? { reason: r.reason } : {}),
      }));
    }
  }
  if (flags.checksum && e.type === 'REGULAR') {
    out.checksums = (Object.entries(e.checksums) as [ChecksumType, string][]).map(([type, value]) => ({
      type: DCACHE_CHECKSUM_NAMES[type],
      value,
    }));
  }
  if (flags.xattr) out.extendedAttributes = e.xattrs;
  if (flags.labels) out.labels = e.labels;
  if (flags.optional) Object.assign(out, { mode: e.mode, owner: e.owner, ctime: e.ctime, path: e.path });
  return out;
}

export const namespaceRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  const ns = core.namespace;

  const get = async (req: FastifyRequest<{ Querystring: FlagsT }>) => {
    const p = principalOf(req, core.tokens);
    const path = pathOf(req);
    const flags = req.query;
    const { entry, children } = flags.children ? await ns.list(p, path) : { entry: await ns.stat(p, path), children: [] };
    const out = await describe(core, req, entry, flags);
    if (flags.children && entry.type === 'DIR') {
      const offset = flags.offset ?? 0;
      const page = children.slice(offset, flags.limit === undefined ? undefined : offset + flags.limit);
      out.children = await Promise.all(
        page.map(async (c) => ({ ...(await describe(core, req, c, { ...flags, children: false })), fileName: c.name })),
      );
    }
    return out;
  };
  const getSchema = {
    tags: ['namespace'],
    summary: 'Attributes of a file or directory (dCache-compatible)',
    querystring: Flags,
  };
  app.get<{ Querystring: FlagsT }>('/namespace', { schema: getSchema }, get);
  app.get<{ Querystring: FlagsT }>('/namespace/*', { schema: getSchema }, get);

  const post = async (req: FastifyRequest<{ Body: ActionT }>, reply: import('fastify').FastifyReply) => {
    const p = principalOf(req, core.tokens);
    const path = pathOf(req);
    const body = req.body;
    switch (body.action) {
      case 'mkdir': {
        if (body.name.includes('/')) throw new SluiceError('BAD_PATH', 'name must not contain "/"');
        await ns.mkdir(p, userPath(join(path, body.name)), { parents: body.parents === true });
        break;
      }
      case 'mv': {
        const dest = body.destination.startsWith('/') ? userPath(body.destination) : userPath(join(parentOf(path), body.destination));
        await ns.move(p, path, dest, { overwrite: body.overwrite === true });
        break;
      }
      case 'rm': {
        const entry = await ns.stat(p, path);
        if (entry.type === 'DIR' && !body.recursive && (await ns.list(p, path)).children.length > 0) {
          throw new SluiceError('NOT_EMPTY', `${path} is not empty; use "recursive": true`);
        }
        await ns.remove(p, path);
        break;
      }
      case 'set-label':
        await ns.changeAttributes(p, path, { addLabels: [body.label] });
        break;
      case 'rm-label':
        await ns.changeAttributes(p, path, { removeLabels: [body.label] });
        break;
      case 'set-xattr': {
        const entry = await ns.stat(p, path);
        const mode = body.mode ?? 'EITHER';
        for (const k of Object.keys(body.attributes)) {
          if (mode === 'CREATE' && k in entry.xattrs) throw new SluiceError('CONFLICT', `attribute ${k} already exists`);
          if (mode === 'MODIFY' && !(k in entry.xattrs)) throw new SluiceError('CONFLICT', `no such attribute ${k}`);
        }
        await ns.changeAttributes(p, path, { setXattrs: body.attributes });
        break;
      }
      case 'qos':
        await core.placement.transitionQos(p, path, body.target);
        break;
      case 'rm-xattr': {
        const names = typeof body.names === 'string' ? [body.names] : body.names;
        const entry = await ns.stat(p, path);
        const missing = names.filter((n) => !(n in entry.xattrs));
        if (missing.length > 0) throw new SluiceError('CONFLICT', `no such attribute: ${missing.join(', ')}`);
        await ns.changeAttributes(p, path, { removeXattrs: names });
        break;
      }
    }
    return reply.code(201).send({ status: 'success' as const });
  };
  const postOptions = {
    schema: { tags: ['namespace'], summary: 'Namespace action (dCache-compatible)', body: Action, response: { 201: Success } },
    validatorCompiler: ({ httpPart }: { httpPart?: string }) =>
      httpPart === 'body' ? validateAction : (data: unknown) => ({ value: data }),
  };
  app.post<{ Body: ActionT }>('/namespace', postOptions, post);
  app.post<{ Body: ActionT }>('/namespace/*', postOptions, post);

  app.delete(
    '/namespace/*',
    { schema: { tags: ['namespace'], summary: 'Delete a file or an empty directory', response: { 200: Success } } },
    async (req) => {
      const p = principalOf(req, core.tokens);
      const path = pathOf(req);
      const entry = await ns.stat(p, path);
      if (entry.type === 'DIR' && (await ns.list(p, path)).children.length > 0) throw new SluiceError('NOT_EMPTY', `${path} is not empty`);
      await ns.remove(p, path);
      return { status: 'success' as const };
    },
  );
};
