// MKCOL (create one collection; never with a body) and DELETE (a file, or a collection with
// everything below it), with If-Match / If-None-Match on DELETE.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../app.js';
import { SluiceError } from '../../errors.js';
import { principalOf } from '../authenticate.js';
import { hasBody, parseEtagList } from './headers.js';
import { writePathOf } from './request.js';

export async function mkcol(core: Core, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = principalOf(req, core.tokens);
  const path = writePathOf(req);
  if (hasBody(req.headers)) throw new SluiceError('UNSUPPORTED', 'MKCOL with a request body is not supported');
  if (path === '/') throw new SluiceError('EXISTS', '/ already exists');
  await core.namespace.mkdir(p, path);
  return reply.code(201).send();
}

export async function remove(core: Core, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = principalOf(req, core.tokens);
  const path = writePathOf(req);
  const ifMatch = parseEtagList(req.headers['if-match']);
  const ifNoneMatch = parseEtagList(req.headers['if-none-match']);
  if (ifMatch === '*' || ifNoneMatch !== undefined) {
    const current = await core.namespace.find(p, path);
    if (ifMatch === '*' && !current) throw new SluiceError('PRECONDITION_FAILED', `${path} does not exist (If-Match: *)`);
    if (current && (ifNoneMatch === '*' || (Array.isArray(ifNoneMatch) && ifNoneMatch.includes(current.etag)))) {
      throw new SluiceError('PRECONDITION_FAILED', `${path} matches If-None-Match`);
    }
  }
  await core.namespace.remove(p, path, Array.isArray(ifMatch) ? { ifMatch } : {});
  return reply.code(204).send();
}
