/**
 * The inbound events of the parser tests (test/unit/inbound.test.ts) and the schema tests
 * (test/unit/event-schemas.test.ts), kept here once: the bridge's own entries,
 * kubernetes-event-exporter's format, and the refused cases with the problem each must name.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { kubeEventItem, podChangedItem } from '../../lib/bridge/entries.ts';
import { BRIDGE_SOURCE } from '../../lib/core/inbound.ts';
import type { Pod } from '../../lib/core/pod.ts';
import type { KubeEvent } from '../../lib/core/ports.ts';

export const pod: Pod = {
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

export const preempted: KubeEvent = {
  namespace: 'airflow',
  name: 'etl-extract-abc123.17f0a1b2c3d4e5f6',
  reason: 'Preempted',
  message: 'Preempted by pod 1234 on node kwok-node-1',
  type: 'Normal',
  involvedObject: { kind: 'Pod', name: 'etl-extract-abc123', namespace: 'airflow', uid: pod.metadata.uid! },
  eventTime: '2026-01-02T03:04:05.123456Z',
};

/** What an EventBridge target receives: the envelope around the entry's detail, parsed. */
export function envelope(entry: { Source: string; DetailType: string; Detail: string }, id = 'event-id-1') {
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

export const EXPORTER_SOURCE = 'company.k8s.events';

/** The detail of a `Task Instance Changed` that the orchestrator function accepts. */
export const taskInstanceDetail = {
  dag_id: 'etl_daily',
  task_id: 'load_orders',
  run_id: 'scheduled__2025-01-06',
  map_index: -1,
  try_number: 1,
  state: 'running',
  cluster: 'prod',
  namespace: 'airflow',
};

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
export const exporterEvent = {
  version: '0',
  id: 'exp-1',
  'detail-type': 'KubernetesEvent',
  source: EXPORTER_SOURCE,
  time: '2026-01-02T03:04:36Z',
  detail: enhancedEvent,
};

const FIXTURES = new URL('../fixtures/pods/', import.meta.url);

/** Every pod fixture, as the bridge would forward it. */
export function fixturePodChanges(): Array<[string, unknown]> {
  return readdirSync(FIXTURES)
    .filter((file) => file.endsWith('.json'))
    .map((file) => {
      const fixture = JSON.parse(readFileSync(new URL(file, FIXTURES), 'utf8')) as Pod;
      return [
        file,
        envelope(
          podChangedItem({ cluster: 'c', bus: 'b', change: 'modified', pod: fixture, observedAt: 0 }).entry,
        ),
      ];
    });
}

/** Bridge events the parser accepts. */
export function acceptedBridgeEvents(): Array<[string, unknown]> {
  const huge: Pod = { ...pod, metadata: { ...pod.metadata, annotations: { blob: 'x'.repeat(300_000) } } };
  const backOff: KubeEvent = {
    ...preempted,
    reason: 'BackOff',
    message: 'Back-off pulling image "registry.example/app:1"',
    eventTime: undefined,
    firstTimestamp: '2026-01-02T03:00:00Z',
    lastTimestamp: '2026-01-02T03:09:00Z',
    count: 7,
  };
  const added = podChangedItem({ cluster: 'c', bus: 'b', change: 'added', pod, observedAt: 0 });
  return [
    [
      'a Pod Changed entry',
      envelope(
        podChangedItem({
          cluster: 'prod-eu',
          bus: 'b',
          change: 'modified',
          pod,
          observedAt: Date.parse('2026-01-02T03:04:05Z'),
        }).entry,
      ),
    ],
    [
      'a reference to a pod too large',
      envelope(
        podChangedItem({
          cluster: 'prod-eu',
          bus: 'b',
          change: 'deleted',
          pod: huge,
          observedAt: 0,
          resync: true,
        }).entry,
      ),
    ],
    [
      'a Kubernetes Event timed by eventTime',
      envelope(
        kubeEventItem({
          cluster: 'prod-eu',
          bus: 'b',
          event: preempted,
          podLabels: pod.metadata.labels!,
          observedAt: 0,
        }).entry,
      ),
    ],
    [
      'a repeated BackOff',
      envelope(kubeEventItem({ cluster: 'c', bus: 'b', event: backOff, observedAt: 0 }).entry),
    ],
    ['the detail as a JSON string', { ...envelope(added.entry), detail: added.entry.Detail }],
  ];
}

/** Bridge events the parser refuses, with the problem it names. */
export function refusedBridgeEvents(): Array<[string, unknown, string]> {
  const item = podChangedItem({ cluster: 'c', bus: 'b', change: 'added', pod, observedAt: 0 });
  const good = envelope(item.entry);
  const detail = good.detail as Record<string, unknown>;
  const { eventTime: _eventTime, ...timeless } = preempted;
  const kubeEvent = envelope(
    kubeEventItem({ cluster: 'c', bus: 'b', event: preempted, observedAt: 0 }).entry,
  );
  const { reason: _reason, ...reasonless } = kubeEvent.detail.event;
  return [
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
      'event.detail-type "Pod Exploded" is not one the bridge sends ("Pod Changed", "Kubernetes Event")',
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
    [
      'a Kubernetes Event without any time',
      envelope(kubeEventItem({ cluster: 'c', bus: 'b', event: timeless, observedAt: 0 }).entry),
      'detail.event has no time (lastTimestamp, eventTime, firstTimestamp or metadata.creationTimestamp)',
    ],
    [
      'a Kubernetes Event without a reason',
      { ...kubeEvent, detail: { ...kubeEvent.detail, event: reasonless } },
      'detail.event.reason is missing, not a non-empty string',
    ],
    [
      'a Kubernetes Event that names no namespace',
      {
        ...kubeEvent,
        detail: {
          ...kubeEvent.detail,
          event: {
            ...kubeEvent.detail.event,
            namespace: undefined,
            involvedObject: { ...kubeEvent.detail.event.involvedObject, namespace: undefined },
          },
        },
      },
      'detail.event has no namespace (involvedObject.namespace, namespace or metadata.namespace)',
    ],
    [
      'a Kubernetes Event whose fallback namespace is no name',
      {
        ...kubeEvent,
        detail: {
          ...kubeEvent.detail,
          event: {
            ...kubeEvent.detail.event,
            namespace: '../kube-system',
            involvedObject: { ...kubeEvent.detail.event.involvedObject, namespace: undefined },
          },
        },
      },
      'detail.event.namespace "../kube-system" is not a valid namespace name',
    ],
    [
      'a reference whose pod name is a path',
      {
        ...good,
        detail: {
          ...detail,
          pod: undefined,
          reference: { namespace: 'airflow', name: '../x', why: 'too-large' },
        },
      },
      'detail.reference.name "../x" is not a valid pod name',
    ],
    ['undefined', undefined, ''],
    ['zero', 0, ''],
    ['an array', [], ''],
    ['a source alone', { source: BRIDGE_SOURCE }, ''],
    ['a detail of null', { source: BRIDGE_SOURCE, 'detail-type': 'Pod Changed', detail: 'null' }, ''],
  ];
}
