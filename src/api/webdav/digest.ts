// RFC 3230 instance digests on the door: which checksums a Want-Digest asks for and the Digest
// response header built from a file's checksums.
import { digestHeaderItem, parseWantDigest } from '../../storage/checksums.js';
import type { ChecksumType, Checksums } from '../../storage/types.js';

export const wantedDigests = (header: string | string[] | undefined): ChecksumType[] =>
  parseWantDigest(Array.isArray(header) ? header.join(',') : header);

/** The Digest header value for the wanted types that are known, or undefined if none is. */
export function digestHeader(wanted: readonly ChecksumType[], checksums: Checksums): string | undefined {
  const items = wanted.filter((t) => checksums[t] !== undefined).map((t) => digestHeaderItem(t, checksums[t]!));
  return items.length > 0 ? items.join(',') : undefined;
}
