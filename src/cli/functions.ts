// `sluice fn deploy|list|show|versions|rm|alias|invoke` and `sluice activations list|show|logs`.
// A deploy checks the manifest locally first, so mistakes show before anything is uploaded.
import { Command, InvalidArgumentError } from 'commander';
import { readFile } from 'node:fs/promises';
import { SluiceError } from '../errors.js';
import type { FunctionRef } from '../functions/refs.js';
import type { Activation, ActivationStatus, FunctionVersion } from '../functions/types.js';
import type { FunctionDetail } from './client.js';
import { withClient } from './connect.js';
import { formatSize, formatTime, printJson, printLine, printNote, printTable } from './output.js';
import { progressFor } from './progress.js';

const ACTIVATION_STATUSES: readonly ActivationStatus[] = ['queued', 'running', 'success', 'error'];
const ACTIVATION_ID_RE = /^[0-9a-f]{32}$/;

/** Digests are long; 12 hex digits tell versions apart in practice and are accepted as references. */
export const shortDigest = (digest: string): string => digest.slice(0, 12);

interface JsonOption {
  json?: boolean;
}

export function registerFunctionCommands(program: Command): void {
  const fn = program.command('fn').description('deploy, inspect, alias, remove and invoke functions');

  fn.command('deploy')
    .description('pack a directory and deploy it as a new version (same content: the existing version)')
    .argument('<dir>', 'directory with sluice.function.json (or .yaml) at its root')
    .option('--alias <alias...>', 'aliases to point at the deployed version')
    .option('--json', 'print the version as JSON')
    .action(async (dir: string, opts: JsonOption & { alias?: string[] }, cmd: Command) => {
      // Loaded here: validating and packing need YAML, TypeBox and tar, which no other command does.
      const [{ readManifest }, { packBundle }] = await Promise.all([import('../functions/manifest.js'), import('./bundle-pack.js')]);
      const { manifest } = await readManifest(dir);
      const archive = await packBundle(dir);
      const aliases = (opts.alias ?? []).flatMap((a) => a.split(',')).filter((a) => a !== '');
      const progress = progressFor(`deploy ${manifest.name}`, archive.length);
      const { version, created } = await withClient(cmd, (c) => c.deployFunction(archive, aliases, progress.listener)).finally(() =>
        progress.stop(),
      );
      if (opts.json) return printJson({ created, version });
      const what = `${version.name}@${version.seq} (${shortDigest(version.version)}), aliases: ${version.aliases.join(', ')}`;
      printLine(created ? `deployed ${what}` : `unchanged: ${what}; this content was deployed before`);
      printNote(`${formatSize(version.size)} unpacked, ${formatSize(archive.length)} uploaded`);
    });

  fn.command('list')
    .description('list functions')
    .option('--json', 'print JSON')
    .action(async (opts: JsonOption, cmd: Command) => {
      const list = await withClient(cmd, (c) => c.listFunctions());
      if (opts.json) return printJson(list);
      printTable(
        ['NAME', 'RUNTIME', 'LATEST', 'VERSION', 'VERSIONS', 'ALIASES', 'DEPLOYED', 'DESCRIPTION'],
        list.map((f) => [
          f.name,
          f.runtime,
          String(f.latest.seq),
          shortDigest(f.latest.version),
          String(f.versions),
          Object.keys(f.aliases)
            .filter((a) => a !== 'latest')
            .join(',') || '-',
          formatTime(f.latest.created),
          f.description,
        ]),
      );
    });

  fn.command('show')
    .description('show a function, or one version of it')
    .argument('<function>', 'NAME or NAME@REF (REF: alias, seq number or digest prefix)')
    .option('--json', 'print JSON')
    .action(async (target: string, opts: JsonOption, cmd: Command) => {
      const { name, ref } = await parseRef(target);
      if (ref !== undefined) {
        const version = await withClient(cmd, (c) => c.functionVersion(name, ref));
        return opts.json ? printJson(version) : printVersion(version);
      }
      const detail = await withClient(cmd, (c) => c.getFunction(name));
      if (opts.json) return printJson(detail);
      printFunction(detail);
    });

  fn.command('versions')
    .description('list the versions of a function, newest first')
    .argument('<name>', 'function name')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: JsonOption, cmd: Command) => {
      const versions = await withClient(cmd, (c) => c.functionVersions(name));
      if (opts.json) return printJson(versions);
      printTable(
        ['SEQ', 'VERSION', 'DEPLOYED', 'BY', 'SIZE', 'ALIASES'],
        versions.map((v) => [
          String(v.seq),
          shortDigest(v.version),
          formatTime(v.created),
          v.createdBy,
          formatSize(v.size),
          v.aliases.join(',') || '-',
        ]),
      );
    });

  fn.command('rm')
    .description('remove a function with all its versions, or one version (NAME@REF)')
    .argument('<function>', 'NAME or NAME@REF')
    .option('--json', 'print what was removed as JSON')
    .action(async (target: string, opts: JsonOption, cmd: Command) => {
      const { name, ref } = await parseRef(target);
      await withClient(cmd, (c) => c.removeFunction(name, ref));
      if (opts.json) return printJson({ removed: name, ...(ref !== undefined ? { version: ref } : {}) });
      printNote(ref === undefined ? `removed function ${name} and all its versions` : `removed ${name}@${ref}`);
    });

  fn.command('alias')
    .description('point an alias at a version, or remove it with --rm (latest follows deploys by itself)')
    .argument('<name>', 'function name')
    .argument('<alias>', 'alias, e.g. prod')
    .argument('[ref]', 'version: alias, seq number or digest prefix')
    .option('--rm', 'remove the alias')
    .option('--json', 'print the version the alias points at as JSON')
    .action(async (name: string, alias: string, ref: string | undefined, opts: JsonOption & { rm?: boolean }, cmd: Command) => {
      if (opts.rm) {
        if (ref !== undefined) throw new SluiceError('BAD_REQUEST', 'give either a version or --rm, not both');
        await withClient(cmd, (c) => c.removeAlias(name, alias));
        if (opts.json) return printJson({ removed: alias, function: name });
        return printNote(`removed alias ${alias} of ${name}`);
      }
      if (ref === undefined) throw new SluiceError('BAD_REQUEST', `which version should ${alias} point at? give REF, or --rm to remove it`);
      const version = await withClient(cmd, (c) => c.setAlias(name, alias, ref));
      if (opts.json) return printJson(version);
      printLine(`${name}@${alias} → ${name}@${version.seq} (${shortDigest(version.version)})`);
    });

  fn.command('invoke')
    .description('invoke a function: prints the result (stdout) and the activation (stderr)')
    .argument('<function>', 'NAME or NAME@REF')
    .option('--data <json>', 'the event, as JSON (default {})')
    .option('--data-file <file>', 'read the event from a JSON file ("-" for stdin)')
    .option('--async', 'do not wait: print the activation id')
    .option('--json', 'print the whole activation as JSON')
    .action(async (target: string, opts: JsonOption & { data?: string; dataFile?: string; async?: boolean }, cmd: Command) => {
      const { name, ref } = await parseRef(target);
      const event = await eventOf(opts);
      const answer = await withClient(cmd, (c) => c.invoke(name, ref, event, { blocking: !opts.async }));
      if (answer.kind === 'accepted') {
        if (opts.json) return printJson({ activationId: answer.activationId, status: answer.status, location: answer.location });
        if (!opts.async) {
          // The server stops waiting after functions.blockingTimeoutSeconds; the call goes on without us.
          printNote(
            `activation ${answer.activationId} is still ${answer.status} after the server's blocking timeout; ` +
              `see sluice activations show ${answer.activationId}`,
          );
        }
        return printLine(answer.activationId);
      }
      const a = answer.activation;
      if (a.status === 'error') process.exitCode = 1;
      if (opts.json) return printJson(a);
      printNote(activationSummary(a));
      if (a.status === 'error') {
        printNote(`error: ${a.error?.code ?? 'ERROR'}: ${a.error?.message ?? 'the activation failed'}`);
        if (a.error?.stack) printNote(a.error.stack.trimEnd());
        if (a.logs.length > 0) printNote(`logs (sluice activations logs ${a.id}):\n${a.logs.map((l) => '  ' + l).join('\n')}`);
        return;
      }
      printJson(a.result ?? null);
    });

  const activations = program.command('activations').description('records of function invocations');

  activations
    .command('list')
    .description('list activations, newest first')
    .option('--function <name>', 'only this function')
    .option('--status <status>', `only this status (${ACTIVATION_STATUSES.join(', ')})`, parseStatus)
    .option('--limit <n>', 'at most this many (default: the server’s)', parseLimit)
    .option('--json', 'print JSON')
    .action(async (opts: JsonOption & { function?: string; status?: ActivationStatus; limit?: number }, cmd: Command) => {
      const list = await withClient(cmd, (c) =>
        c.listActivations({
          ...(opts.function !== undefined ? { function: opts.function } : {}),
          ...(opts.status !== undefined ? { status: opts.status } : {}),
          ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
        }),
      );
      if (opts.json) return printJson(list);
      printTable(
        ['ID', 'FUNCTION', 'STATUS', 'START', 'DURATION', 'CAUSE', 'QUEUED', 'ERROR'],
        list.map((a) => [
          a.id,
          `${a.function}@${a.seq}`,
          a.status,
          a.startedAt === undefined ? '-' : a.cold ? 'cold' : 'warm',
          a.durationMs === undefined ? '-' : `${a.durationMs} ms`,
          a.cause,
          formatTime(a.queuedAt),
          a.error?.code ?? '',
        ]),
      );
    });

  activations
    .command('show')
    .description('show one activation: cause, timings, input, result or error')
    .argument('<id>', 'activation id', parseActivationId)
    .option('--json', 'print JSON')
    .action(async (id: string, opts: JsonOption, cmd: Command) => {
      const a = await withClient(cmd, (c) => c.getActivation(id));
      if (opts.json) return printJson(a);
      printActivation(a);
    });

  activations
    .command('logs')
    .description('print the logs an activation wrote')
    .argument('<id>', 'activation id', parseActivationId)
    .option('--json', 'print JSON')
    .action(async (id: string, opts: JsonOption, cmd: Command) => {
      const { logs } = await withClient(cmd, (c) => c.activationLogs(id));
      if (opts.json) return printJson({ logs });
      for (const line of logs) printLine(line);
    });
}

// ---- helpers -----------------------------------------------------------------------------------

/**
 * Loaded on use: refs.ts takes its name pattern from functions/types.ts, which builds the manifest's
 * TypeBox schema as it loads (~150 ms), a cost every other command of the CLI should not pay.
 */
async function parseRef(target: string): Promise<FunctionRef> {
  const { parseFunctionRef } = await import('../functions/refs.js');
  return parseFunctionRef(target);
}

async function eventOf(opts: { data?: string; dataFile?: string }): Promise<unknown> {
  if (opts.data !== undefined && opts.dataFile !== undefined) throw new SluiceError('BAD_REQUEST', 'give --data or --data-file, not both');
  if (opts.data !== undefined) return parseEvent(opts.data, '--data');
  if (opts.dataFile !== undefined) {
    const text = opts.dataFile === '-' ? await readStdin() : await readFile(opts.dataFile, 'utf8');
    return parseEvent(text, opts.dataFile === '-' ? 'stdin' : opts.dataFile);
  }
  return {};
}

function parseEvent(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SluiceError('BAD_REQUEST', `${source} is not JSON: ${(e as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function activationSummary(a: Activation): string {
  const start = a.cold ? `cold${a.initMs !== undefined ? ` (init ${a.initMs} ms)` : ''}` : 'warm';
  const times = [
    a.durationMs !== undefined ? `ran ${a.durationMs} ms` : undefined,
    a.waitMs !== undefined ? `waited ${a.waitMs} ms` : undefined,
  ].filter((t) => t !== undefined);
  return `activation ${a.id} ${a.function}@${a.seq} ${a.status} ${start}${times.length > 0 ? ', ' + times.join(', ') : ''}`;
}

function printFields(rows: [string, string][]): void {
  printTable(
    undefined,
    rows.map(([k, v]) => [k + ':', v]),
  );
}

function printVersion(v: FunctionVersion): void {
  const m = v.manifest;
  const l = m.limits;
  const s = m.scaling;
  printFields([
    ['name', v.name],
    ['seq', String(v.seq)],
    ['version', v.version],
    ['aliases', v.aliases.join(', ') || '-'],
    ['runtime', m.runtime],
    ['handler', m.handler],
    ['description', m.description || '-'],
    ['size', formatSize(v.size)],
    ['deployed', `${formatTime(v.created)} by ${v.createdBy}`],
    [
      'limits',
      `timeout ${l.timeoutSeconds} s, memory ${l.memoryMb} MiB, output ${binarySize(l.maxOutputBytes)}, ` +
        `logs ${binarySize(l.maxLogBytes)}, open files ${l.openFiles}` +
        (l.cpuSeconds !== undefined ? `, cpu ${l.cpuSeconds} s` : ''),
    ],
    ['scaling', `min ${s.min}, max ${s.max}, concurrency ${s.concurrency}, idle ${s.idleTimeoutSeconds} s`],
    ['network', m.network ? 'yes' : 'no'],
    ['env', Object.keys(m.env).join(', ') || '-'],
    ['params', Object.keys(m.params).length === 0 ? '-' : JSON.stringify(m.params)],
    ['scopes', m.scopes === undefined ? "the caller's storage scopes" : m.scopes.join(' ') || 'none'],
    ['retries', String(m.retries)],
  ]);
}

function printFunction(f: FunctionDetail): void {
  printFields([
    ['name', f.name],
    ['versions', String(f.versions)],
    [
      'aliases',
      Object.entries(f.aliases)
        .map(([alias, digest]) => `${alias} → ${shortDigest(digest)}`)
        .join(', '),
    ],
    ['instances', f.pools.length === 0 ? 'none' : f.pools.map(poolSummary).join('; ')],
  ]);
  printLine('');
  printLine('latest:');
  printVersion(f.latest);
}

/** Limits as the manifest counts them, in powers of two: 1048576 → "1 MiB", 65536 → "64 KiB". */
function binarySize(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/** "@2: 1 ready, 0 starting, 1 busy, 0 queued (min 0, max 4, 3 started)" */
function poolSummary(p: FunctionDetail['pools'][number]): string {
  const counts = `${p.ready} ready, ${p.starting} starting, ${p.inFlight} busy, ${p.queued} queued`;
  return `@${p.seq}: ${counts} (min ${p.min}, max ${p.max}, ${p.coldStarts} started)`;
}

function printActivation(a: Activation): void {
  printFields([
    ['id', a.id],
    ['function', `${a.function}@${a.seq} (${shortDigest(a.version)})`],
    ['status', a.status],
    ['cause', a.cause],
    ['subject', a.subject],
    ['start', a.startedAt === undefined ? '-' : a.cold ? `cold${a.initMs !== undefined ? `, init ${a.initMs} ms` : ''}` : 'warm'],
    ['queued', formatTime(a.queuedAt)],
    ['started', formatTime(a.startedAt)],
    ['ended', formatTime(a.endedAt)],
    ['waited', a.waitMs === undefined ? '-' : `${a.waitMs} ms`],
    ['ran', a.durationMs === undefined ? '-' : `${a.durationMs} ms`],
    ['attempts', String(a.attempts)],
    ['instance', a.instance ?? '-'],
  ]);
  printLine('input:');
  printLine(indent(JSON.stringify(a.input ?? null, null, 2)));
  if (a.error) {
    printLine(`error: ${a.error.code}: ${a.error.message}`);
    if (a.error.stack) printLine(indent(a.error.stack.trimEnd()));
  } else if (a.status === 'success') {
    printLine('result:');
    printLine(indent(JSON.stringify(a.result ?? null, null, 2)));
  }
}

const indent = (text: string): string =>
  text
    .split('\n')
    .map((l) => '  ' + l)
    .join('\n');

function parseStatus(value: string): ActivationStatus {
  if (!(ACTIVATION_STATUSES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${ACTIVATION_STATUSES.join(', ')}`);
  }
  return value as ActivationStatus;
}

/** Checked here: the server's own refusal of a malformed id is a schema message about a pattern. */
function parseActivationId(value: string): string {
  if (!ACTIVATION_ID_RE.test(value))
    throw new InvalidArgumentError('an activation id is 32 hex digits, as `sluice activations list` shows');
  return value;
}

function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive whole number, got ${value}`);
  return n;
}
