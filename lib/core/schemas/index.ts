/**
 * The published event schemas: one entry per event Podwarden sends or accepts, each with its
 * registry name, the zod schema the code validates with, and an example. `npm run schemas` writes
 * their JSON Schemas (draft 4, the dialect EventBridge's schema registry takes) into `schemas/`;
 * the stack registers the same documents (infra/event-schemas.ts).
 */
import * as z from 'zod/mini';
import { BRIDGE_EVENT_SOURCE, DEFAULT_ORCHESTRATOR_SOURCE, INBOUND_EVENTS } from './inbound.ts';
import { OUTBOUND_EVENT_SOURCE, OUTBOUND_EVENTS } from './outbound.ts';

export interface PublishedSchema {
  /** Registry schema name and file name: `<source>@<DetailTypeWithoutSpaces>`. */
  name: string;
  source: string;
  detailType: string;
  direction: 'outbound' | 'inbound';
  description: string;
  schema: z.ZodMiniType;
  example: Record<string, unknown>;
}

const envelope = (source: string, detailType: string, id: string, detail: Record<string, unknown>) => ({
  version: '0',
  id,
  'detail-type': detailType,
  source,
  account: '123456789012',
  time: '2026-01-02T03:04:05Z',
  region: 'eu-west-1',
  resources: [],
  detail,
});

const task = { cluster: 'prod', namespace: 'airflow', key: 'etl_daily/load_orders/scheduled__2026-01-02/-1' };
const at = Date.parse('2026-01-02T03:04:05Z');
const outboundDetail = (type: string, fields: Record<string, unknown>) => ({
  id: `prod/airflow/${task.key}/1/2/${type}/load-orders-x7k2/${at}`,
  type,
  at,
  task,
  tryNumber: 1,
  attempt: 2,
  podName: 'load-orders-x7k2',
  ...fields,
});
const preempted = {
  source: 'condition DisruptionTarget',
  reason: 'PreemptionByScheduler',
  message: 'Preempted in order to admit critical pod',
  at: at - 12_000,
};

function outbound(
  detailType: keyof typeof OUTBOUND_EVENTS,
  description: string,
  fields: Record<string, unknown>,
) {
  return {
    name: `${OUTBOUND_EVENT_SOURCE}@${detailType.replaceAll(' ', '')}`,
    source: OUTBOUND_EVENT_SOURCE,
    detailType,
    direction: 'outbound' as const,
    description,
    schema: OUTBOUND_EVENTS[detailType],
    example: envelope(OUTBOUND_EVENT_SOURCE, detailType, '5f0c7a3e-8d1b-4c2a-9e6f-1a2b3c4d5e6f', {
      ...outboundDetail(detailType, fields),
    }),
  };
}

export const PUBLISHED_SCHEMAS: PublishedSchema[] = [
  outbound('Task Recovered', 'A disrupted pod was re-created under the same name (attempt n+1).', {
    message: 're-created pod load-orders-x7k2 as attempt 2',
    evidence: [preempted],
  }),
  outbound('Task Succeeded', "The task's main container ended with exit code 0.", {
    message: 'main container base exited 0',
    evidence: [{ source: 'container base', reason: 'Completed', at }],
  }),
  outbound('Task Failed', 'The task failed for good; the message names the cause, the evidence shows why.', {
    message: 'DisruptionBudgetExhausted: pod disrupted 4 times, budget 3',
    evidence: [preempted],
  }),
  outbound('Image Pull Waiting', 'A transient image-pull error: Podwarden re-checks until the deadline.', {
    message: 'transient pull error on container base; waiting until 2026-01-02T03:14:05.000Z',
    evidence: [
      {
        source: 'container base',
        reason: 'ErrImagePull',
        message: '429 Too Many Requests - toomanyrequests: rate limit exceeded',
        at,
      },
    ],
  }),
  outbound('Pod Reaped', 'The reaper deleted a pod by one of its rules.', {
    message: 'deleted pod load-orders-x7k2 (sidecar-zombie)',
    evidence: [{ source: 'container base', reason: 'Completed', message: 'exit code 0', at: at - 400_000 }],
    rule: 'sidecar-zombie',
  }),
  {
    name: `${BRIDGE_EVENT_SOURCE}@PodChanged`,
    source: BRIDGE_EVENT_SOURCE,
    detailType: 'Pod Changed',
    direction: 'inbound',
    description:
      'The bridge saw a managed pod added, modified or deleted (the pod, or a reference when too large).',
    schema: INBOUND_EVENTS['Pod Changed'],
    example: envelope(BRIDGE_EVENT_SOURCE, 'Pod Changed', '0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a', {
      version: 1,
      cluster: 'prod',
      change: 'modified',
      observedAt: '2026-01-02T03:04:05.120Z',
      pod: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'load-orders-x7k2',
          namespace: 'airflow',
          uid: '6f1c7c5e-1111-2222-3333-444455556666',
          resourceVersion: '4711',
          labels: {
            kubernetes_pod_operator: 'True',
            dag_id: 'etl_daily',
            task_id: 'load_orders',
            run_id: 'scheduled__2026-01-02',
            try_number: '1',
          },
        },
        spec: { containers: [{ name: 'base', image: 'python:3.12' }] },
        status: { phase: 'Running' },
      },
    }),
  },
  {
    name: `${BRIDGE_EVENT_SOURCE}@KubernetesEvent`,
    source: BRIDGE_EVENT_SOURCE,
    detailType: 'Kubernetes Event',
    direction: 'inbound',
    description: 'A Kubernetes Event about a managed pod (Preempted, Evicted, Failed, BackOff, ...).',
    schema: INBOUND_EVENTS['Kubernetes Event'],
    example: envelope(BRIDGE_EVENT_SOURCE, 'Kubernetes Event', '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d', {
      version: 1,
      cluster: 'prod',
      observedAt: '2026-01-02T03:04:05.300Z',
      event: {
        namespace: 'airflow',
        name: 'load-orders-x7k2.17f0a1b2c3d4e5f6',
        reason: 'Preempted',
        message: 'Preempted by pod 1234 on node ip-10-0-1-7',
        type: 'Normal',
        involvedObject: {
          kind: 'Pod',
          name: 'load-orders-x7k2',
          namespace: 'airflow',
          uid: '6f1c7c5e-1111-2222-3333-444455556666',
        },
        eventTime: '2026-01-02T03:04:05.123456Z',
      },
      podLabels: { kubernetes_pod_operator: 'True', dag_id: 'etl_daily', task_id: 'load_orders' },
    }),
  },
  {
    name: `${DEFAULT_ORCHESTRATOR_SOURCE}@TaskInstanceChanged`,
    source: DEFAULT_ORCHESTRATOR_SOURCE,
    detailType: 'Task Instance Changed',
    direction: 'inbound',
    description: "An orchestrator's task instance changed state (sent by the podwarden-airflow listener).",
    schema: INBOUND_EVENTS['Task Instance Changed'],
    example: envelope(
      DEFAULT_ORCHESTRATOR_SOURCE,
      'Task Instance Changed',
      '9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a',
      {
        dag_id: 'etl_daily',
        task_id: 'load_orders',
        run_id: 'scheduled__2026-01-02',
        map_index: -1,
        try_number: 1,
        state: 'success',
        cluster: 'prod',
        namespace: 'airflow',
      },
    ),
  },
];

/** The JSON Schema (draft 4) of a published event, as checked in under `schemas/` and registered. */
export function jsonSchemaOf(published: PublishedSchema): Record<string, unknown> {
  const generated = z.toJSONSchema(published.schema, { target: 'draft-04', io: 'input' });
  return {
    $schema: 'http://json-schema.org/draft-04/schema#',
    title: published.name,
    description: `${published.description} (source "${published.source}", detail-type "${published.detailType}")`,
    ...Object.fromEntries(Object.entries(generated).filter(([key]) => key !== '$schema')),
    examples: [published.example],
  };
}
