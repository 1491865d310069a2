// The placement domain's vocabulary (Rucio's model on dCache's storage): storage elements with
// attributes, replication rules selecting SEs by expression, the locks a rule holds on replicas,
// transfers that make the replicas, and QoS classes that name rule templates.
import { Type, type Static } from '@sinclair/typebox';

export const SE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
export const ATTRIBUTE_KEY_RE = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

const Attributes = Type.Record(Type.String({ pattern: ATTRIBUTE_KEY_RE.source }), Type.String({ minLength: 1, maxLength: 255 }), {
  description: 'attributes an SE expression selects on, e.g. {"site": "desy", "medium": "disk", "region": "eu"}',
});

const Common = {
  name: Type.String({ pattern: SE_NAME_RE.source, description: 'unique SE name' }),
  attributes: Type.Optional(Attributes),
  capacityBytes: Type.Optional(Type.Integer({ minimum: 1, description: 'bytes the SE may hold; free space is what is left of it' })),
  maxActiveTransfers: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 1000, description: 'concurrent transfers into or out of this SE' }),
  ),
};

export const SeSpec = Type.Union([
  Type.Object(
    { ...Common, kind: Type.Literal('local'), path: Type.String({ minLength: 1, description: 'directory on this host' }) },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      ...Common,
      kind: Type.Literal('webdav'),
      url: Type.String({ pattern: '^https?://', description: 'base collection URL (another sluice, dCache, nginx)' }),
      token: Type.Optional(Type.String({ minLength: 1, description: 'bearer token for the endpoint; stored, never shown' })),
      thirdPartyCopy: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('never')])),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      ...Common,
      kind: Type.Literal('tape'),
      path: Type.String({ minLength: 1, description: 'directory on this host holding the disk buffer and the emulated tape' }),
      flushDelaySeconds: Type.Optional(
        Type.Number({ minimum: 0, maximum: 86400, description: 'time a written file waits in the buffer before it is flushed to tape' }),
      ),
      stageDelaySeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 86400, description: 'time a stage (recall from tape) takes' })),
    },
    { additionalProperties: false },
  ),
]);
export type SeSpec = Static<typeof SeSpec>;

export interface StorageElementInfo {
  name: string;
  kind: SeSpec['kind'];
  attributes: Record<string, string>;
  /** The spec without secrets (a token shows as "[set]"). */
  spec: Record<string, unknown>;
  /** Where uploads land (the namespace's own SE). */
  landing: boolean;
  /** False when an operator took it out of service: no new copies, no reads, its copies move elsewhere. */
  available: boolean;
  created: number;
}

export const RULE_STATES = ['OK', 'REPLICATING', 'STUCK', 'SUSPENDED'] as const;
export type RuleState = (typeof RULE_STATES)[number];
export type LockState = 'OK' | 'REPLICATING' | 'STUCK';
export type Grouping = 'NONE' | 'ALL' | 'DATASET';

export const RuleSpec = Type.Object(
  {
    path: Type.String({ default: '/', description: 'directory whose files the rule covers (recursively)' }),
    glob: Type.Optional(Type.String({ maxLength: 1024, description: 'pattern on the path below `path`, e.g. "**/*.nxs"' })),
    labels: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'files must carry all these labels' })),
    xattrs: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'extended attributes files must have' })),
    copies: Type.Integer({ minimum: 1, maximum: 100, description: 'replicas to keep, each on a different SE' }),
    expression: Type.String({
      minLength: 1,
      maxLength: 1000,
      description: 'SE expression, e.g. "site=desy&medium=tape" or "region=eu\\site=cern"',
    }),
    source: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1000,
        description: 'SE expression the copies must be made from (Rucio source_replica_expression), e.g. "site=desy"',
      }),
    ),
    grouping: Type.Union([Type.Literal('NONE'), Type.Literal('ALL'), Type.Literal('DATASET')], {
      default: 'DATASET',
      description: 'ALL: every file of the rule on the same SEs; DATASET: the files of each directory together; NONE: spread file by file',
    }),
    lifetimeSeconds: Type.Optional(Type.Integer({ minimum: 1, description: 'the rule expires after this; its replicas become deletable' })),
    priority: Type.Integer({ minimum: 1, maximum: 5, default: 3, description: 'transfer priority, 5 highest (as Rucio)' }),
    activity: Type.String({
      default: 'User Subscriptions',
      maxLength: 64,
      description: 'label of the transfers (as Rucio/FTS activities)',
    }),
    comment: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);
export type RuleSpec = Static<typeof RuleSpec>;

export interface Rule {
  id: string;
  owner: string;
  path: string;
  glob: string | undefined;
  labels: string[];
  xattrs: Record<string, string>;
  copies: number;
  expression: string;
  /** SE expression restricting where copies are read from. */
  source: string | undefined;
  grouping: Grouping;
  /** ms since epoch, when the rule lapses. */
  expires: number | undefined;
  priority: number;
  activity: string;
  comment: string | undefined;
  /** A rule made for one file by a QoS transition: the file's id and the class. */
  fileId: string | undefined;
  qos: string | undefined;
  /** QoS rules: when the transition was completed. */
  completed: number | undefined;
  state: RuleState;
  reason: string | undefined;
  locks: { ok: number; replicating: number; stuck: number };
  created: number;
  updated: number;
}

export interface Lock {
  ruleId: string;
  fileId: string;
  path: string;
  se: string;
  state: LockState;
  reason: string | undefined;
}

export const TRANSFER_STATES = ['QUEUED', 'STAGING', 'ACTIVE', 'DONE', 'FAILED', 'CANCELLED'] as const;
export type TransferState = (typeof TRANSFER_STATES)[number];

export interface Transfer {
  id: string;
  fileId: string;
  path: string;
  /** The content version being copied: a transfer of an overwritten file is cancelled. */
  etag: string;
  size: number;
  adler32: string | undefined;
  source: string | undefined;
  destination: string;
  state: TransferState;
  priority: number;
  activity: string;
  ruleId: string | undefined;
  attempts: number;
  maxAttempts: number;
  nextAttempt: number;
  bytesDone: number;
  /** stream (through sluice), tpc (pulled by the destination), local (same host). */
  mode: 'stream' | 'tpc' | 'local' | undefined;
  error: string | undefined;
  created: number;
  started: number | undefined;
  finished: number | undefined;
}

/** A QoS class: the rules a file in that class is kept by. */
export interface QosClass {
  name: string;
  rules: { copies: number; expression: string }[];
}

export const BUILTIN_QOS: QosClass[] = [
  { name: 'disk', rules: [{ copies: 1, expression: 'medium=disk' }] },
  { name: 'tape', rules: [{ copies: 1, expression: 'medium=tape' }] },
  {
    name: 'disk+tape',
    rules: [
      { copies: 1, expression: 'medium=disk' },
      { copies: 1, expression: 'medium=tape' },
    ],
  },
];
