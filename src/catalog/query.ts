// The catalogue's search language, parsed into terms that every store adapter compiles to its own
// parameterized SQL. Pure: no I/O, every mistake a BAD_REQUEST naming the term. See docs/catalog.md.
//
//   size>1e9 type:derived created>=2024-03 entry.title~scan -owner:bob "silicon wafer"
//
// Terms are separated by spaces and all must hold. `field:value` is exact, `field~text` contains
// (case-insensitive), `> >= < <=` compare numbers and ISO dates, a bare word or "quoted phrase" is
// full text over metadata values and the path, `-` before a term negates it.
import { SluiceError } from '../errors.js';
import { RECORD_KINDS, RECORD_TYPES } from './types.js';

export type CompareOp = ':' | '~' | '>' | '>=' | '<' | '<=';

/** Fields of the record itself (the names of its JSON form). */
export const RECORD_FIELDS = [
  'id',
  'path',
  'owner',
  'kind',
  'type',
  'size',
  'created',
  'updated',
  'checksums',
  'provenance.function',
  'provenance.version',
  'provenance.activation',
  'provenance.inputs.path',
  'provenance.inputs.id',
] as const;
export type RecordField = (typeof RECORD_FIELDS)[number];

export type QueryField =
  | { kind: 'record'; name: RecordField }
  /** A full path under metadata: `metadata.nexus.entry.title` → `nexus.entry.title`. */
  | { kind: 'metadata'; path: string }
  /** The shorthand: any metadata path that is `path` or ends in `.path`; `leaf` is its last segment. */
  | { kind: 'suffix'; path: string; leaf: string };

export interface QueryValue {
  text: string;
  /** When the text reads as a number. */
  number?: number;
  /** When the text reads as an ISO date or time: the interval it names, [start, end) in ms since the epoch. */
  interval?: { start: number; end: number };
}

export type QueryTerm =
  | { kind: 'compare'; source: string; negate: boolean; field: QueryField; op: CompareOp; value: QueryValue }
  /** Full text: the words of `text` as one phrase; `prefix` when it ended in `*`. */
  | { kind: 'text'; source: string; negate: boolean; text: string; prefix: boolean };

export interface CatalogQuery {
  terms: QueryTerm[];
  /** Records of deleted files are left out unless `deleted:true` (only them) or `deleted:any`. */
  deleted: 'exclude' | 'only' | 'include';
}

export const MAX_QUERY_LENGTH = 4096;
export const MAX_TERMS = 32;

const FIELD_ALIASES: Record<string, RecordField> = { checksum: 'checksums', function: 'provenance.function' };

const STRING_OPS: readonly CompareOp[] = [':', '~'];
const ORDER_OPS: readonly CompareOp[] = [':', '>', '>=', '<', '<='];

const NUMBER_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?$/;
const SEGMENT_RE = /^[^\s"'\\:~<>=.]+$/u;
const HAS_WORD_RE = /[\p{L}\p{N}]/u;

export function parseQuery(query: string): CatalogQuery {
  if (query.length > MAX_QUERY_LENGTH) throw bad(`query longer than ${MAX_QUERY_LENGTH} characters`);
  const sources = splitTerms(query);
  if (sources.length > MAX_TERMS) throw bad(`query has ${sources.length} terms; at most ${MAX_TERMS}`);
  const terms: QueryTerm[] = [];
  let deleted: CatalogQuery['deleted'] | undefined;
  for (const source of sources) {
    const term = parseTerm(source);
    if (term.kind === 'compare' && term.field.kind === 'suffix' && term.field.path === 'deleted') {
      if (term.op !== ':' || term.negate) throw termError(source, 'deleted takes deleted:true, deleted:false or deleted:any');
      if (deleted !== undefined) throw termError(source, 'deleted is given twice');
      const v = term.value.text;
      if (v !== 'true' && v !== 'false' && v !== 'any') throw termError(source, 'deleted takes true, false or any');
      deleted = v === 'true' ? 'only' : v === 'any' ? 'include' : 'exclude';
      continue;
    }
    terms.push(term);
  }
  return { terms, deleted: deleted ?? 'exclude' };
}

/** Splits on whitespace outside double quotes (a backslash escapes a quote inside them). */
function splitTerms(query: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < query.length; i++) {
    const c = query[i]!;
    if (quoted && c === '\\' && i + 1 < query.length) {
      current += c + query[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (!quoted && /\s/.test(c)) {
      if (current !== '') out.push(current);
      current = '';
      continue;
    }
    current += c;
  }
  if (quoted) throw termError(current, 'the quote is not closed');
  if (current !== '') out.push(current);
  return out;
}

function parseTerm(source: string): QueryTerm {
  const negate = source.length > 1 && source.startsWith('-');
  const body = negate ? source.slice(1) : source;
  const opAt = body.startsWith('"') ? -1 : body.search(/[:~<>]/);
  if (opAt < 0) return textTerm(source, body, negate);
  const fieldText = body.slice(0, opAt);
  const op: CompareOp = (
    body[opAt + 1] === '=' && (body[opAt] === '<' || body[opAt] === '>') ? body.slice(opAt, opAt + 2) : body[opAt]
  ) as CompareOp;
  const rawValue = body.slice(opAt + op.length);
  if (fieldText === '') throw termError(source, `no field before "${op}"; quote the term to search for it as text`);
  const text = unquote(source, rawValue);
  if (text === '') throw termError(source, `no value after "${op}"`);
  // kind:file and kind:dataset name what a record describes; any other kind term is the metadata
  // shorthand it was before records had kinds (kind~scan, kind:spaced).
  const field =
    fieldText === 'kind' && !(op === ':' && (RECORD_KINDS as readonly string[]).includes(text))
      ? ({ kind: 'suffix', path: 'kind', leaf: 'kind' } as const)
      : parseField(source, fieldText);
  const value = readValue(text);
  checkTerm(source, field, op, value);
  return { kind: 'compare', source, negate, field, op, value };
}

function textTerm(source: string, body: string, negate: boolean): QueryTerm {
  const prefix = body.endsWith('*');
  const bare = prefix ? body.slice(0, -1) : body;
  const text = body.startsWith('"') ? unquote(source, bare) : bare;
  if (!HAS_WORD_RE.test(text)) throw termError(source, 'nothing to search for: full text matches words (letters and digits)');
  return { kind: 'text', source, negate, text, prefix };
}

function parseField(source: string, text: string): QueryField {
  const name = FIELD_ALIASES[text] ?? text;
  if ((RECORD_FIELDS as readonly string[]).includes(name)) return { kind: 'record', name: name as RecordField };
  const segments = text.split('.');
  for (const s of segments) {
    if (!SEGMENT_RE.test(s)) {
      throw termError(source, `"${text}" is not a field name (dot-separated names without spaces, quotes or :~<>=)`);
    }
  }
  if (segments[0] === 'provenance') {
    throw termError(
      source,
      `unknown field "${text}"; provenance fields: ${RECORD_FIELDS.filter((f) => f.startsWith('provenance.')).join(', ')}`,
    );
  }
  if (segments[0] === 'metadata') {
    if (segments.length < 2) throw termError(source, 'metadata needs a path below it, e.g. metadata.nexus.entry.title');
    return { kind: 'metadata', path: segments.slice(1).join('.') };
  }
  return { kind: 'suffix', path: text, leaf: segments[segments.length - 1]! };
}

function unquote(source: string, raw: string): string {
  if (!raw.startsWith('"')) {
    if (raw.includes('"')) throw termError(source, 'a quote may only enclose the whole value');
    return raw;
  }
  let out = '';
  for (let i = 1; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\\' && i + 1 < raw.length) {
      out += raw[++i];
      continue;
    }
    if (c === '"') {
      if (i !== raw.length - 1) throw termError(source, 'a quote may only enclose the whole value');
      return out;
    }
    out += c;
  }
  throw termError(source, 'the quote is not closed');
}

function readValue(text: string): QueryValue {
  const value: QueryValue = { text };
  if (NUMBER_RE.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n)) value.number = n;
  }
  const interval = dateInterval(text);
  if (interval) value.interval = interval;
  return value;
}

function checkTerm(source: string, field: QueryField, op: CompareOp, value: QueryValue): void {
  if (field.kind !== 'record') {
    if (op !== ':' && op !== '~' && value.number === undefined && value.interval === undefined) {
      throw termError(source, `"${op}" compares numbers and ISO dates; "${value.text}" is neither`);
    }
    return;
  }
  const name = field.name;
  switch (name) {
    case 'size':
      if (!ORDER_OPS.includes(op)) throw termError(source, `size takes ${ORDER_OPS.join(' ')}, not ${op}`);
      if (value.number === undefined) throw termError(source, `size takes a number of bytes, not "${value.text}"`);
      return;
    case 'created':
    case 'updated':
      if (!ORDER_OPS.includes(op)) throw termError(source, `${name} takes ${ORDER_OPS.join(' ')}, not ${op}`);
      if (value.interval === undefined) {
        throw termError(source, `${name} takes an ISO date or time (2024, 2024-03, 2024-03-01, 2024-03-01T12:00Z), not "${value.text}"`);
      }
      return;
    case 'type':
      if (op !== ':') throw termError(source, 'type takes type:raw or type:derived');
      if (!(RECORD_TYPES as readonly string[]).includes(value.text)) throw termError(source, `type is raw or derived, not "${value.text}"`);
      return;
    case 'id':
    case 'provenance.inputs.id':
      if (op !== ':') throw termError(source, `${name} takes ${name}:rec_…`);
      return;
    default:
      if (!STRING_OPS.includes(op)) throw termError(source, `${name} takes : (exact) or ~ (contains), not ${op}`);
  }
}

/**
 * The interval an ISO date or time names, in UTC unless it carries a zone: 2024 is the year,
 * 2024-03 the month, 2024-03-01T12:00 that minute. Undefined when the text is no such date.
 */
export function dateInterval(text: string): { start: number; end: number } | undefined {
  const m = DATE_RE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = mo === undefined ? 1 : Number(mo);
  const day = d === undefined ? 1 : Number(d);
  const hour = h === undefined ? 0 : Number(h);
  const minute = mi === undefined ? 0 : Number(mi);
  const second = s === undefined ? 0 : Number(s);
  const ms = frac === undefined ? 0 : Number(frac.padEnd(3, '0'));
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return undefined;
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  if (new Date(local).getUTCDate() !== day) return undefined; // 2023-02-30
  let offset = 0;
  if (zone !== undefined && zone !== 'Z') {
    const digits = zone.replace(':', '');
    const sign = digits.startsWith('-') ? -1 : 1;
    offset = sign * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5))) * 60_000;
  }
  const start = local - offset;
  let end: number;
  if (mo === undefined) end = Date.UTC(year + 1, 0, 1) - offset;
  else if (d === undefined) end = Date.UTC(year, month, 1) - offset;
  else if (h === undefined) end = start + 86_400_000;
  else if (s === undefined) end = start + 60_000;
  else if (frac === undefined) end = start + 1000;
  else end = start + 10 ** (3 - frac.length);
  return { start, end };
}

const bad = (message: string) => new SluiceError('BAD_REQUEST', message);
const termError = (source: string, message: string) =>
  new SluiceError('BAD_REQUEST', `term ${JSON.stringify(source)}: ${message}`, { term: source });
