// GET and HEAD: a file streamed from its replica (whole or one byte range) with its validators and,
// on request, RFC 3230 digests; a collection as a small HTML listing.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../app.js';
import { SluiceError } from '../../errors.js';
import type { Principal } from '../../auth/scopes.js';
import type { Entry } from '../../storage/types.js';
import { principalOf } from '../authenticate.js';
import { digestHeader, wantedDigests } from './digest.js';
import { headerValue, parseEtagList, parseRange, quoteEtag, type ByteRange } from './headers.js';
import { collectionPage } from './listing.js';
import { contentTypeOf } from './properties.js';
import { readPathOf } from './request.js';

export async function getOrHead(core: Core, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = principalOf(req, core.tokens);
  const entry = await core.namespace.stat(p, readPathOf(req));
  if (entry.type === 'DIR') return sendCollection(core, p, entry, req, reply);

  const etag = quoteEtag(entry);
  void reply
    .header('etag', etag)
    .header('last-modified', new Date(entry.mtime).toUTCString())
    .header('accept-ranges', 'bytes')
    .header('content-type', contentTypeOf(entry));
  await addDigest(core, p, entry, req, reply);

  const ifMatch = parseEtagList(req.headers['if-match']);
  if (ifMatch && ifMatch !== '*' && !ifMatch.includes(entry.etag))
    throw new SluiceError('PRECONDITION_FAILED', `${entry.path} does not match If-Match`);
  const ifNoneMatch = parseEtagList(req.headers['if-none-match']);
  if (ifNoneMatch === '*' || ifNoneMatch?.includes(entry.etag)) return reply.code(304).send();

  const range = rangeOf(req, entry, etag, reply);
  if (range) {
    void reply
      .code(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${entry.size}`)
      .header('content-length', range.end - range.start + 1);
  } else {
    void reply.header('content-length', entry.size);
  }
  if (req.method === 'HEAD') return reply.send();
  return reply.send(await core.namespace.openEntry(p, entry, range));
}

/** The requested range, unless If-Range names another version (then the whole file). */
function rangeOf(req: FastifyRequest, entry: Entry, etag: string, reply: FastifyReply): ByteRange | undefined {
  const ifRange = headerValue(req.headers['if-range']);
  if (ifRange !== undefined && ifRange.trim() !== etag) return undefined;
  try {
    return parseRange(req.headers.range, entry.size);
  } catch (e) {
    if (e instanceof SluiceError && e.code === 'RANGE_NOT_SATISFIABLE') void reply.header('content-range', `bytes */${entry.size}`);
    throw e;
  }
}

async function addDigest(core: Core, p: Principal, entry: Entry, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const wanted = wantedDigests(req.headers['want-digest']);
  if (wanted.length === 0) return;
  const known = wanted.every((t) => entry.checksums[t] !== undefined);
  const checksums = known ? entry.checksums : await core.namespace.checksums(p, entry.path, wanted);
  const value = digestHeader(wanted, checksums);
  if (value) void reply.header('digest', value);
}

async function sendCollection(core: Core, p: Principal, dir: Entry, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  void reply.type('text/html; charset=utf-8').header('last-modified', new Date(dir.mtime).toUTCString());
  if (req.method === 'HEAD') return reply.send();
  const { children } = await core.namespace.list(p, dir.path);
  return reply.send(collectionPage(dir, children));
}
