// The functions domain's vocabulary: manifests, versions, activations and the instance protocol
// messages. The manifest schema is the one source of its validation, its TypeScript type and its docs.
import { Type, type Static } from '@sinclair/typebox';

export const RUNTIMES = ['node', 'python', 'exec', 'custom'] as const;
/**
 * node/python: warm instances running the shipped shims; custom: any executable speaking the instance
 * protocol (docs/function-protocol.md); exec: one process per call, event on stdin, result on stdout.
 */
export type Runtime = (typeof RUNTIMES)[number];

export const FUNCTION_NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;
export const ALIAS_RE = /^[a-z][a-z0-9-]{0,31}$/;

export const ManifestLimits = Type.Object(
  {
    timeoutSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 60, description: 'Wall-clock limit of one call' }),
    memoryMb: Type.Integer({ minimum: 16, maximum: 65536, default: 256, description: 'Resident memory of one instance' }),
    maxOutputBytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 1024 * 1024, description: 'Largest result' }),
    maxLogBytes: Type.Integer({ minimum: 0, maximum: 64 * 1024 * 1024, default: 256 * 1024, description: 'Logs kept per activation' }),
    cpuSeconds: Type.Optional(Type.Integer({ minimum: 1, description: 'CPU time of one instance over its life (RLIMIT_CPU)' })),
    openFiles: Type.Integer({ minimum: 16, maximum: 65536, default: 1024, description: 'RLIMIT_NOFILE' }),
  },
  { additionalProperties: false, default: {} },
);

export const ManifestScaling = Type.Object(
  {
    min: Type.Integer({ minimum: 0, maximum: 64, default: 0, description: 'Instances kept warm; 0 scales to zero' }),
    max: Type.Integer({ minimum: 1, maximum: 256, default: 4 }),
    concurrency: Type.Integer({ minimum: 1, maximum: 1000, default: 1, description: 'Calls one instance serves at once' }),
    idleTimeoutSeconds: Type.Number({ minimum: 0, maximum: 86400, default: 60, description: 'Idle instances above min stop after this' }),
  },
  { additionalProperties: false, default: {} },
);

export const Manifest = Type.Object(
  {
    name: Type.String({ pattern: FUNCTION_NAME_RE.source, description: 'lower-case letters, digits and -' }),
    runtime: Type.Union(
      RUNTIMES.map((r) => Type.Literal(r)),
      { description: 'node | python | exec | custom' },
    ),
    handler: Type.String({
      minLength: 1,
      maxLength: 256,
      description:
        'node/python: module.function (main.handler = handler in main.mjs or main.py); exec/custom: executable path in the bundle',
    }),
    description: Type.String({ maxLength: 1024, default: '' }),
    env: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String(), { default: {} }),
    params: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'Defaults merged under each call input' }),
    limits: ManifestLimits,
    scaling: ManifestScaling,
    network: Type.Boolean({ default: false, description: 'Whether instances may open network connections' }),
    scopes: Type.Optional(
      Type.Array(Type.String(), {
        maxItems: 64,
        description:
          'Storage scopes the activation token may carry (each only if the caller holds it); default: the caller’s storage scopes',
      }),
    ),
    retries: Type.Integer({ minimum: 0, maximum: 10, default: 0, description: 'Re-runs of a call whose instance crashed' }),
  },
  { additionalProperties: false },
);

/** A manifest after validation, with every default filled in. */
export type Manifest = Static<typeof Manifest>;

/** A content digest (sha-256 hex) naming one immutable version of a function. */
export type VersionId = string & { readonly __brand: 'VersionId' };
export type ActivationId = string & { readonly __brand: 'ActivationId' };

export interface FunctionVersion {
  name: string;
  /** sha-256 hex of the bundle content (paths, modes, bytes), not of the archive. */
  version: VersionId;
  /** 1, 2, 3… in deploy order, for people; the digest is the identity. */
  seq: number;
  manifest: Manifest;
  /** Bytes of the unpacked bundle. */
  size: number;
  created: string;
  createdBy: string;
  /** Aliases pointing at this version (`latest` always points at the newest deploy). */
  aliases: string[];
}

export type ActivationStatus = 'queued' | 'running' | 'success' | 'error';

/** Why an activation failed; stable codes callers can branch on. */
export type ActivationErrorCode =
  | 'APPLICATION_ERROR' // the handler threw or returned an error
  | 'INSTANCE_EXITED' // the instance process exited or crashed during the call
  | 'TIMEOUT' // the call ran past limits.timeoutSeconds; the instance was killed
  | 'MEMORY_LIMIT' // the instance grew past limits.memoryMb; it was killed
  | 'OUTPUT_LIMIT' // the result was larger than limits.maxOutputBytes
  | 'INIT_FAILED' // the instance could not start or load the handler
  | 'PROTOCOL_ERROR' // the instance wrote something that is not the instance protocol
  | 'CANCELLED'; // the server shut down before the call ran

export interface ActivationError {
  code: ActivationErrorCode;
  message: string;
  name?: string;
  stack?: string;
}

export interface Activation {
  id: ActivationId;
  function: string;
  version: VersionId;
  seq: number;
  status: ActivationStatus;
  /** Who asked: the subject of the caller's token. */
  subject: string;
  /** What caused it: 'api' for a direct call; triggers and pipelines name themselves. */
  cause: string;
  /** Whether a caller waits for it; accepted non-blocking calls survive a restart and run then. */
  blocking: boolean;
  /** Idempotency key of the intent it serves (a trigger delivery: `<trigger id>/<event id>`). */
  key?: string;
  input: unknown;
  /** Storage scopes of the token the activation got for ctx.storage. */
  scopes: string[];
  result?: unknown;
  error?: ActivationError;
  logs: string[];
  /** True if the call waited for a new instance to start. */
  cold: boolean;
  instance?: string;
  queuedAt: string;
  startedAt?: string;
  endedAt?: string;
  /** ms from queued to handed to an instance. */
  waitMs?: number;
  /** ms from handed to an instance to its answer. */
  durationMs?: number;
  /** ms spent starting the instance, when cold. */
  initMs?: number;
  attempts: number;
}

// ---- instance protocol v1 (docs/function-protocol.md) ----
// sluice -> instance on stdin, one JSON object per line; instance -> sluice on fd 3, one per line;
// the instance's stdout and stderr are its logs. sluice always writes "type" first and "id" second.

export const PROTOCOL_VERSION = 1;

export interface InitMessage {
  type: 'init';
  protocol: number;
  function: string;
  version: string;
  handler: string;
  concurrency: number;
  env: Record<string, string>;
}

export interface InvokeMessage {
  type: 'invoke';
  id: string;
  /** Epoch ms after which the call is killed. */
  deadline: number;
  function: string;
  version: string;
  /** How the handler reaches the namespace: an HTTP API on a unix socket, with a token for this call. */
  storage: { socket: string; token: string };
  event: unknown;
}

export type ToInstance = InitMessage | InvokeMessage;

export type FromInstance =
  | { type: 'ready' }
  | { type: 'init_error'; error: { name?: string; message: string; stack?: string } }
  | { type: 'log'; id?: string; level?: string; message: string }
  | { type: 'result'; id: string; result?: unknown }
  | { type: 'error'; id: string; error: { name?: string; message: string; stack?: string } };
