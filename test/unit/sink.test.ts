// The EventBridge sink against a local PutEvents recorder (a fake: no local EventBridge engine
// exists), through the real AWS SDK client.
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { OutboundEvent } from '../../lib/core/action.ts';
import {
  EventBridgeSink,
  MAX_BYTES_PER_CALL,
  UndeliveredEventsError,
} from '../../lib/sink/eventbridge-sink.ts';
import { type EventBridgeRecorder, startEventBridgeRecorder } from '../support/eventbridge-recorder.ts';

const AT = Date.UTC(2025, 0, 6, 10, 0, 0);
const BUS = 'podwarden-test';

let recorder: EventBridgeRecorder;
let client: EventBridgeClient;
const waits: number[] = [];

beforeAll(async () => {
  recorder = await startEventBridgeRecorder();
  client = new EventBridgeClient({
    region: 'eu-west-1',
    endpoint: recorder.endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await recorder.close();
});

afterEach(() => {
  recorder.entries.length = 0;
  recorder.calls.length = 0;
  recorder.failNextEntries(0);
  recorder.failEntriesWhere(undefined);
  recorder.throttleNextCalls(0);
  waits.length = 0;
});

function sink(maxAttempts = 4): EventBridgeSink {
  // Waits are recorded, not slept: the test must not depend on the clock.
  return new EventBridgeSink({
    client,
    eventBusName: BUS,
    maxAttempts,
    baseDelayMs: 100,
    sleep: async (ms) => {
      waits.push(ms);
    },
  });
}

function event(n: number, message = `event ${n}`): OutboundEvent {
  return {
    id: `prod/airflow/etl/load/-1/1/1/Task Recovered/pod-${n}/${AT}`,
    type: n % 2 === 0 ? 'Task Recovered' : 'Task Failed',
    at: AT + n,
    task: { cluster: 'prod', namespace: 'airflow', key: 'etl/load/run/-1' },
    tryNumber: 1,
    attempt: 2,
    podName: `pod-${n}`,
    message,
    evidence: [{ source: 'event Preempted', reason: 'Preempted', message: 'by a daemon', at: AT }],
  };
}

const events = (count: number) => Array.from({ length: count }, (_, n) => event(n));

describe('EventBridgeSink', () => {
  it('puts each event as one entry: source podwarden, detail-type its type, detail the event', async () => {
    const sent = events(2);
    await sink().emit(sent);
    expect(recorder.entries).toHaveLength(2);
    const [first] = recorder.entries;
    expect(first).toMatchObject({ Source: 'podwarden', DetailType: 'Task Recovered', EventBusName: BUS });
    expect(first?.Time).toBe((AT + 0) / 1000);
    expect(recorder.details()).toEqual(sent);
  });

  it('sends in calls of at most 10 entries, in order', async () => {
    const sent = events(23);
    await sink().emit(sent);
    expect(recorder.calls.map((call) => call.entries)).toEqual([10, 10, 3]);
    expect(recorder.details().map((detail) => detail.id)).toEqual(sent.map((e) => e.id));
  });

  it('keeps each call within 256 KB', async () => {
    const big = Array.from({ length: 5 }, (_, n) => event(n, 'x'.repeat(100 * 1024)));
    await sink().emit(big);
    expect(recorder.calls.map((call) => call.entries)).toEqual([2, 2, 1]);
    for (const call of recorder.calls) expect(call.bytes).toBeLessThanOrEqual(MAX_BYTES_PER_CALL);
  });

  it('retries only the entries that failed', async () => {
    recorder.failNextEntries(3, 'ThrottlingException');
    await sink().emit(events(12));
    expect(recorder.calls.map((call) => [call.entries, call.failed])).toEqual([
      [10, 3],
      [2, 0],
      [3, 0],
    ]);
    expect(new Set(recorder.details().map((detail) => detail.id)).size).toBe(12);
    expect(waits).toEqual([100]);
  });

  it('throws, naming what was not delivered, when entries keep failing', async () => {
    recorder.failEntriesWhere((entry) =>
      entry.Detail?.includes('pod-1"')
        ? { ErrorCode: 'InternalFailure', ErrorMessage: 'try later' }
        : undefined,
    );
    const error = await sink(3)
      .emit(events(3))
      .catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(UndeliveredEventsError);
    const undelivered = (error as UndeliveredEventsError).undelivered;
    expect(undelivered).toEqual([
      { id: event(1).id, type: 'Task Failed', code: 'InternalFailure', message: 'try later' },
    ]);
    expect((error as UndeliveredEventsError).delivered).toBe(2);
    expect((error as Error).message).toMatch(
      /1 of 3 outbound events not delivered .* after 3 attempts \(InternalFailure\)/,
    );
    expect(recorder.calls.map((call) => call.entries)).toEqual([3, 1, 1]);
    expect(waits).toEqual([100, 200]);
  });

  it('does not retry an entry EventBridge refuses for good', async () => {
    recorder.failNextEntries(1, 'MalformedDetail');
    const error = await sink()
      .emit(events(2))
      .catch((thrown: unknown) => thrown);
    expect((error as UndeliveredEventsError).undelivered.map((entry) => entry.code)).toEqual([
      'MalformedDetail',
    ]);
    expect(recorder.calls).toHaveLength(1);
  });

  it('retries a whole call that was refused, and delivers on the next round', async () => {
    recorder.throttleNextCalls(1);
    await sink().emit(events(4));
    expect(recorder.calls.map((call) => call.outcome)).toEqual(['throttled', 'ok']);
    expect(recorder.entries).toHaveLength(4);
  });

  it('never sends an entry over the size limit, and says why', async () => {
    const error = await sink()
      .emit([event(0), event(1, 'y'.repeat(MAX_BYTES_PER_CALL))])
      .catch((thrown: unknown) => thrown);
    expect((error as UndeliveredEventsError).undelivered).toMatchObject([
      { id: event(1).id, code: 'EntryTooLarge' },
    ]);
    expect(recorder.entries).toHaveLength(1);
  });

  it('never sends an event that does not match its published schema, and names the field', async () => {
    const noRule = { ...event(0), type: 'Pod Reaped' as const };
    const badNamespace = { ...event(2), task: { ...event(2).task, namespace: 'Air Flow' } };
    const error = await sink()
      .emit([noRule, event(1), badNamespace])
      .catch((thrown: unknown) => thrown);
    const undelivered = (error as UndeliveredEventsError).undelivered;
    expect(undelivered.map((entry) => [entry.id, entry.code])).toEqual([
      [noRule.id, 'SchemaViolation'],
      [badNamespace.id, 'SchemaViolation'],
    ]);
    expect(undelivered[0]?.message).toMatch(/^Pod Reaped does not match its schema: rule: /);
    expect(undelivered[1]?.message).toMatch(/task\.namespace: /);
    expect(recorder.details().map((detail) => detail.id)).toEqual([event(1).id]);
  });

  it('sends nothing for no events', async () => {
    await sink().emit([]);
    expect(recorder.calls).toHaveLength(0);
  });

  it('refuses bad options with the option named', () => {
    expect(() => new EventBridgeSink({ client, eventBusName: '' })).toThrow(/eventBusName/);
    expect(() => new EventBridgeSink({ client, eventBusName: BUS, maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => new EventBridgeSink({ client: {} as EventBridgeClient, eventBusName: BUS })).toThrow(
      /client/,
    );
  });
});
