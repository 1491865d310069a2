// Request bodies validated against a domain's TypeBox schema with its defaults applied, the error
// naming the first bad field (and, for a choice among literals, what is allowed).
import { Value } from '@sinclair/typebox/value';
import { SluiceError } from './errors.js';

export function checkBody<T>(schema: Parameters<typeof Value.Default>[0], body: unknown, what: string): T {
  const value = Value.Default(schema, structuredClone(body)) as T;
  const first = Value.Errors(schema, value).First();
  if (first) {
    // A choice among literals reads better as the list of what is allowed.
    const choices = (first.schema as { anyOf?: { const?: unknown }[] }).anyOf?.map((s) => s.const).filter((c) => c !== undefined);
    const hint = choices?.length ? ` (one of ${choices.join(', ')}; got ${JSON.stringify(first.value)})` : '';
    throw new SluiceError('BAD_REQUEST', `${what}${first.path || ''}: ${first.message}${hint}`);
  }
  return value;
}
