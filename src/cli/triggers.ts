// `sluice trigger create|list|show|enable|disable|rm|dead-letters|replay` and `sluice pipeline
// put|list|show|rm|run|runs|run-show`: flags become the API's request bodies; the server validates
// (one schema) and its problem detail is what the user sees. Only what the server's schema cannot say
// well (inotify names, step syntax, k=v pairs) is checked here first.
import { Command, InvalidArgumentError } from 'commander';
import { readFile } from 'node:fs/promises';
import { SluiceError } from '../errors.js';
import { RECORDED_FLAGS, PLACEMENT_TYPES, type RecordedFlag } from '../events/types.js';
import type { Delivery, Pipeline, PipelineRun, PipelineSpec, TriggerSpec, TriggerStatus } from './client.js';
import { remotePath, withClient } from './connect.js';
import { formatTime, printJson, printLine, printNote, printTable } from './output.js';

const RUN_ID_RE = /^run_[0-9a-f]{16}$/;

interface JsonOption {
  json?: boolean;
}

interface CreateOptions extends JsonOption {
  function?: string;
  pipeline?: string;
  description?: string;
  path?: string;
  glob?: string;
  events?: RecordedFlag[];
  recursive: boolean;
  directories?: boolean;
  minSize?: number;
  maxSize?: number;
  label?: string[];
  xattr?: string[];
  param?: string[];
  paramsFile?: string;
  maxAttempts?: number;
  backoff?: number;
  maxBackoff?: number;
  concurrency?: number;
  ordered?: boolean;
  catalogAnnotate?: string;
  fromBeginning?: boolean;
  disabled?: boolean;
}

export function registerTriggerCommands(program: Command): void {
  const trigger = program.command('trigger').description('run a function or pipeline on every matching storage event');

  trigger
    .command('create')
    .description('create a trigger: a filter over storage events bound to a function or pipeline')
    .argument('<name>', 'trigger name (lower-case letters, digits and -)')
    .option('--function <ref>', 'target function: NAME or NAME@REF (alias, seq number or digest prefix)')
    .option('--pipeline <name>', 'target pipeline')
    .option('--description <text>', 'what the trigger is for')
    .option('--path <dir>', 'directory whose events are taken (default /)')
    .option('--glob <pattern>', "pattern on the path below --path, e.g. '**/*.nxs'")
    .option('--events <types>', 'comma-separated event types (default IN_CLOSE_WRITE,IN_MOVED_TO)', parseEvents)
    .option('--no-recursive', 'only files directly in --path, not below its subdirectories')
    .option('--directories', 'also events of directories')
    .option('--min-size <size>', 'only files of at least this size (bytes, or 10kB, 5MB, 2GiB…)', parseSize)
    .option('--max-size <size>', 'only files of at most this size', parseSize)
    .option('--label <label...>', 'the file must carry all these labels')
    .option('--xattr <key=value...>', 'the file must have these extended attributes')
    .option('--param <key=value...>', 'merged into every call; values parse as JSON when they can, else strings')
    .option('--params-file <file>', 'params from a JSON object file ("-" for stdin); --param entries override it')
    .option('--max-attempts <n>', 'attempts per event before it is dead-lettered (default 5)', parsePositive)
    .option('--backoff <seconds>', 'delay before the first retry, doubled each attempt (default 1)', parseSeconds)
    .option('--max-backoff <seconds>', 'longest delay between attempts (default 300)', parseSeconds)
    .option('--concurrency <n>', 'deliveries running at once (default 64)', parsePositive)
    .option('--ordered', 'deliver the events of one path one at a time, in log order')
    .option('--catalog-annotate <key>', "store the result's `metadata` in the file's catalogue record under this key")
    .option('--from-beginning', 'also take every event still in the log (default: only events from now on)')
    .option('--disabled', 'create it disabled (it takes no events until enabled)')
    .option('--json', 'print the trigger as JSON')
    .action(async (name: string, opts: CreateOptions, cmd: Command) => {
      const spec = await triggerSpec(name, opts);
      const created = await withClient(cmd, (c) => c.createTrigger(spec));
      if (opts.json) return printJson(created);
      printLine(`created trigger ${created.name} (${created.id}): ${targetText(created.target)}`);
      printNote(`takes ${filterText(created.filter)}, after event ${created.position}${created.enabled ? '' : '; disabled'}`);
    });

  trigger
    .command('list')
    .description('list triggers with their delivery counts and lag')
    .option('--json', 'print JSON')
    .action(async (opts: JsonOption, cmd: Command) => {
      const list = await withClient(cmd, (c) => c.listTriggers());
      if (opts.json) return printJson(list);
      printTable(
        ['NAME', 'ENABLED', 'TARGET', 'PATH', 'GLOB', 'PENDING', 'RUNNING', 'SUCCEEDED', 'DEAD', 'LAG'],
        list.map((t) => [
          t.name,
          t.enabled ? 'yes' : 'no',
          'function' in t.target ? t.target.function : `pipeline:${t.target.pipeline}`,
          t.filter.path + (t.filter.recursive ? '' : ' (flat)'),
          t.filter.glob ?? '-',
          String(t.deliveries.pending),
          String(t.deliveries.running),
          String(t.deliveries.succeeded),
          String(t.deliveries.dead),
          String(t.lag),
        ]),
      );
    });

  trigger
    .command('show')
    .description('show a trigger: filter, target, policy, position, lag and delivery counts')
    .argument('<name>', 'trigger name or id')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: JsonOption, cmd: Command) => {
      const t = await withClient(cmd, (c) => c.getTrigger(name));
      if (opts.json) return printJson(t);
      printTrigger(t);
    });

  for (const [action, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    trigger
      .command(action)
      .description(enabled ? 'start taking events again, from where the trigger stopped' : 'stop taking events (the position is kept)')
      .argument('<name>', 'trigger name or id')
      .option('--json', 'print the trigger as JSON')
      .action(async (name: string, opts: JsonOption, cmd: Command) => {
        const t = await withClient(cmd, (c) => c.setTriggerEnabled(name, enabled));
        if (opts.json) return printJson(t);
        printLine(`${t.name} ${enabled ? 'enabled' : 'disabled'}; ${t.lag} event(s) not read yet`);
      });
  }

  trigger
    .command('rm')
    .description('remove a trigger and its deliveries')
    .argument('<name>', 'trigger name or id')
    .option('--json', 'print what was removed as JSON')
    .action(async (name: string, opts: JsonOption, cmd: Command) => {
      await withClient(cmd, (c) => c.removeTrigger(name));
      if (opts.json) return printJson({ removed: name });
      printNote(`removed trigger ${name} and its deliveries`);
    });

  trigger
    .command('dead-letters')
    .description('deliveries that failed every attempt, with the last error')
    .argument('<name>', 'trigger name or id')
    .option('--limit <n>', 'at most this many (default 100)', parsePositive)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: JsonOption & { limit?: number }, cmd: Command) => {
      const dead = await withClient(cmd, (c) => c.deadLetters(name, opts.limit));
      if (opts.json) return printJson(dead);
      if (dead.length === 0) return printNote(`no dead letters for ${name}`);
      printDeliveries(dead);
    });

  trigger
    .command('replay')
    .description('deliver dead letters again with fresh attempts (all, or the given events)')
    .argument('<name>', 'trigger name or id')
    .option('--event <id...>', 'only these events (ids as dead-letters shows them)')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: JsonOption & { event?: string[] }, cmd: Command) => {
      const events = opts.event?.flatMap((e) => e.split(',')).map((e) => parseEventId(e));
      const answer = await withClient(cmd, (c) => c.replayDeadLetters(name, events));
      if (opts.json) return printJson(answer);
      const missed = (events ?? []).filter((e) => !answer.events.includes(e));
      if (missed.length > 0) printNote(`not dead letters of ${name}, so not replayed: ${missed.join(', ')}`);
      if (answer.replayed === 0) return printNote('nothing replayed');
      printLine(
        `replayed ${answer.replayed} deliver${answer.replayed === 1 ? 'y' : 'ies'}: event${answer.replayed === 1 ? '' : 's'} ${answer.events.join(', ')}`,
      );
    });

  registerPipelineCommands(program);
}

function registerPipelineCommands(program: Command): void {
  const pipeline = program.command('pipeline').description('functions run one after another, each on the previous result');

  pipeline
    .command('put')
    .description('create or replace a pipeline from --step flags or a JSON file')
    .argument('<name>', 'pipeline name (lower-case letters, digits and -)')
    .option(
      '--step <step...>',
      `a step, in order: FUNCTION[@REF][:PARAMS][:ATTEMPTS], e.g. add-one, 'scale@prod:{"factor":2}', 'fit:{"model":"gauss"}:3', fit:3`,
    )
    .option('--file <file>', 'the pipeline as JSON: {"description"?, "steps": [{"function", "params"?, "maxAttempts"?}]} ("-": stdin)')
    .option('--description <text>', 'what the pipeline is for')
    .option('--json', 'print the pipeline as JSON')
    .action(async (name: string, opts: JsonOption & { step?: string[]; file?: string; description?: string }, cmd: Command) => {
      const spec = await pipelineSpec(name, opts);
      const saved = await withClient(cmd, (c) => c.putPipeline(name, spec));
      if (opts.json) return printJson(saved);
      printLine(`saved pipeline ${saved.name}: ${saved.steps.map(stepText).join(' → ')}`);
    });

  pipeline
    .command('list')
    .description('list pipelines')
    .option('--json', 'print JSON')
    .action(async (opts: JsonOption, cmd: Command) => {
      const list = await withClient(cmd, (c) => c.listPipelines());
      if (opts.json) return printJson(list);
      printTable(
        ['NAME', 'STEPS', 'OWNER', 'CREATED', 'DESCRIPTION'],
        list.map((p) => [p.name, p.steps.map((s) => s.function).join(' → '), p.owner, formatTime(p.created), p.description]),
      );
    });

  pipeline
    .command('show')
    .description('show a pipeline and its steps')
    .argument('<name>', 'pipeline name')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: JsonOption, cmd: Command) => {
      const p = await withClient(cmd, (c) => c.getPipeline(name));
      if (opts.json) return printJson(p);
      printPipeline(p);
    });

  pipeline
    .command('rm')
    .description('remove a pipeline (refused while a trigger targets it)')
    .argument('<name>', 'pipeline name')
    .option('--json', 'print what was removed as JSON')
    .action(async (name: string, opts: JsonOption, cmd: Command) => {
      await withClient(cmd, (c) => c.removePipeline(name));
      if (opts.json) return printJson({ removed: name });
      printNote(`removed pipeline ${name}`);
    });

  pipeline
    .command('run')
    .description('run a pipeline by hand and wait for its end; exits 1 when the run failed')
    .argument('<name>', 'pipeline name')
    .option('--data <json>', 'the input of the first step, as JSON (default {})')
    .option('--data-file <file>', 'read the input from a JSON file ("-" for stdin)')
    .option('--json', 'print the run as JSON')
    .action(async (name: string, opts: JsonOption & { data?: string; dataFile?: string }, cmd: Command) => {
      const input = await inputOf(opts);
      const run = await withClient(cmd, (c) => c.runPipeline(name, input));
      if (run.status !== 'succeeded') process.exitCode = 1;
      if (opts.json) printJson(run);
      else printRun(run);
      if (run.status !== 'succeeded') printNote(`pipeline ${run.pipeline} ${run.status}: ${run.error ?? 'no error recorded'}`);
    });

  pipeline
    .command('runs')
    .description('runs of a pipeline, newest first')
    .argument('<name>', 'pipeline name')
    .option('--limit <n>', 'at most this many (default 100)', parsePositive)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: JsonOption & { limit?: number }, cmd: Command) => {
      const runs = await withClient(cmd, (c) => c.pipelineRuns(name, opts.limit));
      if (opts.json) return printJson(runs);
      printTable(
        ['ID', 'STATUS', 'CAUSE', 'STARTED', 'ENDED', 'STEPS', 'ERROR'],
        runs.map((r) => [
          r.id,
          r.status,
          r.cause,
          formatTime(r.created),
          formatTime(r.ended),
          `${r.steps.filter((s) => s.status === 'succeeded').length}/${r.steps.length}`,
          r.error ?? '',
        ]),
      );
    });

  pipeline
    .command('run-show')
    .description('show one pipeline run with the activation of every attempt of every step')
    .argument('<id>', 'run id (run_…)', parseRunId)
    .option('--json', 'print JSON')
    .action(async (id: string, opts: JsonOption, cmd: Command) => {
      const run = await withClient(cmd, (c) => c.getPipelineRun(id));
      if (opts.json) return printJson(run);
      printRun(run);
    });
}

// ---- request bodies from flags -------------------------------------------------------------------

async function triggerSpec(name: string, o: CreateOptions): Promise<TriggerSpec> {
  if ((o.function === undefined) === (o.pipeline === undefined)) {
    throw new SluiceError('BAD_REQUEST', 'give the target: either --function NAME[@REF] or --pipeline NAME');
  }
  const params = {
    ...(o.paramsFile !== undefined ? await jsonObjectFrom(o.paramsFile, '--params-file') : {}),
    ...Object.fromEntries((o.param ?? []).map((kv) => parseParam(kv))),
  };
  const xattrs = Object.fromEntries((o.xattr ?? []).map((kv) => splitKeyValue(kv, '--xattr')));
  const labels = (o.label ?? []).flatMap((l) => l.split(',')).filter((l) => l !== '');
  const filter: TriggerSpec['filter'] = {
    ...(o.path !== undefined ? { path: remotePath(o.path) } : {}),
    ...(o.glob !== undefined ? { glob: o.glob } : {}),
    ...(o.events !== undefined ? { events: o.events } : {}),
    ...(o.recursive === false ? { recursive: false } : {}),
    ...(o.directories ? { directories: true } : {}),
    ...(o.minSize !== undefined ? { minSize: o.minSize } : {}),
    ...(o.maxSize !== undefined ? { maxSize: o.maxSize } : {}),
    ...(labels.length > 0 ? { labels } : {}),
    ...(Object.keys(xattrs).length > 0 ? { xattrs } : {}),
  };
  const delivery: TriggerSpec['delivery'] = {
    ...(o.maxAttempts !== undefined ? { maxAttempts: o.maxAttempts } : {}),
    ...(o.backoff !== undefined ? { backoffSeconds: o.backoff } : {}),
    ...(o.maxBackoff !== undefined ? { maxBackoffSeconds: o.maxBackoff } : {}),
    ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
    ...(o.ordered ? { ordered: true } : {}),
  };
  return {
    name,
    target: o.function !== undefined ? { function: o.function } : { pipeline: o.pipeline! },
    filter,
    params,
    delivery,
    ...(o.description !== undefined ? { description: o.description } : {}),
    ...(o.catalogAnnotate !== undefined ? { catalog: { annotate: o.catalogAnnotate } } : {}),
    ...(o.fromBeginning ? { from: 'beginning' as const } : {}),
    ...(o.disabled ? { enabled: false } : {}),
  };
}

/**
 * One `--step`: FUNCTION[@REF][:PARAMS][:ATTEMPTS]. A function reference holds no ':', PARAMS is a JSON
 * object and ATTEMPTS a whole number, so `fit:{"a":1}:3`, `fit:{"a":1}`, `fit:3` and `fit` are each
 * read one way only.
 */
export function parseStep(text: string): PipelineSpec['steps'][number] {
  const colon = text.indexOf(':');
  const fn = colon < 0 ? text : text.slice(0, colon);
  if (fn === '') throw new SluiceError('BAD_REQUEST', `--step "${text}": no function before the ':'`);
  if (colon < 0) return { function: fn };
  const rest = text.slice(colon + 1);
  const bad = (why: string) =>
    new SluiceError(
      'BAD_REQUEST',
      `--step "${text}": ${why}; expected FUNCTION[@REF][:PARAMS][:ATTEMPTS], e.g. 'fit@prod:{"model":"gauss"}:3'`,
    );
  if (/^\d+$/.test(rest)) return { function: fn, maxAttempts: attempts(rest, bad) };
  const tail = /:(\d+)$/.exec(rest);
  if (tail) {
    const params = jsonObject(rest.slice(0, tail.index));
    if (params) return { function: fn, params, maxAttempts: attempts(tail[1]!, bad) };
  }
  const params = jsonObject(rest);
  if (!params) throw bad(`"${rest}" is neither a JSON object of params nor a number of attempts`);
  return { function: fn, params };
}

function attempts(text: string, bad: (why: string) => Error): number {
  const n = Number(text);
  if (n < 1) throw bad('ATTEMPTS is at least 1');
  return n;
}

async function pipelineSpec(name: string, o: { step?: string[]; file?: string; description?: string }): Promise<PipelineSpec> {
  if ((o.step === undefined) === (o.file === undefined)) {
    throw new SluiceError('BAD_REQUEST', 'give the steps: either --step … (one per step, in order) or --file pipeline.json');
  }
  if (o.step !== undefined) {
    return { steps: o.step.map(parseStep), ...(o.description !== undefined ? { description: o.description } : {}) };
  }
  const what = o.file === '-' ? 'stdin' : o.file!;
  const spec = await jsonObjectFrom(o.file!, what);
  if (spec.name !== undefined && spec.name !== name) {
    throw new SluiceError('BAD_REQUEST', `${what} describes pipeline ${String(spec.name)}, not ${name}`);
  }
  // What `pipeline show --json` printed goes back in as it is: the server sets name, owner and created.
  for (const key of ['name', 'owner', 'created']) delete spec[key];
  return { ...(spec as unknown as PipelineSpec), ...(o.description !== undefined ? { description: o.description } : {}) };
}

async function inputOf(o: { data?: string; dataFile?: string }): Promise<unknown> {
  if (o.data !== undefined && o.dataFile !== undefined) throw new SluiceError('BAD_REQUEST', 'give --data or --data-file, not both');
  if (o.data !== undefined) return parseJson(o.data, '--data');
  if (o.dataFile !== undefined) return parseJson(await readText(o.dataFile), o.dataFile === '-' ? 'stdin' : o.dataFile);
  return {};
}

async function jsonObjectFrom(file: string, what: string): Promise<Record<string, unknown>> {
  const value = parseJson(await readText(file), what);
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new SluiceError('BAD_REQUEST', `${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

async function readText(file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SluiceError('BAD_REQUEST', `${source} is not JSON: ${(e as Error).message}`);
  }
}

function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function splitKeyValue(text: string, flag: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new SluiceError('BAD_REQUEST', `${flag} "${text}": expected KEY=VALUE`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** `--param k=v`: `n=3` → 3, `ok=true` → true, `tags=["a"]` → ["a"], `name=p11` → "p11". */
export function parseParam(text: string): [string, unknown] {
  const [key, raw] = splitKeyValue(text, '--param');
  try {
    return [key, JSON.parse(raw)];
  } catch {
    return [key, raw];
  }
}

// ---- option parsers ------------------------------------------------------------------------------

function parseEvents(value: string): RecordedFlag[] {
  const events = value
    .split(',')
    .map((e) => e.trim().toUpperCase())
    .filter((e) => e !== '');
  const known: readonly string[] = [...RECORDED_FLAGS, ...PLACEMENT_TYPES];
  const unknown = events.filter((e) => !known.includes(e));
  if (events.length === 0 || unknown.length > 0) {
    throw new InvalidArgumentError(`${unknown.length > 0 ? `unknown: ${unknown.join(', ')}; ` : ''}expected some of ${known.join(', ')}`);
  }
  return events as RecordedFlag[];
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40 };

/** 123, 10k, 10kB, 5MB, 2GiB: decimal units as storage counts them, binary ones with the i. */
export function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?$/i.exec(value.trim());
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) throw new InvalidArgumentError(`expected a size in bytes, e.g. 1048576, 10kB, 5MB or 2GiB; got ${value}`);
  const bytes = Number(m[1]) * unit;
  if (!Number.isInteger(bytes)) throw new InvalidArgumentError(`${value} is not a whole number of bytes`);
  return bytes;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive whole number, got ${value}`);
  return n;
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError(`expected seconds (e.g. 0.5 or 30), got ${value}`);
  return n;
}

function parseEventId(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new SluiceError('BAD_REQUEST', `--event ${value}: an event id is a positive whole number`);
  return n;
}

/** Checked here: the server's refusal of a malformed id is a schema message about a pattern. */
function parseRunId(value: string): string {
  if (!RUN_ID_RE.test(value)) throw new InvalidArgumentError('a run id is run_ and 16 hex digits, as `sluice pipeline runs` shows');
  return value;
}

// ---- printing ------------------------------------------------------------------------------------

function targetText(target: TriggerSpec['target']): string {
  return 'function' in target ? `function ${target.function}` : `pipeline ${target.pipeline}`;
}

/** "IN_CLOSE_WRITE,IN_MOVED_TO of files below /incoming matching **\/*.nxs, ≥ 1000 B, labels raw" */
function filterText(f: TriggerStatus['filter']): string {
  const parts = [
    `${f.events.join(',')} of ${f.directories ? 'files and directories' : 'files'} ${f.recursive ? 'below' : 'directly in'} ${f.path}`,
    f.glob !== undefined ? `matching ${f.glob}` : undefined,
    f.minSize !== undefined ? `size ≥ ${f.minSize} B` : undefined,
    f.maxSize !== undefined ? `size ≤ ${f.maxSize} B` : undefined,
    f.labels?.length ? `labels ${f.labels.join(',')}` : undefined,
    f.xattrs && Object.keys(f.xattrs).length > 0
      ? `xattrs ${Object.entries(f.xattrs)
          .map(([k, v]) => `${k}=${v}`)
          .join(',')}`
      : undefined,
  ];
  return parts.filter((p) => p !== undefined).join(', ');
}

function printFields(rows: [string, string][]): void {
  printTable(
    undefined,
    rows.map(([k, v]) => [k + ':', v]),
  );
}

function printTrigger(t: TriggerStatus): void {
  const d = t.delivery;
  const counts = t.deliveries;
  printFields([
    ['name', t.name],
    ['id', t.id],
    ['target', targetText(t.target)],
    ['enabled', t.enabled ? 'yes' : 'no'],
    ['description', t.description || '-'],
    ['filter', filterText(t.filter)],
    ['params', Object.keys(t.params).length === 0 ? '-' : JSON.stringify(t.params)],
    [
      'delivery',
      `${d.maxAttempts} attempt(s), backoff ${d.backoffSeconds} s doubling up to ${d.maxBackoffSeconds} s, ` +
        `concurrency ${d.concurrency}${d.ordered ? ', ordered by path' : ''}`,
    ],
    ['catalog', t.catalog ? `annotate ${t.catalog.annotate}` : '-'],
    ['owner', t.owner],
    ['scopes', t.scopes.join(' ') || 'none'],
    ['created', formatTime(t.created)],
    ['position', `event ${t.position}`],
    ['lag', `${t.lag} event(s)`],
    [
      'deliveries',
      `succeeded ${counts.succeeded}, pending ${counts.pending}, running ${counts.running}, dead ${counts.dead}; in flight ${t.inFlight}`,
    ],
  ]);
}

function printDeliveries(list: Delivery[]): void {
  printTable(
    ['EVENT', 'PATH', 'ATTEMPTS', 'UPDATED', 'ACTIVATION', 'ERROR'],
    list.map((d) => [String(d.event), d.path, String(d.attempts), formatTime(d.updated), d.activation ?? '-', d.lastError ?? '']),
  );
}

function stepText(s: Pipeline['steps'][number]): string {
  const params = Object.keys(s.params).length === 0 ? '' : JSON.stringify(s.params);
  return `${s.function}${params}${s.maxAttempts > 1 ? ` ×${s.maxAttempts}` : ''}`;
}

function printPipeline(p: Pipeline): void {
  printFields([
    ['name', p.name],
    ['description', p.description || '-'],
    ['owner', p.owner],
    ['created', formatTime(p.created)],
  ]);
  printLine('steps:');
  printTable(
    ['  #', 'FUNCTION', 'ATTEMPTS', 'PARAMS'],
    p.steps.map((s, i) => [
      `  ${i + 1}`,
      s.function,
      String(s.maxAttempts),
      Object.keys(s.params).length === 0 ? '-' : JSON.stringify(s.params),
    ]),
  );
}

function printRun(r: PipelineRun): void {
  printFields([
    ['run', r.id],
    ['pipeline', r.pipeline],
    ['status', r.status],
    ['cause', r.cause],
    ['subject', r.subject],
    ['started', formatTime(r.created)],
    ['ended', formatTime(r.ended)],
  ]);
  printLine('steps:');
  printTable(
    ['  #', 'FUNCTION', 'STATUS', 'ATTEMPTS', 'ACTIVATIONS', 'ERROR'],
    r.steps.map((s, i) => [`  ${i + 1}`, s.function, s.status, String(s.attempts), s.activations.join(',') || '-', s.error ?? '']),
  );
  printLine('input:');
  printLine(indent(JSON.stringify(r.input ?? null, null, 2)));
  if (r.status === 'succeeded') {
    printLine('result:');
    printLine(indent(JSON.stringify(r.result ?? null, null, 2)));
  } else if (r.error !== undefined) {
    printLine(`error: ${r.error}`);
  }
}

const indent = (text: string): string =>
  text
    .split('\n')
    .map((l) => '  ' + l)
    .join('\n');
