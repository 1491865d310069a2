// `sluice catalog show|search|lineage|annotate|dataset`: the catalogue's records, their search, the
// derivation graph around a file, annotation with scientific metadata, and datasets (directories).
import { Command, InvalidArgumentError } from 'commander';
import { readFile } from 'node:fs/promises';
import { SluiceError } from '../errors.js';
import { isRecordId } from '../catalog/ids.js';
import type { CatalogRecord, Dataset, LineageDirection, LineageGraph, RecordType } from './client.js';
import { remotePath, withClient } from './connect.js';
import { formatSize, formatTime, printJson, printLine, printNote, printTable } from './output.js';

const DIRECTIONS: readonly LineageDirection[] = ['up', 'down', 'both'];

interface JsonOption {
  json?: boolean;
}

export function registerCatalogCommands(program: Command): void {
  const catalog = program.command('catalog').description('records of files and datasets: scientific metadata, provenance, search, lineage');

  catalog
    .command('show')
    .description('show the record of a file (or of the file deleted there last), or a record by id')
    .argument('<target>', 'PATH or record id (rec_…)')
    .option('--json', 'print JSON')
    .action(async (target: string, opts: JsonOption, cmd: Command) => {
      const record = await withClient(cmd, (c) => c.catalogRecord(isRecordId(target) ? target : remotePath(target)));
      if (opts.json) return printJson(record);
      printRecord(record);
    });

  catalog
    .command('search')
    .description('search records, newest first (terms: docs/catalog.md); put -- before a first term that starts with -')
    .argument('[query...]', 'terms, ANDed: owner:alice size>1e9 created>=2024-03 \'entry.title~"my scan"\' tomography')
    .option('--limit <n>', 'at most this many (default 100, at most 1000)', parseCount(1))
    .option('--offset <n>', 'skip this many', parseCount(0))
    .option('--json', 'print JSON')
    .action(async (terms: string[], opts: JsonOption & { limit?: number; offset?: number }, cmd: Command) => {
      const records = await withClient(cmd, (c) =>
        c.searchCatalog(terms.join(' '), {
          ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
          ...(opts.offset !== undefined ? { offset: opts.offset } : {}),
        }),
      );
      if (opts.json) return printJson(records);
      if (records.length === 0) return printNote('no records');
      printTable(
        ['ID', 'KIND', 'TYPE', 'SIZE', 'CREATED', 'OWNER', 'PATH'],
        records.map((r) => [
          r.id,
          r.kind,
          r.type,
          formatSize(r.size),
          formatTime(r.created),
          r.owner || '-',
          r.deleted ? `${r.path} (deleted)` : r.path,
        ]),
      );
    });

  catalog
    .command('lineage')
    .description('the derivation graph around a file: its inputs (up), what was derived from it (down), or both')
    .argument('<path>', 'file path')
    .option('--direction <dir>', `${DIRECTIONS.join(' | ')} (default up)`, parseDirection)
    .option('--depth <n>', 'edges to follow (default 5)', parseCount(1))
    .option('--json', 'print the graph as JSON (nodes and input → output edges)')
    .action(async (path: string, opts: JsonOption & { direction?: LineageDirection; depth?: number }, cmd: Command) => {
      const graph = await withClient(cmd, (c) =>
        c.catalogLineage(remotePath(path), {
          ...(opts.direction !== undefined ? { direction: opts.direction } : {}),
          ...(opts.depth !== undefined ? { depth: opts.depth } : {}),
        }),
      );
      if (opts.json) return printJson(graph);
      printLineage(graph);
    });

  catalog
    .command('annotate')
    .description("merge scientific metadata into a file's record under a key (null removes a member)")
    .argument('<path>', 'file path')
    .option('--set <key=value...>', 'dotted.key=value; the value is JSON if it parses (12, true, "text", [1,2]), else text')
    .option('--metadata-file <file>', 'a JSON object to merge ("-" for stdin)')
    .option('--key <key>', 'the metadata namespace key', 'user')
    .option('--replace', "replace the key's metadata instead of merging")
    .option('--json', 'print the record as JSON')
    .action(
      async (path: string, opts: JsonOption & { set?: string[]; metadataFile?: string; key: string; replace?: boolean }, cmd: Command) => {
        const metadata = await metadataOf(opts);
        const record = await withClient(cmd, (c) =>
          c.annotateRecord(remotePath(path), opts.key, metadata, { replace: opts.replace ?? false }),
        );
        if (opts.json) return printJson(record);
        printNote(`${opts.replace ? 'replaced' : 'merged'} ${opts.key} metadata of ${record.path} (${record.id})`);
      },
    );

  const dataset = catalog.command('dataset').description('datasets: a directory’s record grouping the files below it');

  dataset
    .command('create')
    .description('create the dataset of a namespace directory')
    .argument('<path>', 'directory path')
    .option('--type <type>', 'raw | derived (default raw)', parseType)
    .option('--metadata-file <file>', 'a JSON object of metadata keys, each an object ("-" for stdin)')
    .option('--json', 'print the record as JSON')
    .action(async (path: string, opts: JsonOption & { type?: RecordType; metadataFile?: string }, cmd: Command) => {
      const metadata =
        opts.metadataFile !== undefined
          ? ((await metadataOf({ metadataFile: opts.metadataFile })) as Record<string, Record<string, unknown>>)
          : undefined;
      const record = await withClient(cmd, (c) =>
        c.createDataset(remotePath(path), {
          ...(opts.type !== undefined ? { type: opts.type } : {}),
          ...(metadata !== undefined ? { metadata } : {}),
        }),
      );
      if (opts.json) return printJson(record);
      printNote(`created dataset ${record.path} (${record.id})`);
    });

  dataset
    .command('show')
    .description('show a dataset and its current files with totals')
    .argument('<path>', 'directory path')
    .option('--json', 'print JSON')
    .action(async (path: string, opts: JsonOption, cmd: Command) => {
      const d = await withClient(cmd, (c) => c.dataset(remotePath(path)));
      if (opts.json) return printJson(d);
      printDataset(d);
    });

  dataset
    .command('rm')
    .description('remove a dataset record (never its files)')
    .argument('<path>', 'directory path')
    .action(async (path: string, _opts: unknown, cmd: Command) => {
      await withClient(cmd, (c) => c.removeDataset(remotePath(path)));
      printNote(`removed dataset ${remotePath(path)}`);
    });
}

function printDataset(d: Dataset): void {
  printRecord(d);
  printLine(`\nfiles: ${d.fileCount}, ${formatSize(d.totalSize)} (${d.totalSize} bytes)`);
  if (d.files.length === 0) return;
  printTable(
    ['ID', 'TYPE', 'SIZE', 'CHECKSUMS', 'PATH'],
    d.files.map((f) => [f.id, f.type, formatSize(f.size), f.checksums.map((c) => `${c.type}:${c.value}`).join(' ') || '-', f.path]),
  );
}

function parseType(value: string): RecordType {
  if (value !== 'raw' && value !== 'derived') throw new InvalidArgumentError('expected raw or derived');
  return value;
}

async function metadataOf(opts: { set?: string[]; metadataFile?: string }): Promise<Record<string, unknown>> {
  if (opts.set && opts.metadataFile) throw new SluiceError('BAD_REQUEST', 'give --set or --metadata-file, not both');
  if (opts.metadataFile !== undefined) {
    const text = opts.metadataFile === '-' ? await readStdin() : await readFile(opts.metadataFile, 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new SluiceError('BAD_REQUEST', `${opts.metadataFile} is not JSON: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new SluiceError('BAD_REQUEST', `${opts.metadataFile} must hold a JSON object`);
    }
    return parsed as Record<string, unknown>;
  }
  if (!opts.set || opts.set.length === 0)
    throw new SluiceError('BAD_REQUEST', 'what to annotate? give --set key=value… or --metadata-file FILE');
  return metadataFromAssignments(opts.set);
}

/** `a.b=1 a.c=x` → {a: {b: 1, c: "x"}}. */
export function metadataFromAssignments(assignments: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new SluiceError('BAD_REQUEST', `--set ${a}: expected key=value`);
    const keys = a.slice(0, eq).split('.');
    if (keys.some((k) => k === '')) throw new SluiceError('BAD_REQUEST', `--set ${a}: empty key segment`);
    let node = out;
    for (const k of keys.slice(0, -1)) {
      const next = node[k];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[k] = {};
      node = node[k] as Record<string, unknown>;
    }
    node[keys[keys.length - 1]!] = valueOf(a.slice(eq + 1));
  }
  return out;
}

function valueOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const shortDigest = (v: string): string => (/^[0-9a-f]{64}$/.test(v) ? v.slice(0, 12) : v);

function printRecord(r: CatalogRecord): void {
  const rows: string[][] = [
    ['id', r.id],
    ['path', r.path],
    ...(r.kind === 'dataset' ? [['kind', 'dataset']] : []),
    ['type', r.type],
    ['owner', r.owner || '-'],
    ['size', `${formatSize(r.size)} (${r.size} bytes)`],
    ['created', formatTime(r.created)],
    ['updated', formatTime(r.updated)],
  ];
  if (r.deleted) rows.push(['deleted', formatTime(r.deletedAt)]);
  rows.push(['checksums', r.checksums.map((c) => `${c.type}:${c.value}`).join(' ') || '-']);
  const p = r.provenance;
  if (p) {
    rows.push(['derived by', `${p.function}@${shortDigest(p.version)}, activation ${p.activation}, ${formatTime(p.recorded)}`]);
    for (const i of p.inputs)
      rows.push(['  from', i.hidden ? `(not readable) ${i.id}` : `${i.path}${i.checksum ? ` (${i.checksum})` : ''} ${i.id}`]);
    rows.push(['  parameters', JSON.stringify(p.parameters)]);
  }
  printTable(undefined, rows);
  for (const [key, value] of Object.entries(r.metadata)) {
    const s = r.metadataSources[key];
    const by = s?.producedBy
      ? `${s.producedBy.function}@${shortDigest(s.producedBy.version)}, activation ${s.producedBy.activation}`
      : (s?.by ?? 'unknown');
    printLine(`\nmetadata ${key} (by ${by}, ${formatTime(s?.updated)})`);
    printLine(
      JSON.stringify(value, null, 2)
        .split('\n')
        .map((l) => '  ' + l)
        .join('\n'),
    );
  }
}

/** The graph as trees from the root: inputs (←) upwards, derived files (→) downwards. */
function printLineage(g: LineageGraph): void {
  const nodes = new Map(g.nodes.map((n) => [n.id, n]));
  const label = (id: string): string => {
    const n = nodes.get(id);
    if (!n || n.hidden) return `(not readable) ${id}`;
    return `${n.path} [${n.type}${n.deleted ? ', deleted' : ''}]`;
  };
  printLine(label(g.root));
  const walk = (id: string, dir: 'up' | 'down', indent: string, seen: Set<string>): void => {
    const edges = g.edges.filter((e) => (dir === 'up' ? e.to === id : e.from === id));
    for (const e of edges) {
      const next = dir === 'up' ? e.from : e.to;
      const arrow = dir === 'up' ? '←' : '→';
      const again = seen.has(next);
      printLine(
        `${indent}${arrow} ${label(next)}  via ${e.function}@${shortDigest(e.version)} (${e.activation})${again ? ' (above)' : ''}`,
      );
      if (!again) walk(next, dir, indent + '  ', new Set([...seen, next]));
    }
  };
  for (const dir of g.direction === 'both' ? (['up', 'down'] as const) : [g.direction]) walk(g.root, dir, '  ', new Set([g.root]));
  if (g.truncated) printNote(`truncated: more records lie within depth ${g.depth}; ask with --json or a smaller --depth`);
}

function parseCount(min: number): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}, got ${value}`);
    return n;
  };
}

function parseDirection(value: string): LineageDirection {
  if (!(DIRECTIONS as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${DIRECTIONS.join(', ')}`);
  return value as LineageDirection;
}
