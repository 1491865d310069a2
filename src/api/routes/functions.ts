// The function registry over HTTP: deploy a bundle (tar.gz body), list and show functions and
// versions, set and remove aliases, remove versions and functions. Invocations live in their own routes.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { isReadable, PassThrough, type Readable } from 'node:stream';
import type { TokenService } from '../../auth/tokens.js';
import { principalOf } from '../authenticate.js';
import { SluiceError } from '../../errors.js';
import { requireFunctionRead, type FunctionRegistry } from '../../functions/registry.js';
import { FUNCTION_NAME_RE, Manifest, type FunctionVersion } from '../../functions/types.js';
import type { FunctionSummary } from '../../functions/function-store.js';
import type { PoolStatus } from '../../functions/pool.js';

/** What the routes need from the core (the full Core satisfies it). */
export interface FunctionRoutesCore {
  tokens: TokenService;
  functions: FunctionRegistry;
  /** Instance pools to show with a function, when this server runs functions. */
  invoker?: { poolStatus(name: string): PoolStatus[] };
}

/** Media types a deploy accepts; all mean a gzip-compressed tar archive. */
export const BUNDLE_MEDIA_TYPES = ['application/gzip', 'application/x-gzip', 'application/tar+gzip'];

const FunctionVersionSchema = Type.Object({
  name: Type.String(),
  version: Type.String({ description: 'sha-256 of the bundle content' }),
  seq: Type.Integer({ description: '1, 2, 3… in deploy order' }),
  manifest: Manifest,
  size: Type.Integer({ description: 'Bytes of the unpacked bundle' }),
  created: Type.String({ format: 'date-time' }),
  createdBy: Type.String(),
  aliases: Type.Array(Type.String(), { description: 'Aliases pointing at this version' }),
});

const AliasMap = Type.Record(Type.String(), Type.String(), { description: 'alias → version digest' });

const FunctionListItem = Type.Object({
  name: Type.String(),
  description: Type.String(),
  runtime: Type.String(),
  latest: Type.Object({ version: Type.String(), seq: Type.Integer(), created: Type.String({ format: 'date-time' }) }),
  versions: Type.Integer(),
  aliases: AliasMap,
});

const PoolSchema = Type.Object({
  version: Type.String(),
  seq: Type.Integer(),
  runtime: Type.String(),
  instances: Type.Array(
    Type.Object({
      id: Type.String(),
      pid: Type.Optional(Type.Integer()),
      state: Type.String(),
      inFlight: Type.Integer(),
      callsServed: Type.Integer(),
      idleMs: Type.Number(),
    }),
  ),
  starting: Type.Integer(),
  ready: Type.Integer(),
  inFlight: Type.Integer(),
  queued: Type.Integer(),
  coldStarts: Type.Integer({ description: 'instances (or exec processes) started since the pool was created' }),
  min: Type.Integer(),
  max: Type.Integer(),
  concurrency: Type.Integer(),
});

const FunctionDetail = Type.Object({
  name: Type.String(),
  aliases: AliasMap,
  latest: FunctionVersionSchema,
  versions: Type.Integer(),
  pools: Type.Array(PoolSchema, { description: 'instances of each version that has run or is kept warm on this server' }),
});

const NameParams = Type.Object({ name: Type.String({ pattern: FUNCTION_NAME_RE.source, description: 'function name' }) });
const RefParams = Type.Object({
  name: NameParams.properties.name,
  ref: Type.String({ maxLength: 64, description: 'alias, seq number or digest prefix (≥ 7 hex digits)' }),
});
const AliasParams = Type.Object({ name: NameParams.properties.name, alias: Type.String({ maxLength: 64 }) });
const DeployQuery = Type.Object(
  { alias: Type.Optional(Type.Array(Type.String(), { maxItems: 16, description: 'aliases to point at the deployed version' })) },
  { additionalProperties: false },
);
const AliasBody = Type.Object(
  { version: Type.String({ minLength: 1, maxLength: 64, description: 'alias, seq number or digest prefix' }) },
  { additionalProperties: false },
);
const Removed = Type.Null({ description: 'removed' });

/** One row of GET /functions, as the client sees it. */
export type FunctionListItem = Static<typeof FunctionListItem>;
/** GET /functions/:name. */
export interface FunctionDetail {
  name: string;
  aliases: Record<string, string>;
  latest: FunctionVersion;
  versions: number;
  pools: PoolStatus[];
}

const listItem = (s: FunctionSummary): Static<typeof FunctionListItem> => ({
  name: s.name,
  description: s.latest.manifest.description,
  runtime: s.latest.manifest.runtime,
  latest: { version: s.latest.version, seq: s.latest.seq, created: s.latest.created },
  versions: s.versions,
  aliases: s.aliases,
});

export const functionRoutes: FastifyPluginAsync<{ core: FunctionRoutesCore }> = async (app, { core }) => {
  const registry = core.functions;
  const reader = (req: FastifyRequest) => {
    const p = principalOf(req, core.tokens);
    requireFunctionRead(p);
    return p;
  };

  // The archive goes to the registry as the raw request stream: nothing is buffered, and the unpacker
  // enforces maxBundleBytes as bytes arrive (a route bodyLimit would bind only buffering parsers, and
  // JSON sent here by mistake should stay under the server's JSON limit on its way to a 415).
  app.addContentTypeParser(BUNDLE_MEDIA_TYPES, (_req, payload, done) => done(null, payload));

  app.post<{ Querystring: Static<typeof DeployQuery> }>(
    '/functions',
    {
      schema: {
        tags: ['functions'],
        summary: 'Deploy a bundle (tar.gz with a sluice.function.json/.yaml at its root) as a version',
        description:
          'Content-Type: application/gzip. 201 with a new version; 200 when this content already is a version ' +
          '(latest then moves to it). Location names the version.',
        querystring: DeployQuery,
        response: { 200: FunctionVersionSchema, 201: FunctionVersionSchema },
      },
    },
    async (req, reply) => {
      const principal = principalOf(req, core.tokens);
      const body = req.body as Readable | undefined;
      if (!body || !isReadable(body)) {
        throw new SluiceError('UNSUPPORTED', `a deploy takes a tar.gz body with Content-Type ${BUNDLE_MEDIA_TYPES[0]}`);
      }
      const length = Number(req.headers['content-length'] ?? 0);
      if (length > registry.maxBundleBytes) {
        // Not worth reading: answer and close the connection.
        void reply.header('connection', 'close');
        throw new SluiceError('PAYLOAD_TOO_LARGE', `bundle archive of ${length} bytes is larger than ${registry.maxBundleBytes} bytes`);
      }
      // The registry reads a pipe, not the request itself, so that a refusal (which ends its reading)
      // leaves the request intact for discardRest.
      const upload = new PassThrough();
      body.pipe(upload);
      try {
        const { version, created } = await registry.deploy(upload, principal, { aliases: req.query.alias ?? [] });
        void reply.header('location', versionPath(version));
        return reply.code(created ? 201 : 200).send(version);
      } catch (e) {
        discardRest(body, upload, registry.maxBundleBytes);
        throw e;
      }
    },
  );

  app.get(
    '/functions',
    { schema: { tags: ['functions'], summary: 'List functions', response: { 200: Type.Array(FunctionListItem) } } },
    async (req) => {
      reader(req);
      return (await registry.list()).map(listItem);
    },
  );

  app.get<{ Params: Static<typeof NameParams> }>(
    '/functions/:name',
    { schema: { tags: ['functions'], summary: 'Show a function', params: NameParams, response: { 200: FunctionDetail } } },
    async (req) => {
      reader(req);
      const s = await registry.get(req.params.name);
      return { name: s.name, aliases: s.aliases, latest: s.latest, versions: s.versions, pools: core.invoker?.poolStatus(s.name) ?? [] };
    },
  );

  app.get<{ Params: Static<typeof NameParams> }>(
    '/functions/:name/versions',
    {
      schema: {
        tags: ['functions'],
        summary: 'List the versions of a function, newest first',
        params: NameParams,
        response: { 200: Type.Array(FunctionVersionSchema) },
      },
    },
    async (req) => {
      reader(req);
      return registry.versions(req.params.name);
    },
  );

  app.get<{ Params: Static<typeof RefParams> }>(
    '/functions/:name/versions/:ref',
    {
      schema: {
        tags: ['functions'],
        summary: 'Show one version by alias, seq number or digest prefix',
        params: RefParams,
        response: { 200: FunctionVersionSchema },
      },
    },
    async (req) => {
      reader(req);
      return registry.resolve(req.params.name, req.params.ref);
    },
  );

  app.put<{ Params: Static<typeof AliasParams>; Body: Static<typeof AliasBody> }>(
    '/functions/:name/aliases/:alias',
    {
      schema: {
        tags: ['functions'],
        summary: 'Point an alias at a version (latest is maintained by sluice)',
        params: AliasParams,
        body: AliasBody,
        response: { 200: FunctionVersionSchema },
      },
    },
    async (req) => registry.setAlias(req.params.name, req.params.alias, req.body.version, principalOf(req, core.tokens)),
  );

  app.delete<{ Params: Static<typeof AliasParams> }>(
    '/functions/:name/aliases/:alias',
    { schema: { tags: ['functions'], summary: 'Remove an alias', params: AliasParams, response: { 204: Removed } } },
    async (req, reply) => {
      await registry.removeAlias(req.params.name, req.params.alias, principalOf(req, core.tokens));
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: Static<typeof NameParams> }>(
    '/functions/:name',
    {
      schema: { tags: ['functions'], summary: 'Remove a function with all its versions', params: NameParams, response: { 204: Removed } },
    },
    async (req, reply) => {
      await registry.remove(req.params.name, principalOf(req, core.tokens));
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: Static<typeof RefParams> }>(
    '/functions/:name/versions/:ref',
    {
      schema: {
        tags: ['functions'],
        summary: 'Remove one version (refused while an alias other than latest points at it)',
        params: RefParams,
        response: { 204: Removed },
      },
    },
    async (req, reply) => {
      await registry.removeVersion(req.params.name, req.params.ref, principalOf(req, core.tokens));
      return reply.code(204).send();
    },
  );
};

/**
 * Reads and drops what the client still sends after a refusal (up to `limit` bytes), so that it
 * receives the answer instead of a connection reset in the middle of its upload.
 */
function discardRest(body: Readable, upload: PassThrough, limit: number): void {
  body.unpipe(upload);
  let seen = 0;
  body.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > limit) body.destroy();
  });
  body.resume();
}

export const versionPath = (v: Pick<FunctionVersion, 'name' | 'version'>): string => `/api/v1/functions/${v.name}/versions/${v.version}`;
