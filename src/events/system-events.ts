// SYSTEM events of the events API: management messages sent on a channel's stream, never with an
// id, never replayed. The data strings are exactly those dCache sends.
export type SystemEventType = 'NEW_SUBSCRIPTION' | 'SUBSCRIPTION_CLOSED' | 'COMPETING_CLIENT' | 'EVENT_LOSS' | 'SHUTDOWN';

export const SYSTEM = 'SYSTEM';

export function systemData(type: 'COMPETING_CLIENT' | 'EVENT_LOSS' | 'SHUTDOWN'): string;
export function systemData(type: 'NEW_SUBSCRIPTION' | 'SUBSCRIPTION_CLOSED', subscriptionUrl: string): string;
export function systemData(type: SystemEventType, subscriptionUrl?: string): string {
  return JSON.stringify(subscriptionUrl === undefined ? { type } : { type, subscription: subscriptionUrl });
}
