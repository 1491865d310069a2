// The catalogue over HTTP: records by id and by path, search, lineage, and annotation of a file's
// record with scientific metadata. Paths follow the route prefix as in the namespace API.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { TokenService } from '../../auth/tokens.js';
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
import { CatalogRecord, LINEAGE_DIRECTIONS, LineageGraph, METADATA_KEY_RE, RECORD_ID_RE } from '../../catalog/types.js';

/** What the routes need from the core (the full Core satisfies it). */
export interface CatalogRoutesCore {
  tokens: TokenService;
  catalog: CatalogService;
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

export const catalogRoutes: FastifyPluginAsync<{ core: CatalogRoutesCore }> = async (app, { core }) => {
  const catalog = core.catalog;
  const filesPrefix = `${app.prefix}/catalog/files`;
  const lineagePrefix = `${app.prefix}/catalog/lineage`;
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
};
