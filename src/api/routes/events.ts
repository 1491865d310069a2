// dCache-compatible events API under /api/v1/events: service metadata, event types and their JSON
// Schemas, channels (SSE streams) and their subscriptions. Thin over the ChannelService.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Core } from '../../app.js';
import { principalOf } from '../authenticate.js';
import { baseUrl } from '../server.js';
import { SluiceError } from '../../errors.js';
import { EVENT_TYPES, EVENT_TYPE_INFO, isEventType, type EventType } from '../../events/event-types.js';

const TAGS = ['events'];
const ChannelParams = Type.Object({ id: Type.String({ description: 'channel id' }) });
const TypeParams = Type.Object({ type: Type.String({ description: 'event type: inotify, metronome or placement' }) });
const SubscriptionsParams = Type.Object({ id: Type.String(), type: Type.String() });
const SubscriptionParams = Type.Object({ id: Type.String(), type: Type.String(), sid: Type.String() });
const ClientIdQuery = Type.Object({ 'client-id': Type.Optional(Type.String()) }, { additionalProperties: false });
const Timeout = Type.Object(
  { timeout: Type.Integer({ description: 'seconds without a connected client before the channel is deleted' }) },
  { additionalProperties: false },
);
const UrlList = Type.Array(Type.String({ format: 'uri' }));
const Empty = Type.Null({ description: 'no body; see the Location header' });
const JsonObject = Type.Object({}, { additionalProperties: true });

const firstLine = (s: string) => s.split('\n')[0] ?? s;

export const eventsRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  const channels = core.channels;
  const channelUrl = (req: FastifyRequest, id: string) => `${baseUrl(core, req)}/api/v1/events/channels/${id}`;
  const subscriptionUrl = (req: FastifyRequest, cid: string, type: EventType, sid: string) =>
    `${channelUrl(req, cid)}/subscriptions/${type}/${sid}`;
  const created = (reply: FastifyReply, location: string, status = 201) => reply.code(status).header('location', location).send();

  // dCache accepts a POST without entity; its selectors and channel options are validated with its own messages.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(new SluiceError('BAD_REQUEST', `Supplied JSON is invalid: ${firstLine((e as Error).message)}`), undefined);
    }
  });

  app.get(
    '/events',
    {
      schema: {
        tags: TAGS,
        summary: 'Events service metadata: channel limits (no token needed)',
        security: [],
        response: {
          200: Type.Object({
            channels: Type.Object({
              lifetimeWhenDisconnected: Type.Object({ maximum: Type.Integer(), minimum: Type.Integer(), default: Type.Integer() }),
              maximumPerUser: Type.Integer(),
            }),
          }),
        },
      },
    },
    async () => {
      const l = channels.limits();
      return {
        channels: {
          lifetimeWhenDisconnected: { maximum: l.maximumTimeout, minimum: l.minimumTimeout, default: l.defaultTimeout },
          maximumPerUser: l.maximumPerUser,
        },
      };
    },
  );

  app.get(
    '/events/eventTypes',
    { schema: { tags: TAGS, summary: 'Event types that can be subscribed to', response: { 200: Type.Array(Type.String()) } } },
    async (req) => {
      principalOf(req, core.tokens);
      return [...EVENT_TYPES].sort();
    },
  );

  const eventType = (req: FastifyRequest<{ Params: Static<typeof TypeParams> }>) => {
    principalOf(req, core.tokens);
    if (!isEventType(req.params.type)) throw new SluiceError('NOT_FOUND', 'No such event type');
    return EVENT_TYPE_INFO[req.params.type];
  };
  app.get<{ Params: Static<typeof TypeParams> }>(
    '/events/eventTypes/:type',
    {
      schema: {
        tags: TAGS,
        summary: 'Description of an event type',
        params: TypeParams,
        response: { 200: Type.Object({ description: Type.String() }) },
      },
    },
    async (req) => ({ description: eventType(req).description }),
  );
  app.get<{ Params: Static<typeof TypeParams> }>(
    '/events/eventTypes/:type/selector',
    { schema: { tags: TAGS, summary: 'JSON Schema of the selectors of an event type', params: TypeParams, response: { 200: JsonObject } } },
    async (req) => eventType(req).selector,
  );
  app.get<{ Params: Static<typeof TypeParams> }>(
    '/events/eventTypes/:type/event',
    { schema: { tags: TAGS, summary: 'JSON Schema of the events of an event type', params: TypeParams, response: { 200: JsonObject } } },
    async (req) => eventType(req).event,
  );

  app.post(
    '/events/channels',
    {
      schema: {
        tags: TAGS,
        summary: 'Create a channel (Location: its URL); 429 past the per-user limit',
        body: Type.Optional(Type.Union([Type.Object({ 'client-id': Type.Optional(Type.String()) }), Type.Null()])),
        response: { 201: Empty },
      },
    },
    async (req, reply) => {
      const p = principalOf(req, core.tokens);
      const body = (req.body ?? {}) as Record<string, unknown>;
      const unknown = Object.keys(body).find((k) => k !== 'client-id');
      if (unknown !== undefined) throw new SluiceError('BAD_REQUEST', `'${unknown}' is an unrecognized field.`);
      const clientId = body['client-id'];
      const id = channels.createChannel(p, typeof clientId === 'string' ? clientId : undefined);
      req.log.info({ channel: id, owner: p.subject }, 'channel created');
      return created(reply, channelUrl(req, id));
    },
  );

  app.get<{ Querystring: Static<typeof ClientIdQuery> }>(
    '/events/channels',
    {
      schema: {
        tags: TAGS,
        summary: "The caller's channels (?client-id= selects by client id)",
        querystring: ClientIdQuery,
        response: { 200: UrlList },
      },
    },
    async (req) => channels.listChannels(principalOf(req, core.tokens), req.query['client-id']).map((id) => channelUrl(req, id)),
  );

  app.get<{ Params: Static<typeof ChannelParams> }>(
    '/events/channels/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'Accept: text/event-stream opens the SSE stream (Last-Event-ID resumes); application/json gives the channel metadata',
        params: ChannelParams,
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String()) }),
        response: { 200: Type.Object({ timeout: Type.Integer() }) },
      },
    },
    async (req, reply) => {
      const p = principalOf(req, core.tokens);
      const id = req.params.id;
      if (!(req.headers.accept ?? '').includes('text/event-stream')) return { timeout: channels.channel(p, id).timeoutS };
      const lastEventId = req.headers['last-event-id'];
      const start = await channels.streamStart(typeof lastEventId === 'string' ? lastEventId : undefined);
      channels.channel(p, id);
      reply.hijack();
      channels.connect(p, id, reply.raw, start, (type, sid) => subscriptionUrl(req, id, type, sid));
      req.log.debug({ channel: id, from: start.position, eventLoss: start.eventLoss }, 'channel stream opened');
      return reply;
    },
  );

  app.patch<{ Params: Static<typeof ChannelParams>; Body: Static<typeof Timeout> }>(
    '/events/channels/:id',
    {
      schema: {
        tags: TAGS,
        summary: 'Change the disconnect timeout of a channel (seconds)',
        params: ChannelParams,
        body: Timeout,
        response: { 204: Empty },
      },
    },
    async (req, reply) => {
      channels.setTimeout(principalOf(req, core.tokens), req.params.id, req.body.timeout);
      return reply.code(204).send();
    },
  );

  app.delete<{ Params: Static<typeof ChannelParams> }>(
    '/events/channels/:id',
    { schema: { tags: TAGS, summary: 'Close a channel and all its subscriptions', params: ChannelParams, response: { 204: Empty } } },
    async (req, reply) => {
      channels.closeChannel(principalOf(req, core.tokens), req.params.id);
      req.log.info({ channel: req.params.id }, 'channel closed');
      return reply.code(204).send();
    },
  );

  app.get<{ Params: Static<typeof ChannelParams> }>(
    '/events/channels/:id/subscriptions',
    { schema: { tags: TAGS, summary: 'The subscriptions of a channel', params: ChannelParams, response: { 200: UrlList } } },
    async (req) => {
      const subs = channels.listSubscriptions(principalOf(req, core.tokens), req.params.id);
      return subs.map((s) => subscriptionUrl(req, req.params.id, s.type, s.id));
    },
  );

  app.post<{ Params: Static<typeof SubscriptionsParams> }>(
    '/events/channels/:id/subscriptions/:type',
    {
      schema: {
        tags: TAGS,
        summary: 'Subscribe: the body is the selector (see /events/eventTypes/{type}/selector); 303 when merged into an existing watch',
        params: SubscriptionsParams,
        response: { 201: Empty, 303: Empty },
      },
    },
    async (req, reply) => {
      const p = principalOf(req, core.tokens);
      const result = await channels.subscribe(p, req.params.id, req.params.type, req.body);
      const url = subscriptionUrl(req, req.params.id, result.type, result.id);
      req.log.info({ channel: req.params.id, subscription: result.id, status: result.status }, 'subscribed');
      return created(reply, url, result.status === 'CREATED' ? 201 : 303);
    },
  );

  app.get<{ Params: Static<typeof SubscriptionParams> }>(
    '/events/channels/:id/subscriptions/:type/:sid',
    { schema: { tags: TAGS, summary: 'The selector of a subscription', params: SubscriptionParams, response: { 200: JsonObject } } },
    async (req) => channels.subscription(principalOf(req, core.tokens), req.params.id, req.params.type, req.params.sid),
  );

  app.delete<{ Params: Static<typeof SubscriptionParams> }>(
    '/events/channels/:id/subscriptions/:type/:sid',
    {
      schema: {
        tags: TAGS,
        summary: 'Cancel a subscription (SUBSCRIPTION_CLOSED, then IN_IGNORED for inotify)',
        params: SubscriptionParams,
        response: { 204: Empty },
      },
    },
    async (req, reply) => {
      channels.unsubscribe(principalOf(req, core.tokens), req.params.id, req.params.type, req.params.sid);
      return reply.code(204).send();
    },
  );
};
