// The catalogue over HTTP: records by id and by path, search, lineage, annotation of a file's
// record with scientific metadata, and datasets (a directory's record grouping the files below it).
// Paths follow the route prefix as in the namespace API.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { TokenService } from '../../auth/tokens.js';
import type { Principal } from '../../auth/scopes.js';
import type { Entry } from '../../storage/types.js';
import { principalOf } from '../authenticate.js';
import { pathFromUrl, type NsPath } from '../../storage/paths.js';
import {
  DEFAULT_LINEAGE_DEPTH,
  DEFAULT_SEARCH_LIMIT,
  MAX_LINEAGE_DEPTH,
  MAX_SEARCH_LIMIT,
  type CatalogService,
} from '../../catalog/service.js';
import { MAX_QUERY_LENGTH } from '../../catalog/query.js';
import {
  CatalogRecord,
  Dataset,
  LINEAGE_DIRECTIONS,
  LineageGraph,
  METADATA_KEY_RE,
  RECORD_ID_RE,
  RECORD_TYPES,
} from '../../catalog/types.js';

/** What the routes need from the core (the full Core satisfies it). */
export interface CatalogRoutesCore {
  tokens: TokenService;
  catalog: CatalogService;
  /** To check that a dataset's directory exists (when the service has no lookupDir of its own). */
  namespace?: { find(p: Principal, path: NsPath): Promise<Entry | undefined> };
}

const IdParams = Type.Object({ id: Type.String({ pattern: RECORD_ID_RE.source, description: 'record id (rec_…)' }) });
const SearchQuery = Type.Object(
  {
    q: Type.String({ maxLength: MAX_QUERY_LENGTH, default: '', description: 'search terms (docs/catalog.md); empty: every record' }),
    limit: Type.Integer({ minimum: 1, maximum: MAX_SEARCH_LIMIT, default: DEFAULT_SEARCH_LIMIT }),
    offset: Type.Integer({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false },
);
const LineageQuery = Type.Object(
  {
    direction: Type.Union(
      LINEAGE_DIRECTIONS.map((d) => Type.Literal(d)),
      { default: 'up', description: 'up: inputs; down: what was derived from it; both' },
    ),
    depth: Type.Integer({ minimum: 1, maximum: MAX_LINEAGE_DEPTH, default: DEFAULT_LINEAGE_DEPTH, description: 'edges to follow' }),
  },
  { additionalProperties: false },
);
const AnnotateBody = Type.Object(
  {
    key: Type.String({ pattern: METADATA_KEY_RE.source, description: 'metadata namespace key, e.g. user or nexus' }),
    metadata: Type.Record(Type.String(), Type.Unknown(), { description: 'merged into the key (RFC 7396: null removes a member)' }),
    replace: Type.Optional(Type.Boolean({ description: 'replace the key’s metadata instead of merging' })),
  },
  { additionalProperties: false },
);

const CreateDatasetBody = Type.Object(
  {
    path: Type.String({ description: 'the namespace directory (SciCat sourceFolder)' }),
    type: Type.Optional(Type.Union(RECORD_TYPES.map((t) => Type.Literal(t)))),
    metadata: Type.Optional(
      Type.Record(Type.String({ pattern: METADATA_KEY_RE.source }), Type.Record(Type.String(), Type.Unknown()), {
        description: 'scientific metadata, one object per namespace key',
      }),
    ),
  },
  { additionalProperties: false },
);

export const catalogRoutes: FastifyPluginAsync<{ core: CatalogRoutesCore }> = async (app, { core }) => {
  const catalog = core.catalog;
  const filesPrefix = `${app.prefix}/catalog/files`;
  const lineagePrefix = `${app.prefix}/catalog/lineage`;
  const datasetsPrefix = `${app.prefix}/catalog/datasets`;
  const namespace = core.namespace;
  /** Whether the path is a directory; looked up with read of that path only, once modify on it is checked. */
  const lookupDirAs = (principal: Principal) =>
    namespace
      ? async (p: string): Promise<boolean> => {
          const entry = await namespace.find(
            { subject: principal.subject, tokenId: principal.tokenId, scopes: [{ kind: 'storage.read', path: p }] },
            p as NsPath,
          );
          return entry?.type === 'DIR';
        }
      : undefined;
  /** The namespace path after a route prefix, decoded once. */
  const pathAfter = (req: FastifyRequest, prefix: string): NsPath => {
    const raw = req.url.split('?')[0]!.slice(prefix.length);
    return pathFromUrl(raw === '' ? '/' : raw);
  };

  app.get<{ Params: Static<typeof IdParams> }>(
    '/catalog/records/:id',
    { schema: { tags: ['catalog'], summary: 'A catalogue record by id', params: IdParams, response: { 200: CatalogRecord } } },
    async (req) => catalog.get(req.params.id, principalOf(req, core.tokens)),
  );

  app.get(
    '/catalog/files/*',
    {
      schema: {
        tags: ['catalog'],
        summary: 'The catalogue record of a file by path',
        description: 'The current record at the path, or else the one of the file deleted there last.',
        response: { 200: CatalogRecord },
      },
    },
    async (req) => catalog.get(pathAfter(req, filesPrefix), principalOf(req, core.tokens)),
  );

  app.patch<{ Body: Static<typeof AnnotateBody> }>(
    '/catalog/files/*',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Annotate a file’s record with scientific metadata under a key',
        description: 'Needs storage.modify on the path. Creates the record of a file in the namespace that has none yet.',
        body: AnnotateBody,
        response: { 200: CatalogRecord },
      },
    },
    async (req) =>
      catalog.annotateAs(principalOf(req, core.tokens), pathAfter(req, filesPrefix), req.body.key, req.body.metadata, {
        replace: req.body.replace ?? false,
      }),
  );

  app.get<{ Querystring: Static<typeof SearchQuery> }>(
    '/catalog/search',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Search records, newest first, among those the caller may read',
        querystring: SearchQuery,
        response: { 200: Type.Array(CatalogRecord) },
      },
    },
    async (req) => catalog.search(req.query.q, principalOf(req, core.tokens), { limit: req.query.limit, offset: req.query.offset }),
  );

  app.get<{ Querystring: Static<typeof LineageQuery> }>(
    '/catalog/lineage/*',
    {
      schema: {
        tags: ['catalog'],
        summary: 'The derivation graph around a file: nodes and input → output edges',
        querystring: LineageQuery,
        response: { 200: LineageGraph },
      },
    },
    async (req) =>
      catalog.lineage(pathAfter(req, lineagePrefix), principalOf(req, core.tokens), {
        direction: req.query.direction,
        depth: req.query.depth,
      }),
  );

  app.post<{ Body: Static<typeof CreateDatasetBody> }>(
    '/catalog/datasets',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Create the dataset of a namespace directory',
        description: 'Needs storage.modify on the path. 404 when the directory does not exist, 409 when it has a dataset.',
        body: CreateDatasetBody,
        response: { 201: CatalogRecord },
      },
    },
    async (req, reply) => {
      const principal = principalOf(req, core.tokens);
      const lookupDir = lookupDirAs(principal);
      const record = await catalog.createDataset(principal, req.body.path, {
        ...(req.body.type !== undefined ? { type: req.body.type } : {}),
        ...(req.body.metadata !== undefined ? { metadata: req.body.metadata } : {}),
        ...(lookupDir ? { lookupDir } : {}),
      });
      return reply.code(201).send(record);
    },
  );

  app.get(
    '/catalog/datasets/*',
    {
      schema: {
        tags: ['catalog'],
        summary: 'A dataset with its current files, counted and summed among those the caller may read',
        response: { 200: Dataset },
      },
    },
    async (req) => catalog.getDataset(pathAfter(req, datasetsPrefix), principalOf(req, core.tokens)),
  );

  app.patch<{ Body: Static<typeof AnnotateBody> }>(
    '/catalog/datasets/*',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Annotate a dataset with scientific metadata under a key',
        description: 'Needs storage.modify on the path.',
        body: AnnotateBody,
        response: { 200: CatalogRecord },
      },
    },
    async (req) =>
      catalog.annotateDatasetAs(principalOf(req, core.tokens), pathAfter(req, datasetsPrefix), req.body.key, req.body.metadata, {
        replace: req.body.replace ?? false,
      }),
  );

  app.delete(
    '/catalog/datasets/*',
    {
      schema: {
        tags: ['catalog'],
        summary: 'Remove a dataset record (never its files)',
        description: 'Needs storage.modify on the path.',
      },
    },
    async (req, reply) => {
      await catalog.removeDataset(principalOf(req, core.tokens), pathAfter(req, datasetsPrefix));
      return reply.code(204).send();
    },
  );
};
