// Test support: a real SSE client (the `eventsource` package) on a sluice channel, recording every
// message it receives so tests can wait for and assert on exact sequences.
import { EventSource } from 'eventsource';

export interface ReceivedEvent {
  type: string;
  /** The last event id the client knows after this message (SSE keeps the previous one when a message has none). */
  lastEventId: string;
  data: unknown;
}

export interface SseClient {
  events: ReceivedEvent[];
  source: EventSource;
  /** Resolves once `count` messages matching `pred` have arrived (or rejects after timeoutMs). */
  waitFor(pred: (e: ReceivedEvent) => boolean, count?: number, timeoutMs?: number): Promise<ReceivedEvent[]>;
  close(): void;
}

export async function connectSse(channelUrl: string, token: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const events: ReceivedEvent[] = [];
  const source = new EventSource(channelUrl, {
    fetch: (input, init) =>
      fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${token}`, ...headers } }),
  });
  for (const type of ['inotify', 'metronome', 'placement', 'SYSTEM']) {
    source.addEventListener(type, (e) => events.push({ type, lastEventId: e.lastEventId, data: JSON.parse(e.data as string) as unknown }));
  }
  await new Promise<void>((resolve, reject) => {
    source.onopen = () => resolve();
    source.onerror = (e) => reject(new Error(`SSE connection failed: ${e.code ?? ''} ${e.message ?? ''}`));
  });
  source.onerror = null;
  const waitFor = async (pred: (e: ReceivedEvent) => boolean, count = 1, timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hits = events.filter(pred);
      if (hits.length >= count) return hits;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} events; got ${JSON.stringify(events)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { events, source, waitFor, close: () => source.close() };
}

export const isSystem = (type: string) => (e: ReceivedEvent) => e.type === 'SYSTEM' && (e.data as { type: string }).type === type;
export const inotifyEvents = (events: ReceivedEvent[]) =>
  events.filter((e) => e.type === 'inotify').map((e) => (e.data as { event: unknown }).event);
