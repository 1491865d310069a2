// `sluice se …`, `sluice rule …`, `sluice transfers …`, `sluice qos` and `sluice replicas`: the
// placement API (storage elements, replication rules, transfers, QoS) from the command line. Flags
// become request bodies; the server validates them and its problem detail is what the user sees.
// Only what its schema cannot say well (sizes, durations, k=v pairs, flags that do not fit the SE
// kind) is checked here first.
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { SluiceError } from '../errors.js';
import type { Lock, QosClass, Rule, RuleSpec, SeSpec, StorageElementInfo, Transfer, TransferState } from '../placement/types.js';
import type { SeSpace } from '../placement/se-registry.js';
import type { Replica } from '../storage/types.js';
import { encodePath, type NamespaceEntry, type SluiceClient } from './client.js';
import { remotePath, withClient } from './connect.js';
import { formatSize, formatTime, printJson, printLine, printNote, printTable } from './output.js';
import { parseSize } from './triggers.js';

// ---- the placement API -----------------------------------------------------------------------------

export type StorageElement = StorageElementInfo & { space: SeSpace };

/** A rule to create: the server's RuleSpec with the fields it defaults left out. */
export type RuleRequest = Omit<RuleSpec, 'path' | 'grouping' | 'priority' | 'activity'> & Partial<RuleSpec>;

export interface TransferFilter {
  state?: TransferState;
  path?: string;
  rule?: string;
  limit?: number;
  offset?: number;
}

/** A file's placement as the namespace API reports it with locality, qos and replicas. */
export type FilePlacement = NamespaceEntry & {
  fileLocality: string;
  currentQos: string;
  targetQos?: string;
  replicas: Omit<Replica, 'location'>[];
};

type JsonCall = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/** The placement routes over the client's one JSON transport (token, keep-alive, RFC 7807 problems as SluiceErrors). */
export class PlacementApi {
  private readonly json: JsonCall;

  constructor(client: SluiceClient) {
    this.json = client.json.bind(client);
  }

  listSes(): Promise<StorageElement[]> {
    return this.json('GET', '/api/v1/storage-elements');
  }

  getSe(name: string): Promise<StorageElement> {
    return this.json('GET', seUrl(name));
  }

  addSe(spec: SeSpec): Promise<StorageElement> {
    return this.json('POST', '/api/v1/storage-elements', spec);
  }

  changeSeAttributes(name: string, set: Record<string, string>, remove: string[]): Promise<StorageElement> {
    return this.json('PATCH', seUrl(name), { set, remove });
  }

  setSeAvailable(name: string, available: boolean): Promise<StorageElement> {
    return this.json('PATCH', seUrl(name), { available });
  }

  async removeSe(name: string): Promise<void> {
    await this.json('DELETE', seUrl(name));
  }

  verifySe(name: string, limit?: number): Promise<{ checked: number; bad: string[]; skipped: number }> {
    return this.json('POST', `${seUrl(name)}/verify`, limit === undefined ? {} : { limit });
  }

  createRule(spec: RuleRequest): Promise<Rule> {
    return this.json('POST', '/api/v1/rules', spec);
  }

  listRules(): Promise<Rule[]> {
    return this.json('GET', '/api/v1/rules');
  }

  getRule(id: string): Promise<Rule> {
    return this.json('GET', ruleUrl(id));
  }

  ruleLocks(id: string, limit = 100, offset = 0): Promise<Lock[]> {
    return this.json('GET', `${ruleUrl(id)}/locks?limit=${limit}&offset=${offset}`);
  }

  async removeRule(id: string): Promise<void> {
    await this.json('DELETE', ruleUrl(id));
  }

  suspendRule(id: string, suspended: boolean): Promise<Rule> {
    return this.json('POST', `${ruleUrl(id)}/${suspended ? 'suspend' : 'resume'}`);
  }

  listTransfers(filter: TransferFilter = {}): Promise<Transfer[]> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) query.set(k, String(v));
    const qs = query.toString();
    return this.json('GET', '/api/v1/transfers' + (qs === '' ? '' : `?${qs}`));
  }

  getTransfer(id: string): Promise<Transfer> {
    return this.json('GET', transferUrl(id));
  }

  cancelTransfer(id: string): Promise<Transfer> {
    return this.json('POST', `${transferUrl(id)}/cancel`);
  }

  qosClasses(): Promise<QosClass[]> {
    return this.json('GET', '/api/v1/qos');
  }

  placementOf(path: string): Promise<FilePlacement> {
    return this.json('GET', `/api/v1/namespace${encodePath(path)}?locality=true&qos=true&replicas=true`);
  }

  async transitionQos(path: string, target: string): Promise<void> {
    await this.json('POST', `/api/v1/namespace${encodePath(path)}`, { action: 'qos', target });
  }
}

const seUrl = (name: string): string => `/api/v1/storage-elements/${encodeURIComponent(name)}`;
const ruleUrl = (id: string): string => `/api/v1/rules/${encodeURIComponent(id)}`;
const transferUrl = (id: string): string => `/api/v1/transfers/${encodeURIComponent(id)}`;

function withApi<T>(cmd: Command, work: (api: PlacementApi) => Promise<T>): Promise<T> {
  return withClient(cmd, (c) => work(new PlacementApi(c)));
}

// ---- commands ------------------------------------------------------------------------------------

interface JsonOption {
  json?: boolean;
}

interface SeAddOptions extends JsonOption {
  kind: SeSpec['kind'];
  path?: string;
  endpoint?: string;
  tokenFile?: string;
  attr?: [string, string][];
  capacity?: number;
  flushDelay?: number;
  stageDelay?: number;
  maxActive?: number;
  tpc: boolean;
}

interface RuleCreateOptions extends JsonOption {
  path: string;
  copies: number;
  expression: string;
  source?: string;
  glob?: string;
  label?: string[];
  xattr?: [string, string][];
  grouping?: RuleSpec['grouping'];
  lifetime?: number;
  priority?: number;
  activity?: string;
  comment?: string;
}

export function registerPlacementCommands(program: Command): void {
  registerSeCommands(program);
  registerRuleCommands(program);
  registerTransferCommands(program);
  registerQosCommands(program);
}

function registerSeCommands(program: Command): void {
  const se = program.command('se').description('storage elements: where replicas are kept (local directories, WebDAV, tape)');

  se.command('list')
    .description('list storage elements with their attributes and space')
    .option('--json', 'print JSON')
    .action(async (opts: JsonOption, cmd: Command) => {
      const list = await withApi(cmd, (api) => api.listSes());
      if (opts.json) return printJson(list);
      printTable(
        ['NAME', 'KIND', 'ATTRIBUTES', 'USED', 'TOTAL', 'FILES'],
        list.map((s) => [
          s.name + (s.landing ? ' (landing)' : '') + (s.available ? '' : ' (out of service)'),
          s.kind,
          attributesText(s.attributes),
          formatSize(s.space.used),
          s.space.total > 0 ? formatSize(s.space.total) : '-',
          String(s.space.files),
        ]),
      );
    });

  se.command('show')
    .description('show a storage element: its spec, attributes and space')
    .argument('<name>', 'SE name')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: JsonOption, cmd: Command) => {
      const s = await withApi(cmd, (api) => api.getSe(name));
      if (opts.json) return printJson(s);
      printSe(s);
    });

  se.command('add')
    .description('add a storage element (admin)')
    .argument('<name>', 'SE name (letters, digits, _ . -)')
    .addOption(new Option('--kind <kind>', 'backend').choices(['local', 'webdav', 'tape']).makeOptionMandatory())
    .option('--path <dir>', "local, tape: absolute directory on the server's host")
    // Not --url: that is the global flag naming the sluice server this command talks to.
    .option('--endpoint <url>', 'webdav: base collection URL (another sluice, dCache, nginx)')
    .option('--token-file <file>', 'webdav: file holding the bearer token for the endpoint ("-" for stdin)')
    .option('--attr <key=value...>', 'attributes SE expressions select on, e.g. site=desy region=eu', collectPairs('--attr'))
    .option('--capacity <size>', 'bytes the SE may hold (e.g. 500G, 2TiB); free space is what is left of it', parseSize)
    .option('--flush-delay <duration>', 'tape: time a file waits in the disk buffer before it goes to tape (default 60s)', parseDuration)
    .option('--stage-delay <duration>', 'tape: time a recall from tape takes (default 30s)', parseDuration)
    .option('--max-active <n>', 'concurrent transfers into or out of this SE', parsePositive)
    .option('--no-tpc', 'webdav: never use third-party copy; stream every transfer through this server')
    .option('--json', 'print the storage element as JSON')
    .action(async (name: string, opts: SeAddOptions, cmd: Command) => {
      const spec = await seSpec(name, opts);
      const s = await withApi(cmd, (api) => api.addSe(spec));
      if (opts.json) return printJson(s);
      printLine(`added storage element ${s.name} (${s.kind}, ${attributesText(s.attributes)})`);
      printNote(`space: ${spaceText(s.space)}`);
    });

  se.command('set-attr')
    .description('set or remove attributes of a storage element (admin)')
    .argument('<name>', 'SE name')
    .argument('[key=value...]', 'attributes to set')
    .option('--unset <key...>', 'attributes to remove')
    .option('--json', 'print the storage element as JSON')
    .action(async (name: string, pairs: string[], opts: JsonOption & { unset?: string[] }, cmd: Command) => {
      const set = Object.fromEntries(pairs.map((p) => splitPair(p, 'attribute')));
      const remove = (opts.unset ?? []).flatMap((k) => k.split(',')).filter((k) => k !== '');
      if (Object.keys(set).length === 0 && remove.length === 0) {
        throw new SluiceError('BAD_REQUEST', 'nothing to change: give KEY=VALUE pairs to set and/or --unset KEY');
      }
      const s = await withApi(cmd, (api) => api.changeSeAttributes(name, set, remove));
      if (opts.json) return printJson(s);
      printLine(`${s.name}: ${attributesText(s.attributes)}`);
    });

  for (const [action, available] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    se.command(action)
      .description(
        available
          ? 'put a storage element back in service (admin)'
          : 'take a storage element out of service: no reads or new copies there; rules copy its replicas elsewhere (admin)',
      )
      .argument('<name>', 'SE name')
      .option('--json', 'print the storage element as JSON')
      .action(async (name: string, opts: JsonOption, cmd: Command) => {
        const s = await withApi(cmd, (api) => api.setSeAvailable(name, available));
        if (opts.json) return printJson(s);
        printLine(`${s.name} is ${s.available ? 'in service' : 'out of service'}`);
      });
  }

  se.command('rm')
    .description('remove a storage element (admin; refused while it holds replicas)')
    .argument('<name>', 'SE name')
    .option('--json', 'print what was removed as JSON')
    .action(async (name: string, opts: JsonOption, cmd: Command) => {
      await withApi(cmd, (api) => api.removeSe(name));
      if (opts.json) return printJson({ removed: name });
      printNote(`removed storage element ${name}`);
    });

  se.command('verify')
    .description('read every replica on an SE back and compare its ADLER32; exits 1 when one is bad (admin)')
    .argument('<name>', 'SE name')
    .option('--limit <n>', 'check at most this many replicas', parsePositive)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: JsonOption & { limit?: number }, cmd: Command) => {
      const r = await withApi(cmd, (api) => api.verifySe(name, opts.limit));
      if (r.bad.length > 0) process.exitCode = 1;
      if (opts.json) return printJson(r);
      printLine(`${name}: checked ${r.checked} replica(s), ${r.bad.length} bad, ${r.skipped} skipped (on tape only or no checksum)`);
      for (const path of r.bad) printLine(`BAD ${path}`);
      if (r.bad.length > 0) printNote('bad replicas are marked BAD and copied again from a good one where a rule asks for them');
    });
}

function registerRuleCommands(program: Command): void {
  const rule = program.command('rule').description('replication rules: how many copies of which files, on which storage elements');

  rule
    .command('create')
    .description('create a replication rule')
    .requiredOption('--path <dir>', 'directory whose files the rule covers (recursively); / for all')
    .requiredOption('--copies <n>', 'replicas to keep, each on a different SE', parsePositive)
    .requiredOption('--expression <expr>', `SE expression choosing the SEs, e.g. 'medium=tape' or 'site=desy|site=cern'`)
    .option('--source <expr>', 'SE expression the copies must be read from, e.g. site=desy')
    .option('--glob <pattern>', "only files whose path below --path matches, e.g. '**/*.nxs'")
    .option('--label <label...>', 'only files carrying all these labels')
    .option('--xattr <key=value...>', 'only files with these extended attributes', collectPairs('--xattr'))
    .option(
      '--grouping <g>',
      'all: every file on the same SEs; dataset: each directory together (default); none: file by file',
      parseGrouping,
    )
    .option('--lifetime <duration>', 'the rule expires after this (e.g. 7d, 12h, 3600); its replicas become deletable', parseLifetime)
    .option('--priority <n>', 'transfer priority 1-5, 5 highest (default 3)', parsePriority)
    .option('--activity <name>', 'label of the transfers (default "User Subscriptions")')
    .option('--comment <text>', 'why the rule exists')
    .option('--json', 'print the rule as JSON')
    .action(async (opts: RuleCreateOptions, cmd: Command) => {
      const labels = (opts.label ?? []).flatMap((l) => l.split(',')).filter((l) => l !== '');
      const spec: RuleRequest = {
        path: remotePath(opts.path),
        copies: opts.copies,
        expression: opts.expression,
        ...(opts.source !== undefined ? { source: opts.source } : {}),
        ...(opts.glob !== undefined ? { glob: opts.glob } : {}),
        ...(labels.length > 0 ? { labels } : {}),
        ...(opts.xattr !== undefined ? { xattrs: Object.fromEntries(opts.xattr) } : {}),
        ...(opts.grouping !== undefined ? { grouping: opts.grouping } : {}),
        ...(opts.lifetime !== undefined ? { lifetimeSeconds: opts.lifetime } : {}),
        ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
        ...(opts.activity !== undefined ? { activity: opts.activity } : {}),
        ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
      };
      const r = await withApi(cmd, (api) => api.createRule(spec)).catch((e: unknown) => {
        throw pointIntoExpression(e, [opts.expression, opts.source]);
      });
      if (opts.json) return printJson(r);
      printLine(`created rule ${r.id}: ${ruleText(r)}`);
      printNote(`state ${r.state}; locks ${locksText(r)}; \`sluice rule wait ${r.id.slice(0, 8)}\` waits until it is OK`);
    });

  rule
    .command('list')
    .description('list the rules the token may see, with state and lock counts')
    .option('--json', 'print JSON')
    .action(async (opts: JsonOption, cmd: Command) => {
      const list = await withApi(cmd, (api) => api.listRules());
      if (opts.json) return printJson(list);
      printTable(
        ['ID', 'STATE', 'PATH', 'COPIES', 'EXPRESSION', 'LOCKS OK/REPL/STUCK', 'EXPIRES', 'NOTE'],
        list.map((r) => [
          r.id,
          r.state,
          r.path + (r.glob !== undefined ? ` (${r.glob})` : ''),
          String(r.copies),
          r.expression,
          `${r.locks.ok}/${r.locks.replicating}/${r.locks.stuck}`,
          formatTime(r.expires),
          r.qos !== undefined ? `QoS ${r.qos}` : (r.comment ?? ''),
        ]),
      );
    });

  rule
    .command('show')
    .description('show a rule with its state and lock counts')
    .argument('<id>', 'rule id, or a unique prefix of it')
    .option('--locks', 'also list the locks (the replicas the rule holds)')
    .option('--limit <n>', 'with --locks: at most this many (default 100)', parsePositive)
    .option('--offset <n>', 'with --locks: skip this many', parseCount)
    .option('--json', 'print JSON (with --locks: {rule, locks})')
    .action(async (id: string, opts: JsonOption & { locks?: boolean; limit?: number; offset?: number }, cmd: Command) => {
      const { r, locks } = await withApi(cmd, async (api) => {
        const r = await api.getRule(await resolveRuleId(api, id));
        return { r, locks: opts.locks ? await api.ruleLocks(r.id, opts.limit, opts.offset) : undefined };
      });
      if (opts.json) return printJson(locks ? { rule: r, locks } : r);
      printRule(r);
      if (!locks) return;
      printLine('locks:');
      if (locks.length === 0) return printLine('  none');
      printTable(
        ['  PATH', 'SE', 'STATE', 'REASON'],
        locks.map((l) => [`  ${l.path}`, l.se, l.state, l.reason ?? '']),
      );
    });

  rule
    .command('rm')
    .description('delete a rule; the replicas it protected become deletable')
    .argument('<id>', 'rule id, or a unique prefix of it')
    .option('--json', 'print what was removed as JSON')
    .action(async (id: string, opts: JsonOption, cmd: Command) => {
      const removed = await withApi(cmd, async (api) => {
        const full = await resolveRuleId(api, id);
        await api.removeRule(full);
        return full;
      });
      if (opts.json) return printJson({ removed });
      printNote(`removed rule ${removed}`);
    });

  for (const [action, suspended] of [
    ['suspend', true],
    ['resume', false],
  ] as const) {
    rule
      .command(action)
      .description(suspended ? 'stop making replicas for a rule (its locks stay)' : 'make replicas for a suspended rule again')
      .argument('<id>', 'rule id, or a unique prefix of it')
      .option('--json', 'print the rule as JSON')
      .action(async (id: string, opts: JsonOption, cmd: Command) => {
        const r = await withApi(cmd, async (api) => api.suspendRule(await resolveRuleId(api, id), suspended));
        if (opts.json) return printJson(r);
        printLine(`rule ${r.id} is ${r.state}`);
      });
  }

  rule
    .command('wait')
    .description('wait until a rule is OK; exits 1 with the reason when it is STUCK or SUSPENDED, or on timeout')
    .argument('<id>', 'rule id, or a unique prefix of it')
    .option('--timeout <duration>', 'give up after this long (default 60s)', parseDuration, 60)
    .option('--json', 'print the rule as JSON when it is OK')
    .action(async (id: string, opts: JsonOption & { timeout: number }, cmd: Command) => {
      const r = await withApi(cmd, async (api) => waitForRule(api, await resolveRuleId(api, id), opts.timeout));
      if (opts.json) return printJson(r);
      printLine(`rule ${r.id} is OK: ${locksText(r)}`);
    });
}

function registerTransferCommands(program: Command): void {
  const transfers = program.command('transfers').description('copies of files between storage elements, made for rules and QoS');

  transfers
    .command('list')
    .description('list transfers, newest first')
    .option('--state <state>', `only transfers in this state: ${TRANSFER_STATES.join(', ')}`, parseTransferState)
    .option('--path <path>', 'a file, or a directory: transfers of files below it')
    .option('--rule <id>', 'only transfers made for this rule (id or unique prefix)')
    .option('--limit <n>', 'at most this many (default 100)', parsePositive)
    .option('--offset <n>', 'skip this many', parseCount)
    .option('--json', 'print JSON')
    .action(async (opts: JsonOption & Omit<TransferFilter, 'path'> & { path?: string }, cmd: Command) => {
      const list = await withApi(cmd, async (api) =>
        api.listTransfers({
          state: opts.state,
          path: opts.path === undefined ? undefined : remotePath(opts.path),
          rule: opts.rule === undefined ? undefined : await resolveRuleId(api, opts.rule),
          limit: opts.limit,
          offset: opts.offset,
        }),
      );
      if (opts.json) return printJson(list);
      printTable(
        ['ID', 'STATE', 'PATH', 'FROM', 'TO', 'SIZE', 'DONE', 'ATTEMPTS', 'MODE', 'ERROR'],
        list.map((t) => [
          t.id,
          t.state,
          t.path,
          t.source ?? '-',
          t.destination,
          formatSize(t.size),
          progressText(t),
          `${t.attempts}/${t.maxAttempts}`,
          t.mode ?? '-',
          t.error ?? '',
        ]),
      );
    });

  transfers
    .command('show')
    .description('show one transfer with its progress')
    .argument('<id>', 'transfer id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: JsonOption, cmd: Command) => {
      const t = await withApi(cmd, (api) => api.getTransfer(id));
      if (opts.json) return printJson(t);
      printTransfer(t);
    });

  transfers
    .command('cancel')
    .description('cancel a queued or running transfer')
    .argument('<id>', 'transfer id')
    .option('--json', 'print the transfer as JSON')
    .action(async (id: string, opts: JsonOption, cmd: Command) => {
      const t = await withApi(cmd, (api) => api.cancelTransfer(id));
      if (opts.json) return printJson(t);
      printLine(`transfer ${t.id} of ${t.path} to ${t.destination} is ${t.state}`);
    });
}

function registerQosCommands(program: Command): void {
  program
    .command('qos')
    .description("a file's QoS class and locality; with a target, move it there; alone, list the classes")
    .argument('[path]', 'a file')
    .argument('[target]', 'QoS class to move the file to: disk, tape, disk+tape or one the operator defined')
    .option('--json', 'print JSON')
    .action(async (path: string | undefined, target: string | undefined, opts: JsonOption, cmd: Command) => {
      if (path === undefined) {
        const classes = await withApi(cmd, (api) => api.qosClasses());
        if (opts.json) return printJson(classes);
        printTable(
          ['CLASS', 'RULES'],
          classes.map((c) => [c.name, c.rules.map((r) => `${r.copies} on ${r.expression}`).join(' + ')]),
        );
        return;
      }
      const file = remotePath(path);
      const p = await withApi(cmd, async (api) => {
        if (target !== undefined) await api.transitionQos(file, target);
        return api.placementOf(file);
      });
      if (opts.json) return printJson({ path: file, fileLocality: p.fileLocality, currentQos: p.currentQos, targetQos: p.targetQos });
      printFields([
        ['path', file],
        ['qos', p.currentQos],
        ...(p.targetQos !== undefined ? ([['target qos', `${p.targetQos} (transition running)`]] as [string, string][]) : []),
        ['locality', p.fileLocality],
      ]);
      if (target !== undefined && p.targetQos === undefined && p.currentQos !== target) {
        printNote(`transition to ${target} requested`);
      }
    });

  program
    .command('replicas')
    .description("a file's replicas: on which SEs, in which state, online or only on tape")
    .argument('<path>', 'a file')
    .option('--json', 'print JSON')
    .action(async (path: string, opts: JsonOption, cmd: Command) => {
      const file = remotePath(path);
      const p = await withApi(cmd, (api) => api.placementOf(file));
      if (opts.json) return printJson({ path: file, fileLocality: p.fileLocality, currentQos: p.currentQos, replicas: p.replicas });
      printTable(
        ['SE', 'STATE', 'ONLINE', 'CREATED', 'VERIFIED', 'PINNED UNTIL', 'REASON'],
        p.replicas.map((r) => [
          r.se,
          r.state,
          r.online ? 'yes' : 'no',
          formatTime(r.created),
          formatTime(r.verified),
          formatTime(r.pinnedUntil),
          r.reason ?? '',
        ]),
      );
      printNote(`${file}: ${p.fileLocality}, QoS ${p.currentQos}${p.targetQos !== undefined ? ` → ${p.targetQos}` : ''}`);
    });
}

// ---- request bodies from flags -------------------------------------------------------------------

/** What each SE kind takes beyond the common flags: a flag of another kind is a mistake worth saying. */
const KIND_FLAGS: Record<SeSpec['kind'], readonly string[]> = {
  local: ['path'],
  tape: ['path', 'flushDelay', 'stageDelay'],
  webdav: ['endpoint', 'tokenFile', 'tpc'],
};
const FLAG_NAMES: Record<string, string> = {
  path: '--path',
  endpoint: '--endpoint',
  tokenFile: '--token-file',
  flushDelay: '--flush-delay',
  stageDelay: '--stage-delay',
  tpc: '--no-tpc',
};

export async function seSpec(name: string, o: SeAddOptions): Promise<SeSpec> {
  const given = Object.keys(FLAG_NAMES).filter((k) => (k === 'tpc' ? o.tpc === false : o[k as keyof SeAddOptions] !== undefined));
  const foreign = given.filter((k) => !KIND_FLAGS[o.kind].includes(k));
  if (foreign.length > 0) {
    throw new SluiceError('BAD_REQUEST', `${foreign.map((k) => FLAG_NAMES[k]).join(', ')} cannot be used with --kind ${o.kind}`);
  }
  const common = {
    name,
    ...(o.attr !== undefined ? { attributes: Object.fromEntries(o.attr) } : {}),
    ...(o.capacity !== undefined ? { capacityBytes: o.capacity } : {}),
    ...(o.maxActive !== undefined ? { maxActiveTransfers: o.maxActive } : {}),
  };
  if (o.kind === 'webdav') {
    if (o.endpoint === undefined) throw new SluiceError('BAD_REQUEST', 'a webdav SE needs --endpoint URL');
    const token = o.tokenFile !== undefined ? await readToken(o.tokenFile) : undefined;
    return {
      ...common,
      kind: 'webdav',
      url: o.endpoint,
      ...(token !== undefined ? { token } : {}),
      ...(o.tpc === false ? { thirdPartyCopy: 'never' as const } : {}),
    };
  }
  if (o.path === undefined) throw new SluiceError('BAD_REQUEST', `a ${o.kind} SE needs --path DIR (a directory on the server's host)`);
  if (!isAbsolute(o.path)) {
    throw new SluiceError('BAD_REQUEST', `--path ${o.path}: give an absolute path (a directory on the server's host)`);
  }
  if (o.kind === 'local') return { ...common, kind: 'local', path: o.path };
  return {
    ...common,
    kind: 'tape',
    path: o.path,
    ...(o.flushDelay !== undefined ? { flushDelaySeconds: o.flushDelay } : {}),
    ...(o.stageDelay !== undefined ? { stageDelaySeconds: o.stageDelay } : {}),
  };
}

async function readToken(file: string): Promise<string> {
  let text: string;
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new SluiceError('BAD_REQUEST', `--token-file ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    });
  }
  const token = text.trim();
  if (token === '') throw new SluiceError('BAD_REQUEST', `--token-file ${file} is empty`);
  return token;
}

/**
 * A rule id as given: a full id, or a prefix that names one rule (as `rule list` shows them, the
 * first block of a UUID is enough).
 */
async function resolveRuleId(api: PlacementApi, id: string): Promise<string> {
  if (UUID_RE.test(id)) return id.toLowerCase();
  const prefix = id.toLowerCase();
  if (!/^[0-9a-f-]+$/.test(prefix)) throw new SluiceError('NOT_FOUND', `no rule ${id}`);
  const matches = (await api.listRules()).filter((r) => r.id.startsWith(prefix));
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length === 0) throw new SluiceError('NOT_FOUND', `no rule ${id}`);
  throw new SluiceError('BAD_REQUEST', `${id} is the start of ${matches.length} rule ids; give more of it`);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const POLL_MS = 250;

/** Polls a rule until it is OK. STUCK and SUSPENDED end the wait: neither becomes OK by waiting alone. */
async function waitForRule(api: PlacementApi, id: string, timeoutSeconds: number): Promise<Rule> {
  const end = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const r = await api.getRule(id);
    if (r.state === 'OK') return r;
    if (r.state === 'STUCK')
      throw new SluiceError('CONFLICT', `rule ${id} is STUCK: ${r.reason ?? 'no reason recorded'} (locks ${locksText(r)})`);
    if (r.state === 'SUSPENDED') throw new SluiceError('CONFLICT', `rule ${id} is SUSPENDED; \`sluice rule resume ${id}\` first`);
    if (Date.now() >= end) {
      throw new SluiceError('UNAVAILABLE', `rule ${id} is still ${r.state} after ${timeoutSeconds} s (locks ${locksText(r)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, Math.max(0, end - Date.now()))));
  }
}

/** The server names the position in the expression it quotes; show it under that expression too. */
function pointIntoExpression(e: unknown, expressions: (string | undefined)[]): unknown {
  if (!(e instanceof SluiceError) || !e.message.startsWith('SE expression ')) return e;
  const at = /at position (\d+)/.exec(e.message);
  const expression = expressions.find((x) => x !== undefined && e.message.startsWith(`SE expression "${x}": `));
  if (!at || expression === undefined) return e;
  const position = Number(at[1]);
  return new SluiceError(e.code, `${e.message}\n  ${expression}\n  ${' '.repeat(position)}^`, e.details);
}

// ---- option parsers ------------------------------------------------------------------------------

const TRANSFER_STATE_SET: Record<TransferState, true> = {
  QUEUED: true,
  STAGING: true,
  ACTIVE: true,
  DONE: true,
  FAILED: true,
  CANCELLED: true,
};
const TRANSFER_STATES = Object.keys(TRANSFER_STATE_SET);

function parseTransferState(value: string): TransferState {
  const state = value.toUpperCase();
  if (!TRANSFER_STATES.includes(state)) throw new InvalidArgumentError(`expected one of ${TRANSFER_STATES.join(', ')}`);
  return state as TransferState;
}

function parseGrouping(value: string): RuleSpec['grouping'] {
  const g = value.toUpperCase();
  if (g !== 'ALL' && g !== 'DATASET' && g !== 'NONE') throw new InvalidArgumentError('expected all, dataset or none');
  return g;
}

const DURATION_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** Seconds from 30, 0.5, 30s, 15m, 12h, 7d, 2w. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw]?)$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration such as 30, 0.5, 30s, 15m, 12h, 7d or 2w; got ${value}`);
  return Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!;
}

function parseLifetime(value: string): number {
  const seconds = parseDuration(value);
  if (!Number.isInteger(seconds) || seconds < 1)
    throw new InvalidArgumentError(`a lifetime is a whole number of seconds ≥ 1; got ${value}`);
  return seconds;
}

function parsePriority(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 5) throw new InvalidArgumentError(`expected a priority from 1 to 5 (5 highest), got ${value}`);
  return n;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive whole number, got ${value}`);
  return n;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number ≥ 0, got ${value}`);
  return n;
}

/** KEY=VALUE with a non-empty key and value. */
export function splitPair(text: string, what: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0 || eq === text.length - 1) throw new SluiceError('BAD_REQUEST', `${what} "${text}": expected KEY=VALUE`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** A variadic KEY=VALUE option: each value is checked as it comes, so commander names the flag. */
function collectPairs(flag: string): (value: string, previous: [string, string][] | undefined) => [string, string][] {
  return (value, previous) => {
    const eq = value.indexOf('=');
    if (eq <= 0 || eq === value.length - 1) throw new InvalidArgumentError(`expected KEY=VALUE for ${flag}, got ${value}`);
    return [...(previous ?? []), [value.slice(0, eq), value.slice(eq + 1)]];
  };
}

// ---- printing ------------------------------------------------------------------------------------

function printFields(rows: [string, string][]): void {
  printTable(
    undefined,
    rows.map(([k, v]) => [k + ':', v]),
  );
}

function attributesText(attributes: Record<string, string>): string {
  return (
    Object.entries(attributes)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '-'
  );
}

function spaceText(s: SeSpace): string {
  const total = s.total > 0 ? formatSize(s.total) : 'unknown';
  return `${formatSize(s.used)} used by ${s.files} replica(s), ${formatSize(s.free)} free of ${total}`;
}

function printSe(s: StorageElement): void {
  const spec = s.spec as Record<string, unknown>;
  const rows: [string, string][] = [
    ['name', s.name + (s.landing ? ' (landing SE: uploads arrive here)' : '')],
    ['kind', s.kind],
    ['status', s.available ? 'in service' : 'out of service (no reads or new copies; rules copy its replicas elsewhere)'],
    ['attributes', attributesText(s.attributes)],
  ];
  if (typeof spec.path === 'string') rows.push(['path', spec.path]);
  if (typeof spec.url === 'string') rows.push(['url', spec.url]);
  if (spec.token !== undefined) rows.push(['token', String(spec.token)]);
  if (s.kind === 'webdav') rows.push(['third-party copy', String(spec.thirdPartyCopy ?? 'auto')]);
  if (s.kind === 'tape') {
    rows.push(['flush delay', `${Number(spec.flushDelaySeconds ?? 60)} s`]);
    rows.push(['stage delay', `${Number(spec.stageDelaySeconds ?? 30)} s`]);
  }
  if (typeof spec.capacityBytes === 'number') rows.push(['capacity', `${spec.capacityBytes} (${formatSize(spec.capacityBytes)})`]);
  if (typeof spec.maxActiveTransfers === 'number') rows.push(['max active transfers', String(spec.maxActiveTransfers)]);
  rows.push(['space', spaceText(s.space)], ['created', formatTime(s.created)]);
  printFields(rows);
}

function locksText(r: Rule): string {
  return `${r.locks.ok} OK, ${r.locks.replicating} replicating, ${r.locks.stuck} stuck`;
}

/** "2 copies of /beam (**\/*.nxs) on medium=tape, grouping DATASET" */
function ruleText(r: Rule): string {
  return `${r.copies} cop${r.copies === 1 ? 'y' : 'ies'} of ${r.path}${r.glob !== undefined ? ` (${r.glob})` : ''} on ${r.expression}, grouping ${r.grouping}`;
}

function printRule(r: Rule): void {
  const rows: [string, string][] = [
    ['id', r.id],
    ['state', r.state + (r.reason !== undefined ? ` (${r.reason})` : '')],
    ['files', `${r.path}${r.glob !== undefined ? `, matching ${r.glob}` : ''}`],
  ];
  if (r.labels.length > 0) rows.push(['labels', r.labels.join(', ')]);
  if (Object.keys(r.xattrs).length > 0) rows.push(['xattrs', attributesText(r.xattrs)]);
  rows.push(
    ['copies', String(r.copies)],
    ['expression', r.expression],
    ...(r.source !== undefined ? ([['source', r.source]] as [string, string][]) : []),
    ['grouping', r.grouping],
    ['locks', locksText(r)],
    ['priority', String(r.priority)],
    ['activity', r.activity],
  );
  if (r.qos !== undefined)
    rows.push(['qos', `${r.qos}${r.completed !== undefined ? `, reached ${formatTime(r.completed)}` : ' (transition running)'}`]);
  rows.push(
    ['expires', r.expires !== undefined ? formatTime(r.expires) : 'never'],
    ['owner', r.owner],
    ['comment', r.comment ?? '-'],
    ['created', formatTime(r.created)],
    ['updated', formatTime(r.updated)],
  );
  printFields(rows);
}

/** Bytes copied as a percentage of the file; a finished empty file is 100%. */
function progressText(t: Transfer): string {
  if (t.size === 0) return t.state === 'DONE' ? '100%' : '0%';
  return `${Math.floor((100 * Math.min(t.bytesDone, t.size)) / t.size)}%`;
}

function printTransfer(t: Transfer): void {
  printFields([
    ['id', t.id],
    ['state', t.state],
    ['path', t.path],
    ['from', t.source ?? '- (chosen when it starts)'],
    ['to', t.destination],
    ['size', `${t.size} (${formatSize(t.size)})`],
    ['progress', `${progressText(t)} (${t.bytesDone} bytes)`],
    ['adler32', t.adler32 ?? '-'],
    ['mode', t.mode ?? '-'],
    ['attempts', `${t.attempts} of ${t.maxAttempts}`],
    ...(t.state === 'QUEUED' && t.attempts > 0 ? ([['next attempt', formatTime(t.nextAttempt)]] as [string, string][]) : []),
    ['priority', String(t.priority)],
    ['activity', t.activity],
    ['rule', t.ruleId ?? '-'],
    ['error', t.error ?? '-'],
    ['created', formatTime(t.created)],
    ['started', formatTime(t.started)],
    ['finished', formatTime(t.finished)],
  ]);
}
