// HTTP third-party copy on the WebDAV door (the WLCG protocol of dCache, XRootD and StoRM): COPY
// with Source pulls a remote file into the namespace, COPY with a Destination on another server
// pushes a file there. Checks that can fail early answer with a plain status; once accepted the
// door answers 202 with a text/perf-marker-stream: a marker every interval, then "success: Created"
// or "failure: <reason>". A pull goes through namespace.put, so it commits atomically with its
// events, and a failure — source error, short body, Digest mismatch, client gone — stores nothing.
import { lookup } from 'node:dns/promises';
import type { OutgoingHttpHeaders } from 'node:http';
import { PassThrough, Transform, pipeline, type TransformCallback } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../app.js';
import { requireStorage } from '../../auth/scopes.js';
import { SluiceError } from '../../errors.js';
import type { Checksums, Entry } from '../../storage/types.js';
import { Agents, discard, parseDigest, requestFollowing, statusError, type HttpResponse } from '../../storage/webdav-se.js';
import { principalOf } from '../authenticate.js';
import { digestHeader, wantedDigests } from './digest.js';
import { headerValue, parseHttpUrl, parseOverwrite } from './headers.js';
import { readPathOf, writePathOf } from './request.js';

/** Process-wide settings of the door's third-party copies (tests lower the interval). */
export const tpcSettings = {
  /** Time between perf markers, ms (dCache sends one every 5 s, XRootD every 5 s). */
  markerIntervalMs: 1000,
  /** Redirects followed by the GET of a pull and the PUT/HEAD of a push (dCache follows 3). */
  maxRedirects: 3,
  /** A remote silent for this long fails the copy, ms. */
  idleTimeoutMs: 5 * 60_000,
};

const TRANSFER_HEADER_PREFIX = 'transferheader';

/** Headers a client may not have the door send on its behalf: they frame or route the request. */
const UNFORWARDABLE = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'expect',
  'te',
  'trailer',
  'upgrade',
  'proxy-connection',
  'want-digest',
  'range',
]);

interface TransferOptions {
  /** Headers for the remote side, from TransferHeader<Name>: <value>. Never logged. */
  headers: Record<string, string>;
  /** RequireChecksumVerification: fail when the remote offers no adler32 Digest to compare. */
  requireVerification: boolean;
}

function transferOptionsOf(req: FastifyRequest): TransferOptions {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith(TRANSFER_HEADER_PREFIX) || value === undefined) continue;
    const forwarded = name.slice(TRANSFER_HEADER_PREFIX.length);
    if (!forwarded || UNFORWARDABLE.has(forwarded)) {
      throw new SluiceError('BAD_REQUEST', `TransferHeader${forwarded} cannot be forwarded to the remote server`);
    }
    headers[forwarded] = headerValue(value)!;
  }
  const credential = headerValue(req.headers.credential)?.trim().toLowerCase();
  if (credential !== undefined && credential !== 'none') {
    throw new SluiceError(
      'BAD_REQUEST',
      'Credential must be "none": sluice delegates no X.509 credentials; send a bearer token as TransferHeaderAuthorization',
    );
  }
  const verification = headerValue(req.headers.requirechecksumverification)?.trim().toLowerCase();
  if (verification !== undefined && verification !== 'true' && verification !== 'false') {
    throw new SluiceError('BAD_REQUEST', 'RequireChecksumVerification must be true or false');
  }
  return { headers, requireVerification: verification === 'true' };
}

/** An unknown host is refused before the copy is accepted, as dCache does. */
async function ensureResolvable(url: URL, header: string): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  try {
    await lookup(host);
  } catch {
    throw new SluiceError('REMOTE_DESTINATION', `${header} host ${host} cannot be resolved`);
  }
}

/** The remote as it may be logged: no query (it can hold a pre-signed credential), no user info. */
const loggable = (url: URL): string => url.origin + url.pathname;

/** One line of the marker stream: reasons from remote servers must not break the format. */
const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ').trim() || 'unknown error';

/** The 202 response and its markers; ends with the outcome line. */
class MarkerStream {
  private readonly out = new PassThrough();
  private readonly timer: NodeJS.Timeout;
  private ended = false;

  constructor(
    reply: FastifyReply,
    private readonly bytes: () => number,
  ) {
    void reply.code(202).header('content-type', 'text/perf-marker-stream').header('cache-control', 'no-store').send(this.out);
    this.marker();
    this.timer = setInterval(() => this.marker(), tpcSettings.markerIntervalMs);
  }

  private marker(): void {
    if (this.ended || this.out.destroyed) return;
    this.out.write(
      'Perf Marker\n' +
        `    Timestamp: ${Math.floor(Date.now() / 1000)}\n` +
        '    Stripe Index: 0\n' +
        `    Stripe Bytes Transferred: ${this.bytes()}\n` +
        '    Total Stripe Count: 1\n' +
        'End\n',
    );
  }

  end(error: unknown): void {
    if (this.ended) return;
    clearInterval(this.timer);
    this.marker();
    this.ended = true;
    this.out.end(error === undefined ? 'success: Created\n' : `failure: ${oneLine(reasonOf(error))}\n`);
  }
}

function reasonOf(e: unknown): string {
  if (e instanceof SluiceError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Aborts a copy whose client went away before the outcome was written (the WLCG way to cancel). */
function cancelOnDisconnect(reply: FastifyReply): AbortController {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new SluiceError('UNAVAILABLE', 'the client went away'));
  });
  return controller;
}

/**
 * The body handed to namespace.put for a pull. Reports when put starts reading (its checks have
 * passed: the copy can be accepted), counts the bytes and ends only if they match the source's
 * Content-Length; otherwise it errors and put stores nothing. The adler32 put computes anyway is
 * compared with the source's Digest before the commit (checkDigest), so the bytes are summed once.
 */
class PullInlet extends Transform {
  readonly started: Promise<void>;
  bytes = 0;
  expectedSize: number | undefined;
  expectedAdler32: string | undefined;
  private markStarted!: () => void;

  constructor() {
    super({ highWaterMark: 1 << 20 });
    this.started = new Promise((resolve) => (this.markStarted = resolve));
  }

  override _read(size: number): void {
    this.markStarted();
    super._read(size);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      return done(new SluiceError('BAD_REQUEST', `source sent more than its Content-Length ${this.expectedSize}`));
    }
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      return done(new SluiceError('BAD_REQUEST', `source ended after ${this.bytes} of ${this.expectedSize} bytes`));
    }
    done();
  }

  /** Run by put before it commits: the received bytes must have the adler32 the source declared. */
  checkDigest(received: { checksums: Checksums }): void {
    const got = received.checksums.adler32;
    if (this.expectedAdler32 !== undefined && got !== this.expectedAdler32) {
      throw new SluiceError(
        'CHECKSUM_MISMATCH',
        `checksum mismatch: source declared adler32 ${this.expectedAdler32}, received data has ${got}`,
      );
    }
  }
}

/** COPY with Source: pull the remote file into the namespace at the request path. */
export async function thirdPartyPull(core: Core, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = principalOf(req, core.tokens);
  const path = writePathOf(req);
  if (req.headers.destination !== undefined) throw new SluiceError('BAD_REQUEST', 'COPY carries both Source and Destination');
  const source = parseHttpUrl('Source', headerValue(req.headers.source) ?? '');
  const overwrite = parseOverwrite(headerValue(req.headers.overwrite));
  const transfer = transferOptionsOf(req);
  // Scopes first, so a caller who may not write here learns nothing about remote hosts.
  requireStorage(p, 'create', path);
  await ensureResolvable(source, 'Source');

  // namespace.put runs its checks (scopes, parent, Overwrite, directory) before it reads a byte:
  // they answer with their own status; its first read means the copy is accepted.
  const inlet = new PullInlet();
  const putting = core.namespace.put(p, path, inlet, { mustNotExist: !overwrite, beforeCommit: (r) => inlet.checkDigest(r) });
  await Promise.race([inlet.started, putting]);

  const started = Date.now();
  const markers = new MarkerStream(reply, () => inlet.bytes);
  const cancel = cancelOnDisconnect(reply);
  const agents = new Agents();
  void (async () => {
    let res: HttpResponse | undefined;
    try {
      res = await requestFollowing(source, {
        method: 'GET',
        headers: { ...transfer.headers, 'want-digest': 'adler32' },
        agents,
        maxRedirects: tpcSettings.maxRedirects,
        signal: cancel.signal,
        timeoutMs: tpcSettings.idleTimeoutMs,
        keepTimeoutForBody: true,
      });
      if (res.status !== 200) throw await statusError(res, 'source');
      const length = Number(res.headers['content-length']);
      if (res.headers['content-length'] !== undefined && Number.isSafeInteger(length)) inlet.expectedSize = length;
      inlet.expectedAdler32 = parseDigest(res.headers.digest).adler32;
      if (transfer.requireVerification && inlet.expectedAdler32 === undefined) {
        throw new SluiceError('CHECKSUM_MISMATCH', 'source offered no adler32 Digest and RequireChecksumVerification is true');
      }
      // Errors travel to putting: an aborted source or a failed check errors the inlet, put stores nothing.
      pipeline(res.body, inlet, () => undefined);
    } catch (e) {
      inlet.destroy(e as Error);
    }
    try {
      const { entry } = await putting;
      req.log.info({ tpc: 'pull', path, source: loggable(source), bytes: entry.size, ms: Date.now() - started }, 'third-party copy done');
      markers.end(undefined);
    } catch (e) {
      req.log.info({ tpc: 'pull', path, source: loggable(source), err: reasonOf(e) }, 'third-party copy failed');
      markers.end(e);
    } finally {
      res?.body.destroy();
      agents.destroy();
    }
  })();
  return reply;
}

/** COPY with a Destination on another server: push the file there with PUT, then check its Digest. */
export async function thirdPartyPush(core: Core, req: FastifyRequest, reply: FastifyReply, destination: URL): Promise<unknown> {
  const p = principalOf(req, core.tokens);
  const path = readPathOf(req);
  const overwrite = parseOverwrite(headerValue(req.headers.overwrite));
  const transfer = transferOptionsOf(req);
  const entry = await core.namespace.stat(p, path);
  if (entry.type === 'DIR') throw new SluiceError('IS_A_DIRECTORY', `${path} is a directory; third-party copy sends files`);
  await ensureResolvable(destination, 'Destination');
  const stream = await core.namespace.openEntry(p, entry);

  const digest = digestHeader(wantedDigests(req.headers['want-digest']), entry.checksums);
  if (digest) void reply.header('digest', digest);
  let sent = 0;
  const started = Date.now();
  const markers = new MarkerStream(reply, () => sent);
  const cancel = cancelOnDisconnect(reply);
  const agents = new Agents();
  const counted = async function* (): AsyncGenerator<Uint8Array> {
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      sent += chunk.length;
      yield chunk;
    }
  };
  void (async () => {
    try {
      await pushTo(destination, entry, counted(), transfer, overwrite, agents, cancel.signal);
      req.log.info(
        { tpc: 'push', path, destination: loggable(destination), bytes: sent, ms: Date.now() - started },
        'third-party copy done',
      );
      markers.end(undefined);
    } catch (e) {
      req.log.info({ tpc: 'push', path, destination: loggable(destination), err: reasonOf(e) }, 'third-party copy failed');
      markers.end(e);
    } finally {
      stream.destroy();
      agents.destroy();
    }
  })();
  return reply;
}

async function pushTo(
  destination: URL,
  entry: Entry,
  body: AsyncIterable<Uint8Array>,
  transfer: TransferOptions,
  overwrite: boolean,
  agents: Agents,
  signal: AbortSignal,
): Promise<void> {
  const common = { agents, maxRedirects: tpcSettings.maxRedirects, signal, timeoutMs: tpcSettings.idleTimeoutMs };
  const headers: OutgoingHttpHeaders = { ...transfer.headers, 'content-length': entry.size, 'content-type': 'application/octet-stream' };
  if (!overwrite) headers['if-none-match'] = '*';
  // Expect: 100-continue lets a door that redirects PUTs (dCache to its pools) do so before the body.
  const put = await requestFollowing(destination, { ...common, method: 'PUT', headers, body, expectContinue: true });
  if (put.status < 200 || put.status >= 300) throw await statusError(put, 'destination');
  await discard(put);

  const head = await requestFollowing(destination, {
    ...common,
    method: 'HEAD',
    headers: { ...transfer.headers, 'want-digest': 'adler32' },
  });
  await discard(head);
  if (head.status < 200 || head.status >= 300) throw await statusError(head, 'destination HEAD after PUT');
  const landed = parseDigest(head.headers.digest).adler32;
  const ours = entry.checksums.adler32;
  if (landed === undefined) {
    if (transfer.requireVerification)
      throw new SluiceError('CHECKSUM_MISMATCH', 'destination offered no adler32 Digest and RequireChecksumVerification is true');
    return;
  }
  if (ours !== undefined && landed !== ours) {
    // Leave no corrupt copy behind if the transfer credentials allow deleting it.
    const del = await requestFollowing(destination, { ...common, method: 'DELETE', headers: transfer.headers }).catch(() => undefined);
    if (del) await discard(del).catch(() => undefined);
    throw new SluiceError('CHECKSUM_MISMATCH', `checksum mismatch: destination has adler32 ${landed}, the file has ${ours}`);
  }
}
