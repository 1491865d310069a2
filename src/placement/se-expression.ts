// SE expressions: the small set language a replication rule uses to say where replicas go, after
// Rucio's RSE expressions (lib/rucio/core/rse_expression_parser.py, doc/source/rse_expressions.rst).
// Pure: parse text to an AST, evaluate it against a fleet of SEs, format it back to canonical text.
//
//   (site=desy|site=cern)&medium=disk      region=eu\site=cern      tier<=1&freespace>1000
//
// Operands: a bare SE name; `*` (every SE); `key=value`, `key!=value`; `key<N`, `key>N`, `key<=N`,
// `key>=N` (numeric); `( … )`. Operators: `&` intersection, `|` union, `\` difference.
//
// Where this follows Rucio:
// - No precedence: operators apply strictly left to right, so `a|b&c` is `(a|b)&c` (Rucio's
//   __resolve_term_expression folds each operand into the running left term; its docs show the
//   consequence). Parentheses are the only grouping.
// - An expression that selects nothing is an error (Rucio: "RSE Expression resulted in an empty set").
//   An attribute key no SE has is not an error by itself, as in Rucio.
// - Attribute values compare as case-sensitive strings; `<`/`>` compare numbers, and an SE whose
//   value is not a number does not match (Rucio skips on float()'s ValueError).
// - No `key=*`: Rucio has none.
// Where it goes beyond Rucio (whose grammar is one regex of `[=<>]`, without blanks):
// - `!=`, `<=`, `>=`, and blanks around tokens. `key!=value` means `*\key=value`, the way it is
//   written in Rucio: SEs without the key are included.
// - A bare word must name an SE. Rucio reads it as a boolean attribute (every RSE carries its own
//   name as one), so a typo there silently selects nothing; here it is "unknown SE". Boolean tags
//   are written `key=true`.
import { SluiceError } from '../errors.js';

export interface SeInfo {
  name: string;
  attributes: Readonly<Record<string, string>>;
}

export type SeSetOperator = '&' | '|' | '\\';
export type SeComparison = '=' | '!=' | '<' | '>' | '<=' | '>=';

/** One node of a parsed expression; `position` is the 0-based offset in the source text. */
export type SeNode =
  | { readonly kind: 'all'; readonly position: number }
  | { readonly kind: 'name'; readonly name: string; readonly position: number }
  | {
      readonly kind: 'attribute';
      readonly key: string;
      readonly comparison: SeComparison;
      readonly value: string;
      readonly position: number;
    }
  /** `position` is the operator's. */
  | { readonly kind: 'set'; readonly operator: SeSetOperator; readonly left: SeNode; readonly right: SeNode; readonly position: number };

/** A parsed expression; the source is kept so evaluation errors can point into it. */
export interface SeExpression {
  readonly source: string;
  readonly root: SeNode;
}

export const MAX_SE_EXPRESSION_LENGTH = 1000;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const WORD_CHAR = /[A-Za-z0-9_.-]/;
const BLANK = /\s/;
const NUMBER = /^-?\d+(\.\d+)?$/;
/** How much of the expression an error message quotes. */
const QUOTED_LENGTH = 80;

export class SeExpressionError extends SluiceError {
  /** 0-based offset of the offending character; 0 when the whole expression is at fault. */
  readonly position: number;

  constructor(source: string, position: number, problem: string) {
    const quoted = source.length > QUOTED_LENGTH ? `${source.slice(0, QUOTED_LENGTH)}…` : source;
    super('BAD_REQUEST', `SE expression "${quoted}": ${problem}`, { expression: quoted, position });
    this.name = 'SeExpressionError';
    this.position = position;
  }
}

type Token =
  | { kind: 'word'; text: string; position: number }
  | { kind: 'comparison'; text: SeComparison; position: number }
  | { kind: 'operator'; text: SeSetOperator; position: number }
  | { kind: '(' | ')' | '*'; text: string; position: number };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (BLANK.test(c)) {
      i++;
    } else if (WORD_CHAR.test(c)) {
      const start = i;
      while (i < source.length && WORD_CHAR.test(source[i]!)) i++;
      tokens.push({ kind: 'word', text: source.slice(start, i), position: start });
    } else if (c === '&' || c === '|' || c === '\\') {
      tokens.push({ kind: 'operator', text: c, position: i++ });
    } else if (c === '(' || c === ')' || c === '*') {
      tokens.push({ kind: c, text: c, position: i++ });
    } else if ((c === '<' || c === '>' || c === '!') && next === '=') {
      const text: SeComparison = c === '<' ? '<=' : c === '>' ? '>=' : '!=';
      tokens.push({ kind: 'comparison', text, position: i });
      i += 2;
    } else if (c === '<' || c === '>' || c === '=') {
      tokens.push({ kind: 'comparison', text: c, position: i++ });
    } else {
      throw new SeExpressionError(source, i, `unexpected character ${JSON.stringify(c)} at position ${i}`);
    }
  }
  return tokens;
}

class Parser {
  private index = 0;
  private readonly tokens: Token[];

  constructor(private readonly source: string) {
    this.tokens = tokenize(source);
  }

  parse(): SeNode {
    if (this.tokens.length === 0) this.fail(this.source.length, `empty expression at position ${this.source.length}`);
    const root = this.expression(0);
    const stray = this.peek();
    if (stray) this.fail(stray.position, `unmatched ")" at position ${stray.position}`);
    return root;
  }

  /** Operands joined left to right; stops at the end or at a ")" (which the caller checks). */
  private expression(depth: number): SeNode {
    let left = this.operand(depth);
    for (;;) {
      const token = this.peek();
      if (!token || token.kind === ')') return left;
      if (token.kind !== 'operator') this.unexpected(token);
      this.index++;
      const right = this.operand(depth);
      left = { kind: 'set', operator: token.text, left, right, position: token.position };
    }
  }

  private operand(depth: number): SeNode {
    const token = this.take();
    if (!token) return this.fail(this.source.length, `unexpected end of expression at position ${this.source.length}`);
    switch (token.kind) {
      case '*':
        return { kind: 'all', position: token.position };
      case '(': {
        const inner = this.expression(depth + 1);
        if (!this.take()) this.fail(token.position, `unmatched "(" at position ${token.position}`);
        return inner;
      }
      case ')':
        if (depth === 0) this.fail(token.position, `unmatched ")" at position ${token.position}`);
        return this.unexpected(token);
      case 'word':
        return this.primitive(token.text, token.position);
      default:
        return this.unexpected(token);
    }
  }

  private primitive(word: string, position: number): SeNode {
    if (!NAME.test(word)) this.fail(position, `invalid name ${JSON.stringify(word)} at position ${position}`);
    const comparison = this.peek();
    if (comparison?.kind !== 'comparison') return { kind: 'name', name: word, position };
    this.index++;
    const value = this.take();
    if (value?.kind !== 'word') {
      const at = value ? value.position : this.source.length;
      return this.fail(at, `missing value after "${comparison.text}" at position ${at}`);
    }
    const numeric = comparison.text !== '=' && comparison.text !== '!=';
    if (numeric && !NUMBER.test(value.text)) {
      this.fail(value.position, `expected a number after "${comparison.text}", found "${value.text}" at position ${value.position}`);
    }
    return { kind: 'attribute', key: word, comparison: comparison.text, value: value.text, position };
  }

  private peek(): Token | undefined {
    return this.tokens[this.index];
  }

  private take(): Token | undefined {
    return this.tokens[this.index++];
  }

  private unexpected(token: Token): never {
    return this.fail(token.position, `unexpected "${token.text}" at position ${token.position}`);
  }

  private fail(position: number, problem: string): never {
    throw new SeExpressionError(this.source, position, problem);
  }
}

export function parseSeExpression(text: string): SeExpression {
  if (text.length > MAX_SE_EXPRESSION_LENGTH) {
    throw new SeExpressionError(
      text,
      MAX_SE_EXPRESSION_LENGTH,
      `longer than ${MAX_SE_EXPRESSION_LENGTH} characters (cut at position ${MAX_SE_EXPRESSION_LENGTH})`,
    );
  }
  return { source: text, root: new Parser(text).parse() };
}

/** The names of the SEs the expression selects, sorted; an empty selection is an error, as in Rucio. */
export function evaluateSeExpression(expr: SeExpression, ses: readonly SeInfo[]): string[] {
  const fleet = { all: new Set(ses.map((se) => se.name)), ses };
  const selected = [...select(expr.root, fleet, expr.source)].sort();
  if (selected.length === 0) {
    throw new SeExpressionError(expr.source, 0, `selects no storage element (of ${fleet.all.size})`);
  }
  return selected;
}

export function selectSes(text: string, ses: readonly SeInfo[]): string[] {
  return evaluateSeExpression(parseSeExpression(text), ses);
}

interface Fleet {
  all: ReadonlySet<string>;
  ses: readonly SeInfo[];
}

function select(node: SeNode, fleet: Fleet, source: string): Set<string> {
  switch (node.kind) {
    case 'all':
      return new Set(fleet.all);
    case 'name':
      if (!fleet.all.has(node.name)) {
        throw new SeExpressionError(source, node.position, `unknown SE "${node.name}" at position ${node.position}`);
      }
      return new Set([node.name]);
    case 'attribute':
      return new Set(fleet.ses.filter((se) => matches(se, node.key, node.comparison, node.value)).map((se) => se.name));
    case 'set': {
      const left = select(node.left, fleet, source);
      const right = select(node.right, fleet, source);
      if (node.operator === '|') return new Set([...left, ...right]);
      if (node.operator === '&') return new Set([...left].filter((name) => right.has(name)));
      return new Set([...left].filter((name) => !right.has(name)));
    }
  }
}

function matches(se: SeInfo, key: string, comparison: SeComparison, value: string): boolean {
  const actual = Object.hasOwn(se.attributes, key) ? se.attributes[key] : undefined;
  if (comparison === '=') return actual === value;
  if (comparison === '!=') return actual !== value;
  if (actual === undefined || !NUMBER.test(actual)) return false;
  const have = Number(actual);
  const want = Number(value);
  switch (comparison) {
    case '<':
      return have < want;
    case '>':
      return have > want;
    case '<=':
      return have <= want;
    case '>=':
      return have >= want;
  }
}

/**
 * Canonical text: no blanks, and parentheses wherever left-to-right reading could mislead — around
 * a right operand that is itself an operation, and around a left one with a different operator
 * (`(a|b)&c`, although `a|b&c` means the same), so nobody has to know there is no precedence.
 */
export function formatSeExpression(expr: SeExpression): string {
  return formatNode(expr.root);
}

function formatNode(node: SeNode): string {
  switch (node.kind) {
    case 'all':
      return '*';
    case 'name':
      return node.name;
    case 'attribute':
      return `${node.key}${node.comparison}${node.value}`;
    case 'set': {
      const left = formatNode(node.left);
      const right = formatNode(node.right);
      const wrapLeft = node.left.kind === 'set' && node.left.operator !== node.operator;
      const wrapRight = node.right.kind === 'set';
      return `${wrapLeft ? `(${left})` : left}${node.operator}${wrapRight ? `(${right})` : right}`;
    }
  }
}
