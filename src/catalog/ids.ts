// Record ids, in a module of their own so the CLI can recognize them without loading the schemas.
import { randomBytes } from 'node:crypto';

/** A record's stable id (SciCat's pid): `rec_` and 24 hex digits. Survives renames. */
export type RecordId = string & { readonly __brand: 'RecordId' };
export const RECORD_ID_RE = /^rec_[0-9a-f]{24}$/;
export const newRecordId = (): RecordId => `rec_${randomBytes(12).toString('hex')}` as RecordId;
export const isRecordId = (s: string): s is RecordId => RECORD_ID_RE.test(s);
