// How people name a function version: NAME, NAME@ALIAS, NAME@SEQ or NAME@DIGEST-PREFIX. The syntax
// only; FunctionRegistry.resolve finds the version.
import { SluiceError } from '../errors.js';
import { FUNCTION_NAME_RE } from './types.js';

export interface FunctionRef {
  name: string;
  /** Alias, seq number or digest prefix; undefined means `latest`. */
  ref: string | undefined;
}

/** A seq number is short and decimal; 7 or more hex digits are a digest prefix. */
export const SEQ_RE = /^[0-9]{1,6}$/;
export const DIGEST_PREFIX_RE = /^[0-9a-f]{7,64}$/;
export const MIN_PREFIX = 7;

/** "echo@prod" → { name: 'echo', ref: 'prod' }; "echo" → { name: 'echo', ref: undefined }. */
export function parseFunctionRef(text: string): FunctionRef {
  const at = text.indexOf('@');
  const name = at < 0 ? text : text.slice(0, at);
  const ref = at < 0 ? undefined : text.slice(at + 1);
  if (!FUNCTION_NAME_RE.test(name)) {
    throw new SluiceError('BAD_REQUEST', `"${text}" does not name a function: expected NAME or NAME@REF with a lower-case NAME`);
  }
  if (ref === '') throw new SluiceError('BAD_REQUEST', `"${text}": nothing after @; give an alias, a seq number or a digest prefix`);
  return { name, ref };
}
