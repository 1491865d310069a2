// `sluice events --follow PATH`: a dCache-style channel with one inotify subscription, printed one
// line per storage event until Ctrl-C, which deletes the channel. Reconnects with Last-Event-ID.
import { Command, InvalidArgumentError } from 'commander';
import { SluiceError } from '../errors.js';
import type { SluiceClient, SseMessage } from './client.js';
import { joinRemote, remotePath, withClient } from './connect.js';
import { printJsonLine, printLine, printNote } from './output.js';

interface FollowOptions {
  follow: string;
  recursive?: boolean;
  since?: string;
  flags?: string[];
  json?: boolean;
}

interface InotifyData {
  event?: { name?: string; path?: string; cookie?: string; mask?: string[] };
  subscription?: string;
}

const RECONNECT_DELAY_MS = 1000;
const RECONNECT_ATTEMPTS = 30;

export function registerEventCommands(program: Command): void {
  program
    .command('events')
    .description('follow storage events under a path')
    .requiredOption('-f, --follow <path>', 'namespace path to watch')
    .option('-r, --recursive', 'also watch everything below the path')
    .option('--since <id>', 'first replay the events after this event id (sent as Last-Event-ID)')
    .option('--flags <flags>', 'comma-separated inotify flags, e.g. IN_CLOSE_WRITE,IN_MOVE (default: all)', parseFlags)
    .option('--json', 'print each event as one JSON line')
    .action(async (opts: FollowOptions, cmd: Command) => {
      await withClient(cmd, (c) => follow(c, opts));
    });
}

async function follow(client: SluiceClient, opts: FollowOptions): Promise<void> {
  const path = remotePath(opts.follow);
  const channel = await client.createChannel();
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await client.subscribeInotify(channel, {
      path,
      ...(opts.flags ? { flags: opts.flags } : {}),
      ...(opts.recursive ? { recursive: true } : {}),
      ...(opts.since !== undefined ? { since: Number(opts.since) } : {}),
    });
    await stream(client, channel, path, opts, stop.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.deleteChannel(channel).catch((e: unknown) => printNote(`could not delete channel ${channel}: ${(e as Error).message}`));
  }
}

async function stream(client: SluiceClient, channel: string, path: string, opts: FollowOptions, signal: AbortSignal): Promise<void> {
  let lastEventId = opts.since;
  let failures = 0;
  for (;;) {
    try {
      const messages = client.eventStream(channel, {
        ...(lastEventId !== undefined ? { lastEventId } : {}),
        signal,
        onOpen: () => {
          failures = 0;
          printNote(`following ${path}${opts.recursive ? ' recursively' : ''} on ${channel} (Ctrl-C to stop)`);
        },
      });
      for await (const message of messages) {
        if (message.id !== undefined) lastEventId = message.id;
        if (!show(message, path, opts)) return;
      }
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof SluiceError) throw e;
      if (++failures > RECONNECT_ATTEMPTS) throw e;
      printNote(`stream interrupted (${(e as Error).message}); reconnecting`);
    }
    if (signal.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_DELAY_MS));
  }
}

/** Prints one message; returns false when the stream cannot continue. */
function show(message: SseMessage, path: string, opts: FollowOptions): boolean {
  const data = parseData(message.data);
  if (opts.json)
    printJsonLine({ id: message.id ?? null, type: message.event, ...(typeof data === 'object' && data !== null ? data : { data }) });
  if (message.event === 'SYSTEM') return system((data as { type?: string } | undefined)?.type);
  if (opts.json) return true;
  if (message.event !== 'inotify') {
    printLine(`${message.id ?? '-'} ${message.event} ${message.data}`);
    return true;
  }
  const event = (data as InotifyData | undefined)?.event ?? {};
  const where = event.path ?? (event.name === undefined ? path : event.name.startsWith('/') ? event.name : joinRemote(path, event.name));
  printLine([message.id ?? '-', (event.mask ?? []).join(','), where, ...(event.cookie ? [event.cookie] : [])].join(' '));
  return true;
}

function system(type: string | undefined): boolean {
  switch (type) {
    case 'EVENT_LOSS':
      printNote('warning: events were lost (the requested id is no longer in the log)');
      return true;
    case 'SUBSCRIPTION_CLOSED':
      printNote('the subscription was closed by the server');
      return true;
    case 'SHUTDOWN':
      printNote('the server is shutting down; will reconnect');
      return true;
    case 'COMPETING_CLIENT':
      printNote('another client connected to this channel; stopping');
      return false;
    default:
      return true;
  }
}

function parseData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function parseFlags(value: string): string[] {
  const flags = value
    .split(',')
    .map((f) => f.trim().toUpperCase())
    .filter((f) => f !== '');
  if (flags.length === 0) throw new InvalidArgumentError('expected at least one flag');
  return flags.map((f) => (f.startsWith('IN_') ? f : `IN_${f}`));
}
