// Liveness: answers without a token so load balancers and scripts can probe it.
import type { FastifyPluginAsync } from 'fastify';
import type { Core } from '../../app.js';

export const healthRoutes: FastifyPluginAsync<{ core: Core }> = async (app, { core }) => {
  app.get(
    '/health',
    {
      schema: {
        tags: ['system'],
        summary: 'Liveness probe (no token needed)',
        security: [],
        response: { 200: { type: 'object', properties: { status: { type: 'string' }, eventHead: { type: 'integer' } } } },
      },
    },
    async () => ({ status: 'ok', eventHead: core.eventLog.headSync() }),
  );
};
