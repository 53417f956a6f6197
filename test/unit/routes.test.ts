import { describe, expect, it } from 'vitest';
import { BRIDGE_DETAIL_VERSION, parseInboundEvent } from '../../lib/core/inbound.ts';
import {
  dispatch,
  HANDLER_NAMES,
  matchesPattern,
  matchingRoutes,
  type Route,
  RouteError,
  routeTable,
  type ScheduleRoute,
  scheduleEvent,
} from '../../lib/routes.ts';
import { taskInstanceDetail } from '../support/inbound-cases.ts';

const EXPORTER_SOURCE = 'k8s.events.prod';
const ROUTES = routeTable({ exporterSources: [EXPORTER_SOURCE], orchestratorSources: ['airflow.listener'] });

const POD_LABELS = {
  kubernetes_pod_operator: 'True',
  dag_id: 'etl_daily',
  task_id: 'load_orders',
  run_id: 'scheduled__2025-01-06',
  try_number: '1',
};

function envelope(source: string, detailType: string, detail: unknown) {
  return {
    version: '0',
    id: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
    source,
    'detail-type': detailType,
    account: '123456789012',
    time: '2025-01-06T10:00:00Z',
    region: 'eu-west-1',
    resources: [],
    detail,
  };
}

const kubeEvent = {
  metadata: { name: 'load-orders-k3x9q2lm.181f', namespace: 'airflow' },
  involvedObject: { kind: 'Pod', name: 'load-orders-k3x9q2lm', namespace: 'airflow', uid: 'uid-1' },
  reason: 'Preempted',
  message: 'Preempted by pod 3c1f... on node ip-10-0-1-7',
  type: 'Warning',
  eventTime: '2025-01-06T10:00:00.000000Z',
};

function schedule(id: string): ScheduleRoute {
  const route = ROUTES.find((candidate) => candidate.id === id);
  if (route?.trigger !== 'schedule') throw new Error(`no schedule route ${id}`);
  return route;
}

/** One realistic event per route, as EventBridge would deliver it to the target. */
const SAMPLES: Record<string, unknown> = {
  'bridge-pod-changed': envelope('podwarden.bridge', 'Pod Changed', {
    version: BRIDGE_DETAIL_VERSION,
    cluster: 'prod',
    change: 'modified',
    observedAt: '2025-01-06T10:00:00Z',
    pod: {
      metadata: { name: 'load-orders-k3x9q2lm', namespace: 'airflow', uid: 'uid-1', labels: POD_LABELS },
    },
  }),
  'bridge-kubernetes-event': envelope('podwarden.bridge', 'Kubernetes Event', {
    version: BRIDGE_DETAIL_VERSION,
    cluster: 'prod',
    observedAt: '2025-01-06T10:00:00Z',
    event: kubeEvent,
    podLabels: POD_LABELS,
  }),
  // kubernetes-event-exporter without a `details` template sends the whole EnhancedEvent as detail.
  'exporter-kubernetes-event': envelope(EXPORTER_SOURCE, 'kubernetes-event', {
    ...kubeEvent,
    involvedObject: { ...kubeEvent.involvedObject, labels: POD_LABELS },
  }),
  'orchestrator-task-instance': envelope('airflow.listener', 'Task Instance Changed', taskInstanceDetail),
  'timer-schedule': scheduleEvent(schedule('timer-schedule'), { id: 'e-1', time: '2025-01-06T10:00:00Z' }),
  'reaper-schedule': scheduleEvent(schedule('reaper-schedule'), { id: 'e-2', time: '2025-01-06T10:00:00Z' }),
};

describe('routeTable', () => {
  it('routes every handler, each route with a sample event', () => {
    expect(new Set(ROUTES.map((route) => route.handler))).toEqual(new Set(HANDLER_NAMES));
    expect(ROUTES.map((route) => route.id).sort()).toEqual(Object.keys(SAMPLES).sort());
    expect(new Set(ROUTES.map((route) => route.id)).size).toBe(ROUTES.length);
  });

  it.each(Object.keys(SAMPLES))('route %s matches its sample event and no other route does', (id) => {
    expect(matchingRoutes(SAMPLES[id], ROUTES).map((route) => route.id)).toEqual([id]);
    expect(dispatch(SAMPLES[id], ROUTES)?.id).toBe(id);
  });

  it('sends Pod Changed and Kubernetes Event to their handlers, and the exporter format to kubernetes-event', () => {
    const handlerOf = (id: string) => dispatch(SAMPLES[id], ROUTES)?.handler;
    expect(handlerOf('bridge-pod-changed')).toBe('pod-changed');
    expect(handlerOf('bridge-kubernetes-event')).toBe('kubernetes-event');
    expect(handlerOf('exporter-kubernetes-event')).toBe('kubernetes-event');
    expect(handlerOf('orchestrator-task-instance')).toBe('orchestrator');
    expect(handlerOf('timer-schedule')).toBe('timer');
    expect(handlerOf('reaper-schedule')).toBe('reaper');
  });

  it('uses samples the inbound parser accepts, so the routed handlers can read them', () => {
    const options = { exporterSources: { [EXPORTER_SOURCE]: 'prod' } };
    for (const id of ['bridge-pod-changed', 'bridge-kubernetes-event', 'exporter-kubernetes-event']) {
      expect(parseInboundEvent(SAMPLES[id], options)).toMatchObject({ ok: true, cluster: 'prod' });
    }
  });

  it('schedules the timer every minute and the reaper every 5 minutes', () => {
    expect(schedule('timer-schedule').everyMinutes).toBe(1);
    expect(schedule('reaper-schedule').everyMinutes).toBe(5);
  });

  it('routes nothing else: own outbound events, other senders, events about other objects', () => {
    const unrouted = [
      envelope('podwarden', 'Task Recovered', { id: 'x' }),
      envelope('podwarden.bridge', 'Node Changed', {}),
      envelope('aws.events', 'Scheduled Event', {}),
      envelope('airflow.listener', 'Dag Run Changed', {}),
      envelope(EXPORTER_SOURCE, 'kubernetes-event', {
        ...kubeEvent,
        involvedObject: { kind: 'Node', name: 'n1' },
      }),
      envelope(EXPORTER_SOURCE, 'kubernetes-event', { reason: 'Preempted' }),
      envelope('some.other.exporter', 'kubernetes-event', kubeEvent),
      { source: 'podwarden.schedule', 'detail-type': 'Timer Pass ' },
      'Pod Changed',
      null,
    ];
    for (const event of unrouted) expect(dispatch(event, ROUTES)).toBeUndefined();
  });

  it('has no exporter route unless exporter sources are configured', () => {
    const routes = routeTable();
    expect(routes.map((route) => route.id)).not.toContain('exporter-kubernetes-event');
    expect(dispatch(SAMPLES['exporter-kubernetes-event'], routes)).toBeUndefined();
    expect(routes.find((route) => route.handler === 'orchestrator')?.pattern.source).toEqual([
      'airflow.listener',
    ]);
  });

  it('refuses sources that would collide or loop, naming them', () => {
    expect(() => routeTable({ exporterSources: ['podwarden.bridge'] })).toThrow(RouteError);
    expect(() => routeTable({ exporterSources: ['podwarden'] })).toThrow(/"podwarden" is reserved/);
    expect(() => routeTable({ exporterSources: ['aws.events'] })).toThrow(/"aws.events" is not a usable/);
    expect(() => routeTable({ exporterSources: ['x.y'], orchestratorSources: ['x.y'] })).toThrow(
      /"x.y" is listed both as an exporter and as an orchestrator/,
    );
    expect(() => routeTable({ orchestratorSources: [] })).toThrow(/at least one orchestrator source/);
  });
});

describe('matchesPattern', () => {
  const pattern: Route['pattern'] = { source: ['a', 'b'], detail: { involvedObject: { kind: ['Pod'] } } };

  it('needs every field present with a listed value, nested fields included', () => {
    expect(matchesPattern(pattern, { source: 'b', detail: { involvedObject: { kind: 'Pod' } } })).toBe(true);
    expect(matchesPattern(pattern, { source: 'c', detail: { involvedObject: { kind: 'Pod' } } })).toBe(false);
    expect(matchesPattern(pattern, { source: 'a', detail: { involvedObject: {} } })).toBe(false);
    expect(matchesPattern(pattern, { source: 'a', detail: { involvedObject: 'Pod' } })).toBe(false);
    expect(matchesPattern(pattern, { source: 'a' })).toBe(false);
  });

  it('matches an array in the event when any element is listed, as EventBridge does', () => {
    expect(matchesPattern(pattern, { source: ['x', 'a'], detail: { involvedObject: { kind: 'Pod' } } })).toBe(
      true,
    );
    expect(matchesPattern(pattern, { source: ['x', 'y'], detail: { involvedObject: { kind: 'Pod' } } })).toBe(
      false,
    );
  });

  it('reads a detail still in its JSON wire form', () => {
    expect(matchesPattern(pattern, { source: 'a', detail: '{"involvedObject":{"kind":"Pod"}}' })).toBe(true);
    expect(matchesPattern(pattern, { source: 'a', detail: '{not json' })).toBe(false);
  });
});
