// What every WebDAV handler needs from a request: the namespace path it addresses (decoded once,
// validated), the path for writes (reserved prefixes refused), and small XML bodies read with a cap.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../app.js';
import { SluiceError } from '../../errors.js';
import { pathFromUrl, userPath, type NsPath } from '../../storage/paths.js';

/** PROPFIND and PROPPATCH bodies larger than this are refused. */
export const MAX_XML_BODY_BYTES = 1 << 20;

/**
 * The raw URL path of the request: query removed, percent-encoding kept. A "#" is never cut off:
 * clients do not send fragments, so one that arrives is part of a name (and a DELETE of "dir/#x"
 * must not remove "dir").
 */
export const rawPathOf = (req: FastifyRequest): string => req.url.split('?')[0]!;

/** The namespace path a request reads. */
export const readPathOf = (req: FastifyRequest): NsPath => pathFromUrl(rawPathOf(req));

/** The namespace path a request writes: also refuses sluice's reserved prefixes (403). */
export const writePathOf = (req: FastifyRequest): NsPath => userPath(readPathOf(req));

/** Reads the whole request body as UTF-8, refusing more than `limit` bytes. */
export async function readTextBody(req: FastifyRequest, limit = MAX_XML_BODY_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req.raw as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new SluiceError('PAYLOAD_TOO_LARGE', `XML body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A handler of one WebDAV method. */
export type DoorHandler = (core: Core, req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
