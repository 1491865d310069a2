// A storage element on any WebDAV endpoint (another sluice, dCache, nginx's dav module): replicas are
// files <2 hex>/<32 hex> under a base collection, written by a streaming PUT and verified after the
// fact (the endpoint's Digest, or reading the bytes back), read by GET, and filled by HTTP
// third-party copy (COPY + Source) where the endpoint does it. Also the small HTTP client the
// door's third-party copy shares: requests with streamed bodies, redirects, Digest and perf markers.
import { randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { DOMParser } from '@xmldom/xmldom';
import { SluiceError, type ErrorCode } from '../errors.js';
import { ChecksumAccumulator, adler32, adler32Hex } from './checksums.js';
import type { ReceiveOptions, ReceivedData, SpaceInfo, StorageElement } from './storage-element.js';
import type { ChecksumType } from './types.js';

// ---------------------------------------------------------------------------------------------
// HTTP client

export type HttpAgent = http.Agent | https.Agent;

/** A keep-alive agent pair: one per protocol, created on first use. */
export class Agents {
  private http?: http.Agent;
  private https?: https.Agent;

  for(url: URL): HttpAgent {
    if (url.protocol === 'https:') return (this.https ??= new https.Agent({ keepAlive: true, maxSockets: 64 }));
    return (this.http ??= new http.Agent({ keepAlive: true, maxSockets: 64 }));
  }

  destroy(): void {
    this.http?.destroy();
    this.https?.destroy();
  }
}

export type RequestBody = Uint8Array | string | AsyncIterable<Uint8Array>;

export interface RequestOptions {
  method: string;
  headers?: OutgoingHttpHeaders;
  agent: HttpAgent;
  body?: RequestBody;
  /**
   * Send "Expect: 100-continue" and hold the body back until the server asks for it (or a second
   * passed): a redirect or refusal then arrives before any byte of a one-shot stream is spent.
   */
  expectContinue?: boolean;
  signal?: AbortSignal;
  /** Socket inactivity allowed before the response head arrives, ms (default 60 s). */
  timeoutMs?: number;
  /**
   * Keep the inactivity timeout while the response body streams. Off by default: a reader that
   * applies backpressure pauses the socket, which is not a dead peer.
   */
  keepTimeoutForBody?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The unread body. Consume, or call `discard`, to free the connection. */
  body: IncomingMessage;
  /** False when a body was held back (Expect: 100-continue) and never sent. */
  bodySent: boolean;
}

const CONTINUE_WAIT_MS = 1000;
const DEFAULT_TIMEOUT_MS = 60_000;

/** One HTTP request; resolves with the response head once it arrives, the body still unread. */
export function httpRequest(url: URL, opts: RequestOptions): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const headers: OutgoingHttpHeaders = { ...opts.headers };
    const streaming = opts.body !== undefined && typeof opts.body !== 'string' && !(opts.body instanceof Uint8Array);
    if (opts.expectContinue && opts.body !== undefined) headers.expect = '100-continue';
    let settled = false;
    let bodyStarted = false;
    const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const req = mod.request(url, { method: opts.method, headers, agent: opts.agent, ...(opts.signal ? { signal: opts.signal } : {}) });
    req.setTimeout(timeout, () =>
      req.destroy(new SluiceError('UNAVAILABLE', `${opts.method} ${url.origin}${url.pathname}: no activity for ${timeout / 1000} s`)),
    );
    req.on('error', (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
    req.on('response', (res) => {
      if (!opts.keepTimeoutForBody) req.setTimeout(0);
      settled = true;
      // A response that came before the body was asked for ends this connection's usefulness.
      if (opts.body !== undefined && !bodyStarted) {
        res.on('end', () => req.destroy());
        res.on('close', () => req.destroy());
      }
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, bodySent: bodyStarted });
    });
    const sendBody = (): void => {
      if (bodyStarted || settled || req.destroyed) return;
      bodyStarted = true;
      if (!streaming) {
        req.end(opts.body as string | Uint8Array | undefined);
        return;
      }
      pump(opts.body as AsyncIterable<Uint8Array>, req).catch((e: unknown) => req.destroy(e as Error));
    };
    if (opts.body === undefined) {
      req.end();
    } else if (headers.expect) {
      req.once('continue', sendBody);
      req.flushHeaders();
      const t = setTimeout(sendBody, CONTINUE_WAIT_MS);
      req.once('close', () => clearTimeout(t));
      req.once('response', () => clearTimeout(t));
    } else {
      sendBody();
    }
  });
}

/** Writes a stream into a request with backpressure; ends it when the stream ends. */
async function pump(source: AsyncIterable<Uint8Array>, req: http.ClientRequest): Promise<void> {
  for await (const chunk of source) {
    if (req.destroyed) return;
    if (!req.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.on('drain', done);
        req.on('close', done);
      });
    }
  }
  if (!req.destroyed) req.end();
}

/** Reads a small response body as text (error messages, PROPFIND answers), at most `limit` bytes. */
export async function readText(res: HttpResponse, limit = 1 << 20): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.body.destroy();
      throw new SluiceError('UNAVAILABLE', `response body larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads and drops a response body so its connection can be reused. */
export async function discard(res: HttpResponse): Promise<void> {
  res.body.resume();
  await new Promise<void>((resolve) => {
    if (res.body.readableEnded || res.body.destroyed) return resolve();
    res.body.once('end', resolve);
    res.body.once('close', resolve);
  });
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Headers that carry credentials: kept on a redirect only while it stays on the same origin. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

/**
 * A request that follows up to `maxRedirects` redirects (GET, HEAD, DELETE, PROPFIND, MKCOL; and
 * PUT while its body is still held back by Expect: 100-continue). Credentials are not sent to
 * another origin, and https is never downgraded to http.
 */
export async function requestFollowing(
  url: URL,
  opts: Omit<RequestOptions, 'agent'> & { agents: Agents; maxRedirects?: number },
): Promise<HttpResponse & { url: URL }> {
  let current = url;
  let headers = { ...opts.headers };
  for (let hop = 0; ; hop++) {
    const res = await httpRequest(current, { ...opts, headers, agent: opts.agents.for(current) });
    const location = res.headers.location;
    const replayable = opts.body === undefined || typeof opts.body === 'string' || opts.body instanceof Uint8Array;
    if (!REDIRECTS.has(res.status) || !location || (res.bodySent && !replayable)) return { ...res, url: current };
    await discard(res);
    if (hop >= (opts.maxRedirects ?? 3))
      throw new SluiceError('UNAVAILABLE', `${opts.method} ${url.origin}${url.pathname}: more than ${opts.maxRedirects ?? 3} redirects`);
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new SluiceError('UNAVAILABLE', `${opts.method} ${current.origin}: redirect to a malformed URL`);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:')
      throw new SluiceError('UNAVAILABLE', `redirect to unsupported scheme ${next.protocol}`);
    if (current.protocol === 'https:' && next.protocol === 'http:')
      throw new SluiceError('UNAVAILABLE', `refusing a redirect from https to http (${next.origin})`);
    if (next.origin !== current.origin) {
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !CREDENTIAL_HEADERS.includes(k.toLowerCase())));
    }
    current = next;
  }
}

/** An error for an unexpected status, with a short excerpt of a text body (never headers). */
export async function statusError(res: HttpResponse, what: string, code?: ErrorCode): Promise<SluiceError> {
  let excerpt = '';
  try {
    excerpt = (await readText(res, 64 * 1024))
      .replace(/<[^>]*>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim()
      .slice(0, 200);
  } catch {
    // The status is the message; the body was only a courtesy.
  }
  const reason = http.STATUS_CODES[res.status] ?? '';
  const byStatus: ErrorCode =
    res.status === 404
      ? 'NOT_FOUND'
      : res.status === 507
        ? 'INSUFFICIENT_STORAGE'
        : res.status === 413
          ? 'PAYLOAD_TOO_LARGE'
          : 'UNAVAILABLE';
  return new SluiceError(code ?? byStatus, `${what}: HTTP ${res.status} ${reason}${excerpt ? ` (${excerpt})` : ''}`, {
    status: res.status,
  });
}

// ---------------------------------------------------------------------------------------------
// RFC 3230 Digest and WLCG perf markers

/** The checksums (hex) a Digest header carries: adler32 as 8 lowercase hex digits, md5 and sha-256 from base64. */
export function parseDigest(header: string | string[] | undefined): Partial<Record<ChecksumType, string>> {
  const out: Partial<Record<ChecksumType, string>> = {};
  if (!header) return out;
  for (const item of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) continue;
    const name = item.slice(0, eq).trim().toLowerCase();
    const value = item.slice(eq + 1).trim();
    if (name === 'adler32' && /^[0-9a-fA-F]{1,8}$/.test(value)) out.adler32 = value.toLowerCase().padStart(8, '0');
    else if (name === 'md5') {
      const hex = Buffer.from(value, 'base64').toString('hex');
      if (hex.length === 32) out.md5 = hex;
    } else if (name === 'sha-256' || name === 'sha256') {
      const hex = Buffer.from(value, 'base64').toString('hex');
      if (hex.length === 64) out.sha256 = hex;
    }
  }
  return out;
}

export type TpcOutcome = { ok: true } | { ok: false; reason: string };

/**
 * Reads a text/perf-marker-stream body (dCache, XRootD, StoRM, sluice): "Perf Marker" blocks whose
 * "Stripe Bytes Transferred" are reported at each "End" (summed over stripes), then one
 * "success: …" or "failure: …" line. Indentation is ignored. A body that ends without either line
 * is a failure.
 */
export async function readPerfMarkers(body: Readable, onProgress?: (bytes: number) => void): Promise<TpcOutcome> {
  const stripes = new Map<string, number>();
  let stripe = '0';
  let pending = '';
  let outcome: TpcOutcome | undefined;
  const line = (raw: string): void => {
    const text = raw.trim();
    if (text === 'Perf Marker') stripe = '0';
    else if (text === 'End') onProgress?.([...stripes.values()].reduce((a, b) => a + b, 0));
    else {
      const colon = text.indexOf(':');
      if (colon < 0) return;
      const key = text.slice(0, colon).trim().toLowerCase();
      const value = text.slice(colon + 1).trim();
      if (key === 'stripe index') stripe = value;
      else if (key === 'stripe bytes transferred' && /^\d+$/.test(value)) stripes.set(stripe, Number(value));
      else if (key === 'success') outcome ??= { ok: true };
      else if (key === 'failure') outcome ??= { ok: false, reason: value || 'transfer failed (no reason given)' };
    }
  };
  body.setEncoding('utf8');
  for await (const chunk of body as AsyncIterable<string>) {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      line(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    if (pending.length > 64 * 1024) pending = '';
  }
  if (pending) line(pending);
  return outcome ?? { ok: false, reason: 'the perf-marker stream ended without success or failure' };
}

// ---------------------------------------------------------------------------------------------
// The storage element

export interface WebDavSeOptions {
  name: string;
  /** Base collection URL, e.g. http://127.0.0.1:8081/replicas/desy. */
  url: string;
  /** Bearer token sent to the endpoint; never logged. */
  token?: string;
  /** 'auto' tries HTTP third-party copy in pullFrom and remembers an endpoint that does not do it. */
  thirdPartyCopy?: 'auto' | 'never';
  /** Capacity to report when the endpoint offers no RFC 4331 quota. */
  capacityBytes?: number;
}

const LOCATION = /^[0-9a-f]{2}\/[0-9a-f]{32}$/;
const UNLIMITED = Number.MAX_SAFE_INTEGER;
/** COPY answers meaning "no third-party copy here": nginx says 400 (COPY without Destination), others 405 or 501. */
const NO_TPC_STATUS = new Set([400, 405, 501]);

const PROPFIND_QUOTA =
  '<?xml version="1.0" encoding="utf-8"?>\n<D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>';

export class WebDavStorageElement implements StorageElement {
  readonly name: string;
  readonly kind = 'webdav' as const;
  private readonly base: URL;
  private readonly token: string | undefined;
  private readonly tpc: 'auto' | 'never';
  private readonly capacity: number | undefined;
  private readonly agents = new Agents();
  private readonly collections = new Set<string>();
  private tpcUnsupported = false;

  constructor(opts: WebDavSeOptions) {
    this.name = opts.name;
    const base = new URL(opts.url);
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new SluiceError('BAD_REQUEST', `SE ${opts.name}: url must be http or https`);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    base.search = '';
    base.hash = '';
    this.base = base;
    this.token = opts.token;
    this.tpc = opts.thirdPartyCopy ?? 'auto';
    this.capacity = opts.capacityBytes;
  }

  /** The absolute URL of a replica. */
  urlOf(location: string): string {
    if (!LOCATION.test(location)) throw new SluiceError('INTERNAL', `bad replica location ${location}`);
    return new URL(location, this.base).href;
  }

  /** The Authorization value this SE sends ("Bearer …"), for handing a replica to a third-party copy. */
  authorization(): string | undefined {
    return this.token ? `Bearer ${this.token}` : undefined;
  }

  /** Creates the base collection and any missing parents (an existing one, 405, is fine). */
  async init(): Promise<void> {
    const segments = this.base.pathname.split('/').filter(Boolean);
    const urlAt = (n: number): URL =>
      new URL(
        '/' +
          segments
            .slice(0, n)
            .map((s) => s + '/')
            .join(''),
        this.base,
      );
    if (segments.length === 0) return;
    // Usually the parents exist: try the base first, then walk down from the top on a 409.
    if ((await this.mkcol(urlAt(segments.length))) !== 409) return;
    for (let n = 1; n <= segments.length; n++) {
      const status = await this.mkcol(urlAt(n));
      if (status === 409) throw new SluiceError('UNAVAILABLE', `SE ${this.name}: MKCOL ${urlAt(n).pathname} answered 409`);
    }
  }

  /**
   * Streams `source` to a new replica with one PUT, computing checksums over the bytes sent, then
   * verifies what landed (the endpoint's Digest, or the bytes read back). On any failure whatever
   * may have landed is deleted. Endpoints publish a PUT only once complete (sluice, dCache and
   * nginx all write aside and rename), and nothing here ever appends, so a partial upload is never
   * visible.
   */
  async receive(source: Readable | AsyncIterable<Uint8Array>, opts: ReceiveOptions): Promise<ReceivedData> {
    const { location, prefix } = newLocation();
    const url = new URL(location, this.base);
    const acc = new ChecksumAccumulator(opts.extraChecksums);
    let size = 0;
    const counted = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of source as AsyncIterable<Uint8Array>) {
        size += chunk.length;
        if (opts.maxSize !== undefined && size > opts.maxSize)
          throw new SluiceError('PAYLOAD_TOO_LARGE', `more than ${opts.maxSize} bytes`);
        if (opts.expectedSize !== undefined && size > opts.expectedSize) {
          throw new SluiceError('BAD_REQUEST', `body longer than the declared Content-Length ${opts.expectedSize}`);
        }
        acc.update(chunk);
        yield chunk;
      }
      if (opts.expectedSize !== undefined && size !== opts.expectedSize) {
        throw new SluiceError('BAD_REQUEST', `body ended after ${size} of ${opts.expectedSize} declared bytes`);
      }
    };
    try {
      await this.ensureCollection(prefix);
      const headers: OutgoingHttpHeaders = { ...this.authHeader(), 'content-type': 'application/octet-stream' };
      if (opts.expectedSize !== undefined) headers['content-length'] = opts.expectedSize;
      const res = await requestFollowing(url, { method: 'PUT', headers, agents: this.agents, body: counted(), expectContinue: true });
      if (res.status === 409) {
        // The collection went away behind our back. The stream is spent and cannot be replayed:
        // forget the collection so the caller's retry creates it again.
        this.collections.delete(prefix);
        await discard(res);
        throw new SluiceError('UNAVAILABLE', `SE ${this.name}: collection ${prefix}/ is missing at the endpoint; retry`);
      }
      if (res.status < 200 || res.status >= 300) throw await statusError(res, `SE ${this.name}: PUT`);
      await discard(res);
      const checksums = acc.digest();
      if (!(await this.verify(location, checksums.adler32!, { size }))) {
        throw new SluiceError(
          'CHECKSUM_MISMATCH',
          `SE ${this.name}: the replica written to ${location} does not have the adler32 ${checksums.adler32} that was sent`,
        );
      }
      return { location, size, checksums };
    } catch (e) {
      if (source instanceof Readable) source.destroy();
      await this.remove(location).catch(() => undefined);
      throw e;
    }
  }

  /** Byte range [start, end] inclusive, or the whole replica, streamed from the endpoint. */
  async read(location: string, range?: { start: number; end: number }): Promise<Readable> {
    const url = new URL(this.urlOf(location));
    const headers: OutgoingHttpHeaders = { ...this.authHeader() };
    if (range) headers.range = `bytes=${range.start}-${range.end}`;
    const res = await requestFollowing(url, { method: 'GET', headers, agents: this.agents });
    if (res.status === 206 || (res.status === 200 && !range)) return res.body;
    if (res.status === 200 && range) return res.body.pipe(new ByteWindow(range.start, range.end - range.start + 1));
    throw await statusError(res, `SE ${this.name}: GET ${location}`);
  }

  /** Deletes a replica; a missing one is not an error. */
  async remove(location: string): Promise<void> {
    const res = await requestFollowing(new URL(this.urlOf(location)), {
      method: 'DELETE',
      headers: this.authHeader(),
      agents: this.agents,
    });
    if (res.status === 404 || (res.status >= 200 && res.status < 300)) return discard(res);
    throw await statusError(res, `SE ${this.name}: DELETE ${location}`);
  }

  /**
   * RFC 4331 quota of the base collection when the endpoint offers it (sluice does not, dCache
   * does): total = used + available, free = available, both capped by capacityBytes if set.
   * Without a quota: total = free = capacityBytes, or Number.MAX_SAFE_INTEGER when that is not
   * configured either — the free space is unknown and never limits placement.
   */
  async space(): Promise<SpaceInfo> {
    const unknown = { total: this.capacity ?? UNLIMITED, free: this.capacity ?? UNLIMITED };
    const res = await requestFollowing(this.base, {
      method: 'PROPFIND',
      headers: { ...this.authHeader(), depth: '0', 'content-type': 'application/xml; charset=utf-8' },
      body: PROPFIND_QUOTA,
      agents: this.agents,
    });
    if (res.status !== 207) {
      await discard(res);
      return unknown;
    }
    const quota = parseQuota(await readText(res));
    if (!quota) return unknown;
    const total = quota.used + quota.available;
    if (this.capacity === undefined) return { total, free: quota.available };
    return { total: Math.min(total, this.capacity), free: Math.max(0, Math.min(quota.available, this.capacity - quota.used)) };
  }

  async close(): Promise<void> {
    this.agents.destroy();
  }

  /**
   * Checks a replica against an adler32: the endpoint's Digest when it offers one (its recorded
   * checksum: sluice and dCache scrub their own disks), else — or with `readBack` — the bytes read
   * back and summed here. False when it differs, has another size than `size`, or is missing.
   */
  async verify(location: string, expectedAdler32: string, opts: { size?: number; readBack?: boolean } = {}): Promise<boolean> {
    const head = await this.head(location);
    if (!head) return false;
    if (opts.size !== undefined && head.size !== undefined && head.size !== opts.size) return false;
    const expected = expectedAdler32.toLowerCase();
    if (head.adler32 && !opts.readBack) return head.adler32 === expected;
    const back = await this.sum(location);
    return back.adler32 === expected && (opts.size === undefined || back.size === opts.size);
  }

  /**
   * HTTP third-party copy into a new replica on this SE: COPY with Source, so the endpoint pulls
   * the bytes itself. Progress comes from the perf markers; the result is checked with the
   * endpoint's Digest (or read back) against `expectedAdler32`. Returns 'unsupported' — and
   * remembers it — when the endpoint does not do third-party copy; the caller streams instead.
   * `signal` aborts the copy and removes the partial target.
   */
  async pullFrom(
    source: { url: string; authorization?: string },
    opts: { expectedSize?: number; expectedAdler32?: string; onProgress?: (bytes: number) => void; signal?: AbortSignal } = {},
  ): Promise<ReceivedData | 'unsupported'> {
    let sourceUrl: URL;
    try {
      sourceUrl = new URL(source.url);
    } catch {
      throw new SluiceError('BAD_REQUEST', 'third-party copy source is not an absolute URL');
    }
    if (sourceUrl.protocol !== 'http:' && sourceUrl.protocol !== 'https:') {
      throw new SluiceError('BAD_REQUEST', `third-party copy source must be http or https, not ${sourceUrl.protocol}`);
    }
    if (this.tpc === 'never' || this.tpcUnsupported) return 'unsupported';
    opts.signal?.throwIfAborted();
    const { location, prefix } = newLocation();
    const url = new URL(location, this.base);
    const headers: OutgoingHttpHeaders = {
      ...this.authHeader(),
      source: sourceUrl.href,
      // Bearer tokens travel in TransferHeaderAuthorization; no X.509 delegation is wanted (dCache).
      credential: 'none',
      // With a known checksum we compare ourselves afterwards, which covers sources that offer no
      // Digest (nginx); without one the endpoint must compare against the source's Digest.
      requirechecksumverification: opts.expectedAdler32 ? 'false' : 'true',
    };
    if (source.authorization) headers.transferheaderauthorization = source.authorization;
    try {
      await this.ensureCollection(prefix);
      const res = await httpRequest(url, {
        method: 'COPY',
        headers,
        agent: this.agents.for(url),
        timeoutMs: 5 * 60_000,
        keepTimeoutForBody: true,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      if (NO_TPC_STATUS.has(res.status)) {
        const text = await readText(res, 64 * 1024).catch(() => '');
        // A 400 about the Source comes from an endpoint that does third-party copy but refuses
        // this one (dCache: unknown source host): an error, not a reason to stop trying.
        if (res.status === 400 && /\bsource\b/i.test(text)) {
          throw new SluiceError(
            'UNAVAILABLE',
            `SE ${this.name}: COPY refused: HTTP 400 (${text.replace(/\s+/g, ' ').trim().slice(0, 200)})`,
          );
        }
        this.tpcUnsupported = true;
        return 'unsupported';
      }
      if (res.status < 200 || res.status >= 300) throw await statusError(res, `SE ${this.name}: COPY`);
      const outcome = await readPerfMarkers(res.body, opts.onProgress);
      if (!outcome.ok) throw new SluiceError('UNAVAILABLE', `SE ${this.name}: third-party copy failed: ${outcome.reason}`);
      const head = await this.head(location);
      if (!head) throw new SluiceError('UNAVAILABLE', `SE ${this.name}: third-party copy reported success but ${location} is missing`);
      const landed = head.adler32 && head.size !== undefined ? { adler32: head.adler32, size: head.size } : await this.sum(location);
      if (opts.expectedSize !== undefined && landed.size !== opts.expectedSize) {
        throw new SluiceError(
          'CHECKSUM_MISMATCH',
          `SE ${this.name}: third-party copy landed ${landed.size} bytes, expected ${opts.expectedSize}`,
        );
      }
      if (opts.expectedAdler32 && landed.adler32 !== opts.expectedAdler32.toLowerCase()) {
        throw new SluiceError(
          'CHECKSUM_MISMATCH',
          `SE ${this.name}: third-party copy landed adler32 ${landed.adler32}, expected ${opts.expectedAdler32}`,
        );
      }
      return { location, size: landed.size, checksums: { adler32: landed.adler32 } };
    } catch (e) {
      await this.remove(location).catch(() => undefined);
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw e;
    }
  }

  private authHeader(): OutgoingHttpHeaders {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  private async mkcol(url: URL): Promise<number> {
    const res = await requestFollowing(url, { method: 'MKCOL', headers: this.authHeader(), agents: this.agents });
    // 201 made, 405 exists; 409 a parent is missing: the caller decides.
    if (res.status === 201 || res.status === 405 || res.status === 409) {
      await discard(res);
      return res.status;
    }
    throw await statusError(res, `SE ${this.name}: MKCOL ${url.pathname}`);
  }

  /** Replica sub-collections are made on first use and remembered. */
  private async ensureCollection(prefix: string): Promise<void> {
    if (this.collections.has(prefix)) return;
    const status = await this.mkcol(new URL(prefix + '/', this.base));
    if (status === 409)
      throw new SluiceError('UNAVAILABLE', `SE ${this.name}: base collection ${this.base.pathname} is missing (init not run?)`);
    this.collections.add(prefix);
  }

  /** Size and adler32 (when the endpoint offers a Digest) of a replica; undefined if missing. */
  private async head(location: string): Promise<{ size: number | undefined; adler32: string | undefined } | undefined> {
    const res = await requestFollowing(new URL(this.urlOf(location)), {
      method: 'HEAD',
      headers: { ...this.authHeader(), 'want-digest': 'adler32' },
      agents: this.agents,
    });
    await discard(res);
    if (res.status === 404) return undefined;
    if (res.status < 200 || res.status >= 300) throw await statusError(res, `SE ${this.name}: HEAD ${location}`);
    const length = Number(res.headers['content-length']);
    return { size: Number.isSafeInteger(length) ? length : undefined, adler32: parseDigest(res.headers.digest).adler32 };
  }

  /** Reads a replica back and sums it: the real verification where the endpoint keeps no checksum. */
  private async sum(location: string): Promise<{ adler32: string; size: number }> {
    let a = 1;
    let size = 0;
    for await (const chunk of (await this.read(location)) as AsyncIterable<Uint8Array>) {
      a = adler32(chunk, a);
      size += chunk.length;
    }
    return { adler32: adler32Hex(a), size };
  }
}

function newLocation(): { location: string; prefix: string } {
  const id = randomBytes(16).toString('hex');
  return { location: `${id.slice(0, 2)}/${id}`, prefix: id.slice(0, 2) };
}

/** quota-available-bytes and quota-used-bytes from a PROPFIND multistatus, when both are numbers. */
function parseQuota(xml: string): { available: number; used: number } | undefined {
  let doc;
  try {
    doc = new DOMParser({ onError: () => undefined }).parseFromString(xml, 'application/xml');
  } catch {
    return undefined;
  }
  const numberOf = (name: string): number | undefined => {
    const el = doc.getElementsByTagNameNS('DAV:', name).item(0);
    const text = el?.textContent?.trim();
    return text && /^\d+$/.test(text) ? Number(text) : undefined;
  };
  const available = numberOf('quota-available-bytes');
  const used = numberOf('quota-used-bytes');
  return available !== undefined && used !== undefined ? { available, used } : undefined;
}

/** Passes through `length` bytes starting at `start` (for an endpoint that ignored a Range). */
class ByteWindow extends Transform {
  private skip: number;
  private left: number;

  constructor(start: number, length: number) {
    super();
    this.skip = start;
    this.left = length;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let c = chunk;
    if (this.skip > 0) {
      const n = Math.min(this.skip, c.length);
      this.skip -= n;
      c = c.subarray(n);
    }
    if (this.left > 0 && c.length > 0) {
      const part = c.subarray(0, this.left);
      this.left -= part.length;
      this.push(part);
    }
    done();
  }
}
