// PUT: the request body streamed unbuffered into the namespace, with Content-MD5 verification,
// digests computed on the way for Want-Digest, and If-Match / If-None-Match preconditions.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../app.js';
import { SluiceError } from '../../errors.js';
import { contentMd5ToHex } from '../../storage/checksums.js';
import type { PutOptions } from '../../storage/namespace.js';
import { principalOf } from '../authenticate.js';
import { digestHeader, wantedDigests } from './digest.js';
import { declaredLength, parseEtagList, quoteEtag } from './headers.js';
import { writePathOf } from './request.js';

export async function put(core: Core, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = principalOf(req, core.tokens);
  const path = writePathOf(req);
  const headers = req.headers;
  const opts: PutOptions = {};

  const length = declaredLength(headers);
  if (length !== undefined) opts.expectedSize = length;
  if (headers['content-type']) opts.contentType = headers['content-type'];
  const md5 = headers['content-md5'];
  if (typeof md5 === 'string') opts.expectedMd5 = contentMd5ToHex(md5);
  const wanted = wantedDigests(headers['want-digest']);
  const extra = wanted.filter((t) => t !== 'adler32');
  if (extra.length > 0) opts.extraChecksums = new Set(extra);

  const ifNoneMatch = parseEtagList(headers['if-none-match']);
  const ifMatch = parseEtagList(headers['if-match']);
  if (ifNoneMatch === '*') opts.mustNotExist = true;
  if (Array.isArray(ifNoneMatch) || ifMatch === '*') {
    // Rare preconditions the namespace has no option for: resolve them against the current entry.
    const current = await core.namespace.find(p, path);
    if (Array.isArray(ifNoneMatch) && current && ifNoneMatch.includes(current.etag)) {
      throw new SluiceError('PRECONDITION_FAILED', `${path} matches If-None-Match`);
    }
    if (ifMatch === '*') {
      if (!current) throw new SluiceError('PRECONDITION_FAILED', `${path} does not exist (If-Match: *)`);
      opts.ifMatch = [current.etag];
    }
  }
  if (Array.isArray(ifMatch)) opts.ifMatch = ifMatch;

  const { entry, created } = await core.namespace.put(p, path, req.raw, opts);
  void reply.header('etag', quoteEtag(entry));
  const digest = digestHeader(wanted, entry.checksums);
  if (digest) void reply.header('digest', digest);
  return reply.code(created ? 201 : 204).send();
}
