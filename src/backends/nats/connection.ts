// The NATS connection a scale-out node holds: it never gives up reconnecting (a NATS restart is an
// outage to ride out, not a reason to exit), and it notices a dead server within seconds.
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';

export interface NatsConnectOptions {
  /** One or more `nats://host:port` URLs of the same cluster. */
  servers: string | string[];
  /** Shown by the server's monitoring (`sluice-<node>`). */
  name?: string;
  /** Wait between reconnect attempts, in ms (default 250: a restarted server is found quickly). */
  reconnectWaitMs?: number;
  /** Keep retrying the first connect too, instead of failing when no server is up yet. */
  waitOnFirstConnect?: boolean;
}

export function connectNats(opts: NatsConnectOptions): Promise<NatsConnection> {
  return connect({
    servers: opts.servers,
    name: opts.name ?? 'sluice',
    maxReconnectAttempts: -1,
    reconnectTimeWait: opts.reconnectWaitMs ?? 250,
    reconnectJitter: 100,
    // A server that died without closing the socket is noticed after pingInterval * maxPingOut.
    pingInterval: 5_000,
    maxPingOut: 2,
    waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
  });
}
