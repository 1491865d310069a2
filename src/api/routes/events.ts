// STUB: dCache-compatible events API routes (being written).
import type { FastifyPluginAsync } from 'fastify';
import type { Core } from '../../app.js';

export const eventsRoutes: FastifyPluginAsync<{ core: Core }> = async () => {};
