import { describe, expect, it } from 'vitest';
import {
  entrySize,
  kubeEventItem,
  kubeEventTime,
  MAX_ENTRY_BYTES,
  podChangedItem,
  toKubeEvent,
  trimPod,
} from '../../lib/bridge/entries.ts';
import { BRIDGE_SOURCE, type PodChangedDetail } from '../../lib/core/inbound.ts';
import type { Pod } from '../../lib/core/pod.ts';

function pod(extra: Partial<Pod['metadata']> = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'task-1',
      namespace: 'jobs',
      uid: 'u-1',
      resourceVersion: '10',
      labels: { 'podwarden.io/managed': 'true', 'podwarden.io/task': 't' },
      annotations: { 'podwarden.io/recreate': 'always' },
      managedFields: [{ manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:metadata': {} } }],
      ...extra,
    },
    spec: { containers: [{ name: 'main', image: 'busybox' }] },
    status: { phase: 'Pending' },
  };
}

describe('trimPod', () => {
  it('drops managedFields and kubectl\u2019s last-applied copy, keeps everything else, and leaves the input alone', () => {
    const original = pod({
      annotations: {
        'podwarden.io/recreate': 'never',
        'kubectl.kubernetes.io/last-applied-configuration': '{"huge":true}',
      },
    });
    const before = structuredClone(original);
    const trimmed = trimPod(original);
    expect(trimmed.metadata.managedFields).toBeUndefined();
    expect(trimmed.metadata.annotations).toEqual({ 'podwarden.io/recreate': 'never' });
    expect(trimmed.metadata.labels).toEqual(original.metadata.labels);
    expect(trimmed.spec).toEqual(original.spec);
    expect(trimmed.status).toEqual(original.status);
    expect(original).toEqual(before);
  });
});

describe('entrySize', () => {
  it('counts UTF-8 bytes of Source, DetailType and Detail, plus 14 for Time, as EventBridge documents', () => {
    expect(entrySize({ Source: 'abc', DetailType: 'de', Detail: '{"k":"\u00e9"}' })).toBe(3 + 2 + 10);
    expect(entrySize({ Source: 'abc', DetailType: 'de', Detail: '{}', Time: new Date() })).toBe(
      14 + 3 + 2 + 2,
    );
  });
});

describe('podChangedItem', () => {
  it('sends the trimmed pod under source podwarden.bridge with the cluster in the detail, keyed by namespace/name', () => {
    const item = podChangedItem({
      cluster: 'prod',
      bus: 'arn:aws:events:eu-west-1:123456789012:event-bus/pw',
      change: 'added',
      pod: pod(),
      observedAt: 1_000,
    });
    expect(item.key).toBe('jobs/task-1');
    expect(item.entry).toMatchObject({
      Source: BRIDGE_SOURCE,
      DetailType: 'Pod Changed',
      EventBusName: 'arn:aws:events:eu-west-1:123456789012:event-bus/pw',
    });
    expect(item.entry.Time.getTime()).toBe(1_000);
    const detail = JSON.parse(item.entry.Detail) as PodChangedDetail;
    expect(detail).toMatchObject({
      version: 1,
      cluster: 'prod',
      change: 'added',
      observedAt: '1970-01-01T00:00:01.000Z',
    });
    expect(detail.pod?.metadata.managedFields).toBeUndefined();
    expect(detail.resync).toBeUndefined();
    expect(item.size).toBe(entrySize(item.entry));
  });

  it('marks changes found by a re-list', () => {
    const item = podChangedItem({
      cluster: 'c',
      bus: 'b',
      change: 'deleted',
      pod: pod(),
      observedAt: 0,
      resync: true,
    });
    expect(JSON.parse(item.entry.Detail).resync).toBe(true);
  });

  it('sends an oversized pod as a reference the receiver re-reads, under the 256 KB limit', () => {
    const big = pod({ annotations: { blob: 'x'.repeat(MAX_ENTRY_BYTES) } });
    const item = podChangedItem({ cluster: 'c', bus: 'b', change: 'modified', pod: big, observedAt: 0 });
    expect(item.size).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
    const detail = JSON.parse(item.entry.Detail) as PodChangedDetail;
    expect(detail.pod).toBeUndefined();
    expect(detail.reference).toEqual({
      namespace: 'jobs',
      name: 'task-1',
      uid: 'u-1',
      resourceVersion: '10',
      labels: { 'podwarden.io/managed': 'true', 'podwarden.io/task': 't' },
      why: 'too-large',
    });
  });

  it('sends a pod just under the limit whole, and one just over it as a reference', () => {
    const probe = podChangedItem({
      cluster: 'c',
      bus: 'b',
      change: 'added',
      pod: pod({ annotations: { blob: '' } }),
      observedAt: 0,
    });
    const room = 4_000 - probe.size;
    const fits = podChangedItem({
      cluster: 'c',
      bus: 'b',
      change: 'added',
      pod: pod({ annotations: { blob: 'y'.repeat(room) } }),
      observedAt: 0,
      maxEntryBytes: 4_000,
    });
    expect(fits.size).toBe(4_000);
    expect(JSON.parse(fits.entry.Detail).pod).toBeDefined();
    const over = podChangedItem({
      cluster: 'c',
      bus: 'b',
      change: 'added',
      pod: pod({ annotations: { blob: 'y'.repeat(room + 1) } }),
      observedAt: 0,
      maxEntryBytes: 4_000,
    });
    expect(JSON.parse(over.entry.Detail).reference).toBeDefined();
  });

  it('drops the labels from the reference too when even they do not fit', () => {
    const labels = Object.fromEntries(
      Array.from({ length: 200 }, (_, index) => [`label-${index}`, 'v'.repeat(60)]),
    );
    const item = podChangedItem({
      cluster: 'c',
      bus: 'b',
      change: 'added',
      pod: pod({ labels }),
      observedAt: 0,
      maxEntryBytes: 2_000,
    });
    expect(item.size).toBeLessThanOrEqual(2_000);
    expect(JSON.parse(item.entry.Detail).reference).toEqual({
      namespace: 'jobs',
      name: 'task-1',
      uid: 'u-1',
      resourceVersion: '10',
      why: 'too-large',
    });
  });
});

describe('toKubeEvent and kubeEventItem', () => {
  const scheduler = {
    metadata: { name: 'task-1.17f', namespace: 'jobs', uid: 'ev-1', resourceVersion: '99' },
    involvedObject: { kind: 'Pod', namespace: 'jobs', name: 'task-1', uid: 'u-1' },
    reason: 'Preempted',
    message: 'Preempted by pod 9 on node n-1',
    type: 'Normal',
    eventTime: '2026-01-02T03:04:05.000001Z',
    firstTimestamp: null,
    lastTimestamp: null,
    reportingComponent: 'default-scheduler',
  };

  it('reads an event written through events.k8s.io (only eventTime set)', () => {
    const event = toKubeEvent(scheduler)!;
    expect(event).toEqual({
      namespace: 'jobs',
      name: 'task-1.17f',
      uid: 'ev-1',
      reason: 'Preempted',
      message: 'Preempted by pod 9 on node n-1',
      type: 'Normal',
      involvedObject: { kind: 'Pod', namespace: 'jobs', name: 'task-1', uid: 'u-1' },
      eventTime: '2026-01-02T03:04:05.000001Z',
    });
    expect(kubeEventTime(event)).toBe(Date.parse('2026-01-02T03:04:05.000Z'));
  });

  it('rejects what is not an event', () => {
    expect(toKubeEvent(null)).toBeUndefined();
    expect(toKubeEvent({ metadata: { name: 'x' } })).toBeUndefined();
  });

  it('keys the entry by the pod it is about, and cuts a runaway message', () => {
    const event = toKubeEvent({ ...scheduler, message: 'm'.repeat(10_000) })!;
    const item = kubeEventItem({ cluster: 'c', bus: 'b', event, podLabels: { a: 'b' }, observedAt: 0 });
    expect(item.key).toBe('jobs/task-1');
    const detail = JSON.parse(item.entry.Detail);
    expect(detail.event.message).toHaveLength(4096 + 3);
    expect(detail.podLabels).toEqual({ a: 'b' });
    expect(item.entry.DetailType).toBe('Kubernetes Event');
  });
});
