// The inotify event type of the events API: selector flags, and how one storage event becomes the
// payloads a watch reports (inotify(7) semantics: children by name, the watched object itself without
// name, the watch following moves and ending with the deletion of its target).
import { SluiceError } from '../errors.js';
import { isWithin, relativeTo } from '../storage/paths.js';
import { isInotifyFlag, type StorageEvent } from './types.js';

/** Flags a watch can select (dCache's AddWatchFlag event flags, enum order). */
export const EVENT_FLAGS = [
  'IN_ACCESS',
  'IN_ATTRIB',
  'IN_CLOSE_WRITE',
  'IN_CLOSE_NOWRITE',
  'IN_CREATE',
  'IN_DELETE',
  'IN_DELETE_SELF',
  'IN_MODIFY',
  'IN_MOVE_SELF',
  'IN_MOVED_FROM',
  'IN_MOVED_TO',
  'IN_OPEN',
] as const;
export type EventFlag = (typeof EVENT_FLAGS)[number];

const MACROS = {
  IN_ALL_EVENTS: EVENT_FLAGS,
  IN_CLOSE: ['IN_CLOSE_WRITE', 'IN_CLOSE_NOWRITE'],
  IN_MOVE: ['IN_MOVED_FROM', 'IN_MOVED_TO'],
} as const satisfies Record<string, readonly EventFlag[]>;

const CONTROL_FLAGS = ['IN_MASK_ADD', 'IN_ONESHOT', 'IN_ONLYDIR'] as const;
const UNSUPPORTED_FLAGS = ['IN_DONT_FOLLOW', 'IN_EXCL_UNLINK'] as const;

/** Every name the selector schema accepts in "flags". */
export const SELECTOR_FLAGS = [...EVENT_FLAGS, ...Object.keys(MACROS), 'IN_DONT_FOLLOW', 'IN_EXCL_UNLINK', ...CONTROL_FLAGS] as const;

/** Names in an event's mask; dCache serialises them in this (EventFlag enum) order. */
export type MaskFlag = EventFlag | 'IN_ISDIR' | 'IN_IGNORED' | 'IN_Q_OVERFLOW' | 'IN_UNMOUNT';

/**
 * What a client sends: {"path", "flags"?, "recursive"?, "since"?}. Sluice extensions: `recursive`
 * watches the subtree; `since` (a log id) makes the subscription also cover events after that id, so
 * a new channel can replay history with Last-Event-ID.
 */
export interface InotifySelector {
  path: string;
  flags?: string[];
  recursive?: boolean;
  since?: number;
}

/** A parsed selector: the event flags it selects and its control flags. */
export interface ParsedInotifySelector {
  path: string;
  flags: EventFlag[];
  maskAdd: boolean;
  oneShot: boolean;
  onlyDir: boolean;
  recursive: boolean;
  since: number | undefined;
}

/** The live state of one watch. `path` follows the target when it (or an ancestor) is moved. */
export interface Watch {
  path: string;
  isDir: boolean;
  flags: ReadonlySet<EventFlag>;
  oneShot: boolean;
  recursive: boolean;
}

/** The `event` field of an inotify SSE message; key order name, cookie, mask as dCache sends it. */
export interface InotifyPayload {
  name?: string;
  cookie?: string;
  mask: MaskFlag[];
}

export interface WatchOutcome {
  payloads: InotifyPayload[];
  /** The watch after the event; undefined when the event ended it (delete, IN_ONESHOT). */
  next: Watch | undefined;
}

const badSelector = (msg: string) => new SluiceError('BAD_SELECTOR', `Bad selector: ${msg}`);

export function parseInotifySelector(body: unknown): ParsedInotifySelector {
  if (body === undefined || body === null) throw new SluiceError('BAD_SELECTOR', 'Missing JSON entity in POST request');
  if (typeof body !== 'object' || Array.isArray(body)) throw badSelector('Bad selector value: selector must be a JSON object');
  const raw = body as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!['path', 'flags', 'recursive', 'since'].includes(key)) throw badSelector(`Bad selector value: Unrecognized field "${key}"`);
  }
  if (raw.path === undefined) throw badSelector('Missing path');
  if (typeof raw.path !== 'string' || !/^\/(.*[^/])?$/.test(raw.path)) {
    throw badSelector('Bad selector value: "path" must be an absolute path without a trailing "/"');
  }
  if (raw.recursive !== undefined && typeof raw.recursive !== 'boolean')
    throw badSelector('Bad selector value: "recursive" must be a boolean');
  if (raw.since !== undefined && !(Number.isSafeInteger(raw.since) && (raw.since as number) >= 0))
    throw badSelector('Bad selector value: "since" must be a non-negative integer event id');
  let names: string[] = [...MACROS.IN_ALL_EVENTS];
  if (raw.flags !== undefined) {
    if (!Array.isArray(raw.flags) || raw.flags.some((f) => typeof f !== 'string')) {
      throw badSelector('Bad selector value: "flags" must be an array of strings');
    }
    names = raw.flags as string[];
  }
  const unknown = names.filter((n) => !(SELECTOR_FLAGS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw badSelector(`Bad selector value: ${JSON.stringify(unknown[0])}: not one of the values accepted: [${SELECTOR_FLAGS.join(', ')}]`);
  }
  const unsupported = names.filter((n) => (UNSUPPORTED_FLAGS as readonly string[]).includes(n));
  if (unsupported.length > 0) throw badSelector(`Unsupported flags: [${[...new Set(unsupported)].join(', ')}]`);
  const flags = new Set<EventFlag>();
  for (const n of names) {
    if (n in MACROS) for (const f of MACROS[n as keyof typeof MACROS]) flags.add(f);
    else if ((EVENT_FLAGS as readonly string[]).includes(n)) flags.add(n as EventFlag);
  }
  return {
    path: raw.path,
    flags: EVENT_FLAGS.filter((f) => flags.has(f)),
    maskAdd: names.includes('IN_MASK_ADD'),
    oneShot: names.includes('IN_ONESHOT'),
    onlyDir: names.includes('IN_ONLYDIR'),
    recursive: raw.recursive === true,
    since: raw.since as number | undefined,
  };
}

/** The selector as GET echoes it: what was supplied, flags omitted when they were not given. */
export function echoSelector(body: InotifySelector): InotifySelector {
  return {
    path: body.path,
    ...(body.flags !== undefined ? { flags: body.flags } : {}),
    ...(body.recursive !== undefined ? { recursive: body.recursive } : {}),
    ...(body.since !== undefined ? { since: body.since } : {}),
  };
}

function mask(flag: MaskFlag, isDir: boolean): MaskFlag[] {
  return isDir ? [flag, 'IN_ISDIR'] : [flag];
}

/** The payload that tells a client a watch has ended. */
export const IGNORED: InotifyPayload = { mask: ['IN_IGNORED'] };

/**
 * Applies one storage event to a watch. `mayRead(path)` says whether the subscriber may learn of
 * changes to that path; refused events are not reported (and do not end an IN_ONESHOT watch), but
 * the watch still follows moves and ends on deletion.
 */
export function applyEvent(watch: Watch, event: StorageEvent, mayRead: (path: string) => boolean): WatchOutcome {
  // Placement events are not inotify's: they reach clients through their own event type.
  if (!isInotifyFlag(event.type)) return { payloads: [], next: watch };
  const type = event.type;
  const payloads: InotifyPayload[] = [];
  let next: Watch | undefined = watch;
  const report = (flag: EventFlag, payload: InotifyPayload, path: string) => {
    if (watch.flags.has(flag) && mayRead(path)) payloads.push(payload);
  };

  if (event.path === watch.path) {
    switch (type) {
      case 'IN_DELETE':
        report('IN_DELETE_SELF', { mask: ['IN_DELETE_SELF'] }, watch.path);
        next = undefined;
        break;
      case 'IN_MOVED_FROM': {
        report('IN_MOVE_SELF', { mask: mask('IN_MOVE_SELF', watch.isDir) }, watch.path);
        const to = movedTo(event);
        if (to !== undefined) next = { ...watch, path: to };
        break;
      }
      case 'IN_CREATE':
      case 'IN_MOVED_TO':
        break;
      default:
        report(type, { mask: mask(type, event.isDir) }, watch.path);
    }
  } else if (watch.isDir && isWithin(event.path, watch.path)) {
    const name = relativeTo(event.path, watch.path);
    if (watch.recursive || !name.includes('/')) {
      const cookie = type === 'IN_MOVED_FROM' || type === 'IN_MOVED_TO' ? event.cookie : undefined;
      report(type, { name, ...(cookie !== undefined ? { cookie } : {}), mask: mask(type, event.isDir) }, event.path);
    }
  } else if (type === 'IN_MOVED_FROM' && isWithin(watch.path, event.path)) {
    const to = movedTo(event);
    if (to !== undefined) next = { ...watch, path: to + watch.path.slice(event.path.length) };
  }

  if (next && watch.oneShot && payloads.length > 0) next = undefined;
  return { payloads, next };
}

function movedTo(event: StorageEvent): string | undefined {
  const to = event.data?.to;
  return typeof to === 'string' ? to : undefined;
}

/** Flags of a merged subscription: IN_MASK_ADD unions with the old flags, otherwise the new ones replace them. */
export function mergeFlags(old: readonly EventFlag[], incoming: ParsedInotifySelector): EventFlag[] {
  if (!incoming.maskAdd) return incoming.flags;
  const union = new Set([...old, ...incoming.flags]);
  return EVENT_FLAGS.filter((f) => union.has(f));
}
