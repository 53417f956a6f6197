/**
 * The inbound events Podwarden accepts: the bridge's `Pod Changed` and `Kubernetes Event`
 * (lib/core/inbound.ts parses them) and an orchestrator's `Task Instance Changed`
 * (functions/shared/intake.ts). Written to accept and refuse what those parsers accept and refuse
 * today (test/unit/event-schemas.test.ts runs the parsers' cases through both); the parsers
 * themselves move onto these schemas once their validation rework has landed.
 */
import * as z from 'zod/mini';
import {
  absent,
  clusterName,
  described,
  eventBridgeEvent,
  namespaceName,
  nonBlank,
  nonEmpty,
  optionalLabels,
  optionalText,
  optionalTime,
  PROFILES,
  podName,
  wholeNumber,
} from './common.ts';

export const BRIDGE_EVENT_SOURCE = 'podwarden.bridge';
export const DEFAULT_ORCHESTRATOR_SOURCE = 'airflow.listener';

const detailVersion = () =>
  described(
    z.literal(1),
    'Bumped when the detail changes incompatibly; receivers refuse versions they do not know.',
  );

const podMetadata = z.looseObject({
  name: podName,
  namespace: namespaceName,
  uid: optionalText,
  labels: optionalLabels(),
});

/** The pod as the API server had it, less `managedFields`; only what the receiver relies on is fixed. */
const pod = z.looseObject({ kind: z.optional(z.literal('Pod')), metadata: podMetadata });

const podReference = described(
  z.looseObject({
    namespace: namespaceName,
    name: podName,
    uid: optionalText,
    resourceVersion: optionalText,
    labels: optionalLabels(),
    why: z.optional(z.literal('too-large')),
  }),
  'Sent instead of the pod when it would not fit in one entry; the receiver re-reads it.',
);

const podChangedCommon = () => ({
  version: detailVersion(),
  cluster: clusterName,
  change: z.enum(['added', 'modified', 'deleted']),
  observedAt: described(optionalTime(), 'When the bridge saw the change (RFC 3339).'),
  resync: described(
    z.optional(z.boolean()),
    'Found by a re-list after the watch was away, rather than streamed by it.',
  ),
});

/** Exactly one of `pod` and `reference` (null counts as absent). */
export const podChangedDetail = z.union([
  z.looseObject({ ...podChangedCommon(), pod, reference: absent }),
  z.looseObject({ ...podChangedCommon(), reference: podReference, pod: absent }),
]);

/**
 * A core/v1 Event about a pod. Its namespace is read from `involvedObject.namespace`, else
 * `namespace`, else `metadata.namespace` (the first one given must be valid); its time from
 * `lastTimestamp`, `eventTime`, `firstTimestamp` or `metadata.creationTimestamp` (one is needed).
 */
function kubeEvent(where: 'involvedObject' | 'event' | 'metadata') {
  const involved = z.looseObject({
    kind: z.literal('Pod'),
    name: podName,
    uid: optionalText,
    namespace: where === 'involvedObject' ? namespaceName : absent,
  });
  const metadata = z.looseObject({
    namespace: where === 'metadata' ? namespaceName : z.optional(z.unknown()),
    creationTimestamp: optionalTime(),
  });
  return z.looseObject({
    involvedObject: involved,
    namespace: where === 'event' ? namespaceName : where === 'metadata' ? absent : z.optional(z.unknown()),
    metadata: where === 'metadata' ? metadata : z.optional(metadata),
    reason: nonEmpty(),
    message: optionalText,
    type: optionalText,
    count: z.optional(z.union([z.number(), z.null()])),
    lastTimestamp: optionalTime(),
    eventTime: optionalTime(),
    firstTimestamp: optionalTime(),
  });
}

const given = (value: unknown) => value !== undefined && value !== null && value !== '';

export const kubernetesEvent = z
  .union([kubeEvent('involvedObject'), kubeEvent('event'), kubeEvent('metadata')])
  .check(
    z.refine(
      (event) =>
        given(event.lastTimestamp) ||
        given(event.eventTime) ||
        given(event.firstTimestamp) ||
        given(event.metadata?.creationTimestamp),
      { message: 'no time (lastTimestamp, eventTime, firstTimestamp or metadata.creationTimestamp)' },
    ),
  );

export const kubernetesEventDetail = z.looseObject({
  version: detailVersion(),
  cluster: clusterName,
  observedAt: described(z.optional(z.string()), 'When the bridge saw the event (RFC 3339).'),
  event: kubernetesEvent,
  podLabels: described(optionalLabels(), 'Labels of the pod the event is about, when the bridge knows it.'),
});

export const taskInstanceChangedDetail = z.looseObject({
  dag_id: nonBlank(),
  task_id: nonBlank(),
  run_id: nonBlank(),
  map_index: described(
    z.optional(z.union([wholeNumber(-1), z.string().check(z.regex(/^\s*(-0*[01]|[0-9]+)\s*$/)), z.null()])),
    'Absent or null: -1 (an unmapped task).',
  ),
  try_number: wholeNumber(0),
  state: described(
    nonBlank(),
    "The task instance's state as the orchestrator has it (e.g. running, success).",
  ),
  cluster: clusterName,
  namespace: namespaceName,
  profile: described(z.optional(z.enum(PROFILES)), 'Default: the first configured profile.'),
});

export const INBOUND_EVENTS = {
  'Pod Changed': eventBridgeEvent(z.literal(BRIDGE_EVENT_SOURCE), 'Pod Changed', podChangedDetail),
  'Kubernetes Event': eventBridgeEvent(
    z.literal(BRIDGE_EVENT_SOURCE),
    'Kubernetes Event',
    kubernetesEventDetail,
  ),
  'Task Instance Changed': eventBridgeEvent(
    described(
      nonEmpty(),
      `One of the stack's orchestratorSources (default "${DEFAULT_ORCHESTRATOR_SOURCE}").`,
    ),
    'Task Instance Changed',
    taskInstanceChangedDetail,
  ),
};

export type InboundEventType = keyof typeof INBOUND_EVENTS;
