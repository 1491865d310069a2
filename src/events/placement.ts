// The placement event type of the events API (a sluice extension, asked for by dCache's users):
// replicas that became available, were removed or went bad, tape flushes and stages, QoS transitions
// and rule state changes of the files below a path. Selector parsing, which events a subscription
// reports, and their payload. A placement subscription keeps to its target like an inotify watch
// (it follows renames and ends when its target is deleted); it only reports other events.
import { SluiceError } from '../errors.js';
import { isWithin, relativeTo } from '../storage/paths.js';
import type { Watch } from './inotify.js';
import { PLACEMENT_TYPES, isPlacementType, type PlacementType, type StorageEvent } from './types.js';

/**
 * What a client sends: {"path", "recursive"?, "types"?, "since"?}. `recursive` defaults to true
 * for a directory (placement is about files, usually anywhere below a dataset's directory).
 */
export interface PlacementSelector {
  path: string;
  recursive?: boolean;
  types?: string[];
  since?: number;
}

export interface ParsedPlacementSelector {
  path: string;
  /** As given; undefined means "true for a directory". */
  recursive: boolean | undefined;
  types: PlacementType[];
  since: number | undefined;
}

/**
 * The `event` field of a placement SSE message: the type, the target's `name` relative to the
 * watched directory as inotify names it (absent when the event is about the watched object itself),
 * then what the event recorded (fileId, se, size, rule, reason, pinnedUntil, qos, previous, state …).
 */
export interface PlacementPayload {
  type: PlacementType;
  name?: string;
  [fact: string]: unknown;
}

const FIELDS = ['path', 'recursive', 'types', 'since'];

const badSelector = (msg: string) => new SluiceError('BAD_SELECTOR', `Bad selector: ${msg}`);

export function parsePlacementSelector(body: unknown): ParsedPlacementSelector {
  if (body === undefined || body === null) throw new SluiceError('BAD_SELECTOR', 'Missing JSON entity in POST request');
  if (typeof body !== 'object' || Array.isArray(body)) throw badSelector('Bad selector value: selector must be a JSON object');
  const raw = body as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!FIELDS.includes(key)) throw badSelector(`Bad selector value: Unrecognized field "${key}"`);
  }
  if (raw.path === undefined) throw badSelector('Missing path');
  if (typeof raw.path !== 'string' || !/^\/(.*[^/])?$/.test(raw.path)) {
    throw badSelector('Bad selector value: "path" must be an absolute path without a trailing "/"');
  }
  if (raw.recursive !== undefined && typeof raw.recursive !== 'boolean')
    throw badSelector('Bad selector value: "recursive" must be a boolean');
  if (raw.since !== undefined && !(Number.isSafeInteger(raw.since) && (raw.since as number) >= 0))
    throw badSelector('Bad selector value: "since" must be a non-negative integer event id');
  let types: PlacementType[] = [...PLACEMENT_TYPES];
  if (raw.types !== undefined) {
    if (!Array.isArray(raw.types) || raw.types.length === 0 || raw.types.some((t) => typeof t !== 'string')) {
      throw badSelector('Bad selector value: "types" must be a non-empty array of strings');
    }
    const unknown = (raw.types as string[]).find((t) => !isPlacementType(t));
    if (unknown !== undefined) {
      throw badSelector(`Bad selector value: ${JSON.stringify(unknown)}: not one of the values accepted: [${PLACEMENT_TYPES.join(', ')}]`);
    }
    const wanted = new Set(raw.types as string[]);
    types = PLACEMENT_TYPES.filter((t) => wanted.has(t));
  }
  return { path: raw.path, recursive: raw.recursive as boolean | undefined, types, since: raw.since as number | undefined };
}

/** The selector as GET echoes it: what was supplied. */
export function echoPlacementSelector(body: PlacementSelector): PlacementSelector {
  return {
    path: body.path,
    ...(body.recursive !== undefined ? { recursive: body.recursive } : {}),
    ...(body.types !== undefined ? { types: body.types } : {}),
    ...(body.since !== undefined ? { since: body.since } : {}),
  };
}

/** The types a stored subscription selects (from its echoed selector, which was valid when stored). */
export function placementTypesOf(echo: unknown): ReadonlySet<PlacementType> {
  return new Set(parsePlacementSelector(echo).types);
}

/**
 * The watch that keeps a placement subscription on its target. It selects no inotify flag, so the
 * inotify rules only move it with renames and end it with the deletion of its target.
 */
export function placementWatch(selector: ParsedPlacementSelector, path: string, isDir: boolean, targetType: string): Watch {
  if (selector.recursive === true && !isDir) throw new SluiceError('BAD_SELECTOR', `Failed condition: recursive with ${targetType} target`);
  return { path, isDir, flags: new Set(), oneShot: false, recursive: isDir && selector.recursive !== false };
}

/**
 * The payload a subscription reports for one storage event, if any: a placement event of a selected
 * type about the watched object or (for a directory) an object below it, within the recursion, that
 * the subscriber may read. RULE_STATE names the rule's scope: reported when that is the watched
 * directory or below it.
 */
export function placementPayload(
  watch: Watch,
  types: ReadonlySet<PlacementType>,
  e: StorageEvent,
  mayRead: (path: string) => boolean,
): PlacementPayload | undefined {
  if (!isPlacementType(e.type) || !types.has(e.type)) return undefined;
  let name: string | undefined;
  if (e.path !== watch.path) {
    if (!watch.isDir || !isWithin(e.path, watch.path)) return undefined;
    name = relativeTo(e.path, watch.path);
    if (!watch.recursive && name.includes('/')) return undefined;
  }
  if (!mayRead(e.path)) return undefined;
  const facts = Object.fromEntries(Object.entries(e.data ?? {}).filter(([k]) => k !== 'type' && k !== 'name'));
  return { type: e.type, ...(name !== undefined ? { name } : {}), ...facts };
}
