import { describe, expect, it } from 'vitest';
import { parseInboundEvent, parseTaskInstanceChanged } from '../../lib/core/inbound.ts';
import {
  acceptedBridgeEvents,
  EXPORTER_SOURCE,
  exporterEvent,
  pod,
  refusedBridgeEvents,
  taskInstanceDetail,
} from '../support/inbound-cases.ts';

/** What every accepted case says about the pod it is about. */
const aboutThePod = {
  cluster: 'prod-eu',
  namespace: 'airflow',
  podName: 'etl-extract-abc123',
  podUid: pod.metadata.uid,
  labels: pod.metadata.labels,
};

/** The bridge's own entries, as an EventBridge target receives them, by name. */
const accepted = new Map(acceptedBridgeEvents());

function problem(result: { ok: true } | { ok: false; problem: string }): string {
  if (result.ok) throw new Error(`expected a problem, got ${JSON.stringify(result)}`);
  return result.problem;
}

describe('parseInboundEvent: the bridge\u2019s own entries', () => {
  it('reads back a Pod Changed entry built by the bridge', () => {
    const result = parseInboundEvent(accepted.get('a Pod Changed entry'));
    expect(result).toEqual({
      ok: true,
      origin: 'bridge',
      eventId: 'event-id-1',
      ...aboutThePod,
      kind: 'pod-changed',
      change: 'modified',
      resync: false,
      observedAt: Date.parse('2026-01-02T03:04:05Z'),
      pod,
    });
  });

  it('reads a reference when the pod was too large to send', () => {
    const result = parseInboundEvent(accepted.get('a reference to a pod too large'));
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
    expect(parseInboundEvent(accepted.get('a Kubernetes Event timed by eventTime'))).toEqual({
      ok: true,
      origin: 'bridge',
      eventId: 'event-id-1',
      ...aboutThePod,
      kind: 'kubernetes-event',
      reason: 'Preempted',
      message: 'Preempted by pod 1234 on node kwok-node-1',
      at: Date.parse('2026-01-02T03:04:05.123Z'),
      eventType: 'Normal',
    });
  });

  it('prefers lastTimestamp (a repeated BackOff) over the first occurrence', () => {
    expect(parseInboundEvent(accepted.get('a repeated BackOff'))).toMatchObject({
      at: Date.parse('2026-01-02T03:09:00Z'),
      count: 7,
    });
  });

  it('accepts the detail as a JSON string, as a sender put it on the wire', () => {
    expect(parseInboundEvent(accepted.get('the detail as a JSON string'))).toMatchObject({
      ok: true,
      change: 'added',
    });
  });
});

describe('parseInboundEvent: kubernetes-event-exporter\u2019s EventBridge format', () => {
  const enhancedEvent = exporterEvent.detail;

  it('maps the configured exporter source to its cluster and reads the EnhancedEvent', () => {
    const result = parseInboundEvent(exporterEvent, { exporterSources: { [EXPORTER_SOURCE]: 'prod-eu' } });
    expect(result).toEqual({
      ok: true,
      origin: 'exporter',
      eventId: 'exp-1',
      ...aboutThePod,
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
    expect(problem(parseInboundEvent(nodeEvent, { exporterSources: { [EXPORTER_SOURCE]: 'prod-eu' } }))).toBe(
      'detail.involvedObject.kind is "Node", not "Pod"',
    );
  });

  it('refuses a mapping to an invalid cluster name', () => {
    expect(
      problem(parseInboundEvent(exporterEvent, { exporterSources: { [EXPORTER_SOURCE]: 'no spaces' } })),
    ).toMatch(/exporterSources\["company.k8s.events"\] is "no spaces", not a valid cluster name/);
  });
});

describe('parseInboundEvent: what is wrong, named', () => {
  const refused = refusedBridgeEvents();

  it.each(refused.filter(([, , expected]) => expected !== ''))('%s', (_name, event, expected) => {
    expect(problem(parseInboundEvent(event))).toBe(expected);
  });

  it.each(refused.filter(([, , expected]) => expected === ''))('never throws: %s', (_name, event) => {
    expect(parseInboundEvent(event).ok).toBe(false);
  });
});

describe('parseTaskInstanceChanged', () => {
  const options = { orchestratorSources: ['airflow.listener'], profiles: ['airflow-kpo' as const] };
  const taskInstance = (detail: Record<string, unknown>) => ({
    source: 'airflow.listener',
    'detail-type': 'Task Instance Changed',
    detail: { ...taskInstanceDetail, ...detail },
  });

  it('reads the task key the way Airflow labels the pods, and the state in lower case', () => {
    expect(parseTaskInstanceChanged(taskInstance({ state: 'SUCCESS', map_index: ' 3 ' }), options)).toEqual({
      ok: true,
      cluster: 'prod',
      namespace: 'airflow',
      profile: 'airflow-kpo',
      key: 'etl_daily/load_orders/scheduled__2025-01-06/3',
      tryNumber: 1,
      state: 'success',
    });
  });

  it('names every problem of the detail at once', () => {
    expect(
      problem(
        parseTaskInstanceChanged(
          taskInstance({ dag_id: ' ', try_number: -1, namespace: 'Air Flow' }),
          options,
        ),
      ),
    ).toBe(
      'detail.dag_id is " ", not a non-empty string; detail.try_number is number -1, not a whole number >= 0; detail.namespace "Air Flow" is not a valid namespace name',
    );
  });

  it('refuses a profile that exists but is not configured, naming the configured ones', () => {
    expect(problem(parseTaskInstanceChanged(taskInstance({ profile: 'generic' }), options))).toBe(
      'detail.profile is "generic"; configured profiles: airflow-kpo',
    );
  });
});
