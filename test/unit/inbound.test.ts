import { describe, expect, it } from 'vitest';
import { kubeEventItem, podChangedItem } from '../../lib/bridge/entries.ts';
import {
  BRIDGE_SOURCE,
  type InboundResult,
  KUBERNETES_EVENT,
  POD_CHANGED,
  parseInboundEvent,
} from '../../lib/core/inbound.ts';
import type { Pod } from '../../lib/core/pod.ts';
import type { KubeEvent } from '../../lib/core/ports.ts';

const pod: Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'etl-extract-abc123',
    namespace: 'airflow',
    uid: '6f1c7c5e-1111-2222-3333-444455556666',
    resourceVersion: '4711',
    labels: { kubernetes_pod_operator: 'True', dag_id: 'etl', task_id: 'extract', try_number: '1' },
  },
  spec: { containers: [{ name: 'base', image: 'python:3.12' }] },
  status: { phase: 'Running' },
};

const preempted: KubeEvent = {
  namespace: 'airflow',
  name: 'etl-extract-abc123.17f0a1b2c3d4e5f6',
  reason: 'Preempted',
  message: 'Preempted by pod 1234 on node kwok-node-1',
  type: 'Normal',
  involvedObject: { kind: 'Pod', name: 'etl-extract-abc123', namespace: 'airflow', uid: pod.metadata.uid! },
  eventTime: '2026-01-02T03:04:05.123456Z',
};

/** What an EventBridge target receives: the envelope around the entry's detail, parsed. */
function envelope(entry: { Source: string; DetailType: string; Detail: string }, id = 'event-id-1') {
  return {
    version: '0',
    id,
    'detail-type': entry.DetailType,
    source: entry.Source,
    account: '123456789012',
    time: '2026-01-02T03:04:06Z',
    region: 'eu-west-1',
    resources: [],
    detail: JSON.parse(entry.Detail),
  };
}

function problem(result: InboundResult): string {
  if (result.ok) throw new Error(`expected a problem, got ${JSON.stringify(result)}`);
  return result.problem;
}

describe('parseInboundEvent: the bridge\u2019s own entries', () => {
  it('reads back a Pod Changed entry built by the bridge', () => {
    const item = podChangedItem({
      cluster: 'prod-eu',
      bus: 'b',
      change: 'modified',
      pod,
      observedAt: Date.parse('2026-01-02T03:04:05Z'),
    });
    const result = parseInboundEvent(envelope(item.entry));
    expect(result).toEqual({
      ok: true,
      origin: 'bridge',
      eventId: 'event-id-1',
      cluster: 'prod-eu',
      namespace: 'airflow',
      podName: 'etl-extract-abc123',
      podUid: pod.metadata.uid,
      labels: pod.metadata.labels,
      kind: 'pod-changed',
      change: 'modified',
      resync: false,
      observedAt: Date.parse('2026-01-02T03:04:05Z'),
      pod,
    });
  });

  it('reads a reference when the pod was too large to send', () => {
    const huge: Pod = { ...pod, metadata: { ...pod.metadata, annotations: { blob: 'x'.repeat(300_000) } } };
    const item = podChangedItem({
      cluster: 'prod-eu',
      bus: 'b',
      change: 'deleted',
      pod: huge,
      observedAt: 0,
      resync: true,
    });
    const result = parseInboundEvent(envelope(item.entry));
    expect(result).toMatchObject({
      ok: true,
      kind: 'pod-changed',
      change: 'deleted',
      resync: true,
      podName: 'etl-extract-abc123',
      podUid: pod.metadata.uid,
      labels: pod.metadata.labels,
      reference: {
        namespace: 'airflow',
        name: 'etl-extract-abc123',
        resourceVersion: '4711',
        why: 'too-large',
      },
    });
    expect(result.ok && result.kind === 'pod-changed' && result.pod).toBe(undefined);
  });

  it('reads back a Kubernetes Event entry, timed by eventTime when that is all it has', () => {
    const item = kubeEventItem({
      cluster: 'prod-eu',
      bus: 'b',
      event: preempted,
      podLabels: pod.metadata.labels!,
      observedAt: 0,
    });
    expect(parseInboundEvent(envelope(item.entry))).toEqual({
      ok: true,
      origin: 'bridge',
      eventId: 'event-id-1',
      cluster: 'prod-eu',
      namespace: 'airflow',
      podName: 'etl-extract-abc123',
      podUid: pod.metadata.uid,
      labels: pod.metadata.labels,
      kind: 'kubernetes-event',
      reason: 'Preempted',
      message: 'Preempted by pod 1234 on node kwok-node-1',
      at: Date.parse('2026-01-02T03:04:05.123Z'),
      eventType: 'Normal',
    });
  });

  it('prefers lastTimestamp (a repeated BackOff) over the first occurrence', () => {
    const backOff: KubeEvent = {
      ...preempted,
      reason: 'BackOff',
      message: 'Back-off pulling image "registry.example/app:1"',
      eventTime: undefined,
      firstTimestamp: '2026-01-02T03:00:00Z',
      lastTimestamp: '2026-01-02T03:09:00Z',
      count: 7,
    };
    const item = kubeEventItem({ cluster: 'c', bus: 'b', event: backOff, observedAt: 0 });
    expect(parseInboundEvent(envelope(item.entry))).toMatchObject({
      at: Date.parse('2026-01-02T03:09:00Z'),
      count: 7,
    });
  });

  it('accepts the detail as a JSON string, as a sender put it on the wire', () => {
    const item = podChangedItem({ cluster: 'c', bus: 'b', change: 'added', pod, observedAt: 0 });
    expect(parseInboundEvent({ ...envelope(item.entry), detail: item.entry.Detail })).toMatchObject({
      ok: true,
      change: 'added',
    });
  });
});

describe('parseInboundEvent: kubernetes-event-exporter\u2019s EventBridge format', () => {
  const enhancedEvent = {
    metadata: {
      name: 'etl-extract-abc123.17f0',
      namespace: 'airflow',
      uid: 'e-1',
      creationTimestamp: '2026-01-02T03:04:05Z',
    },
    reason: 'Failed',
    message: 'Failed to pull image "docker.io/library/python:3.12": 429 Too Many Requests - toomanyrequests',
    source: { component: 'kubelet', host: 'node-1' },
    firstTimestamp: '2026-01-02T03:04:05Z',
    lastTimestamp: '2026-01-02T03:04:35Z',
    count: 2,
    type: 'Warning',
    eventTime: null,
    reportingComponent: 'kubelet',
    reportingInstance: 'node-1',
    clusterName: '',
    involvedObject: {
      kind: 'Pod',
      namespace: 'airflow',
      name: 'etl-extract-abc123',
      uid: pod.metadata.uid,
      apiVersion: 'v1',
      resourceVersion: '4711',
      fieldPath: 'spec.containers{base}',
      labels: pod.metadata.labels,
    },
  };
  const exporterEvent = {
    version: '0',
    id: 'exp-1',
    'detail-type': 'KubernetesEvent',
    source: 'company.k8s.events',
    time: '2026-01-02T03:04:36Z',
    detail: enhancedEvent,
  };

  it('maps the configured exporter source to its cluster and reads the EnhancedEvent', () => {
    const result = parseInboundEvent(exporterEvent, { exporterSources: { 'company.k8s.events': 'prod-eu' } });
    expect(result).toEqual({
      ok: true,
      origin: 'exporter',
      eventId: 'exp-1',
      cluster: 'prod-eu',
      namespace: 'airflow',
      podName: 'etl-extract-abc123',
      podUid: pod.metadata.uid,
      labels: pod.metadata.labels,
      kind: 'kubernetes-event',
      reason: 'Failed',
      message: enhancedEvent.message,
      at: Date.parse('2026-01-02T03:04:35Z'),
      eventType: 'Warning',
      count: 2,
    });
  });

  it('refuses an exporter whose source is not configured, naming the sources it knows', () => {
    expect(problem(parseInboundEvent(exporterEvent))).toBe(
      'event.source "company.k8s.events" is not a known sender (expected one of "podwarden.bridge")',
    );
  });

  it('says so when the event is not about a pod', () => {
    const nodeEvent = {
      ...exporterEvent,
      detail: { ...enhancedEvent, involvedObject: { kind: 'Node', name: 'node-1' } },
    };
    expect(
      problem(parseInboundEvent(nodeEvent, { exporterSources: { 'company.k8s.events': 'prod-eu' } })),
    ).toBe('detail.involvedObject.kind is "Node", not "Pod"');
  });

  it('refuses a mapping to an invalid cluster name', () => {
    expect(
      problem(parseInboundEvent(exporterEvent, { exporterSources: { 'company.k8s.events': 'no spaces' } })),
    ).toMatch(/exporterSources\["company.k8s.events"\] is "no spaces", not a valid cluster name/);
  });
});

describe('parseInboundEvent: what is wrong, named', () => {
  const item = podChangedItem({ cluster: 'c', bus: 'b', change: 'added', pod, observedAt: 0 });
  const good = envelope(item.entry);
  const detail = good.detail as Record<string, unknown>;
  const cases: Array<[string, unknown, string]> = [
    ['not an object', 'hello', 'event is "hello", not an object'],
    ['null', null, 'event is null, not an object'],
    ['no source', { ...good, source: undefined }, 'event.source is missing, not a non-empty string'],
    [
      'no detail-type',
      { ...good, 'detail-type': 7 },
      'event.detail-type is number 7, not a non-empty string',
    ],
    ['detail not JSON', { ...good, detail: '{nope' }, 'event.detail is a string that is not valid JSON'],
    ['detail an array', { ...good, detail: [] }, 'event.detail is an array, not an object'],
    [
      'a detail-type the bridge never sends',
      { ...good, 'detail-type': 'Pod Exploded' },
      `event.detail-type "Pod Exploded" is not one the bridge sends ("${POD_CHANGED}", "${KUBERNETES_EVENT}")`,
    ],
    [
      'a future version',
      { ...good, detail: { ...detail, version: 2 } },
      'detail.version is number 2; this receiver understands version 1',
    ],
    [
      'no cluster',
      { ...good, detail: { ...detail, cluster: '' } },
      'detail.cluster is "", not a non-empty string',
    ],
    [
      'a bad cluster',
      { ...good, detail: { ...detail, cluster: '../x' } },
      'detail.cluster "../x" is not a valid cluster name',
    ],
    [
      'a bad change',
      { ...good, detail: { ...detail, change: 'exploded' } },
      'detail.change is "exploded"; expected one of added, modified, deleted',
    ],
    [
      'neither pod nor reference',
      { ...good, detail: { ...detail, pod: undefined } },
      'detail must carry exactly one of pod and reference',
    ],
    [
      'both pod and reference',
      { ...good, detail: { ...detail, reference: { namespace: 'a', name: 'b', why: 'too-large' } } },
      'detail must carry exactly one of pod and reference',
    ],
    [
      'a path in the pod name',
      {
        ...good,
        detail: { ...detail, pod: { ...pod, metadata: { ...pod.metadata, name: '../../secrets/x' } } },
      },
      'detail.pod.metadata.name "../../secrets/x" is not a valid pod name',
    ],
    [
      'a bad namespace',
      {
        ...good,
        detail: { ...detail, pod: { ...pod, metadata: { ...pod.metadata, namespace: 'Air Flow' } } },
      },
      'detail.pod.metadata.namespace "Air Flow" is not a valid namespace name',
    ],
    [
      'not a pod',
      { ...good, detail: { ...detail, pod: { ...pod, kind: 'Secret' } } },
      'detail.pod.kind is "Secret", not "Pod"',
    ],
    [
      'a label that is not a string',
      { ...good, detail: { ...detail, pod: { ...pod, metadata: { ...pod.metadata, labels: { a: 1 } } } } },
      'detail.pod.metadata.labels["a"] is number 1, not a string',
    ],
    [
      'a bad observedAt',
      { ...good, detail: { ...detail, observedAt: 'yesterday' } },
      'detail.observedAt is "yesterday", not an RFC 3339 time',
    ],
  ];
  it.each(cases)('%s', (_name, event, expected) => {
    expect(problem(parseInboundEvent(event))).toBe(expected);
  });

  it('refuses a Kubernetes Event without any time', () => {
    const { eventTime: _eventTime, ...timeless } = preempted;
    const event = envelope(kubeEventItem({ cluster: 'c', bus: 'b', event: timeless, observedAt: 0 }).entry);
    expect(problem(parseInboundEvent(event))).toBe(
      'detail.event has no time (lastTimestamp, eventTime, firstTimestamp or metadata.creationTimestamp)',
    );
  });

  it('refuses a Kubernetes Event without a reason', () => {
    const event = envelope(kubeEventItem({ cluster: 'c', bus: 'b', event: preempted, observedAt: 0 }).entry);
    const { reason: _reason, ...reasonless } = event.detail.event;
    expect(problem(parseInboundEvent({ ...event, detail: { ...event.detail, event: reasonless } }))).toBe(
      'detail.event.reason is missing, not a non-empty string',
    );
  });

  it('never throws, whatever it is given', () => {
    for (const value of [
      undefined,
      0,
      [],
      { source: BRIDGE_SOURCE },
      { source: BRIDGE_SOURCE, 'detail-type': POD_CHANGED, detail: 'null' },
    ]) {
      expect(parseInboundEvent(value).ok).toBe(false);
    }
  });
});
