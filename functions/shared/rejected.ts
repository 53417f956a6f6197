/**
 * Rejected events stay replayable: each goes back on the bus as a `podwarden` `Event Rejected`
 * event holding the problem and the original event, which the stack routes to a queue of its own
 * (RejectedEventsQueue, kept 14 days). Replay: fix the cause, then put `detail.event` back on the bus.
 */
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { OUTBOUND_SOURCE } from '../../lib/routes.ts';

export const EVENT_REJECTED = 'Event Rejected';
/** EventBridge's entry limit is 256 KB; the wrapper and the problem need room too. */
const MAX_EVENT_BYTES = 200 * 1024;

export interface RejectedEvent {
  problem: string;
  handler: string;
  receivedAt: string;
  /** The event as it arrived, or, when too large for one entry, its first bytes as text. */
  event?: unknown;
  eventHead?: string;
}

export type KeepRejected = (rejected: RejectedEvent) => Promise<void>;

export function rejectedEvent(problem: string, handler: string, event: unknown, now: number): RejectedEvent {
  const text = JSON.stringify(event) ?? 'undefined';
  const base = { problem, handler, receivedAt: new Date(now).toISOString() };
  return Buffer.byteLength(text, 'utf8') <= MAX_EVENT_BYTES
    ? { ...base, event }
    : { ...base, eventHead: Buffer.from(text, 'utf8').subarray(0, MAX_EVENT_BYTES).toString('utf8') };
}

/** Puts a rejected event on the bus; throws when EventBridge did not take it (the caller logs it). */
export function eventBridgeKeeper(
  client: Pick<EventBridgeClient, 'send'>,
  eventBusName: string,
): KeepRejected {
  return async (rejected) => {
    const response = await client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: eventBusName,
            Source: OUTBOUND_SOURCE,
            DetailType: EVENT_REJECTED,
            Detail: JSON.stringify(rejected),
          },
        ],
      }),
    );
    const failed = response.Entries?.[0]?.ErrorCode;
    if ((response.FailedEntryCount ?? 0) > 0 || failed)
      throw new Error(`EventBridge refused the rejected event: ${failed ?? 'unknown error'}`);
  };
}
