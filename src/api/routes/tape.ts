// The WLCG tape REST API v1 (what FTS, gfal2 and Rucio speak to dCache, EOS/CTA and StoRM): discovery
// at /.well-known/wlcg-tape-rest-api, bulk stage requests, cancel, release and archiveinfo under
// /api/v1/tape. Translates the spec's wire format to the placement domain's stage requests.
import { hostname } from 'node:os';
import type { FastifyPluginAsync } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Core } from '../../app.js';
import { principalOf } from '../authenticate.js';
import { baseUrl } from '../server.js';
import { SluiceError } from '../../errors.js';

export const TAPE_API_PREFIX = '/api/v1/tape';
const MAX_FILES = 10_000;

// File objects and bodies accept fields beyond the spec's: other implementations ignore them, and a
// client adding one (new targeted metadata, say) must not have every stage refused.
const StageBody = Type.Object({
  files: Type.Array(
    Type.Object({
      path: Type.String({ minLength: 1, description: 'the file, as its namespace path' }),
      diskLifetime: Type.Optional(
        Type.String({ description: 'ISO 8601 duration the staged copy stays on disk (pinned), e.g. "PT1H", "P1D"' }),
      ),
      targetedMetadata: Type.Optional(
        Type.Record(Type.String(), Type.Unknown(), { description: 'metadata per endpoint (by sitename); accepted and ignored' }),
      ),
    }),
    { minItems: 1, maxItems: MAX_FILES },
  ),
});
const PathsBody = Type.Object({
  paths: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: MAX_FILES }),
});
const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

const DURATION_RE =
  /^P(?!$)(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?!$)(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/**
 * Seconds in an ISO 8601 duration of weeks, days, hours, minutes and seconds (PT30M, P1D, P1DT12H,
 * PT1.5S). Years and months have no fixed length and are refused, as Java's Duration (dCache) does.
 */
export function parseIsoDuration(text: string): number {
  const m = DURATION_RE.exec(text.toUpperCase());
  if (!m) {
    const hint = /^P(\d+Y|\d+M)/i.test(text) ? ' (years and months are not accepted: use days, e.g. P30D)' : '';
    throw new SluiceError('BAD_REQUEST', `diskLifetime "${text}" is not an ISO 8601 duration such as PT1H or P1D${hint}`);
  }
  const [w, d, h, min, s] = m.slice(1).map((v) => (v === undefined ? 0 : Number(v))) as [number, number, number, number, number];
  const seconds = w * 604_800 + d * 86_400 + h * 3_600 + min * 60 + s;
  if (!(seconds >= 1)) throw new SluiceError('BAD_REQUEST', `diskLifetime "${text}" must be at least one second`);
  return Math.ceil(seconds);
}

const toSeconds = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.floor(ms / 1000));

export const tapeRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  const placement = core.placement;
  const who = (req: Parameters<typeof principalOf>[0]) => principalOf(req, core.tokens);
  const tags = ['tape'];

  // curl -d (and so many examples in WLCG sites' docs) sends form encoding: read it as the JSON it is.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(new SluiceError('BAD_REQUEST', 'the body is not JSON'), undefined);
    }
  });

  app.get(
    '/.well-known/wlcg-tape-rest-api',
    { schema: { tags, summary: 'WLCG tape REST API discovery: where the v1 endpoint is (no token needed)' } },
    async (req) => ({
      sitename: hostname(),
      description: 'sluice: tape REST API over its tape storage elements',
      endpoints: [{ uri: `${baseUrl(core, req)}${TAPE_API_PREFIX}`, version: 'v1', metadata: {} }],
    }),
  );

  // Each route also answers with a trailing slash (clients written against EOS/CTA send `stage/`);
  // the alias stays out of the OpenAPI document.
  for (const slash of ['', '/']) {
    const hide = slash !== '';
    app.post<{ Body: Static<typeof StageBody> }>(
      `${TAPE_API_PREFIX}/stage${slash}`,
      { schema: { tags, hide, summary: 'Submit a bulk stage (bring-online) request', body: StageBody } },
      async (req, reply) => {
        const files = req.body.files.map((f) => ({
          path: f.path,
          ...(f.diskLifetime !== undefined ? { pinSeconds: parseIsoDuration(f.diskLifetime) } : {}),
        }));
        const request = await placement.stage(who(req), files);
        return reply
          .code(201)
          .header('location', `${baseUrl(core, req)}${TAPE_API_PREFIX}/stage/${request.id}`)
          .send({ requestId: request.id });
      },
    );

    app.get<{ Params: Static<typeof IdParams> }>(
      `${TAPE_API_PREFIX}/stage/:id${slash}`,
      { schema: { tags, hide, summary: 'Progress of a stage request, file by file', params: IdParams } },
      async (req) => {
        const r = await placement.stageStatus(who(req), req.params.id);
        return {
          id: r.id,
          createdAt: toSeconds(r.created),
          ...(r.started !== undefined ? { startedAt: toSeconds(r.started) } : {}),
          ...(r.completed !== undefined ? { completedAt: toSeconds(r.completed) } : {}),
          files: r.files.map((f) => ({
            path: f.path,
            state: f.state,
            ...(f.error !== undefined ? { error: f.error } : {}),
            // Only while the file may still come online: gfal2 reads onDisk:false as "poll again".
            ...(f.state !== 'FAILED' && f.state !== 'CANCELLED' ? { onDisk: f.onDisk } : {}),
          })),
        };
      },
    );

    app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof PathsBody> }>(
      `${TAPE_API_PREFIX}/stage/:id/cancel${slash}`,
      { schema: { tags, hide, summary: 'Cancel the staging of some files of a request', params: IdParams, body: PathsBody } },
      async (req, reply) => {
        await placement.cancelStage(who(req), req.params.id, req.body.paths);
        return reply.code(200).send();
      },
    );

    app.delete<{ Params: Static<typeof IdParams> }>(
      `${TAPE_API_PREFIX}/stage/:id${slash}`,
      { schema: { tags, hide, summary: 'Cancel a stage request, release its files and forget it', params: IdParams } },
      async (req, reply) => {
        await placement.deleteStage(who(req), req.params.id);
        return reply.code(200).send();
      },
    );

    app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof PathsBody> }>(
      `${TAPE_API_PREFIX}/release/:id${slash}`,
      {
        schema: {
          tags,
          hide,
          summary: 'Release staged files of a request: they no longer need to stay on disk',
          params: IdParams,
          body: PathsBody,
        },
      },
      async (req, reply) => {
        await placement.releaseStage(who(req), req.params.id, req.body.paths);
        return reply.code(200).send();
      },
    );

    app.post<{ Body: Static<typeof PathsBody> }>(
      `${TAPE_API_PREFIX}/archiveinfo${slash}`,
      {
        schema: { tags, hide, summary: 'Locality of files: DISK, TAPE, DISK_AND_TAPE, LOST or NONE, or a per-file error', body: PathsBody },
      },
      async (req) => placement.archiveInfo(who(req), req.body.paths),
    );
  }
};
