// The triggers domain's vocabulary: a trigger is a filter over storage events bound to a target (a
// function version or alias, or a pipeline) with parameters and a delivery policy. Each matching
// event becomes one delivery, keyed (trigger, event), retried with backoff and dead-lettered at last.
import { Type, type Static } from '@sinclair/typebox';
import { RECORDED_FLAGS, PLACEMENT_TYPES } from '../events/types.js';

export const TRIGGER_NAME_RE = /^[a-z][a-z0-9-]{0,62}$/;

export const TriggerFilter = Type.Object(
  {
    events: Type.Array(Type.Union([...RECORDED_FLAGS, ...PLACEMENT_TYPES].map((f) => Type.Literal(f))), {
      minItems: 1,
      default: ['IN_CLOSE_WRITE', 'IN_MOVED_TO'],
      description: 'storage event types to take (inotify names, or placement events such as REPLICA_FLUSHED)',
    }),
    path: Type.String({ default: '/', description: 'directory whose events are taken' }),
    recursive: Type.Boolean({ default: true, description: 'also events below subdirectories of path' }),
    glob: Type.Optional(
      Type.String({ maxLength: 1024, description: 'pattern on the path below `path`, e.g. "**/*.nxs" or "raw/scan_*.h5"' }),
    ),
    minSize: Type.Optional(Type.Integer({ minimum: 0 })),
    maxSize: Type.Optional(Type.Integer({ minimum: 0 })),
    directories: Type.Boolean({ default: false, description: 'also events of directories' }),
    labels: Type.Optional(Type.Array(Type.String(), { description: 'the file must carry all these labels' })),
    xattrs: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'extended attributes the file must have' })),
  },
  { additionalProperties: false, default: {} },
);
export type TriggerFilter = Static<typeof TriggerFilter>;

export const DeliveryPolicy = Type.Object(
  {
    maxAttempts: Type.Integer({ minimum: 1, maximum: 100, default: 5 }),
    backoffSeconds: Type.Number({ minimum: 0, maximum: 3600, default: 1, description: 'first retry delay; doubles each attempt' }),
    maxBackoffSeconds: Type.Number({ minimum: 0, maximum: 86400, default: 300 }),
    concurrency: Type.Integer({ minimum: 1, maximum: 10000, default: 64, description: 'deliveries of this trigger running at once' }),
    ordered: Type.Boolean({ default: false, description: 'deliver events of one path one at a time, in log order' }),
  },
  { additionalProperties: false, default: {} },
);
export type DeliveryPolicy = Static<typeof DeliveryPolicy>;

export const TriggerTarget = Type.Union([
  Type.Object({ function: Type.String({ description: 'NAME or NAME@REF (alias, seq, digest prefix)' }) }, { additionalProperties: false }),
  Type.Object({ pipeline: Type.String() }, { additionalProperties: false }),
]);
export type TriggerTarget = Static<typeof TriggerTarget>;

export const NewTrigger = Type.Object(
  {
    name: Type.String({ pattern: TRIGGER_NAME_RE.source }),
    description: Type.String({ maxLength: 1024, default: '' }),
    filter: TriggerFilter,
    target: TriggerTarget,
    params: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'merged into the input of every call' }),
    delivery: DeliveryPolicy,
    catalog: Type.Optional(
      Type.Object(
        {
          annotate: Type.String({
            pattern: '^[a-z][a-z0-9_-]{0,62}$',
            description: 'store the result’s `metadata` in the file’s catalogue record under this key',
          }),
        },
        { additionalProperties: false },
      ),
    ),
    enabled: Type.Boolean({ default: true }),
    /** Where to start: 'now' (default) or 'beginning' (every event still in the log). */
    from: Type.Union([Type.Literal('now'), Type.Literal('beginning')], { default: 'now' }),
  },
  { additionalProperties: false },
);
export type NewTrigger = Static<typeof NewTrigger>;

export interface Trigger extends Omit<NewTrigger, 'from'> {
  id: string;
  owner: string;
  /** Storage scopes of the owner's token when the trigger was made: what its calls may do. */
  scopes: string[];
  /** Last event id taken from the log. */
  position: number;
  created: string;
}

export type DeliveryStatus = 'pending' | 'running' | 'succeeded' | 'dead';

export interface Delivery {
  trigger: string;
  event: number;
  path: string;
  status: DeliveryStatus;
  attempts: number;
  /** Epoch ms before which it is not retried. */
  notBefore: number;
  /** The activation (or pipeline run) of the latest attempt. */
  activation?: string;
  lastError?: string;
  updated: number;
}

export const PipelineStep = Type.Object(
  {
    function: Type.String({ description: 'NAME or NAME@REF' }),
    params: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'merged into the step’s input' }),
    maxAttempts: Type.Integer({ minimum: 1, maximum: 20, default: 1, description: 'tries of this step before the run fails' }),
  },
  { additionalProperties: false },
);

export const NewPipeline = Type.Object(
  {
    name: Type.String({ pattern: TRIGGER_NAME_RE.source }),
    description: Type.String({ maxLength: 1024, default: '' }),
    steps: Type.Array(PipelineStep, { minItems: 1, maxItems: 32 }),
  },
  { additionalProperties: false },
);
export type NewPipeline = Static<typeof NewPipeline>;

export interface Pipeline extends NewPipeline {
  owner: string;
  created: string;
}

export type PipelineRunStatus = 'running' | 'succeeded' | 'failed';

export interface PipelineRunStep {
  function: string;
  status: 'pending' | 'running' | 'succeeded' | 'failed';
  attempts: number;
  /** Activation of each attempt, oldest first. */
  activations: string[];
  result?: unknown;
  error?: string;
}

export interface PipelineRun {
  id: string;
  pipeline: string;
  status: PipelineRunStatus;
  cause: string;
  subject: string;
  input: unknown;
  steps: PipelineRunStep[];
  result?: unknown;
  error?: string;
  created: string;
  ended?: string;
}
