// The WebDAV/HTTP door (RFC 4918 class 1) on the namespace, served at the root path. Registered as
// an encapsulated plugin: its catch-all content-type parser leaves request bodies unread, so PUT
// streams straight into the storage element while the API under /api/v1 keeps its JSON parser.
import type { FastifyPluginAsync } from 'fastify';
import type { Core } from '../../app.js';
import { SluiceError } from '../../errors.js';
import { principalOf } from '../authenticate.js';
import { copy, move } from '../webdav/copy-move.js';
import { mkcol, remove } from '../webdav/mkcol-delete.js';
import { propfind } from '../webdav/propfind.js';
import { proppatch } from '../webdav/proppatch.js';
import { put } from '../webdav/put.js';
import { getOrHead } from '../webdav/read.js';
import { rawPathOf, type DoorHandler } from '../webdav/request.js';

const WEBDAV_METHODS_WITH_BODY = ['PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE'] as const;

const options: DoorHandler = async (core, req, reply) => {
  principalOf(req, core.tokens);
  return reply.header('dav', '1').header('ms-author-via', 'DAV').header('allow', ALLOW).header('accept-ranges', 'bytes').code(200).send();
};

const HANDLERS: Record<string, DoorHandler> = {
  OPTIONS: options,
  GET: getOrHead,
  HEAD: getOrHead,
  PUT: put,
  DELETE: remove,
  MKCOL: mkcol,
  COPY: copy,
  MOVE: move,
  PROPFIND: propfind,
  PROPPATCH: proppatch,
};

const ALLOW = Object.keys(HANDLERS).join(', ');

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PROPFIND']);

/** Unknown URLs under /api are not namespace paths: reads find no route, writes are refused. */
const dispatch: DoorHandler = async (core, req, reply) => {
  const raw = rawPathOf(req);
  if (raw === '/api' || raw.startsWith('/api/')) {
    if (READ_METHODS.has(req.method)) throw new SluiceError('NOT_FOUND', `no route ${req.method} ${raw}`);
    throw new SluiceError('RESERVED_PATH', '/api is reserved for the sluice API');
  }
  return HANDLERS[req.method]!(core, req, reply);
};

export const webdavDoor: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  for (const method of WEBDAV_METHODS_WITH_BODY) {
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true });
  }
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  for (const url of ['/', '/*']) {
    app.route({
      method: Object.keys(HANDLERS),
      url,
      exposeHeadRoute: false,
      schema: { hide: true },
      handler: (req, reply) => dispatch(core, req, reply),
    });
  }
};
