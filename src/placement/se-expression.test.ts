// SE expressions over a fixed fleet: what each expression selects, where each malformed one is
// refused, the canonical text round trip, and the evaluation errors (unknown SE, empty selection).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  evaluateSeExpression,
  formatSeExpression,
  parseSeExpression,
  SeExpressionError,
  selectSes,
  type SeInfo,
  type SeNode,
} from './se-expression.js';
import { SluiceError } from '../errors.js';

const FLEET: readonly SeInfo[] = [
  { name: 'DESY-DISK', attributes: { site: 'desy', medium: 'disk', region: 'eu', tier: '1', freespace: '500' } },
  { name: 'DESY-TAPE', attributes: { site: 'desy', medium: 'tape', region: 'eu', tier: '1', freespace: '10000' } },
  { name: 'CERN-DISK', attributes: { site: 'cern', medium: 'disk', region: 'eu', tier: '0', freespace: '200' } },
  { name: 'CERN-TAPE', attributes: { site: 'cern', medium: 'tape', region: 'eu', tier: '0', freespace: '50000' } },
  { name: 'ORIGIN-DISK', attributes: { site: 'origin', medium: 'disk', region: 'us', tier: '2', freespace: 'unknown' } },
  { name: 'ORIGIN-SCRATCH', attributes: { site: 'origin', medium: 'disk', region: 'us', tier: '2', freespace: '12.5', scratch: 'true' } },
  { name: 'FNAL-TAPE', attributes: { site: 'fnal', medium: 'tape', region: 'us', tier: '1', freespace: '30000' } },
  // No site, region or tier: shows what `!=` and the numeric comparisons do with a missing key.
  { name: 'LAB_SCRATCH.1', attributes: { medium: 'disk' } },
];

const ALL = ['CERN-DISK', 'CERN-TAPE', 'DESY-DISK', 'DESY-TAPE', 'FNAL-TAPE', 'LAB_SCRATCH.1', 'ORIGIN-DISK', 'ORIGIN-SCRATCH'];
const DISK = ['CERN-DISK', 'DESY-DISK', 'LAB_SCRATCH.1', 'ORIGIN-DISK', 'ORIGIN-SCRATCH'];
const NOT_ORIGIN = ['CERN-DISK', 'CERN-TAPE', 'DESY-DISK', 'DESY-TAPE', 'FNAL-TAPE', 'LAB_SCRATCH.1'];
const NUMERIC_FREESPACE = ['CERN-DISK', 'CERN-TAPE', 'DESY-DISK', 'DESY-TAPE', 'FNAL-TAPE', 'ORIGIN-SCRATCH'];

const SELECTIONS: ReadonlyArray<readonly [expression: string, selected: readonly string[]]> = [
  // Bare names and everything.
  ['DESY-DISK', ['DESY-DISK']],
  ['LAB_SCRATCH.1', ['LAB_SCRATCH.1']],
  ['*', ALL],
  ['*&*', ALL],
  ['DESY-DISK|CERN-DISK', ['CERN-DISK', 'DESY-DISK']],
  ['DESY-DISK | CERN-TAPE | ORIGIN-DISK', ['CERN-TAPE', 'DESY-DISK', 'ORIGIN-DISK']],
  ['DESY-DISK&medium=disk', ['DESY-DISK']],
  ['(((((ORIGIN-DISK)))))', ['ORIGIN-DISK']],
  // Equality and inequality; `!=` includes SEs without the key, like `*\key=value`.
  ['site=desy', ['DESY-DISK', 'DESY-TAPE']],
  ['medium=disk', DISK],
  ['medium=tape', ['CERN-TAPE', 'DESY-TAPE', 'FNAL-TAPE']],
  ['region=us', ['FNAL-TAPE', 'ORIGIN-DISK', 'ORIGIN-SCRATCH']],
  ['scratch=true', ['ORIGIN-SCRATCH']],
  ['tier=1', ['DESY-DISK', 'DESY-TAPE', 'FNAL-TAPE']],
  ['site!=origin', NOT_ORIGIN],
  ['*\\site=origin', NOT_ORIGIN],
  ['region!=eu', ['FNAL-TAPE', 'LAB_SCRATCH.1', 'ORIGIN-DISK', 'ORIGIN-SCRATCH']],
  ['tier!=1', ['CERN-DISK', 'CERN-TAPE', 'LAB_SCRATCH.1', 'ORIGIN-DISK', 'ORIGIN-SCRATCH']],
  ['scratch!=true', ALL.filter((name) => name !== 'ORIGIN-SCRATCH')],
  // Numeric comparisons; a missing or non-numeric value (ORIGIN-DISK's freespace) never matches.
  ['tier<1', ['CERN-DISK', 'CERN-TAPE']],
  ['tier>1', ['ORIGIN-DISK', 'ORIGIN-SCRATCH']],
  ['tier<=1', ['CERN-DISK', 'CERN-TAPE', 'DESY-DISK', 'DESY-TAPE', 'FNAL-TAPE']],
  ['tier>=1', ['DESY-DISK', 'DESY-TAPE', 'FNAL-TAPE', 'ORIGIN-DISK', 'ORIGIN-SCRATCH']],
  ['freespace>1000', ['CERN-TAPE', 'DESY-TAPE', 'FNAL-TAPE']],
  ['freespace<100', ['ORIGIN-SCRATCH']],
  ['freespace>=12.5', NUMERIC_FREESPACE],
  ['freespace>-1', NUMERIC_FREESPACE],
  ['tier>0.5&tier<1.5', ['DESY-DISK', 'DESY-TAPE', 'FNAL-TAPE']],
  ['site=origin&freespace<1000', ['ORIGIN-SCRATCH']],
  // The operators and parentheses.
  ['(site=desy|site=cern)&medium=disk', ['CERN-DISK', 'DESY-DISK']],
  ['medium=disk&(site=desy|site=cern)', ['CERN-DISK', 'DESY-DISK']],
  ['region=eu\\site=cern', ['DESY-DISK', 'DESY-TAPE']],
  ['*\\medium=tape', DISK],
  ['*\\(region=eu|region=us)', ['LAB_SCRATCH.1']],
  ['*\\(site=desy\\medium=disk)', ALL.filter((name) => name !== 'DESY-TAPE')],
  ['((site=desy))', ['DESY-DISK', 'DESY-TAPE']],
  ['((site=desy|site=cern)\\(medium=tape&tier=0))|FNAL-TAPE', ['CERN-DISK', 'DESY-DISK', 'DESY-TAPE', 'FNAL-TAPE']],
  ['region=eu&(medium=disk\\(site=cern|site=origin))', ['DESY-DISK']],
  ['medium=tape|(region=us&tier>=2)', ['CERN-TAPE', 'DESY-TAPE', 'FNAL-TAPE', 'ORIGIN-DISK', 'ORIGIN-SCRATCH']],
  // No precedence: strictly left to right, as in Rucio.
  ['site=desy|site=cern&medium=disk', ['CERN-DISK', 'DESY-DISK']],
  ['medium=disk&site=desy|site=cern', ['CERN-DISK', 'CERN-TAPE', 'DESY-DISK']],
  ['medium=tape|region=us&tier>=1', ['DESY-TAPE', 'FNAL-TAPE', 'ORIGIN-DISK', 'ORIGIN-SCRATCH']],
  ['region=eu&medium=tape|LAB_SCRATCH.1', ['CERN-TAPE', 'DESY-TAPE', 'LAB_SCRATCH.1']],
  ['*\\site=desy\\site=cern', ['FNAL-TAPE', 'LAB_SCRATCH.1', 'ORIGIN-DISK', 'ORIGIN-SCRATCH']],
  ['site=cern|site=desy\\medium=tape&region=eu', ['CERN-DISK', 'DESY-DISK']],
  // Blanks around any token.
  ['  site = desy  &  medium = tape ', ['DESY-TAPE']],
  ['\t(site=cern)\t|\n(site=fnal)', ['CERN-DISK', 'CERN-TAPE', 'FNAL-TAPE']],
  [' ( tier >= 1 ) \\ ( region != eu ) ', ['DESY-DISK', 'DESY-TAPE']],
];

const MALFORMED: ReadonlyArray<readonly [expression: string, position: number, problem: string]> = [
  ['', 0, 'empty expression'],
  ['   ', 3, 'empty expression'],
  ['site=desy&&x', 10, 'unexpected "&" at position 10'],
  ['&site=desy', 0, 'unexpected "&"'],
  ['site=desy|', 10, 'unexpected end of expression'],
  ['site=desy \\ ', 12, 'unexpected end of expression'],
  ['(site=desy|site=cern', 0, 'unmatched "("'],
  ['((site=desy)', 0, 'unmatched "("'],
  ['site=desy|(site=cern&(medium=disk)', 10, 'unmatched "("'],
  ['site=desy)', 9, 'unmatched ")"'],
  ['site=desy & (medium=disk))', 25, 'unmatched ")"'],
  ['site=desy|)', 10, 'unmatched ")"'],
  ['()', 1, 'unexpected ")"'],
  ['site=', 5, 'missing value after "="'],
  ['site= & medium=disk', 6, 'missing value after "="'],
  ['site==desy', 5, 'missing value after "="'],
  ['site=*', 5, 'missing value after "="'],
  ['tier>=', 6, 'missing value after ">="'],
  ['=disk', 0, 'unexpected "="'],
  ['site=desy#', 9, 'unexpected character "#"'],
  ['site!desy', 4, 'unexpected character "!"'],
  ['site=dés', 6, 'unexpected character "é"'],
  ['site=desy medium=disk', 10, 'unexpected "medium"'],
  ['site=desy|*=x', 11, 'unexpected "="'],
  ['tier<one', 5, 'expected a number after "<", found "one"'],
  ['freespace >= 1e3', 13, 'expected a number'],
  ['.hidden', 0, 'invalid name ".hidden"'],
  ['site=desy|-x=1', 10, 'invalid name "-x"'],
  ['x'.repeat(1001), 1000, 'longer than 1000 characters'],
];

/** The tree without source positions, for comparing a reparse with the original. */
function shape(node: SeNode): unknown {
  const { position: _position, ...rest } = node;
  if (node.kind !== 'set') return rest;
  return { ...rest, left: shape(node.left), right: shape(node.right) };
}

function refusedAt(run: () => unknown, position: number, problem: string, label: string): void {
  assert.throws(
    run,
    (e: unknown) => {
      assert.ok(e instanceof SeExpressionError, `${label}: an SeExpressionError`);
      assert.ok(e instanceof SluiceError);
      assert.equal(e.code, 'BAD_REQUEST');
      assert.equal(e.position, position, `${label}: position (${e.message})`);
      assert.ok(e.message.includes(problem), `${label}: "${e.message}" should mention ${problem}`);
      return true;
    },
    label,
  );
}

test(`${SELECTIONS.length} expressions select the expected SEs`, () => {
  assert.ok(SELECTIONS.length >= 40);
  for (const [expression, selected] of SELECTIONS) {
    assert.deepEqual(selectSes(expression, FLEET), selected, expression);
  }
});

test(`${MALFORMED.length} malformed expressions are refused at the offending character`, () => {
  assert.ok(MALFORMED.length >= 12);
  for (const [expression, position, problem] of MALFORMED) {
    refusedAt(() => parseSeExpression(expression), position, problem, JSON.stringify(expression));
  }
});

test('the error message quotes the expression and names the position', () => {
  assert.throws(() => parseSeExpression('site=desy&&x'), {
    name: 'SeExpressionError',
    message: 'SE expression "site=desy&&x": unexpected "&" at position 10',
  });
});

test('formatted text is canonical and parses back to the same tree and selection', () => {
  for (const [expression, selected] of SELECTIONS) {
    const parsed = parseSeExpression(expression);
    const text = formatSeExpression(parsed);
    const reparsed = parseSeExpression(text);
    assert.deepEqual(shape(reparsed.root), shape(parsed.root), `${expression} → ${text}`);
    assert.equal(formatSeExpression(reparsed), text, `${text} is a fixed point`);
    assert.deepEqual(evaluateSeExpression(reparsed, FLEET), selected, text);
  }
  const canonical = (expression: string): string => formatSeExpression(parseSeExpression(expression));
  assert.equal(canonical('  site = desy  &  medium = tape '), 'site=desy&medium=tape');
  assert.equal(canonical('((site=desy))'), 'site=desy');
  assert.equal(canonical('a|b|c'), 'a|b|c');
  assert.equal(canonical('a\\b\\c'), 'a\\b\\c');
  assert.equal(canonical('a|(b|c)'), 'a|(b|c)');
  assert.equal(canonical('a|b&c'), '(a|b)&c', 'the left-to-right grouping is spelled out');
  assert.equal(canonical('a&(b|c)\\d'), '(a&(b|c))\\d');
});

test('operators group left to right with no precedence', () => {
  const { root } = parseSeExpression('a|b&c');
  assert.deepEqual(shape(root), {
    kind: 'set',
    operator: '&',
    left: { kind: 'set', operator: '|', left: { kind: 'name', name: 'a' }, right: { kind: 'name', name: 'b' } },
    right: { kind: 'name', name: 'c' },
  });
  assert.equal(root.position, 3, 'an operation sits at its operator');
});

test('a bare word that names no SE is an error at its position, even when the rest selects something', () => {
  refusedAt(() => selectSes('DESY-DISK|NOPE', FLEET), 10, 'unknown SE "NOPE" at position 10', 'NOPE');
  refusedAt(() => selectSes('desy-disk', FLEET), 0, 'unknown SE "desy-disk"', 'names are case-sensitive');
  refusedAt(() => selectSes(' ( site=desy \\ GONE ) ', FLEET), 15, 'unknown SE "GONE"', 'GONE');
});

test('an expression that selects nothing is an error, as in Rucio', () => {
  const empty = 'selects no storage element';
  refusedAt(() => selectSes('site=desy&medium=tape&region=us', FLEET), 0, empty, 'disjoint');
  refusedAt(() => selectSes('site=DESY', FLEET), 0, empty, 'values are case-sensitive');
  refusedAt(() => selectSes('colour=blue', FLEET), 0, empty, 'a key no SE has');
  refusedAt(() => selectSes('freespace>1000000', FLEET), 0, empty, 'nothing that large');
  refusedAt(() => selectSes('*', []), 0, empty, 'an empty fleet');
  refusedAt(() => evaluateSeExpression(parseSeExpression('*\\*'), FLEET), 0, empty, 'everything minus everything');
});

test('a long expression is quoted shortened in the message', () => {
  const long = Array.from({ length: 60 }, () => 'DESY-DISK').join('|') + '|NOPE';
  assert.ok(long.length <= 1000);
  refusedAt(() => selectSes(long, FLEET), long.length - 4, 'unknown SE "NOPE"', 'long');
  assert.throws(
    () => selectSes(long, FLEET),
    (e: unknown) => e instanceof SeExpressionError && e.message.length < 200,
  );
});
