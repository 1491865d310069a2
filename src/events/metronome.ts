// The metronome event type of the events API: a configurable stream of messages, for testing clients.
// Ticks are ephemeral: they are sent to a connected client and never stored.
import { SluiceError } from '../errors.js';

export const MINIMUM_HZ = 1 / 300;
export const MAXIMUM_HZ = 1_000_000;
export const MINIMUM_DELAY = 1e-6;
export const MAXIMUM_DELAY = 300;
export const DEFAULT_MESSAGE = 'tick';

/** The selector as supplied; GET echoes exactly these fields. */
export interface MetronomeSelector {
  frequency?: number;
  delay?: number;
  message?: string;
  count?: number;
}

export interface ParsedMetronomeSelector {
  periodMs: number;
  message: string;
  /** 0: unlimited. */
  count: number;
  echo: MetronomeSelector;
}

const badSelector = (msg: string) => new SluiceError('BAD_SELECTOR', `Bad selector: ${msg}`);
const fmt = (n: number) => String(Number(n.toPrecision(6)));

export function parseMetronomeSelector(body: unknown): ParsedMetronomeSelector {
  if (body === undefined || body === null) throw new SluiceError('BAD_SELECTOR', 'Missing JSON entity in POST request');
  if (typeof body !== 'object' || Array.isArray(body))
    throw new SluiceError('BAD_SELECTOR', 'Bad selector value: selector must be a JSON object');
  const raw = body as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!['frequency', 'delay', 'message', 'count'].includes(key))
      throw new SluiceError('BAD_SELECTOR', `Bad selector value: Unrecognized field "${key}"`);
  }
  for (const key of ['frequency', 'delay', 'count'] as const) {
    if (raw[key] !== undefined && (typeof raw[key] !== 'number' || !Number.isFinite(raw[key]))) {
      throw new SluiceError('BAD_SELECTOR', `Bad selector value: "${key}" must be a number`);
    }
  }
  if (raw.message !== undefined && typeof raw.message !== 'string')
    throw new SluiceError('BAD_SELECTOR', 'Bad selector value: "message" must be a string');
  const sel = raw as MetronomeSelector;
  if (sel.frequency === undefined && sel.delay === undefined) throw badSelector('either "frequency" or "delay" must be specified');
  if (sel.frequency !== undefined && sel.delay !== undefined) throw badSelector('"frequency" and "delay" cannot both be specified');
  let periodMs: number;
  if (sel.frequency !== undefined) {
    if (sel.frequency < MINIMUM_HZ) throw badSelector(`"frequency" is too small (less than ${fmt(MINIMUM_HZ)})`);
    if (sel.frequency > MAXIMUM_HZ) throw badSelector(`"frequency" is too big (more than ${fmt(MAXIMUM_HZ)})`);
    periodMs = 1000 / sel.frequency;
  } else {
    const delay = sel.delay!;
    if (delay < MINIMUM_DELAY) throw badSelector(`"delay" is too small (less than ${fmt(MINIMUM_DELAY)})`);
    if (delay > MAXIMUM_DELAY) throw badSelector(`"delay" is too big (more than ${fmt(MAXIMUM_DELAY)})`);
    periodMs = delay * 1000;
  }
  if (sel.message !== undefined && sel.message.length === 0) throw badSelector('"message" cannot be empty');
  if (sel.count !== undefined && sel.count < 0) throw badSelector('"count" must be non-negative');
  const echo: MetronomeSelector = {};
  if (sel.frequency !== undefined) echo.frequency = sel.frequency;
  if (sel.delay !== undefined) echo.delay = sel.delay;
  if (sel.message !== undefined) echo.message = sel.message;
  if (sel.count) echo.count = sel.count;
  return { periodMs, message: sel.message ?? DEFAULT_MESSAGE, count: Math.floor(sel.count ?? 0), echo };
}

/** The message of tick number `count` (1-based) for a user. */
export function tickMessage(template: string, username: string, count: number): string {
  return template.replaceAll('${username}', username).replaceAll('${count}', String(count));
}

/**
 * Fires `onTick(n)` every period (timers fire at most every 1 ms: faster metronomes send
 * several ticks per round); calls `onDone` after `count` ticks when count > 0.
 */
export class Metronome {
  private timer: NodeJS.Timeout | undefined;
  private sent = 0;

  constructor(
    private readonly selector: ParsedMetronomeSelector,
    private readonly onTick: (n: number) => void,
    private readonly onDone: () => void,
  ) {}

  start(): void {
    const intervalMs = Math.max(1, this.selector.periodMs);
    const perRound = Math.max(1, Math.round(intervalMs / this.selector.periodMs));
    this.timer = setInterval(() => {
      for (let i = 0; i < perRound && this.timer; i++) {
        this.sent += 1;
        this.onTick(this.sent);
        // onTick may have stopped it (the subscription ended): then it is done without onDone.
        if (!this.timer) return;
        if (this.selector.count > 0 && this.sent >= this.selector.count) {
          this.stop();
          this.onDone();
        }
      }
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
