// STUB: the WebDAV door (being written).
import type { FastifyPluginAsync } from 'fastify';
import type { Core } from '../../app.js';

export const webdavDoor: FastifyPluginAsync<{ core: Core }> = async () => {};
