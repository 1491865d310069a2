// The one HTTP client of the CLI: the REST API under /api/v1 (tokens, namespace, events, functions,
// activations) and the WebDAV door at the root path (streaming PUT/GET with adler32 verification,
// MKCOL). Every failure becomes a SluiceError carrying the server's RFC 7807 `detail`.
import { request as httpRequest, Agent as HttpAgent, STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat as fsStat, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SluiceError, type ErrorCode } from '../errors.js';
import { adler32, adler32Hex } from '../storage/checksums.js';
import { SseParser, type SseMessage } from './sse.js';

export interface ClientSettings {
  /** Base URL of the server, e.g. http://127.0.0.1:8080. */
  url: string;
  token: string | undefined;
}

/** Tokens as the API returns them: the server's own type, so the two cannot drift apart. */
export type { TokenInfo } from '../auth/tokens.js';
import type { TokenInfo } from '../auth/tokens.js';

export interface NewToken {
  subject?: string;
  scopes: string[];
  description?: string;
  expiresIn?: number;
}

export interface WhoAmI {
  status: string;
  subject: string;
  tokenId: string;
  scopes: string[];
}

/** An entry as the dCache-compatible namespace API describes it. */
export interface NamespaceEntry {
  fileName?: string;
  fileType: 'DIR' | 'REGULAR' | 'LINK' | 'SPECIAL';
  fileMimeType: string;
  pnfsId: string;
  size: number;
  mtime: number;
  creationTime: number;
  fileLocality?: string;
  currentQos?: string;
  locations?: string[];
  checksums?: { type: string; value: string }[];
  extendedAttributes?: Record<string, string>;
  labels?: string[];
  children?: NamespaceEntry[];
  [other: string]: unknown;
}

export type StatFlag = 'children' | 'checksum' | 'locality' | 'locations' | 'qos' | 'xattr' | 'labels' | 'optional';

export interface InotifySelector {
  path: string;
  flags?: string[];
  recursive?: boolean;
}

export interface TransferResult {
  size: number;
  adler32: string;
}

export type ProgressListener = (transferred: number, total: number | undefined) => void;

/** Functions as the API returns them: the server's own types. */
export type { FunctionVersion, Activation } from '../functions/types.js';
export type { FunctionListItem, FunctionDetail } from '../api/routes/functions.js';
import type { Activation, ActivationId, ActivationStatus, FunctionVersion } from '../functions/types.js';
import type { FunctionListItem, FunctionDetail } from '../api/routes/functions.js';

/** What an invocation answered: the finished activation (successful or failed), or that it was queued. */
export type InvokeResult =
  | { kind: 'completed'; activation: Activation }
  | { kind: 'accepted'; activationId: ActivationId; status: ActivationStatus; location: string | undefined };

export interface ActivationFilter {
  function?: string;
  status?: ActivationStatus;
  limit?: number;
}

/** Triggers and pipelines as the API returns them: the server's own types. */
export type { Delivery, Pipeline, PipelineRun, Trigger } from '../triggers/types.js';
export type { TriggerStatus } from '../triggers/service.js';
import type {
  DeliveryPolicy,
  Delivery,
  NewPipeline,
  NewTrigger,
  Pipeline,
  PipelineRun,
  Trigger,
  TriggerFilter,
} from '../triggers/types.js';
import type { TriggerStatus } from '../triggers/service.js';

/** A trigger to create: the server's NewTrigger, where every field the server defaults may be left out. */
export type TriggerSpec = Pick<NewTrigger, 'name' | 'target'> &
  Partial<Omit<NewTrigger, 'name' | 'target' | 'filter' | 'delivery'>> & {
    filter?: Partial<TriggerFilter>;
    delivery?: Partial<DeliveryPolicy>;
  };

type PipelineStepSpec = NewPipeline['steps'][number];

/** A pipeline to save (its name is in the URL), with the defaulted fields optional. */
export interface PipelineSpec {
  description?: NewPipeline['description'];
  steps: (Pick<PipelineStepSpec, 'function'> & Partial<Omit<PipelineStepSpec, 'function'>>)[];
}

/** Catalogue records and lineage as the API returns them: the server's own types. */
export type { CatalogRecord, Dataset, LineageGraph, LineageDirection, RecordType } from '../catalog/types.js';
import type { CatalogRecord, Dataset, LineageGraph, LineageDirection, RecordType } from '../catalog/types.js';

const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'EXISTS',
  409: 'CONFLICT',
  412: 'PRECONDITION_FAILED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED',
  416: 'RANGE_NOT_SATISFIABLE',
  429: 'TOO_MANY_REQUESTS',
  502: 'FUNCTION_FAILED',
  503: 'UNAVAILABLE',
  507: 'INSUFFICIENT_STORAGE',
};

/** Percent-encodes each segment of a namespace path ("/a b/c" → "/a%20b/c"). */
export function encodePath(path: string): string {
  return path
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

/** The adler32 value of an RFC 3230 Digest header ("adler32=0a1b2c3d, md5=…"), lower-case. */
export function adler32FromDigest(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!value) return undefined;
  for (const item of value.split(',')) {
    const eq = item.indexOf('=');
    if (eq > 0 && item.slice(0, eq).trim().toLowerCase() === 'adler32')
      return item
        .slice(eq + 1)
        .trim()
        .toLowerCase();
  }
  return undefined;
}

/** Counts bytes and accumulates adler32 over data as it streams through. */
class TransferMeter extends Transform {
  bytes = 0;
  private sum = 1;

  constructor(
    private readonly total: number | undefined,
    private readonly onProgress: ProgressListener | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.sum = adler32(chunk, this.sum);
    this.bytes += chunk.length;
    this.onProgress?.(this.bytes, this.total);
    done(null, chunk);
  }

  get adler32(): string {
    return adler32Hex(this.sum);
  }
}

export class SluiceClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly agent: HttpAgent;

  constructor(settings: ClientSettings) {
    this.baseUrl = settings.url.replace(/\/+$/, '');
    this.token = settings.token;
    this.agent = this.baseUrl.startsWith('https:') ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  }

  /** Closes pooled connections. */
  close(): void {
    this.agent.destroy();
  }

  // --- tokens -------------------------------------------------------------------------------

  whoami(): Promise<WhoAmI> {
    return this.json('GET', '/api/v1/whoami');
  }

  createToken(req: NewToken): Promise<{ secret: string; token: TokenInfo }> {
    return this.json('POST', '/api/v1/tokens', req);
  }

  listTokens(): Promise<TokenInfo[]> {
    return this.json('GET', '/api/v1/tokens');
  }

  revokeToken(id: string): Promise<TokenInfo> {
    return this.json('DELETE', `/api/v1/tokens/${encodeURIComponent(id)}`);
  }

  // --- namespace ----------------------------------------------------------------------------

  stat(path: string, flags: readonly StatFlag[] = []): Promise<NamespaceEntry> {
    const query = flags.length === 0 ? '' : '?' + flags.map((f) => `${f}=true`).join('&');
    return this.json('GET', this.namespaceUrl(path) + query);
  }

  /** The entry, or undefined when it does not exist. */
  async find(path: string): Promise<NamespaceEntry | undefined> {
    try {
      return await this.stat(path);
    } catch (e) {
      if (e instanceof SluiceError && e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
  }

  async list(path: string, flags: readonly StatFlag[] = []): Promise<NamespaceEntry> {
    return this.stat(path, ['children', ...flags]);
  }

  async mkdir(path: string, opts: { parents?: boolean } = {}): Promise<void> {
    const { parent, name } = splitPath(path);
    await this.json('POST', this.namespaceUrl(parent), { action: 'mkdir', name, ...(opts.parents ? { parents: true } : {}) });
  }

  /** Renames or moves; a relative destination is resolved against the source's directory. */
  async move(path: string, destination: string, opts: { overwrite?: boolean } = {}): Promise<void> {
    await this.json('POST', this.namespaceUrl(path), { action: 'mv', destination, ...(opts.overwrite ? { overwrite: true } : {}) });
  }

  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.json('POST', this.namespaceUrl(path), { action: 'rm', ...(opts.recursive ? { recursive: true } : {}) });
  }

  // --- WebDAV door --------------------------------------------------------------------------

  /** MKCOL; resolves false when the collection already exists. */
  async makeCollection(path: string): Promise<boolean> {
    const res = await this.send('MKCOL', encodePath(path));
    if (res.statusCode === 405) {
      res.resume();
      const existing = await this.find(path);
      if (existing?.fileType === 'DIR') return false;
      throw new SluiceError('EXISTS', `${path} exists and is not a directory`);
    }
    await this.expectOk(res, 'MKCOL', path);
    res.resume();
    return true;
  }

  /**
   * Streams a local file to the door with PUT and verifies the adler32 the server reports in its
   * Digest header against the sum computed over the bytes sent.
   */
  async upload(localFile: string, remotePath: string, onProgress?: ProgressListener): Promise<TransferResult & { verified: boolean }> {
    const { size } = await fsStat(localFile);
    const source = createReadStream(localFile, { highWaterMark: 1024 * 1024 });
    const meter = new TransferMeter(size, onProgress);
    const req = this.open('PUT', encodePath(remotePath), {
      'content-length': size,
      'content-type': 'application/octet-stream',
      'want-digest': 'adler32',
    });
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    const sent = pipeline(source, meter, req).then(
      () => undefined,
      (e: unknown) => e,
    );
    const res = await response.catch(async (e: unknown) => {
      throw connectionError(this.baseUrl, (await sent) ?? e);
    });
    if (res.statusCode === undefined || res.statusCode >= 300) {
      source.destroy();
      await this.expectOk(res, 'PUT', remotePath);
    }
    res.resume();
    const sendError = await sent;
    if (sendError) throw connectionError(this.baseUrl, sendError);
    const local = meter.adler32;
    const remote = adler32FromDigest(res.headers.digest);
    if (remote !== undefined && remote !== local) {
      throw new SluiceError(
        'CHECKSUM_MISMATCH',
        `upload of ${localFile} to ${remotePath} corrupted: sent adler32 ${local}, server stored ${remote}`,
        {
          local,
          remote,
        },
      );
    }
    return { size: meter.bytes, adler32: local, verified: remote !== undefined };
  }

  /**
   * Streams a file from the door into a temporary file beside `localFile`, verifies the adler32
   * Digest and renames it into place; nothing is left behind on failure.
   */
  async download(remotePath: string, localFile: string, onProgress?: ProgressListener): Promise<TransferResult & { verified: boolean }> {
    const res = await this.send('GET', encodePath(remotePath), { 'want-digest': 'adler32' });
    await this.expectOk(res, 'GET', remotePath);
    const lengthHeader = res.headers['content-length'];
    const total = lengthHeader === undefined ? undefined : Number(lengthHeader);
    const meter = new TransferMeter(total, onProgress);
    const temp = join(dirname(localFile), `.${basename(localFile)}.sluice-${randomBytes(4).toString('hex')}`);
    try {
      await pipeline(res, meter, createWriteStream(temp, { flags: 'wx' }));
      if (total !== undefined && meter.bytes !== total) {
        throw new SluiceError('CONFLICT', `download of ${remotePath} ended after ${meter.bytes} of ${total} bytes`);
      }
      const local = meter.adler32;
      const remote = adler32FromDigest(res.headers.digest);
      if (remote !== undefined && remote !== local) {
        throw new SluiceError(
          'CHECKSUM_MISMATCH',
          `download of ${remotePath} corrupted: received adler32 ${local}, server announced ${remote}`,
          {
            local,
            remote,
          },
        );
      }
      await rename(temp, localFile);
      return { size: meter.bytes, adler32: local, verified: remote !== undefined };
    } catch (e) {
      await rm(temp, { force: true });
      if (e instanceof SluiceError) throw e;
      throw connectionError(this.baseUrl, e);
    }
  }

  // --- events -------------------------------------------------------------------------------

  /** Creates a channel; returns its absolute URL. */
  async createChannel(): Promise<string> {
    const res = await this.send('POST', '/api/v1/events/channels', { 'content-type': 'application/json' }, '{}');
    await this.expectOk(res, 'POST', '/api/v1/events/channels');
    res.resume();
    return this.location(res, 'channel');
  }

  /** Subscribes a channel to inotify events; returns the subscription URL (new or merged). */
  async subscribeInotify(channelUrl: string, selector: InotifySelector): Promise<string> {
    const res = await this.send(
      'POST',
      `${channelUrl}/subscriptions/inotify`,
      { 'content-type': 'application/json' },
      JSON.stringify(selector),
    );
    await this.expectOk(res, 'POST', 'subscription');
    res.resume();
    return this.location(res, 'subscription');
  }

  async deleteChannel(channelUrl: string): Promise<void> {
    const res = await this.send('DELETE', channelUrl);
    await this.expectOk(res, 'DELETE', 'channel');
    res.resume();
  }

  /**
   * Opens the channel's SSE stream (resuming after `lastEventId` when given) and yields messages
   * until the server ends the stream or `signal` aborts. Resolves `onOpen` once connected.
   */
  async *eventStream(
    channelUrl: string,
    opts: { lastEventId?: string; signal?: AbortSignal; onOpen?: () => void } = {},
  ): AsyncGenerator<SseMessage> {
    const headers: OutgoingHttpHeaders = { accept: 'text/event-stream' };
    if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId;
    const res = await this.send('GET', channelUrl, headers, undefined, opts.signal);
    await this.expectOk(res, 'GET', 'channel');
    opts.onOpen?.();
    const parser = new SseParser();
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        yield* parser.push(chunk);
      }
    } catch (e) {
      if (opts.signal?.aborted) return;
      throw connectionError(this.baseUrl, e);
    } finally {
      res.destroy();
    }
  }

  // --- functions ----------------------------------------------------------------------------

  /**
   * Deploys a bundle (a tar.gz, e.g. from bundle-pack). `created` is false when the server already had
   * this content as a version (it then moved `latest` to it).
   */
  async deployFunction(
    archive: Buffer | Readable,
    aliases: readonly string[] = [],
    onProgress?: ProgressListener,
  ): Promise<{ version: FunctionVersion; created: boolean }> {
    const query = aliases.map((a) => `alias=${encodeURIComponent(a)}`).join('&');
    const path = '/api/v1/functions' + (query === '' ? '' : `?${query}`);
    const size = Buffer.isBuffer(archive) ? archive.length : undefined;
    const req = this.open('POST', path, {
      accept: 'application/json',
      'content-type': 'application/gzip',
      ...(size !== undefined ? { 'content-length': size } : {}),
    });
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    const source = Buffer.isBuffer(archive) ? [archive] : archive;
    const sent = pipeline(source, new TransferMeter(size, onProgress), req).then(
      () => undefined,
      (e: unknown) => e,
    );
    const res = await response.catch(async (e: unknown) => {
      throw connectionError(this.baseUrl, (await sent) ?? e);
    });
    // A refusal can come before the whole archive is sent; the answer matters, not the broken pipe.
    await this.expectOk(res, 'POST', path);
    const version = JSON.parse(await readText(res)) as FunctionVersion;
    const sendError = await sent;
    if (sendError) throw connectionError(this.baseUrl, sendError);
    return { version, created: res.statusCode === 201 };
  }

  listFunctions(): Promise<FunctionListItem[]> {
    return this.json('GET', '/api/v1/functions');
  }

  getFunction(name: string): Promise<FunctionDetail> {
    return this.json('GET', this.functionUrl(name));
  }

  /** Every version, newest first. */
  functionVersions(name: string): Promise<FunctionVersion[]> {
    return this.json('GET', `${this.functionUrl(name)}/versions`);
  }

  /** One version by alias, seq number or digest prefix. */
  functionVersion(name: string, ref: string): Promise<FunctionVersion> {
    return this.json('GET', `${this.functionUrl(name)}/versions/${encodeURIComponent(ref)}`);
  }

  setAlias(name: string, alias: string, ref: string): Promise<FunctionVersion> {
    return this.json('PUT', `${this.functionUrl(name)}/aliases/${encodeURIComponent(alias)}`, { version: ref });
  }

  async removeAlias(name: string, alias: string): Promise<void> {
    await this.json('DELETE', `${this.functionUrl(name)}/aliases/${encodeURIComponent(alias)}`);
  }

  /** Removes one version when ref is given, else the whole function. */
  async removeFunction(name: string, ref?: string): Promise<void> {
    await this.json('DELETE', ref === undefined ? this.functionUrl(name) : `${this.functionUrl(name)}/versions/${encodeURIComponent(ref)}`);
  }

  // --- invocations and activations ----------------------------------------------------------

  /**
   * Invokes a function with `event` as input. Blocking calls resolve with the activation, failed ones
   * included (the server answers those 502 FUNCTION_FAILED with the activation); non-blocking calls
   * resolve as soon as the call is queued.
   */
  async invoke(name: string, ref: string | undefined, event: unknown, opts: { blocking: boolean }): Promise<InvokeResult> {
    const query = new URLSearchParams({ blocking: String(opts.blocking) });
    if (ref !== undefined) query.set('version', ref);
    const path = `${this.functionUrl(name)}/invocations?${query.toString()}`;
    const res = await this.send(
      'POST',
      path,
      { accept: 'application/json', 'content-type': 'application/json' },
      JSON.stringify(event === undefined ? null : event),
    );
    if (res.statusCode === 502) {
      const text = await readText(res);
      const problem = parseJson(text) as { code?: string; detail?: string; activation?: Activation } | undefined;
      if (problem?.code === 'FUNCTION_FAILED' && problem.activation) return { kind: 'completed', activation: problem.activation };
      throw new SluiceError(
        (problem?.code as ErrorCode | undefined) ?? 'INTERNAL',
        problem?.detail ?? `POST ${path} failed with HTTP 502`,
        {
          status: 502,
        },
      );
    }
    await this.expectOk(res, 'POST', path);
    const body = JSON.parse(await readText(res)) as Activation | { activationId: ActivationId; status: ActivationStatus };
    if (res.statusCode === 202) {
      const accepted = body as { activationId: ActivationId; status: ActivationStatus };
      const location = res.headers.location;
      return {
        kind: 'accepted',
        activationId: accepted.activationId,
        status: accepted.status,
        location: location ? new URL(location, this.baseUrl + '/').toString() : undefined,
      };
    }
    return { kind: 'completed', activation: body as Activation };
  }

  /** Activations, newest first, without input, result and logs. */
  listActivations(filter: ActivationFilter = {}): Promise<Activation[]> {
    const query = new URLSearchParams();
    if (filter.function !== undefined) query.set('function', filter.function);
    if (filter.status !== undefined) query.set('status', filter.status);
    if (filter.limit !== undefined) query.set('limit', String(filter.limit));
    const qs = query.toString();
    return this.json('GET', '/api/v1/activations' + (qs === '' ? '' : `?${qs}`));
  }

  getActivation(id: string): Promise<Activation> {
    return this.json('GET', `/api/v1/activations/${encodeURIComponent(id)}`);
  }

  activationLogs(id: string): Promise<{ logs: string[] }> {
    return this.json('GET', `/api/v1/activations/${encodeURIComponent(id)}/logs`);
  }

  private functionUrl(name: string): string {
    return `/api/v1/functions/${encodeURIComponent(name)}`;
  }

  // --- triggers and pipelines --------------------------------------------------------------

  createTrigger(spec: TriggerSpec): Promise<Trigger> {
    return this.json('POST', '/api/v1/triggers', spec);
  }

  listTriggers(): Promise<TriggerStatus[]> {
    return this.json('GET', '/api/v1/triggers');
  }

  /** One trigger (by name or id) with its position, lag and delivery counts. */
  getTrigger(nameOrId: string): Promise<TriggerStatus> {
    return this.json('GET', this.triggerUrl(nameOrId));
  }

  setTriggerEnabled(nameOrId: string, enabled: boolean): Promise<TriggerStatus> {
    return this.json('POST', `${this.triggerUrl(nameOrId)}/${enabled ? 'enable' : 'disable'}`);
  }

  async removeTrigger(nameOrId: string): Promise<void> {
    await this.json('DELETE', this.triggerUrl(nameOrId));
  }

  deadLetters(nameOrId: string, limit?: number): Promise<Delivery[]> {
    return this.json('GET', `${this.triggerUrl(nameOrId)}/dead-letters${limit === undefined ? '' : `?limit=${limit}`}`);
  }

  /** Dead letters (all, or those of `events`) back in the queue with fresh attempts. */
  replayDeadLetters(nameOrId: string, events?: number[]): Promise<{ replayed: number; events: number[] }> {
    return this.json('POST', `${this.triggerUrl(nameOrId)}/replay`, events === undefined ? {} : { events });
  }

  putPipeline(name: string, spec: PipelineSpec): Promise<Pipeline> {
    return this.json('PUT', this.pipelineUrl(name), spec);
  }

  listPipelines(): Promise<Pipeline[]> {
    return this.json('GET', '/api/v1/pipelines');
  }

  getPipeline(name: string): Promise<Pipeline> {
    return this.json('GET', this.pipelineUrl(name));
  }

  async removePipeline(name: string): Promise<void> {
    await this.json('DELETE', this.pipelineUrl(name));
  }

  /**
   * Runs a pipeline and waits for its end. Resolves with the run, failed ones included (the server
   * answers those 502 FUNCTION_FAILED with the run in the problem body).
   */
  async runPipeline(name: string, input: unknown): Promise<PipelineRun> {
    const path = `${this.pipelineUrl(name)}/runs`;
    const res = await this.send(
      'POST',
      path,
      { accept: 'application/json', 'content-type': 'application/json' },
      JSON.stringify(input === undefined ? {} : input),
    );
    if (res.statusCode === 502) {
      const text = await readText(res);
      const problem = parseJson(text) as { code?: string; detail?: string; run?: PipelineRun } | undefined;
      if (problem?.code === 'FUNCTION_FAILED' && problem.run) return problem.run;
      throw new SluiceError(
        (problem?.code as ErrorCode | undefined) ?? 'INTERNAL',
        problem?.detail ?? `POST ${path} failed with HTTP 502`,
        {
          status: 502,
        },
      );
    }
    await this.expectOk(res, 'POST', path);
    return JSON.parse(await readText(res)) as PipelineRun;
  }

  /** Runs of a pipeline, newest first. */
  pipelineRuns(name: string, limit?: number): Promise<PipelineRun[]> {
    return this.json('GET', `${this.pipelineUrl(name)}/runs${limit === undefined ? '' : `?limit=${limit}`}`);
  }

  getPipelineRun(id: string): Promise<PipelineRun> {
    return this.json('GET', `/api/v1/pipeline-runs/${encodeURIComponent(id)}`);
  }

  private triggerUrl(nameOrId: string): string {
    return `/api/v1/triggers/${encodeURIComponent(nameOrId)}`;
  }

  private pipelineUrl(name: string): string {
    return `/api/v1/pipelines/${encodeURIComponent(name)}`;
  }

  // --- catalogue ----------------------------------------------------------------------------

  /** A record by id (rec_…) or by absolute path (the current record there, else the one deleted last). */
  catalogRecord(idOrPath: string): Promise<CatalogRecord> {
    return this.json(
      'GET',
      idOrPath.startsWith('/') ? `/api/v1/catalog/files${encodePath(idOrPath)}` : `/api/v1/catalog/records/${encodeURIComponent(idOrPath)}`,
    );
  }

  /** Records matching a query (docs/catalog.md), newest first. */
  searchCatalog(query: string, opts: { limit?: number; offset?: number } = {}): Promise<CatalogRecord[]> {
    const params = new URLSearchParams({ q: query });
    if (opts.limit !== undefined) params.set('limit', String(opts.limit));
    if (opts.offset !== undefined) params.set('offset', String(opts.offset));
    return this.json('GET', `/api/v1/catalog/search?${params.toString()}`);
  }

  /** The derivation graph around a file. */
  catalogLineage(path: string, opts: { direction?: LineageDirection; depth?: number } = {}): Promise<LineageGraph> {
    const params = new URLSearchParams();
    if (opts.direction !== undefined) params.set('direction', opts.direction);
    if (opts.depth !== undefined) params.set('depth', String(opts.depth));
    const qs = params.toString();
    return this.json('GET', `/api/v1/catalog/lineage${encodePath(path)}${qs === '' ? '' : `?${qs}`}`);
  }

  /** Merges metadata into a file's record under `key` (RFC 7396), or replaces the key's metadata. */
  annotateRecord(path: string, key: string, metadata: Record<string, unknown>, opts: { replace?: boolean } = {}): Promise<CatalogRecord> {
    return this.json('PATCH', `/api/v1/catalog/files${encodePath(path)}`, { key, metadata, ...(opts.replace ? { replace: true } : {}) });
  }

  /** Creates the dataset of a namespace directory. */
  createDataset(
    path: string,
    opts: { type?: RecordType; metadata?: Record<string, Record<string, unknown>> } = {},
  ): Promise<CatalogRecord> {
    return this.json('POST', '/api/v1/catalog/datasets', { path, ...opts });
  }

  /** A dataset with its current files and their totals. */
  dataset(path: string): Promise<Dataset> {
    return this.json('GET', `/api/v1/catalog/datasets${encodePath(path)}`);
  }

  /** Removes a dataset record (never its files). */
  async removeDataset(path: string): Promise<void> {
    await this.json('DELETE', `/api/v1/catalog/datasets${encodePath(path)}`);
  }

  // --- transport ----------------------------------------------------------------------------

  private namespaceUrl(path: string): string {
    return path === '/' ? '/api/v1/namespace' : `/api/v1/namespace${encodePath(path)}`;
  }

  private location(res: IncomingMessage, what: string): string {
    const location = res.headers.location;
    if (!location) throw new SluiceError('INTERNAL', `server created a ${what} but sent no Location header`);
    return new URL(location, this.baseUrl + '/').toString();
  }

  /** One JSON call on the API; RFC 7807 problems come back as SluiceErrors. */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: OutgoingHttpHeaders = { accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const res = await this.send(method, path, headers, payload);
    await this.expectOk(res, method, path);
    const text = await readText(res);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** Throws the server's problem as a SluiceError unless the status is 2xx. */
  private async expectOk(res: IncomingMessage, method: string, what: string): Promise<void> {
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return;
    if (status >= 300 && status < 400 && res.headers.location) return;
    const text = await readText(res).catch(() => '');
    let detail = text.trim();
    let code: ErrorCode = CODE_OF_STATUS[status] ?? 'INTERNAL';
    if ((res.headers['content-type'] ?? '').includes('json')) {
      try {
        const problem = JSON.parse(text) as { detail?: string; code?: string; errors?: { message?: string }[] };
        detail = problem.detail ?? problem.errors?.[0]?.message ?? detail;
        if (problem.code) code = problem.code as ErrorCode;
      } catch {
        // not JSON after all: keep the raw text as the detail
      }
    }
    const reason = STATUS_CODES[status];
    if (reason && detail.startsWith(`${reason}: `)) detail = detail.slice(reason.length + 2);
    if (detail === '') detail = `${method} ${what} failed with HTTP ${status}`;
    throw new SluiceError(code, detail, { status });
  }

  private open(method: string, pathOrUrl: string, headers: OutgoingHttpHeaders = {}, signal?: AbortSignal) {
    const url = new URL(/^https?:\/\//.test(pathOrUrl) ? pathOrUrl : this.baseUrl + pathOrUrl);
    const all: OutgoingHttpHeaders = { ...headers };
    if (this.token) all.authorization = `Bearer ${this.token}`;
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return request(url, { method, headers: all, agent: this.agent, ...(signal ? { signal } : {}) });
  }

  private send(
    method: string,
    pathOrUrl: string,
    headers: OutgoingHttpHeaders = {},
    body?: string,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = this.open(
        method,
        pathOrUrl,
        body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
        signal,
      );
      req.once('response', resolve);
      req.once('error', (e) => reject(signal?.aborted ? e : connectionError(this.baseUrl, e)));
      req.end(body);
    });
  }
}

function splitPath(path: string): { parent: string; name: string } {
  const slash = path.lastIndexOf('/');
  const name = path.slice(slash + 1);
  if (name === '') throw new SluiceError('BAD_PATH', `cannot create ${path}`);
  return { parent: slash <= 0 ? '/' : path.slice(0, slash), name };
}

async function readText(res: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function connectionError(baseUrl: string, e: unknown): Error {
  if (e instanceof SluiceError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ECONNREFUSED' || err?.code === 'ENOTFOUND' || err?.code === 'EHOSTUNREACH') {
    return new Error(`cannot reach sluice at ${baseUrl} (${err.code}); is \`sluice serve\` running? Set SLUICE_URL or --url`);
  }
  return new Error(`connection to ${baseUrl} failed: ${err?.message ?? String(e)}`);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export { type SseMessage };
