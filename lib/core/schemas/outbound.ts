/**
 * Podwarden's outbound events, as the EventBridge sink puts them on the bus: source `podwarden`,
 * detail-type the event's type, detail the `OutboundEvent` itself. The sink checks every event
 * against these before PutEvents, so the published schema is the one the code enforces.
 */
import * as z from 'zod/mini';
import type { OutboundEvent, OutboundEventType } from '../action.ts';
import {
  clusterName,
  described,
  epochMs,
  eventBridgeEvent,
  namespaceName,
  nonEmpty,
  podName,
  wholeNumber,
} from './common.ts';

export const OUTBOUND_EVENT_SOURCE = 'podwarden';

const evidence = z.strictObject({
  source: described(nonEmpty(), 'Where it was seen, e.g. "condition DisruptionTarget", "event Preempted".'),
  reason: z.optional(z.string()),
  message: z.optional(z.string()),
  at: epochMs,
});

const taskId = z.strictObject({
  cluster: clusterName,
  namespace: namespaceName,
  key: described(
    nonEmpty(),
    'The task key: for airflow-kpo dag_id/task_id/run_id/map_index as Airflow labels them.',
  ),
});

const REAP_RULES = ['sidecar-zombie', 'stale-try', 'finished-task'] as const;

function outboundDetail<T extends OutboundEventType>(type: T, rule: 'required' | 'none') {
  const fields = {
    id: described(
      nonEmpty(),
      'Deterministic: a repeat delivery carries the same id, so consumers can drop duplicates.',
    ),
    type: z.literal(type),
    at: epochMs,
    task: taskId,
    tryNumber: wholeNumber(0),
    attempt: described(wholeNumber(0), 'The podwarden.io/attempt of the pod (1, 2, ... after re-creates).'),
    podName,
    message: z.string(),
    evidence: z.array(evidence),
  };
  return rule === 'required'
    ? z.strictObject({ ...fields, rule: z.enum(REAP_RULES) })
    : z.strictObject(fields);
}

export const OUTBOUND_DETAILS = {
  'Task Recovered': outboundDetail('Task Recovered', 'none'),
  'Task Succeeded': outboundDetail('Task Succeeded', 'none'),
  'Task Failed': outboundDetail('Task Failed', 'none'),
  'Image Pull Waiting': outboundDetail('Image Pull Waiting', 'none'),
  'Pod Reaped': outboundDetail('Pod Reaped', 'required'),
} satisfies Record<OutboundEventType, z.ZodMiniType>;

const outbound = <T extends OutboundEventType>(type: T) =>
  eventBridgeEvent(z.literal(OUTBOUND_EVENT_SOURCE), type, OUTBOUND_DETAILS[type]);

/** The whole events as consumers receive them from the bus. */
export const OUTBOUND_EVENTS = {
  'Task Recovered': outbound('Task Recovered'),
  'Task Succeeded': outbound('Task Succeeded'),
  'Task Failed': outbound('Task Failed'),
  'Image Pull Waiting': outbound('Image Pull Waiting'),
  'Pod Reaped': outbound('Pod Reaped'),
} satisfies Record<OutboundEventType, z.ZodMiniType>;

/**
 * What is wrong with an outbound event, field by field (`task.namespace: …; evidence.0.at: …`), or
 * undefined when it matches its published schema.
 */
export function outboundEventProblem(event: OutboundEvent): string | undefined {
  const schema = (OUTBOUND_DETAILS as Record<string, z.ZodMiniType>)[event?.type];
  if (!schema) return `type ${JSON.stringify(event?.type)} is not an outbound event type`;
  const result = schema.safeParse(event);
  return result.success ? undefined : issuesText(result.error);
}

export function issuesText(error: z.core.$ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(event)'}: ${issue.message}`)
    .join('; ');
}
