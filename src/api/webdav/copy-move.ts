// COPY and MOVE within this server (RFC 4918 §9.8, §9.9): Destination on the same host, Overwrite,
// Depth 0 or infinity for COPY of a collection; 201 for a new target, 204 for a replaced one.
// A COPY with a Source header, or a Destination on another server, is a third-party copy (tpc.ts).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../app.js';
import { pathFromUrl, userPath, type NsPath } from '../../storage/paths.js';
import { principalOf } from '../authenticate.js';
import { destinationPath, headerValue, parseDepth, parseDestination, parseOverwrite } from './headers.js';
import { readPathOf, writePathOf } from './request.js';
import { thirdPartyPull, thirdPartyPush } from './tpc.js';

function destinationOf(core: Core, req: FastifyRequest): NsPath {
  return userPath(pathFromUrl(destinationPath(headerValue(req.headers.destination), req.headers.host, core.config.publicUrl)));
}

export async function copy(core: Core, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  principalOf(req, core.tokens);
  if (req.headers.source !== undefined) return thirdPartyPull(core, req, reply);
  const destination = parseDestination(headerValue(req.headers.destination), req.headers.host, core.config.publicUrl);
  if (destination.kind === 'remote') return thirdPartyPush(core, req, reply, destination.url);
  const p = principalOf(req, core.tokens);
  const from = readPathOf(req);
  const to = userPath(pathFromUrl(destination.path));
  const overwrite = parseOverwrite(headerValue(req.headers.overwrite));
  const depth = parseDepth(headerValue(req.headers.depth), 'infinity', ['0', 'infinity']);
  const { replacedTarget } = await core.namespace.copy(p, from, to, { overwrite, shallow: depth === '0' });
  return reply.code(replacedTarget ? 204 : 201).send();
}

export async function move(core: Core, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = principalOf(req, core.tokens);
  const from = writePathOf(req);
  const to = destinationOf(core, req);
  const overwrite = parseOverwrite(headerValue(req.headers.overwrite));
  parseDepth(headerValue(req.headers.depth), 'infinity', ['infinity']);
  const { replacedTarget } = await core.namespace.move(p, from, to, { overwrite });
  return reply.code(replacedTarget ? 204 : 201).send();
}
