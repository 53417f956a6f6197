/**
 * The inbound events Podwarden accepts: the bridge's `Pod Changed` and `Kubernetes Event`, an
 * orchestrator's `Task Instance Changed`, and kubernetes-event-exporter's format (accepted, not
 * published: it is the exporter's). lib/core/inbound.ts parses with these very schemas, and their
 * JSON Schemas are what `npm run schemas` publishes, so the code and the documents cannot disagree.
 * Every refusal says what is wrong with the field (lib/core/schemas/problems.ts names the field).
 */
import * as z from 'zod/mini';
import { isOrchestratorState, ORCHESTRATOR_STATES } from '../engine/orchestrator.ts';
import {
  absent,
  clusterName,
  described,
  eventBridgeEvent,
  given,
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
import { describe, notAn, says } from './problems.ts';

export const BRIDGE_EVENT_SOURCE = 'podwarden.bridge';
export const DEFAULT_ORCHESTRATOR_SOURCE = 'airflow.listener';
export const BRIDGE_DETAIL_VERSION = 1;
export const POD_CHANGES = ['added', 'modified', 'deleted'] as const;

const detailVersion = () =>
  described(
    z.literal(
      BRIDGE_DETAIL_VERSION,
      says((input) => `is ${describe(input)}; this receiver understands version ${BRIDGE_DETAIL_VERSION}`),
    ),
    'Bumped when the detail changes incompatibly; receivers refuse versions they do not know.',
  );

const podKind = () => z.literal('Pod', notAn('"Pod"'));

const podMetadata = z.looseObject(
  {
    name: podName,
    namespace: namespaceName,
    uid: optionalText,
    labels: optionalLabels(),
  },
  notAn('an object'),
);

/** The pod as the API server had it, less `managedFields`; only what the receiver relies on is fixed. */
const pod = z.looseObject({ kind: z.optional(podKind()), metadata: podMetadata }, notAn('an object'));

const podReference = described(
  z.looseObject(
    {
      namespace: namespaceName,
      name: podName,
      uid: optionalText,
      resourceVersion: optionalText,
      labels: optionalLabels(),
      why: z.optional(z.literal('too-large')),
    },
    notAn('an object'),
  ),
  'Sent instead of the pod when it would not fit in one entry; the receiver re-reads it.',
);

const podChangedCommon = () => ({
  version: detailVersion(),
  cluster: clusterName,
  change: z.enum(
    POD_CHANGES,
    says((input) => `is ${describe(input)}; expected one of ${POD_CHANGES.join(', ')}`),
  ),
  observedAt: described(optionalTime(), 'When the bridge saw the change (RFC 3339).'),
  resync: described(
    z.optional(z.boolean(notAn('true or false'))),
    'Found by a re-list after the watch was away, rather than streamed by it.',
  ),
});

/** Exactly one of `pod` and `reference` (null counts as absent). */
export const podChangedDetail = z.union(
  [
    z.looseObject({ ...podChangedCommon(), pod, reference: absent }),
    z.looseObject({ ...podChangedCommon(), reference: podReference, pod: absent }),
  ],
  says((detail) => {
    const fields = detail as { pod?: unknown; reference?: unknown };
    // Otherwise the option the detail chose reports what is wrong inside it.
    return given(fields.pod) === given(fields.reference)
      ? 'must carry exactly one of pod and reference'
      : undefined;
  }),
);

const TIMES = ['lastTimestamp', 'eventTime', 'firstTimestamp'] as const;

/**
 * A core/v1 Event about a pod (kubernetes-event-exporter adds the pod's labels to `involvedObject`).
 * Its namespace is `involvedObject.namespace`, else `namespace`, else `metadata.namespace`; its time
 * `lastTimestamp`, else `eventTime` (events.k8s.io writers such as the scheduler fill only that),
 * else `firstTimestamp`, else `metadata.creationTimestamp`.
 */
function kubeEvent<Extra extends z.core.$ZodLooseShape>(involvedObjectExtra: Extra) {
  const optionalNamespace = z.optional(z.nullable(namespaceName));
  return z
    .looseObject(
      {
        involvedObject: z.looseObject(
          {
            kind: podKind(),
            name: podName,
            uid: optionalText,
            namespace: optionalNamespace,
            ...involvedObjectExtra,
          },
          notAn('an object'),
        ),
        namespace: optionalNamespace,
        metadata: z.optional(
          z.looseObject(
            { namespace: optionalNamespace, creationTimestamp: optionalTime() },
            notAn('an object'),
          ),
        ),
        reason: nonEmpty(),
        message: optionalText,
        type: optionalText,
        count: z.optional(z.nullable(z.number(notAn('a number')))),
        lastTimestamp: optionalTime(),
        eventTime: optionalTime(),
        firstTimestamp: optionalTime(),
      },
      notAn('an object'),
    )
    .check(
      z.refine(
        (event) =>
          given(event.involvedObject.namespace) || given(event.namespace) || given(event.metadata?.namespace),
        { message: 'has no namespace (involvedObject.namespace, namespace or metadata.namespace)' },
      ),
      z.refine(
        (event) => TIMES.some((field) => given(event[field])) || given(event.metadata?.creationTimestamp),
        { message: 'has no time (lastTimestamp, eventTime, firstTimestamp or metadata.creationTimestamp)' },
      ),
    );
}

export const kubernetesEvent = described(
  kubeEvent({}),
  'A core/v1 Event about the pod. It must give a namespace (involvedObject.namespace, else namespace, else metadata.namespace) and a time (lastTimestamp, else eventTime, else firstTimestamp, else metadata.creationTimestamp).',
);

/** kubernetes-event-exporter's EventBridge detail: its whole `EnhancedEvent`. */
export const exporterEventDetail = kubeEvent({ labels: optionalLabels() });

export const kubernetesEventDetail = z.looseObject({
  version: detailVersion(),
  cluster: clusterName,
  observedAt: described(z.optional(z.string(notAn('a string'))), 'When the bridge saw the event (RFC 3339).'),
  event: kubernetesEvent,
  podLabels: described(optionalLabels(), 'Labels of the pod the event is about, when the bridge knows it.'),
});

const mapIndexProblem = notAn('a whole number >= -1');

export const taskInstanceChangedDetail = z.looseObject({
  dag_id: nonBlank(),
  task_id: nonBlank(),
  run_id: nonBlank(),
  map_index: described(
    z.optional(
      z.union(
        [wholeNumber(-1), z.string().check(z.regex(/^\s*(-0*[01]|[0-9]+)\s*$/, mapIndexProblem)), z.null()],
        mapIndexProblem,
      ),
    ),
    'Absent or null: -1 (an unmapped task).',
  ),
  try_number: wholeNumber(0),
  state: described(
    nonBlank().check(
      z.refine((state) => isOrchestratorState(state.toLowerCase()), {
        ...says((input) => `is ${describe(input)}; expected one of ${ORCHESTRATOR_STATES.join(', ')}`),
        abort: true,
      }),
    ),
    `The task instance's state as the orchestrator has it, in any case: ${ORCHESTRATOR_STATES.join(', ')}.`,
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
