// The catalogue's vocabulary, modelled on SciCat's Dataset: a record per file with its facts (size,
// checksums, owner, creation time), free scientific metadata under namespace keys, and for derived
// files the provenance (inputs with their checksums at the time, function@version, activation,
// parameters). Each schema is the one source of validation, TypeScript type and OpenAPI document.
import { Type, type Static } from '@sinclair/typebox';
import type { RecordId } from './ids.js';

export { type RecordId, RECORD_ID_RE, newRecordId, isRecordId } from './ids.js';

/** raw: data as it came from an instrument or a person; derived: written by a function from inputs. */
export const RECORD_TYPES = ['raw', 'derived'] as const;
export type RecordType = (typeof RECORD_TYPES)[number];

/** file: one namespace file; dataset: a namespace directory (its sourceFolder) grouping the files below it. */
export const RECORD_KINDS = ['file', 'dataset'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** Namespace keys of scientific metadata (`nexus`, `user`, …): no dots, since dots separate search paths. */
export const METADATA_KEY_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

export const Checksum = Type.Object({
  type: Type.String({ description: 'adler32, md5 or sha256 (lower case)' }),
  value: Type.String({ description: 'lower-case hex' }),
});
export type Checksum = Static<typeof Checksum>;

export const Producer = Type.Object({
  function: Type.String(),
  version: Type.String({ description: 'the exact version: content digest of the bundle' }),
  activation: Type.String(),
});
export type Producer = Static<typeof Producer>;

export const MetadataSource = Type.Object({
  updated: Type.String({ format: 'date-time' }),
  by: Type.Optional(Type.String({ description: 'subject of the token that annotated through the API' })),
  producedBy: Type.Optional(Producer),
});
export type MetadataSource = Static<typeof MetadataSource>;

export const ProvenanceInput = Type.Object({
  id: Type.String({ description: 'record id of the input' }),
  path: Type.Optional(Type.String({ description: 'the input’s path when the derivation was recorded (absent when hidden)' })),
  checksum: Type.Optional(Type.String({ description: 'TYPE:VALUE of the input’s content when it was read' })),
  hidden: Type.Optional(Type.Boolean({ description: 'true when the caller may not read the input' })),
});
export type ProvenanceInput = Static<typeof ProvenanceInput>;

export const Provenance = Type.Object({
  function: Type.String({ description: 'SciCat usedSoftware: function name …' }),
  version: Type.String({ description: '… and exact version (bundle digest)' }),
  activation: Type.String(),
  parameters: Type.Unknown({ description: 'SciCat jobParameters: the input the activation was given' }),
  recorded: Type.String({ format: 'date-time' }),
  inputs: Type.Array(ProvenanceInput, { description: 'SciCat inputDatasets' }),
});
export type Provenance = Static<typeof Provenance>;

export const CatalogRecord = Type.Object({
  id: Type.String({ description: 'stable id (SciCat pid)' }),
  path: Type.String({ description: 'current namespace path; the last one for a deleted record' }),
  kind: Type.Union(
    RECORD_KINDS.map((k) => Type.Literal(k)),
    { description: 'file | dataset (a directory grouping the files below it; SciCat sourceFolder)' },
  ),
  type: Type.Union(
    RECORD_TYPES.map((t) => Type.Literal(t)),
    { description: 'raw | derived' },
  ),
  owner: Type.String(),
  size: Type.Integer({ description: 'bytes' }),
  checksums: Type.Array(Checksum),
  created: Type.String({ format: 'date-time', description: 'SciCat creationTime' }),
  updated: Type.String({ format: 'date-time' }),
  deleted: Type.Boolean({ description: 'the file is gone from the namespace; the record stays for lineage' }),
  deletedAt: Type.Optional(Type.String({ format: 'date-time' })),
  metadata: Type.Record(Type.String(), Type.Unknown(), { description: 'SciCat scientificMetadata, one object per namespace key' }),
  metadataSources: Type.Record(Type.String(), MetadataSource, { description: 'who or what wrote each metadata key, and when' }),
  provenance: Type.Optional(Provenance),
});
export interface CatalogRecord extends Omit<Static<typeof CatalogRecord>, 'id' | 'kind' | 'type' | 'provenance'> {
  id: RecordId;
  kind: RecordKind;
  type: RecordType;
  provenance?: Provenance;
}

/** One file of a dataset (SciCat datablock entry), as the caller may see it. */
export const DatasetFile = Type.Object({
  id: Type.String(),
  path: Type.String(),
  type: Type.Union(RECORD_TYPES.map((t) => Type.Literal(t))),
  size: Type.Integer({ description: 'bytes' }),
  checksums: Type.Array(Checksum),
});
export interface DatasetFile extends Omit<Static<typeof DatasetFile>, 'id' | 'type'> {
  id: RecordId;
  type: RecordType;
}

/** A dataset record with its current files below its path, computed when read. */
export const Dataset = Type.Object({
  ...CatalogRecord.properties,
  fileCount: Type.Integer({ description: 'current files below the path that the caller may read' }),
  totalSize: Type.Integer({ description: 'their bytes' }),
  files: Type.Array(DatasetFile, { description: 'SciCat datablocks: the files with sizes and checksums' }),
});
export interface Dataset extends CatalogRecord {
  fileCount: number;
  totalSize: number;
  files: DatasetFile[];
}

export const LINEAGE_DIRECTIONS = ['up', 'down', 'both'] as const;
export type LineageDirection = (typeof LINEAGE_DIRECTIONS)[number];

export const LineageNode = Type.Object({
  id: Type.String(),
  path: Type.Optional(Type.String()),
  type: Type.Optional(Type.String()),
  size: Type.Optional(Type.Integer()),
  deleted: Type.Optional(Type.Boolean()),
  hidden: Type.Optional(Type.Boolean({ description: 'the caller may not read this record: only its id is shown' })),
  distance: Type.Integer({ description: 'edges from the root; negative upstream (inputs), positive downstream' }),
});
export type LineageNode = Static<typeof LineageNode>;

export const LineageEdge = Type.Object({
  from: Type.String({ description: 'input record id' }),
  to: Type.String({ description: 'output record id' }),
  function: Type.String(),
  version: Type.String(),
  activation: Type.String(),
  inputPath: Type.Optional(Type.String({ description: 'the input’s path when the derivation was recorded' })),
  inputChecksum: Type.Optional(Type.String()),
});
export type LineageEdge = Static<typeof LineageEdge>;

export const LineageGraph = Type.Object({
  root: Type.String(),
  direction: Type.Union(LINEAGE_DIRECTIONS.map((d) => Type.Literal(d))),
  depth: Type.Integer(),
  nodes: Type.Array(LineageNode),
  edges: Type.Array(LineageEdge),
  truncated: Type.Boolean({ description: 'more nodes lie within the depth than one answer carries' }),
});
export type LineageGraph = Static<typeof LineageGraph>;

/** Checksum names as dCache and RFC 3230 spell them, to sluice's. */
const CHECKSUM_ALIASES: Record<string, string> = { md5_type: 'md5', 'sha-256': 'sha256', sha_256: 'sha256', adler_32: 'adler32' };

/** Lower-case types and values, sluice's type names, one entry per type, sorted by type. */
export function normalizeChecksums(list: readonly { type: string; value: string }[]): Checksum[] {
  const byType = new Map<string, string>();
  for (const c of list) {
    const t = c.type.trim().toLowerCase();
    byType.set(CHECKSUM_ALIASES[t] ?? t, c.value.trim().toLowerCase());
  }
  return [...byType].sort(([a], [b]) => (a < b ? -1 : 1)).map(([type, value]) => ({ type, value }));
}

/** Strongest first: the checksum an input is remembered by when the caller names none. */
const STRENGTH = ['sha256', 'md5', 'adler32'];

export function strongestChecksum(list: readonly Checksum[]): string | undefined {
  const best = [...list].sort((a, b) => rank(a.type) - rank(b.type))[0];
  return best ? `${best.type}:${best.value}` : undefined;
}
const rank = (t: string): number => (STRENGTH.includes(t) ? STRENGTH.indexOf(t) : STRENGTH.length);
