// The one typed configuration object: defaults, then a JSON file, then SLUICE_* environment
// variables, then command-line flags. Loaded once by the CLI and passed down; nothing else reads env.
import { readFileSync, existsSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { SluiceError } from './errors.js';

export interface Config {
  /** Directory holding state, storage elements and the admin token. */
  dataDir: string;
  host: string;
  port: number;
  /** Public base URL used in Location headers; derived from the request when unset. */
  publicUrl: string | undefined;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Storage events older than this are pruned from the durable log. */
  eventRetentionHours: number;
  /** Longest accepted request header block, bytes. */
  maxHeaderBytes: number;
  /** Largest accepted JSON body on the API, bytes. */
  maxJsonBodyBytes: number;
  channels: {
    /** Disconnect timeout of a new channel, seconds (dCache default: 5 minutes). */
    defaultTimeoutSeconds: number;
    maxTimeoutSeconds: number;
    maxPerUser: number;
    maxSubscriptionsPerChannel: number;
  };
  /** fsync data and directory before acknowledging a write. Only turn off for throwaway data. */
  fsync: boolean;
  functions: FunctionsConfig;
  placement: PlacementSettings;
}

export interface PlacementSettings {
  /** Attributes of the landing SE ("local"), where uploads arrive, on first start. */
  landingAttributes: Record<string, string>;
  /** Concurrent transfers in total, per SE and per source→destination link. */
  maxActiveTransfers: number;
  maxActivePerSe: number;
  maxActivePerLink: number;
  /** Attempts of one transfer before its rule's lock is STUCK. */
  maxTransferAttempts: number;
  /** First retry delay of a failed transfer; doubles per attempt. */
  retryBaseSeconds: number;
  /** Seconds between repair passes (expired rules, stuck locks, space cleanup). */
  repairIntervalSeconds: number;
  /** How long a GET of a file only on tape waits for its stage before answering 503. */
  stageWaitSeconds: number;
  /** How long a staged file stays online. */
  pinSeconds: number;
  /** How long a copy stuck on the only SE its rule allows waits before the repairer tries it again. */
  stuckRetrySeconds: number;
  /** QoS classes beyond disk, tape and disk+tape: name → rules ({copies, expression}). */
  qosClasses: Record<string, { copies: number; expression: string }[]>;
}

export interface FunctionsConfig {
  /** auto: bubblewrap when it works here, else unsandboxed with a warning; bubblewrap: refuse to start without it. */
  sandbox: 'auto' | 'bubblewrap' | 'none';
  /** Interpreter of the python runtime. */
  python: string;
  /** Interpreter of the node runtime. */
  node: string;
  /** Calls waiting per function version before new ones get 429. */
  maxQueuedPerFunction: number;
  /** Largest invocation input, bytes. */
  maxPayloadBytes: number;
  /** Largest function bundle (unpacked and uploaded), bytes. */
  maxBundleBytes: number;
  /** How long a blocking invocation waits before answering 202 with the activation id. */
  blockingTimeoutSeconds: number;
  /** Finished activations older than this are pruned. */
  activationRetentionHours: number;
  /** Sandboxed node and python instances kept started ahead of need, per runtime (0: none). */
  prewarm: number;
}

export const defaultConfig = (): Config => ({
  dataDir: './sluice-data',
  host: '127.0.0.1',
  port: 8080,
  publicUrl: undefined,
  logLevel: 'info',
  eventRetentionHours: 24 * 7,
  maxHeaderBytes: 16 * 1024,
  maxJsonBodyBytes: 1024 * 1024,
  channels: {
    defaultTimeoutSeconds: 300,
    maxTimeoutSeconds: 24 * 3600,
    maxPerUser: 128,
    maxSubscriptionsPerChannel: 1024,
  },
  fsync: true,
  functions: {
    sandbox: 'auto',
    python: existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
    node: process.execPath,
    maxQueuedPerFunction: 1000,
    maxPayloadBytes: 1024 * 1024,
    maxBundleBytes: 100 * 1024 * 1024,
    blockingTimeoutSeconds: 60,
    activationRetentionHours: 24 * 7,
    prewarm: 1,
  },
  placement: {
    landingAttributes: { site: 'local', medium: 'disk' },
    maxActiveTransfers: 32,
    maxActivePerSe: 16,
    maxActivePerLink: 8,
    maxTransferAttempts: 5,
    retryBaseSeconds: 10,
    repairIntervalSeconds: 60,
    stageWaitSeconds: 60,
    pinSeconds: 3600,
    stuckRetrySeconds: 600,
    qosClasses: {},
  },
});

export type ConfigOverrides = Partial<Omit<Config, 'channels' | 'functions' | 'placement'>> & {
  channels?: Partial<Config['channels']>;
  functions?: Partial<FunctionsConfig>;
  placement?: Partial<PlacementSettings>;
};

const ENV_KEYS: Record<string, (c: ConfigOverrides, v: string) => void> = {
  SLUICE_DATA: (c, v) => (c.dataDir = v),
  SLUICE_HOST: (c, v) => (c.host = v),
  SLUICE_PORT: (c, v) => (c.port = parsePort(v, 'SLUICE_PORT')),
  SLUICE_PUBLIC_URL: (c, v) => (c.publicUrl = v),
  SLUICE_LOG_LEVEL: (c, v) => (c.logLevel = v as Config['logLevel']),
  SLUICE_EVENT_RETENTION_HOURS: (c, v) => (c.eventRetentionHours = Number(v)),
  SLUICE_SANDBOX: (c, v) => (c.functions = { ...c.functions, sandbox: v as FunctionsConfig['sandbox'] }),
  SLUICE_PYTHON: (c, v) => (c.functions = { ...c.functions, python: v }),
};

function parsePort(v: string | number, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new SluiceError('BAD_REQUEST', `${what} must be a port number, got ${v}`);
  return n;
}

function merge(base: Config, over: ConfigOverrides): Config {
  const { channels, functions, placement, ...rest } = over;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  return {
    ...base,
    ...defined,
    channels: { ...base.channels, ...(channels ?? {}) },
    functions: { ...base.functions, ...(functions ?? {}) },
    placement: { ...base.placement, ...(placement ?? {}) },
  };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function validate(c: Config): Config {
  parsePort(c.port, 'port');
  if (!LOG_LEVELS.includes(c.logLevel)) throw new SluiceError('BAD_REQUEST', `logLevel must be one of ${LOG_LEVELS.join(', ')}`);
  if (!(c.eventRetentionHours > 0)) throw new SluiceError('BAD_REQUEST', 'eventRetentionHours must be a positive number');
  if (!(c.channels.defaultTimeoutSeconds > 0 && c.channels.defaultTimeoutSeconds <= c.channels.maxTimeoutSeconds)) {
    throw new SluiceError('BAD_REQUEST', 'channels.defaultTimeoutSeconds must be positive and at most maxTimeoutSeconds');
  }
  const f = c.functions;
  if (!['auto', 'bubblewrap', 'none'].includes(f.sandbox))
    throw new SluiceError('BAD_REQUEST', 'functions.sandbox must be auto, bubblewrap or none');
  for (const key of [
    'maxQueuedPerFunction',
    'maxPayloadBytes',
    'maxBundleBytes',
    'blockingTimeoutSeconds',
    'activationRetentionHours',
  ] as const) {
    if (!(typeof f[key] === 'number' && f[key] > 0)) throw new SluiceError('BAD_REQUEST', `functions.${key} must be a positive number`);
  }
  const pl = c.placement;
  for (const key of [
    'maxActiveTransfers',
    'maxActivePerSe',
    'maxActivePerLink',
    'maxTransferAttempts',
    'retryBaseSeconds',
    'repairIntervalSeconds',
    'stageWaitSeconds',
    'pinSeconds',
    'stuckRetrySeconds',
  ] as const) {
    if (!(typeof pl[key] === 'number' && pl[key] > 0)) throw new SluiceError('BAD_REQUEST', `placement.${key} must be a positive number`);
  }
  for (const [name, rules] of Object.entries(pl.qosClasses)) {
    if (
      !Array.isArray(rules) ||
      rules.length === 0 ||
      rules.some((r) => !(Number.isInteger(r.copies) && r.copies > 0) || typeof r.expression !== 'string')
    ) {
      throw new SluiceError('BAD_REQUEST', `placement.qosClasses.${name} must be a list of {"copies": N, "expression": "..."}`);
    }
  }
  return { ...c, dataDir: resolve(c.dataDir) };
}

/**
 * Loads the configuration. `flags.configFile` (or DATA/sluice.json when present) is read first,
 * then the environment, then the flags themselves.
 */
export function loadConfig(flags: ConfigOverrides & { configFile?: string }, env: NodeJS.ProcessEnv = process.env): Config {
  const { configFile, ...flagValues } = flags;
  let config = defaultConfig();
  const fromEnv: ConfigOverrides = {};
  for (const [key, apply] of Object.entries(ENV_KEYS)) {
    const v = env[key];
    if (v !== undefined && v !== '') apply(fromEnv, v);
  }
  const dataDir = flagValues.dataDir ?? fromEnv.dataDir ?? config.dataDir;
  const file = configFile ?? env.SLUICE_CONFIG ?? join(dataDir, 'sluice.json');
  if (configFile !== undefined || existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new SluiceError('BAD_REQUEST', `cannot read config file ${file}: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new SluiceError('BAD_REQUEST', `config file ${file} must hold a JSON object`);
    }
    const nested = (['channels', 'functions', 'placement'] as const).flatMap((section) => {
      const value = (parsed as Record<string, unknown>)[section];
      if (typeof value !== 'object' || value === null) return [];
      return Object.keys(value)
        .filter((k) => !(k in config[section]))
        .map((k) => `${section}.${k}`);
    });
    const unknownKeys = [...Object.keys(parsed).filter((k) => !(k in config)), ...nested];
    if (unknownKeys.length > 0) throw new SluiceError('BAD_REQUEST', `unknown config keys in ${file}: ${unknownKeys.join(', ')}`);
    config = merge(config, parsed as ConfigOverrides);
  }
  config = merge(config, fromEnv);
  config = merge(config, flagValues);
  return validate(config);
}
