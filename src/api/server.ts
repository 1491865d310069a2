// The HTTP server: one port for the WebDAV door (namespace at the root path) and the REST API
// under /api/v1. Routes stay thin; errors become RFC 7807 bodies (API) or bare statuses (WebDAV) here.
import { createServer, type Server } from 'node:http';
import { rm } from 'node:fs/promises';
import Fastify, { LogController, type FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Core } from '../app.js';
import { problemOf, toSluiceError } from './problem.js';
import { SluiceError } from '../errors.js';
import { healthRoutes } from './routes/health.js';
import { tokenRoutes } from './routes/tokens.js';
import { namespaceRoutes } from './routes/namespace.js';
import { eventsRoutes } from './routes/events.js';
import { webdavDoor } from './routes/webdav.js';
import { functionRoutes } from './routes/functions.js';
import { invocationRoutes } from './routes/invocations.js';
import { triggerRoutes } from './routes/triggers.js';
import { placementRoutes } from './routes/placement.js';
import { catalogRoutes } from './routes/catalog.js';
import { tapeRoutes } from './routes/tape.js';
import { openapiPlugin } from './openapi.js';

/** Base URL for absolute links (Location headers, subscription URLs). */
export function baseUrl(core: Core, req: FastifyRequest): string {
  if (core.config.publicUrl) return core.config.publicUrl.replace(/\/+$/, '');
  return `${req.protocol}://${req.headers.host ?? `${core.config.host}:${core.config.port}`}`;
}

export const isApiUrl = (url: string): boolean => url === '/api' || url.startsWith('/api/') || url.startsWith('/api?');

export async function buildServer(core: Core) {
  let handler: Parameters<typeof createServer>[1] | undefined;
  const app = Fastify({
    loggerInstance: core.log.child({ domain: 'http' }),
    logController: new LogController({ disableRequestLogging: core.config.logLevel !== 'debug' && core.config.logLevel !== 'trace' }),
    bodyLimit: core.config.maxJsonBodyBytes,
    routerOptions: { maxParamLength: 8192 },
    return503OnClosing: true,
    // Unknown fields are errors, not silently dropped: a typo in a request must not pass unnoticed.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    forceCloseConnections: true,
    // Malformed URLs and other errors Fastify raises before routing get the same problem bodies.
    frameworkErrors: (err, req, reply) => {
      const e = err.code === 'FST_ERR_BAD_URL' ? new SluiceError('BAD_PATH', 'path has malformed percent-encoding') : toSluiceError(err);
      const problem = problemOf(e);
      const raw = reply as unknown as { code(n: number): { type(t: string): { send(b: unknown): void } } };
      raw.code(problem.status).type('application/problem+json').send(problem);
    },
    serverFactory: (h) => {
      handler = h;
      return createServer({ maxHeaderSize: core.config.maxHeaderBytes, keepAliveTimeout: 30_000 }, h);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorateRequest('principal', undefined);
  // The API speaks JSON only; the WebDAV door registers its own streaming parser in its own context.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err, req, reply) => {
    const e = toSluiceError(err);
    if (e.code === 'INTERNAL') req.log.error({ err }, 'request failed');
    else req.log.debug({ code: e.code, msg: e.message }, 'request refused');
    const problem = problemOf(e, req.url.split('?')[0]);
    if (problem.status === 401) void reply.header('www-authenticate', 'Bearer realm="sluice", Basic realm="sluice"');
    if (typeof problem.retryAfterSeconds === 'number') void reply.header('retry-after', String(problem.retryAfterSeconds));
    if (reply.sent) return;
    void reply.code(problem.status);
    if (!isApiUrl(req.url)) {
      // WebDAV clients get a status and a short text body.
      return reply.type('text/plain; charset=utf-8').send(`${problem.title}: ${problem.detail}\n`);
    }
    return reply.type('application/problem+json').send(problem);
  });

  app.setNotFoundHandler((req, reply) => {
    const problem = problemOf(toSluiceError({ statusCode: 404, message: `no route ${req.method} ${req.url.split('?')[0]}` }));
    return reply.code(404).type('application/problem+json').send(problem);
  });

  // The same API on a unix socket in the data directory, for function instances (ctx.storage): they
  // run without network, and the socket is the one door bind-mounted into their sandbox.
  let socketServer: Server | undefined;
  app.addHook('onReady', async () => {
    await rm(core.apiSocket, { force: true });
    socketServer = createServer({ maxHeaderSize: core.config.maxHeaderBytes }, handler);
    await new Promise<void>((resolve, reject) => {
      socketServer!.once('error', reject);
      socketServer!.listen(core.apiSocket, () => resolve());
    });
    // Accepted calls left by a previous run may use ctx.storage: resume them once the socket is up.
    await core.invoker.start();
    await core.triggers.start();
    await core.catalogIndexer.start();
    await core.placement.start();
  });
  app.addHook('onClose', async () => {
    if (!socketServer) return;
    socketServer.closeAllConnections();
    await new Promise<void>((resolve) => socketServer!.close(() => resolve()));
  });

  await app.register(openapiPlugin);
  await app.register(healthRoutes, { prefix: '/api/v1', core });
  await app.register(tokenRoutes, { prefix: '/api/v1', core });
  await app.register(namespaceRoutes, { prefix: '/api/v1', core });
  await app.register(eventsRoutes, { prefix: '/api/v1', core });
  await app.register(functionRoutes, { prefix: '/api/v1', core });
  await app.register(invocationRoutes, { prefix: '/api/v1', core });
  await app.register(triggerRoutes, { prefix: '/api/v1', core });
  await app.register(catalogRoutes, { prefix: '/api/v1', core });
  await app.register(placementRoutes, { prefix: '/api/v1', core });
  await app.register(tapeRoutes, { core });
  await app.register(webdavDoor, { core });
  return app;
}
