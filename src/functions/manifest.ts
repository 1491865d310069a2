// A bundle's manifest: found at the bundle root as sluice.function.json, .yaml or .yml, validated
// against the Manifest schema with its defaults filled in, and its handler checked against the files
// of the bundle. Used by the server on every deploy and by the CLI before it uploads anything, so
// that a mistake is reported with the field it concerns and never surfaces later as a failed call.
import { lstat, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { createRequire } from 'node:module';
import { SluiceError } from '../errors.js';
import { Manifest, type Runtime } from './types.js';

export const MANIFEST_FILES = ['sluice.function.json', 'sluice.function.yaml', 'sluice.function.yml'] as const;

/** A manifest is a few lines of configuration; anything larger is a mistake. */
const MAX_MANIFEST_BYTES = 64 * 1024;
/** Errors reported at once: enough to fix a manifest in one go, few enough to read. */
const MAX_REPORTED = 5;

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** JavaScript also allows $ in the exported function's name. */
const JS_IDENTIFIER_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Where a handler lives in the bundle, as the runtimes need it. */
export type HandlerTarget =
  /** node/python: module path relative to the bundle without extension ("lib/sub"), and the function's name. */
  | { kind: 'module'; module: string; export: string; candidates: string[] }
  /** exec/custom: an executable file, relative to the bundle. */
  | { kind: 'file'; path: string };

/** Validates a parsed manifest, fills in defaults and returns it; throws BAD_REQUEST naming the fields. */
export function validateManifest(raw: unknown, source = 'manifest'): Manifest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SluiceError('BAD_REQUEST', `${source}: must be an object with name, runtime and handler`);
  }
  const value = Value.Default(Manifest, structuredClone(raw)) as unknown;
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(Manifest, value)) {
    // TypeBox reports a missing field twice (required, then wrong type): keep the first per field.
    if (seen.has(e.path)) continue;
    seen.add(e.path);
    problems.push(describe(e));
  }
  const manifest = value as Manifest;
  if (problems.length === 0) {
    // The schema's key pattern for env is advisory in JSON Schema (patternProperties), so check it here.
    for (const key of Object.keys(manifest.env)) {
      if (!ENV_NAME_RE.test(key)) problems.push(`env name "${key}" must be letters, digits and _, not starting with a digit`);
    }
    if (manifest.scaling.min > manifest.scaling.max) {
      problems.push(`scaling.min (${manifest.scaling.min}) must be <= scaling.max (${manifest.scaling.max})`);
    }
    try {
      handlerTarget(manifest.runtime, manifest.handler);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, MAX_REPORTED);
    if (problems.length > MAX_REPORTED) shown.push(`and ${problems.length - MAX_REPORTED} more`);
    throw new SluiceError('BAD_REQUEST', `${source}: ${shown.join('; ')}`);
  }
  return manifest;
}

const require = createRequire(import.meta.url);
/** The YAML parser is loaded with the first YAML manifest, not at server start (9 MB an idle server never needs). */
function parseYaml(text: string): unknown {
  const yaml = require('yaml') as typeof import('yaml');
  return yaml.parse(text, { prettyErrors: false });
}

/** Parses manifest text (JSON for .json, YAML otherwise) and validates it. */
export function parseManifest(text: string, file: string): Manifest {
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new SluiceError('BAD_REQUEST', `${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  return validateManifest(raw, file);
}

/** The one manifest file at the root of dir; refuses none and several. */
export async function findManifestFile(dir: string): Promise<string> {
  const present: string[] = [];
  for (const name of MANIFEST_FILES) {
    const info = await lstat(join(dir, name)).catch(() => undefined);
    if (info?.isFile()) present.push(name);
    else if (info) throw new SluiceError('BAD_REQUEST', `${name} must be a regular file`);
  }
  if (present.length === 0) throw new SluiceError('BAD_REQUEST', `no manifest: the bundle root needs one of ${MANIFEST_FILES.join(', ')}`);
  if (present.length > 1) throw new SluiceError('BAD_REQUEST', `several manifests (${present.join(', ')}): keep exactly one`);
  return present[0]!;
}

/** Reads, validates and checks the manifest of the bundle in dir against the bundle's files. */
export async function readManifest(dir: string): Promise<{ manifest: Manifest; file: string }> {
  const file = await findManifestFile(dir);
  const path = join(dir, file);
  const { size } = await stat(path);
  if (size > MAX_MANIFEST_BYTES) throw new SluiceError('BAD_REQUEST', `${file}: larger than ${MAX_MANIFEST_BYTES} bytes`);
  const manifest = parseManifest(await readFile(path, 'utf8'), file);
  await checkHandler(manifest, dir, file);
  return { manifest, file };
}

/** Parses a handler by the rules of its runtime (syntax only; checkHandler looks at the files). */
export function handlerTarget(runtime: Runtime, handler: string): HandlerTarget {
  if (runtime === 'node' || runtime === 'python') {
    const parts = handler.split('.');
    const fn = parts.pop()!;
    if (parts.length === 0) throw new SluiceError('BAD_REQUEST', `handler "${handler}" must be module.function, e.g. main.handler`);
    for (const part of parts) {
      if (!IDENTIFIER_RE.test(part))
        throw new SluiceError('BAD_REQUEST', `handler "${handler}": module part "${part}" is not an identifier`);
    }
    if (!(runtime === 'node' ? JS_IDENTIFIER_RE : IDENTIFIER_RE).test(fn)) {
      throw new SluiceError('BAD_REQUEST', `handler "${handler}": function "${fn}" is not an identifier`);
    }
    const module = parts.join('/');
    const candidates = runtime === 'node' ? ['.mjs', '.js', '.cjs'].map((x) => module + x) : [module + '.py', module + '/__init__.py'];
    return { kind: 'module', module, export: fn, candidates };
  }
  if (handler.startsWith('/')) throw new SluiceError('BAD_REQUEST', `handler "${handler}" must be a path relative to the bundle root`);
  const segments = handler.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new SluiceError('BAD_REQUEST', `handler "${handler}" must not contain ".."`);
  if (segments.length === 0) throw new SluiceError('BAD_REQUEST', `handler "${handler}" must name a file in the bundle`);
  return { kind: 'file', path: segments.join('/') };
}

/** Checks that the handler's module or executable exists in the bundle in dir. */
export async function checkHandler(manifest: Manifest, dir: string, source = 'manifest'): Promise<HandlerTarget> {
  const target = handlerTarget(manifest.runtime, manifest.handler);
  if (target.kind === 'module') {
    for (const candidate of target.candidates) {
      if ((await stat(join(dir, candidate)).catch(() => undefined))?.isFile()) return target;
    }
    const names = target.candidates.length === 2 ? target.candidates.join(' or ') : target.candidates.join(', ');
    throw new SluiceError('BAD_REQUEST', `${source}: handler "${manifest.handler}" needs ${names} in the bundle; none found`);
  }
  const info = await stat(join(dir, target.path)).catch(() => undefined);
  if (!info) throw new SluiceError('BAD_REQUEST', `${source}: handler "${manifest.handler}" not found in the bundle`);
  if (!info.isFile()) throw new SluiceError('BAD_REQUEST', `${source}: handler "${manifest.handler}" is not a regular file`);
  if ((info.mode & 0o111) === 0) {
    throw new SluiceError('BAD_REQUEST', `${source}: handler "${manifest.handler}" is not executable (chmod +x ${target.path})`);
  }
  return target;
}

// ---- error messages ----------------------------------------------------------------------------

/** "/limits/timeoutSeconds" → "limits.timeoutSeconds"; "/scopes/0" → "scopes[0]". */
function fieldOf(path: string): string {
  return path
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc === '' ? p : `${acc}.${p}`), '');
}

function describe(e: ValueError): string {
  const field = fieldOf(e.path);
  const s = e.schema as Record<string, unknown>;
  switch (e.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return `missing field "${field}"`;
    case ValueErrorType.ObjectAdditionalProperties:
      return `unknown field "${field}"`;
    case ValueErrorType.NumberExclusiveMinimum:
    case ValueErrorType.IntegerExclusiveMinimum:
      return `${field} must be > ${String(s.exclusiveMinimum)}`;
    case ValueErrorType.NumberExclusiveMaximum:
    case ValueErrorType.IntegerExclusiveMaximum:
      return `${field} must be < ${String(s.exclusiveMaximum)}`;
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `${field} must be >= ${String(s.minimum)}`;
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return `${field} must be <= ${String(s.maximum)}`;
    case ValueErrorType.Integer:
      return `${field} must be an integer`;
    case ValueErrorType.Number:
      return `${field} must be a number`;
    case ValueErrorType.String:
      return `${field} must be a string`;
    case ValueErrorType.Boolean:
      return `${field} must be true or false`;
    case ValueErrorType.Object:
      return `${field} must be an object`;
    case ValueErrorType.Array:
      return `${field} must be a list`;
    case ValueErrorType.ArrayMaxItems:
      return `${field} must have at most ${String(s.maxItems)} items`;
    case ValueErrorType.StringMinLength:
      return s.minLength === 1 ? `${field} must not be empty` : `${field} must be at least ${String(s.minLength)} characters`;
    case ValueErrorType.StringMaxLength:
      return `${field} must be at most ${String(s.maxLength)} characters`;
    case ValueErrorType.StringPattern:
      return field === 'name'
        ? `name "${String(e.value)}" must be lower-case letters, digits and -, start with a letter and be at most 63 characters`
        : `${field} must match ${String(s.pattern)}`;
    case ValueErrorType.Union: {
      const options = Array.isArray(s.anyOf) ? (s.anyOf as { const?: unknown }[]).map((o) => o.const).filter((c) => c !== undefined) : [];
      return options.length > 0 ? `${field} must be one of ${options.join(', ')}` : `${field}: ${e.message}`;
    }
    default:
      return `${field}: ${e.message}`;
  }
}
