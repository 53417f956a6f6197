import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { podChangedItem } from '../../lib/bridge/entries.ts';
import { eventBridgePort } from '../../lib/bridge/eventbridge.ts';
import { Forwarder, type ForwarderOptions } from '../../lib/bridge/forwarder.ts';
import { createLogger, type Logger } from '../../lib/bridge/logger.ts';
import { BridgeMetrics, seriesValue, totalOf } from '../../lib/bridge/metrics.ts';
import type { Pod } from '../../lib/core/pod.ts';
import { type EventBridgeRecorder, startEventBridgeRecorder } from '../support/eventbridge-recorder.ts';

// The real AWS SDK client against the PutEvents recorder (a fake: no EventBridge engine runs locally).

let recorder: EventBridgeRecorder;
let port: ReturnType<typeof eventBridgePort>;
let logLines: Array<Record<string, unknown>>;
let log: Logger;
let metrics: BridgeMetrics;

beforeEach(async () => {
  recorder = await startEventBridgeRecorder();
  port = eventBridgePort({
    region: 'eu-west-1',
    endpoint: recorder.endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  logLines = [];
  log = createLogger({ sink: { write: (line) => logLines.push(JSON.parse(line)) }, level: 'debug' });
  metrics = new BridgeMetrics();
});

afterEach(async () => {
  port.destroy();
  await recorder.close();
});

function forwarder(options: Partial<ForwarderOptions> = {}): Forwarder {
  return new Forwarder({
    port,
    metrics,
    log,
    backoff: { baseMs: 5, maxMs: 20 },
    lingerMs: 0,
    // Fixed jitter: entries that failed together retry together, so call counts are deterministic.
    random: () => 0.5,
    ...options,
  });
}

function pod(name: string, version: number, extra: Partial<Pod['metadata']> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'jobs', uid: `uid-${name}`, resourceVersion: String(version), ...extra },
    spec: { containers: [{ name: 'base', image: 'busybox' }] },
    status: { phase: 'Running' },
  };
}

function change(name: string, version: number) {
  return podChangedItem({
    cluster: 'test',
    bus: 'bus',
    change: 'modified',
    pod: pod(name, version),
    observedAt: Date.now(),
  });
}

/** Versions each pod's entries arrived with, per pod, in arrival order. */
function arrivalsByPod(): Map<string, number[]> {
  const byPod = new Map<string, number[]>();
  for (const detail of recorder.details()) {
    const metadata = (detail.pod as Pod).metadata;
    byPod.set(metadata.name!, [...(byPod.get(metadata.name!) ?? []), Number(metadata.resourceVersion)]);
  }
  return byPod;
}

async function drain(subject: Forwarder): Promise<void> {
  const { undelivered } = await subject.flush(30_000);
  expect(undelivered).toBe(0);
}

describe('Forwarder with the AWS SDK against a PutEvents recorder', () => {
  it('batches at most 10 entries per call and delivers each once', async () => {
    const subject = forwarder();
    for (let index = 0; index < 45; index += 1) subject.enqueue(change(`pod-${index}`, 1));
    await drain(subject);
    expect(recorder.entries).toHaveLength(45);
    expect(recorder.calls.every((call) => call.entries <= 10)).toBe(true);
    expect(recorder.calls).toHaveLength(5);
    expect(await seriesValue(metrics.forwarded, { detail_type: 'Pod Changed' })).toBe(45);
    expect(await seriesValue(metrics.calls, { outcome: 'ok' })).toBe(5);
  });

  it('keeps every call under 256 KB by size, not only by count', async () => {
    const subject = forwarder();
    const bulky = 'x'.repeat(60_000);
    for (let index = 0; index < 8; index += 1) {
      subject.enqueue(
        podChangedItem({
          cluster: 'test',
          bus: 'bus',
          change: 'added',
          pod: pod(`big-${index}`, 1, { annotations: { note: bulky } }),
          observedAt: Date.now(),
        }),
      );
    }
    await drain(subject);
    expect(recorder.entries).toHaveLength(8);
    expect(recorder.calls.every((call) => call.bytes <= 256 * 1024 && call.outcome === 'ok')).toBe(true);
    expect(recorder.calls.length).toBeGreaterThanOrEqual(2);
  });

  it('retries only the failed entries of a partial failure', async () => {
    const subject = forwarder();
    recorder.failNextEntries(3, 'InternalFailure');
    for (let index = 0; index < 10; index += 1) subject.enqueue(change(`pod-${index}`, 1));
    await drain(subject);
    expect(recorder.calls[0]).toMatchObject({ entries: 10, outcome: 'partial', failed: 3 });
    expect(recorder.calls[1]).toMatchObject({ entries: 3, outcome: 'ok' });
    expect(recorder.entries).toHaveLength(10);
    expect(new Set(recorder.entries.map((entry) => entry.Detail)).size).toBe(10);
    expect(await totalOf(metrics.retried)).toBe(3);
    expect(await totalOf(metrics.failed)).toBe(0);
  });

  it('never lets a later entry of a pod overtake an earlier one that failed', async () => {
    const subject = forwarder({ concurrency: 3 });
    // Every first attempt of an even version fails: its successor must wait for the retry.
    const attempts = new Map<string, number>();
    recorder.failEntriesWhere((entry) => {
      const seen = (attempts.get(entry.Detail!) ?? 0) + 1;
      attempts.set(entry.Detail!, seen);
      const version = Number((JSON.parse(entry.Detail!).pod as Pod).metadata.resourceVersion);
      return seen === 1 && version % 2 === 0 ? { ErrorCode: 'InternalFailure' } : undefined;
    });
    for (let version = 1; version <= 12; version += 1) {
      for (const name of ['a', 'b', 'c', 'd', 'e']) subject.enqueue(change(name, version));
    }
    await drain(subject);
    const expected = Array.from({ length: 12 }, (_, index) => index + 1);
    for (const name of ['a', 'b', 'c', 'd', 'e']) expect(arrivalsByPod().get(name)).toEqual(expected);
    expect(recorder.calls.some((call) => call.outcome === 'partial')).toBe(true);
  });

  it('retries a throttled call whole, with back-off, and loses nothing', async () => {
    const subject = forwarder();
    recorder.throttleNextCalls(2);
    for (let index = 0; index < 7; index += 1) subject.enqueue(change('same-pod', index + 1));
    await drain(subject);
    expect(recorder.calls.slice(0, 2).map((call) => call.outcome)).toEqual(['throttled', 'throttled']);
    expect(arrivalsByPod().get('same-pod')).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(await seriesValue(metrics.calls, { outcome: 'error' })).toBe(2);
    expect(
      logLines.some(
        (line) => line.message === 'PutEvents call failed' && line.code === 'ThrottlingException',
      ),
    ).toBe(true);
  });

  it('gives up after its retries, counting and logging what it could not deliver', async () => {
    const subject = forwarder({ maxAttempts: 3 });
    recorder.failEntriesWhere((entry) =>
      entry.Detail!.includes('"doomed"') ? { ErrorCode: 'InternalFailure' } : undefined,
    );
    subject.enqueue(change('doomed', 1));
    subject.enqueue(change('doomed', 2));
    subject.enqueue(change('fine', 1));
    await subject.flush(30_000);
    expect(arrivalsByPod().get('fine')).toEqual([1]);
    expect(arrivalsByPod().get('doomed')).toBeUndefined();
    expect(await seriesValue(metrics.failed, { reason: 'retries-exhausted' })).toBe(2);
    const report = logLines.filter((line) => line.message === 'entries undeliverable');
    expect(report.map((line) => line.count)).toEqual([1, 1]);
    expect(report[0]).toMatchObject({
      level: 'ERROR',
      reason: 'retries-exhausted',
      errorCode: 'InternalFailure',
      attempts: 3,
    });
    // 3 attempts for each doomed entry, one after the other, and one for the fine one.
    expect(recorder.calls.reduce((sum, call) => sum + call.failed, 0)).toBe(6);
  });

  it('does not retry an entry EventBridge rejects as malformed', async () => {
    const subject = forwarder();
    recorder.failNextEntries(1, 'MalformedDetail');
    subject.enqueue(change('bad', 1));
    subject.enqueue(change('bad', 2));
    await drain(subject).catch(() => undefined);
    expect(await seriesValue(metrics.failed, { reason: 'rejected' })).toBe(1);
    expect(await totalOf(metrics.retried)).toBe(0);
    expect(arrivalsByPod().get('bad')).toEqual([2]);
  });

  it('refuses entries beyond its queue bound, and counts them', async () => {
    const subject = forwarder({ maxQueue: 3 });
    const accepted = [1, 2, 3, 4, 5].map((version) => subject.enqueue(change('p', version)));
    expect(accepted).toEqual([true, true, true, false, false]);
    await drain(subject);
    expect(await seriesValue(metrics.failed, { reason: 'queue-full' })).toBe(2);
    expect(arrivalsByPod().get('p')).toEqual([1, 2, 3]);
  });

  it('flushes on shutdown and reports what could not go out before the deadline', async () => {
    const subject = forwarder({ backoff: { baseMs: 60_000, maxMs: 60_000 } });
    recorder.failNextEntries(1);
    subject.enqueue(change('slow', 1));
    subject.enqueue(change('quick', 1));
    const { undelivered } = await subject.flush(500);
    expect(undelivered).toBe(1);
    expect(arrivalsByPod().get('quick')).toEqual([1]);
    expect(await seriesValue(metrics.failed, { reason: 'shutdown' })).toBe(1);
    expect(subject.enqueue(change('late', 1))).toBe(false);
  });

  it('holds a lone fresh entry back until a batch fills up (or the linger time passes)', async () => {
    const subject = forwarder({ lingerMs: 60_000 });
    subject.enqueue(change('first', 1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(recorder.calls).toHaveLength(0);
    for (let index = 0; index < 9; index += 1) subject.enqueue(change(`next-${index}`, 1));
    await until(() => recorder.entries.length === 10, 'the full batch to arrive');
    expect(recorder.calls).toHaveLength(1);
    await drain(subject);
  });
});

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
