// The search language parser: terms, fields, operators, values, dates as intervals, and the
// BAD_REQUEST that names the offending term.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dateInterval, parseQuery, type QueryTerm } from './query.js';
import { SluiceError } from '../errors.js';

const one = (q: string): QueryTerm => {
  const { terms } = parseQuery(q);
  assert.equal(terms.length, 1, `one term in ${q}`);
  return terms[0]!;
};

function refused(q: string, detail: RegExp): void {
  assert.throws(
    () => parseQuery(q),
    (e: unknown) => e instanceof SluiceError && e.code === 'BAD_REQUEST' && detail.test(e.message),
    `${q} should be refused with ${detail}`,
  );
}

test('empty and blank queries have no terms and leave deleted records out', () => {
  assert.deepEqual(parseQuery(''), { terms: [], deleted: 'exclude' });
  assert.deepEqual(parseQuery('  \t '), { terms: [], deleted: 'exclude' });
});

test('record fields, operators and values', () => {
  assert.deepEqual(one('owner:alice'), {
    kind: 'compare',
    source: 'owner:alice',
    negate: false,
    field: { kind: 'record', name: 'owner' },
    op: ':',
    value: { text: 'alice' },
  });
  const size = one('size>=1e6');
  assert.equal(size.kind === 'compare' && size.op, '>=');
  assert.equal(size.kind === 'compare' && size.value.number, 1e6);
  const path = one('path~/raw/');
  assert.deepEqual(path.kind === 'compare' && [path.field, path.op, path.value.text], [{ kind: 'record', name: 'path' }, '~', '/raw/']);
  assert.deepEqual((one('type:derived') as { field: unknown }).field, { kind: 'record', name: 'type' });
  assert.deepEqual((one('checksum:adler32:0a1b2c3d') as { field: unknown; value: { text: string } }).field, {
    kind: 'record',
    name: 'checksums',
  });
  assert.equal(
    (one('checksum:adler32:0a1b2c3d') as { value: { text: string } }).value.text,
    'adler32:0a1b2c3d',
    'the value keeps its colons',
  );
  assert.deepEqual((one('function:nexus-meta') as { field: unknown }).field, { kind: 'record', name: 'provenance.function' });
  assert.deepEqual((one('provenance.inputs.path:/a/b') as { field: unknown }).field, { kind: 'record', name: 'provenance.inputs.path' });
});

test('metadata paths in full and the suffix shorthand', () => {
  assert.deepEqual((one('metadata.nexus.entry.title~scan') as { field: unknown }).field, { kind: 'metadata', path: 'nexus.entry.title' });
  assert.deepEqual((one('entry.title~scan') as { field: unknown }).field, { kind: 'suffix', path: 'entry.title', leaf: 'title' });
  assert.deepEqual((one('temperature<300') as { field: unknown }).field, { kind: 'suffix', path: 'temperature', leaf: 'temperature' });
  const t = one('sample.temperature<=-20.5');
  assert.equal(t.kind === 'compare' && t.value.number, -20.5);
});

test('quoted values and phrases, negation, prefix words', () => {
  const quoted = one('entry.title~"silicon wafer \\"B\\""');
  assert.equal(quoted.kind === 'compare' && quoted.value.text, 'silicon wafer "B"');
  assert.deepEqual(one('"two words"'), { kind: 'text', source: '"two words"', negate: false, text: 'two words', prefix: false });
  assert.deepEqual(one('-owner:bob'), {
    kind: 'compare',
    source: '-owner:bob',
    negate: true,
    field: { kind: 'record', name: 'owner' },
    op: ':',
    value: { text: 'bob' },
  });
  assert.deepEqual(one('scan*'), { kind: 'text', source: 'scan*', negate: false, text: 'scan', prefix: true });
  assert.deepEqual(one('-"a b"*'), { kind: 'text', source: '-"a b"*', negate: true, text: 'a b', prefix: true });
  const phrase = one('"key:value"');
  assert.equal(phrase.kind, 'text', 'a quoted term is text even with an operator inside');
  const { terms } = parseQuery('size>10   owner:alice  tomography');
  assert.deepEqual(
    terms.map((t) => t.source),
    ['size>10', 'owner:alice', 'tomography'],
  );
});

test('deleted:true, deleted:any and deleted:false choose the records of deleted files', () => {
  assert.equal(parseQuery('deleted:true').deleted, 'only');
  assert.equal(parseQuery('deleted:any owner:a').deleted, 'include');
  assert.equal(parseQuery('deleted:false').deleted, 'exclude');
  assert.equal(parseQuery('deleted:any').terms.length, 0);
  refused('deleted:maybe', /term "deleted:maybe": deleted takes true, false or any/);
  refused('deleted:true deleted:false', /deleted is given twice/);
  refused('-deleted:true', /deleted takes deleted:true/);
});

test('dates name intervals: year, month, day, minute, second, with zones', () => {
  const utc = (s: string) => Date.parse(s);
  assert.deepEqual(dateInterval('2024'), { start: utc('2024-01-01T00:00:00Z'), end: utc('2025-01-01T00:00:00Z') });
  assert.deepEqual(dateInterval('2024-12'), { start: utc('2024-12-01T00:00:00Z'), end: utc('2025-01-01T00:00:00Z') });
  assert.deepEqual(dateInterval('2024-02-29'), { start: utc('2024-02-29T00:00:00Z'), end: utc('2024-03-01T00:00:00Z') });
  assert.deepEqual(dateInterval('2024-03-01T10:15'), { start: utc('2024-03-01T10:15:00Z'), end: utc('2024-03-01T10:16:00Z') });
  assert.deepEqual(dateInterval('2024-03-01T10:15:30+02:00'), { start: utc('2024-03-01T08:15:30Z'), end: utc('2024-03-01T08:15:31Z') });
  assert.deepEqual(dateInterval('2024-03-01 10:15:30.5Z'), {
    start: utc('2024-03-01T10:15:30.500Z'),
    end: utc('2024-03-01T10:15:30.600Z'),
  });
  assert.equal(dateInterval('2023-02-29'), undefined);
  assert.equal(dateInterval('2024-13'), undefined);
  assert.equal(dateInterval('yesterday'), undefined);
  const created = one('created>=2024-03');
  assert.deepEqual(created.kind === 'compare' && created.value.interval, dateInterval('2024-03'));
  const spaced = one('created<"2024-03-01 12:00"');
  assert.deepEqual(spaced.kind === 'compare' && spaced.value.interval, dateInterval('2024-03-01T12:00'));
});

test('malformed queries are refused, naming the term', () => {
  refused('size>big', /term "size>big": size takes a number of bytes, not "big"/);
  refused('size~12', /term "size~12": size takes : > >= < <=, not ~/);
  refused('created>last-week', /term "created>last-week": created takes an ISO date or time/);
  refused('type:cooked', /term "type:cooked": type is raw or derived/);
  refused('type~raw', /type takes type:raw or type:derived/);
  refused('owner>alice', /term "owner>alice": owner takes : \(exact\) or ~ \(contains\), not >/);
  refused('entry.title>scan', /term "entry.title>scan": ">" compares numbers and ISO dates; "scan" is neither/);
  refused('owner:', /term "owner:": no value after ":"/);
  refused(':alice', /term ":alice": no field before ":"/);
  refused('a..b:1', /term "a..b:1": "a..b" is not a field name/);
  refused('metadata:x', /metadata needs a path below it/);
  refused('provenance.params:x', /unknown field "provenance.params"/);
  refused('title~"open', /the quote is not closed/);
  refused('title~"a"b', /a quote may only enclose the whole value/);
  refused('title~a"b"', /a quote may only enclose the whole value/);
  refused('---', /term "---": nothing to search for/);
  refused('id~rec_', /id takes id:rec_/);
  refused('x '.repeat(40), /at most 32/);
  refused('x'.repeat(5000), /longer than 4096/);
});

test('kind:file and kind:dataset are the record kind; any other kind term is the metadata shorthand', () => {
  assert.deepEqual((one('kind:dataset') as { field: unknown }).field, { kind: 'record', name: 'kind' });
  assert.deepEqual((one('-kind:file') as { field: unknown; negate: boolean }).field, { kind: 'record', name: 'kind' });
  assert.deepEqual((one('kind:spaced') as { field: unknown }).field, { kind: 'suffix', path: 'kind', leaf: 'kind' });
  assert.deepEqual((one('kind~data') as { field: unknown }).field, { kind: 'suffix', path: 'kind', leaf: 'kind' });
  assert.deepEqual((one('user.kind:dataset') as { field: unknown }).field, { kind: 'suffix', path: 'user.kind', leaf: 'kind' });
});
