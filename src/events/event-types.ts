// The event types a channel can subscribe to, with the descriptions and JSON Schemas served under
// /events/eventTypes. The schemas are dCache's (draft-06), with sluice's extensions marked below;
// the placement type is sluice's own.
import { MAXIMUM_DELAY, MAXIMUM_HZ, MINIMUM_DELAY, MINIMUM_HZ, DEFAULT_MESSAGE } from './metronome.js';
import { SELECTOR_FLAGS } from './inotify.js';
import { PLACEMENT_TYPES } from './types.js';

export const EVENT_TYPES = ['inotify', 'metronome', 'placement'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const isEventType = (t: string): t is EventType => (EVENT_TYPES as readonly string[]).includes(t);

const DRAFT_06 = 'http://json-schema.org/draft-06/schema#';

const maskOf = (items: string[], max = 2) => ({
  title: 'One or more flags that describe this event',
  description: 'The semantics are based on inotify(7)',
  type: 'array',
  minitems: 1,
  maxitems: max,
  items: { type: 'string', enum: items },
});

const inotifySelector = {
  $id: 'http://dcache.org/frontend/events/namespaceSelectors#',
  $schema: DRAFT_06,
  description: 'path of a directory to watch',
  type: 'object',
  required: ['path'],
  properties: {
    path: {
      title: 'The path of the file or directory to watch',
      description: 'The target must exist when the request is made.  The watch will follow the target, if it is moved.',
      pattern: '^/(.*[^/])?$',
      type: 'string',
    },
    flags: {
      title: 'Control which events are selected',
      description: 'See inotify(7) for the meaning of these flags.',
      type: 'array',
      items: { type: 'string', enum: [...SELECTOR_FLAGS] },
    },
    // sluice extension.
    recursive: {
      title: 'Watch the whole subtree',
      description: 'sluice extension: report events anywhere below the directory, named by their path relative to it.',
      type: 'boolean',
      default: false,
    },
    // sluice extension.
    since: {
      title: 'Also cover history',
      description: 'sluice extension: the subscription also selects events after this event id still in the durable log.',
      type: 'integer',
      minimum: 0,
    },
  },
  additionalProperties: false,
};

const inotifyEvent = {
  $id: 'http://dcache.org/frontend/events/namespaceEvents#',
  $schema: DRAFT_06,
  description: 'the description of a change in the namespace',
  type: 'object',
  oneOf: [
    { $ref: '#/definitions/nonMoveChildEvent' },
    { $ref: '#/definitions/moveChildEvent' },
    { $ref: '#/definitions/selfEvent' },
    { $ref: '#/definitions/managementEvent' },
  ],
  definitions: {
    childEvent: {
      required: ['name'],
      properties: {
        name: {
          title: 'The name of the target',
          description: 'The filename of the filesystem object that triggered this event.',
          type: 'string',
          minLength: 1,
        },
      },
    },
    nonMoveChildEvent: {
      allOf: [
        { $ref: '#/definitions/childEvent' },
        {
          properties: {
            mask: maskOf([
              'IN_ACCESS',
              'IN_ATTRIB',
              'IN_CLOSE_WRITE',
              'IN_CLOSE_NOWRITE',
              'IN_CREATE',
              'IN_DELETE',
              'IN_MODIFY',
              'IN_OPEN',
              'IN_ISDIR',
            ]),
          },
        },
      ],
    },
    moveChildEvent: {
      allOf: [
        { $ref: '#/definitions/childEvent' },
        {
          required: ['mask', 'cookie'],
          properties: {
            mask: maskOf(['IN_MOVED_FROM', 'IN_MOVED_TO', 'IN_ISDIR']),
            cookie: {
              title: 'move association',
              description: 'An id that is the same for the MOVED_FROM and MOVED_TO events from a single namespace operation.',
              type: 'string',
              minLength: 1,
            },
          },
        },
      ],
    },
    // sluice extension: like inotify(7), changes to the watched object itself (IN_ATTRIB, IN_OPEN, …) come without name.
    selfEvent: {
      required: ['mask'],
      properties: {
        mask: maskOf([
          'IN_DELETE_SELF',
          'IN_MOVE_SELF',
          'IN_ACCESS',
          'IN_ATTRIB',
          'IN_CLOSE_WRITE',
          'IN_CLOSE_NOWRITE',
          'IN_MODIFY',
          'IN_OPEN',
          'IN_ISDIR',
        ]),
      },
    },
    managementEvent: { required: ['mask'], properties: { mask: maskOf(['IN_IGNORED', 'IN_Q_OVERFLOW', 'IN_UNMOUNT'], 3) } },
  },
};

const metronomeSelector = {
  $id: 'http://dcache.org/frontend/events/metronomeSelectors#',
  $schema: DRAFT_06,
  type: 'object',
  properties: {
    frequency: {
      title: 'The trigger frequency',
      description: 'How often events are fired, in Hz.',
      type: 'number',
      minimum: MINIMUM_HZ,
      maximum: MAXIMUM_HZ,
    },
    delay: {
      title: 'The delay between successive triggers',
      description: 'The time between two triggers, in seconds.',
      type: 'number',
      minimum: MINIMUM_DELAY,
      maximum: MAXIMUM_DELAY,
    },
    message: {
      title: 'The event payload',
      description:
        "The data sent with each event.  A ${username} is replaced by the user's username and ${count} is replaced by the message number.",
      minLength: 1,
      type: 'string',
      default: DEFAULT_MESSAGE,
    },
    count: {
      title: 'The number of events',
      description:
        'The number of events to generate before cancelling the subscription.  If not specified then the events are supplied until the subscription is explicitly cancelled by the client.',
      type: 'number',
    },
  },
  oneOf: [{ required: ['frequency'] }, { required: ['delay'] }],
  additionalProperties: false,
};

const metronomeEvent = { $id: 'http://dcache.org/frontend/events/metronomeEvents#', $schema: DRAFT_06, type: 'string' };

// sluice extension: the whole event type.
const placementSelector = {
  $id: 'https://sluice.dev/events/placementSelectors#',
  $schema: DRAFT_06,
  description: 'path of a file or directory whose placement events are selected',
  type: 'object',
  required: ['path'],
  properties: {
    path: {
      title: 'The path of the file or directory to watch',
      description:
        'The target must exist when the request is made.  The subscription follows the target if it is moved and ends when it is deleted.',
      pattern: '^/(.*[^/])?$',
      type: 'string',
    },
    recursive: {
      title: 'Watch the whole subtree',
      description:
        'For a directory: also report files in its subdirectories, named by their path relative to it.  Defaults to true for a directory; true is refused for a file.',
      type: 'boolean',
    },
    types: {
      title: 'Control which events are selected',
      description: 'The placement event types to report; all of them when absent.',
      type: 'array',
      minItems: 1,
      items: { type: 'string', enum: [...PLACEMENT_TYPES] },
    },
    since: {
      title: 'Also cover history',
      description: 'The subscription also selects events after this event id still in the durable log.',
      type: 'integer',
      minimum: 0,
    },
  },
  additionalProperties: false,
};

const str = { type: 'string', minLength: 1 };
const placementEvent = {
  $id: 'https://sluice.dev/events/placementEvents#',
  $schema: DRAFT_06,
  description: 'a change in the placement of a file (its replicas, its QoS) or in the state of a replication rule',
  type: 'object',
  required: ['type'],
  properties: {
    type: { title: 'What happened', type: 'string', enum: [...PLACEMENT_TYPES] },
    name: {
      title: 'The name of the target',
      description:
        'The path of the file (for RULE_STATE: of the rule scope) relative to the watched directory; absent when the event is about the watched object itself.',
      type: 'string',
      minLength: 1,
    },
    fileId: { title: 'The file id', description: 'Stable across renames (the pnfsId).', ...str },
    se: { title: 'The storage element of the replica', ...str },
    size: { title: 'The size of the file in bytes', type: 'integer', minimum: 0 },
    rule: { title: 'The replication rule', ...str },
    transfer: { title: 'The transfer that made the replica', ...str },
    reason: { title: 'Why the replica was removed or is bad, or why the rule changed state', type: 'string' },
    pinnedUntil: { title: 'When the pin of the staged copy ends', description: 'Milliseconds since the epoch.', type: 'integer' },
    qos: { title: 'The QoS class now', ...str },
    previous: { title: 'The QoS class or rule state before', type: 'string' },
    state: { title: 'The rule state now', type: 'string', enum: ['OK', 'REPLICATING', 'STUCK', 'SUSPENDED'] },
  },
  oneOf: [
    { properties: { type: { const: 'REPLICA_AVAILABLE' } }, required: ['fileId', 'se', 'size'] },
    { properties: { type: { const: 'REPLICA_REMOVED' } }, required: ['fileId', 'se', 'reason'] },
    { properties: { type: { const: 'REPLICA_BAD' } }, required: ['fileId', 'se', 'reason'] },
    { properties: { type: { const: 'REPLICA_FLUSHED' } }, required: ['fileId', 'se'] },
    { properties: { type: { const: 'REPLICA_STAGED' } }, required: ['fileId', 'se', 'pinnedUntil'] },
    { properties: { type: { const: 'QOS_CHANGED' } }, required: ['fileId', 'qos', 'previous'] },
    { properties: { type: { const: 'RULE_STATE' } }, required: ['rule', 'state', 'previous'] },
  ],
};

export const EVENT_TYPE_INFO: Record<EventType, { description: string; selector: object; event: object }> = {
  inotify: { description: 'notification of namespace activity, modelled after inotify(7)', selector: inotifySelector, event: inotifyEvent },
  metronome: { description: 'a configurable stream of messages', selector: metronomeSelector, event: metronomeEvent },
  placement: {
    description: 'replicas added, removed or bad, flushed to or staged from tape, QoS and rule state changes (sluice extension)',
    selector: placementSelector,
    event: placementEvent,
  },
};
