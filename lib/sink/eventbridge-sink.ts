/**
 * The EventSink on Amazon EventBridge: each outbound event becomes one PutEvents entry (source
 * `podwarden`, detail-type the event's type, detail the event). Entries go out in calls of at most
 * 10 entries and 256 KB; entries that fail are retried on their own, a few times with back-off; what
 * is still undelivered after that makes `emit` throw, and the reconciler keeps those events in the
 * task's outbox for the next pass. Every event is checked against its published schema first
 * (lib/core/schemas): one that does not match is never sent (`SchemaViolation`). A repeat delivery carries the same event `id`, so consumers can
 * drop duplicates.
 */
import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import type { OutboundEvent } from '../core/action.ts';
import type { EventSink } from '../core/ports.ts';
import { outboundEventProblem } from '../core/schemas/outbound.ts';
import { OUTBOUND_SOURCE } from '../routes.ts';

/** EventBridge's documented PutEvents limits. */
export const MAX_ENTRIES_PER_CALL = 10;
export const MAX_BYTES_PER_CALL = 256 * 1024;

/** Entry error codes a retry cannot fix; any other failure is retried. */
const PERMANENT_ENTRY_ERRORS = new Set([
  'MalformedDetail',
  'InvalidArgument',
  'ValidationException',
  'AccessDeniedException',
  'NotAuthorizedForSourceException',
  'NotAuthorizedForDetailTypeException',
  'EntryTooLarge',
]);

export interface EventBridgeSinkOptions {
  client: Pick<EventBridgeClient, 'send'>;
  /** Name or ARN of the bus. */
  eventBusName: string;
  /** Rounds of sending, the first included (default 4). */
  maxAttempts?: number;
  /** Wait before the second round; doubles per round (default 100 ms). */
  baseDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface UndeliveredEvent {
  id: string;
  type: string;
  code: string;
  message?: string;
}

export class UndeliveredEventsError extends Error {
  override name = 'UndeliveredEventsError';
  readonly undelivered: UndeliveredEvent[];
  readonly delivered: number;
  constructor(undelivered: UndeliveredEvent[], delivered: number, attempts: number) {
    const codes = [...new Set(undelivered.map((entry) => entry.code))].join(', ');
    super(
      `${undelivered.length} of ${undelivered.length + delivered} outbound events not delivered to EventBridge after ${attempts} attempts (${codes})`,
    );
    this.undelivered = undelivered;
    this.delivered = delivered;
  }
}

interface Pending {
  event: OutboundEvent;
  entry: PutEventsRequestEntry;
  bytes: number;
  failure?: { code: string; message?: string };
}

export class EventBridgeSink implements EventSink {
  readonly eventBusName: string;
  readonly #client: Pick<EventBridgeClient, 'send'>;
  readonly #maxAttempts: number;
  readonly #baseDelayMs: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(options: EventBridgeSinkOptions) {
    if (typeof options?.client?.send !== 'function') {
      throw new Error('EventBridgeSink: options.client must be an EventBridgeClient');
    }
    if (typeof options.eventBusName !== 'string' || options.eventBusName === '') {
      throw new Error('EventBridgeSink: options.eventBusName must be a bus name or ARN');
    }
    const maxAttempts = options.maxAttempts ?? 4;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 10) {
      throw new Error(
        `EventBridgeSink: options.maxAttempts must be a whole number from 1 to 10, got ${maxAttempts}`,
      );
    }
    const baseDelayMs = options.baseDelayMs ?? 100;
    if (!Number.isInteger(baseDelayMs) || baseDelayMs < 0) {
      throw new Error(`EventBridgeSink: options.baseDelayMs must be a whole number >= 0, got ${baseDelayMs}`);
    }
    this.#client = options.client;
    this.eventBusName = options.eventBusName;
    this.#maxAttempts = maxAttempts;
    this.#baseDelayMs = baseDelayMs;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async emit(events: OutboundEvent[]): Promise<void> {
    const failedForGood: Pending[] = [];
    let pending: Pending[] = [];
    for (const event of events) {
      const item = this.#pending(event);
      // What goes on the bus is what the published schema (schemas/) promises; a mismatch is a bug,
      // kept undelivered (the outbox holds it) and reported with the field, never put out half-valid.
      const problem = outboundEventProblem(event);
      if (problem !== undefined) {
        item.failure = {
          code: 'SchemaViolation',
          message: `${event.type} does not match its schema: ${problem}`,
        };
        failedForGood.push(item);
      } else if (item.bytes > MAX_BYTES_PER_CALL) {
        item.failure = {
          code: 'EntryTooLarge',
          message: `${item.bytes} bytes, over EventBridge's ${MAX_BYTES_PER_CALL} per entry`,
        };
        failedForGood.push(item);
      } else {
        pending.push(item);
      }
    }
    let delivered = 0;
    let attempt = 0;
    while (pending.length > 0 && attempt < this.#maxAttempts) {
      attempt++;
      if (attempt > 1) await this.#sleep(this.#baseDelayMs * 2 ** (attempt - 2));
      const retry: Pending[] = [];
      for (const call of calls(pending)) {
        const failed = await this.#put(call);
        delivered += call.length - failed.length;
        for (const item of failed) {
          if (PERMANENT_ENTRY_ERRORS.has(item.failure?.code ?? '')) failedForGood.push(item);
          else retry.push(item);
        }
      }
      pending = retry;
    }
    const undelivered = [...failedForGood, ...pending];
    if (undelivered.length > 0) {
      throw new UndeliveredEventsError(
        undelivered.map((item) => ({
          id: item.event.id,
          type: item.event.type,
          code: item.failure?.code ?? 'Unknown',
          ...(item.failure?.message ? { message: item.failure.message } : {}),
        })),
        delivered,
        attempt,
      );
    }
  }

  #pending(event: OutboundEvent): Pending {
    const entry: PutEventsRequestEntry = {
      EventBusName: this.eventBusName,
      Source: OUTBOUND_SOURCE,
      DetailType: event.type,
      Detail: JSON.stringify(event),
      Time: new Date(event.at),
    };
    return { event, entry, bytes: entrySize(entry) };
  }

  /** One PutEvents call; returns the entries that failed, each with its failure recorded. */
  async #put(call: Pending[]): Promise<Pending[]> {
    let results: Array<{ EventId?: string; ErrorCode?: string; ErrorMessage?: string }>;
    try {
      const response = await this.#client.send(
        new PutEventsCommand({ Entries: call.map((item) => item.entry) }),
      );
      results = response.Entries ?? [];
    } catch (error) {
      // The SDK has already retried throttling and 5xx answers; the whole call counts as failed.
      const code = (error as { name?: string }).name ?? 'Error';
      for (const item of call) item.failure = { code, message: (error as Error).message };
      return call;
    }
    const failed: Pending[] = [];
    call.forEach((item, index) => {
      const result = results[index];
      if (result?.EventId && !result.ErrorCode) return;
      item.failure = result?.ErrorCode
        ? { code: result.ErrorCode, ...(result.ErrorMessage ? { message: result.ErrorMessage } : {}) }
        : { code: 'MissingResult', message: 'PutEvents answered no result for this entry' };
      failed.push(item);
    });
    return failed;
  }
}

/** Splits entries into calls within EventBridge's entry-count and size limits, keeping their order. */
function calls(items: Pending[]): Pending[][] {
  const result: Pending[][] = [];
  let current: Pending[] = [];
  let bytes = 0;
  for (const item of items) {
    if (
      current.length === MAX_ENTRIES_PER_CALL ||
      (current.length > 0 && bytes + item.bytes > MAX_BYTES_PER_CALL)
    ) {
      result.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += item.bytes;
  }
  if (current.length > 0) result.push(current);
  return result;
}

/** EventBridge's entry size: Time (14 bytes when set), Source, DetailType, Detail, Resources (UTF-8). */
export function entrySize(entry: PutEventsRequestEntry): number {
  return (
    (entry.Time === undefined ? 0 : 14) +
    Buffer.byteLength(entry.Source ?? '') +
    Buffer.byteLength(entry.DetailType ?? '') +
    Buffer.byteLength(entry.Detail ?? '') +
    (entry.Resources ?? []).reduce((sum, resource) => sum + Buffer.byteLength(resource), 0)
  );
}
