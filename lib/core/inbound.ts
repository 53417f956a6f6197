import * as z from 'zod/mini';
import { orchestratorTaskKey } from './identity.ts';
import type { Pod } from './pod.ts';
import type { KubeEvent } from './ports.ts';
import { isValidClusterName } from './schemas/common.ts';
import {
  BRIDGE_DETAIL_VERSION,
  BRIDGE_EVENT_SOURCE,
  exporterEventDetail,
  INBOUND_EVENTS,
  type kubernetesEvent,
  POD_CHANGES,
} from './schemas/inbound.ts';
import { check, describe, notAn } from './schemas/problems.ts';
import type { ProfileName } from './task.ts';

/**
 * The wire format between a cluster and the receiving Lambda functions: what `podwarden bridge` puts
 * on the EventBridge bus, and the parsers that turn an incoming EventBridge event (the bridge's own,
 * kubernetes-event-exporter's, or an orchestrator's `Task Instance Changed`) into one validated
 * shape. They validate with the schemas of lib/core/schemas/inbound.ts, the ones published as JSON
 * Schemas. Pure: no AWS or Kubernetes import.
 */

export { describe } from './schemas/problems.ts';
export { BRIDGE_DETAIL_VERSION, isValidClusterName, POD_CHANGES };

export const BRIDGE_SOURCE = BRIDGE_EVENT_SOURCE;
export const POD_CHANGED = 'Pod Changed';
export const KUBERNETES_EVENT = 'Kubernetes Event';
export const TASK_INSTANCE_CHANGED = 'Task Instance Changed';
export type PodChange = (typeof POD_CHANGES)[number];

/** Sent instead of the pod when the pod would not fit in one EventBridge entry; the receiver re-reads it. */
export interface PodReference {
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  why: 'too-large';
}

export interface PodChangedDetail {
  version: typeof BRIDGE_DETAIL_VERSION;
  cluster: string;
  change: PodChange;
  /** When the bridge saw the change (RFC 3339). */
  observedAt: string;
  /** Found by a re-list after the watch was away, rather than streamed by the watch. */
  resync?: boolean;
  /** Exactly one of `pod` and `reference` is present. */
  pod?: Pod;
  reference?: PodReference;
}

export interface KubernetesEventDetail {
  version: typeof BRIDGE_DETAIL_VERSION;
  cluster: string;
  observedAt: string;
  event: KubeEvent;
  /** Labels of the pod the event is about, when the bridge knows that pod. */
  podLabels?: Record<string, string>;
}

export type InboundOrigin = 'bridge' | 'exporter';

interface InboundCommon {
  ok: true;
  origin: InboundOrigin;
  /** The EventBridge event id, for de-duplication. */
  eventId?: string;
  cluster: string;
  namespace: string;
  podName: string;
  podUid?: string;
  labels?: Record<string, string>;
}

export interface InboundPodChanged extends InboundCommon {
  kind: 'pod-changed';
  change: PodChange;
  resync: boolean;
  observedAt?: number;
  /** The pod as the bridge saw it; absent when only a `reference` was sent (re-read the pod). */
  pod?: Pod;
  reference?: PodReference;
}

export interface InboundKubernetesEvent extends InboundCommon {
  kind: 'kubernetes-event';
  reason: string;
  message: string;
  /** When the event last happened (epoch ms). */
  at: number;
  eventType?: string;
  count?: number;
}

export type InboundEvent = InboundPodChanged | InboundKubernetesEvent;
export type InboundResult = InboundEvent | { ok: false; problem: string };

export interface InboundOptions {
  /** kubernetes-event-exporter's configured `source` -> the cluster name it reports for. */
  exporterSources?: Record<string, string>;
}

/** What every inbound event is before its source and detail-type say which schema applies. */
const envelope = z.looseObject(
  {
    source: z.string(notAn('a non-empty string')).check(z.minLength(1, notAn('a non-empty string'))),
    'detail-type': z.string(notAn('a non-empty string')).check(z.minLength(1, notAn('a non-empty string'))),
    id: z.optional(z.unknown()),
    detail: z.record(z.string(), z.unknown(), notAn('an object')),
  },
  notAn('an object'),
);

type Refusal = { ok: false; problem: string };
const refused = (problem: string): Refusal => ({ ok: false, problem });

/** The envelope's fields are `event.*`, the detail's `detail.*`, as the sender wrote them. */
function eventField(path: string): string {
  if (path === '') return 'event';
  return path === 'detail' || path.startsWith('detail.') || path.startsWith('detail[')
    ? path
    : `event.${path}`;
}

function firstProblem(problems: Array<[string, string]>, field: (path: string) => string): string {
  const [path, what] = problems[0] ?? ['', 'is not valid'];
  return `${field(path)} ${what}`;
}

/** The envelope, its detail decoded (a sender may put it on the wire as a JSON string). */
function readEnvelope(event: unknown) {
  const decoded = decodeDetail(event);
  if (!decoded.ok) return decoded;
  const checked = check(envelope, decoded.event);
  if (!checked.ok)
    return refused(firstProblem(checked.problems, (path) => (path ? `event.${path}` : 'event')));
  const id = checked.value.id;
  return {
    ok: true as const,
    event: checked.value,
    eventId: typeof id === 'string' && id !== '' ? id : undefined,
  };
}

function decodeDetail(event: unknown): { ok: true; event: unknown } | Refusal {
  const detail = (event as { detail?: unknown } | null)?.detail;
  // EventBridge hands targets the detail as an object; a string is what a sender put on the wire.
  if (typeof event !== 'object' || event === null || typeof detail !== 'string') return { ok: true, event };
  try {
    return { ok: true, event: { ...event, detail: JSON.parse(detail) } };
  } catch {
    return refused('event.detail is a string that is not valid JSON');
  }
}

export function parseInboundEvent(event: unknown, options: InboundOptions = {}): InboundResult {
  const read = readEnvelope(event);
  if (!read.ok) return read;
  const { source, 'detail-type': detailType } = read.event;
  if (source === BRIDGE_SOURCE) {
    if (detailType === POD_CHANGED) return podChanged(read.event, read.eventId);
    if (detailType === KUBERNETES_EVENT) return bridgeKubeEvent(read.event, read.eventId);
    return refused(
      `event.detail-type "${detailType}" is not one the bridge sends ("${POD_CHANGED}", "${KUBERNETES_EVENT}")`,
    );
  }
  const exporterSources = options.exporterSources ?? {};
  if (Object.hasOwn(exporterSources, source)) {
    const cluster = exporterSources[source] ?? '';
    if (!isValidClusterName(cluster)) {
      return refused(`exporterSources["${source}"] is "${cluster}", not a valid cluster name`);
    }
    return exporterKubeEvent(read.event.detail, cluster, read.eventId);
  }
  const known = [BRIDGE_SOURCE, ...Object.keys(exporterSources)].map((name) => `"${name}"`).join(', ');
  return refused(`event.source "${source}" is not a known sender (expected one of ${known})`);
}

function podChanged(event: unknown, eventId: string | undefined): InboundPodChanged | Refusal {
  const checked = check(INBOUND_EVENTS[POD_CHANGED], event);
  if (!checked.ok) return refused(firstProblem(checked.problems, eventField));
  const { detail } = checked.value;
  const common = {
    ok: true as const,
    origin: 'bridge' as const,
    ...optional('eventId', eventId),
    cluster: detail.cluster,
    kind: 'pod-changed' as const,
    change: detail.change,
    resync: detail.resync === true,
    ...optional('observedAt', detail.observedAt ? Date.parse(detail.observedAt) : undefined),
  };
  if (detail.pod) {
    const { metadata } = detail.pod;
    return {
      ...common,
      namespace: metadata.namespace,
      podName: metadata.name,
      ...optional('podUid', metadata.uid || undefined),
      ...optional('labels', metadata.labels ?? undefined),
      // Only what the receiver relies on is checked: it re-reads the pod before acting on it.
      pod: detail.pod as Pod,
    };
  }
  const raw = detail.reference!;
  const reference: PodReference = {
    namespace: raw.namespace,
    name: raw.name,
    ...optional('uid', raw.uid || undefined),
    ...optional('resourceVersion', raw.resourceVersion || undefined),
    ...optional('labels', raw.labels ?? undefined),
    why: 'too-large',
  };
  return {
    ...common,
    namespace: reference.namespace,
    podName: reference.name,
    ...optional('podUid', reference.uid),
    ...optional('labels', reference.labels),
    reference,
  };
}

function bridgeKubeEvent(event: unknown, eventId: string | undefined): InboundKubernetesEvent | Refusal {
  const checked = check(INBOUND_EVENTS[KUBERNETES_EVENT], event);
  if (!checked.ok) return refused(firstProblem(checked.problems, eventField));
  const { detail } = checked.value;
  return kubeEventResult(detail.event, {
    origin: 'bridge',
    eventId,
    cluster: detail.cluster,
    labels: detail.podLabels ?? undefined,
  });
}

/** kubernetes-event-exporter sends its whole `EnhancedEvent` (a core/v1 Event plus object labels). */
function exporterKubeEvent(
  detail: unknown,
  cluster: string,
  eventId: string | undefined,
): InboundKubernetesEvent | Refusal {
  const checked = check(exporterEventDetail, detail);
  if (!checked.ok) return refused(firstProblem(checked.problems, (path) => eventField(`detail.${path}`)));
  return kubeEventResult(checked.value, {
    origin: 'exporter',
    eventId,
    cluster,
    labels: checked.value.involvedObject.labels ?? undefined,
  });
}

function kubeEventResult(
  event: z.output<typeof kubernetesEvent>,
  context: {
    origin: InboundOrigin;
    eventId: string | undefined;
    cluster: string;
    labels: Record<string, string> | undefined;
  },
): InboundKubernetesEvent {
  const { involvedObject, metadata } = event;
  // The schema made sure one of each is given.
  const namespace = involvedObject.namespace || event.namespace || metadata?.namespace || '';
  const at = event.lastTimestamp || event.eventTime || event.firstTimestamp || metadata?.creationTimestamp;
  return {
    ok: true,
    origin: context.origin,
    ...optional('eventId', context.eventId),
    cluster: context.cluster,
    namespace,
    podName: involvedObject.name,
    ...optional('podUid', involvedObject.uid || undefined),
    ...optional('labels', context.labels),
    kind: 'kubernetes-event',
    reason: event.reason,
    message: event.message ?? '',
    at: Date.parse(at ?? ''),
    ...optional('eventType', event.type || undefined),
    ...optional(
      'count',
      typeof event.count === 'number' && Number.isFinite(event.count) ? event.count : undefined,
    ),
  };
}

export interface TaskInstanceChanged {
  ok: true;
  cluster: string;
  namespace: string;
  profile: ProfileName;
  /** The task key, made the way the orchestrator labels the task's pods. */
  key: string;
  tryNumber: number;
  /** Lower case, one of ORCHESTRATOR_STATES. */
  state: string;
}

/**
 * `Task Instance Changed` from an orchestrator listener: detail `dag_id`, `task_id`, `run_id`,
 * `map_index` (absent or null: -1), `try_number`, `state`, `cluster`, `namespace`, and optionally
 * `profile` (default: the first of `profiles`). Every problem of the detail is named at once.
 */
export function parseTaskInstanceChanged(
  event: unknown,
  options: { orchestratorSources: readonly string[]; profiles: readonly ProfileName[] },
): TaskInstanceChanged | Refusal {
  const read = readEnvelope(event);
  if (!read.ok) return read;
  const { source, 'detail-type': detailType } = read.event;
  if (!options.orchestratorSources.includes(source)) {
    return refused(
      `event.source is ${describe(source)}; orchestrator sources are ${options.orchestratorSources.map((s) => `"${s}"`).join(', ')}`,
    );
  }
  if (detailType !== TASK_INSTANCE_CHANGED) {
    return refused(`event.detail-type is ${describe(detailType)}, not "${TASK_INSTANCE_CHANGED}"`);
  }
  const configured = (issue: { path?: PropertyKey[]; input?: unknown }) =>
    issue.path?.join('.') === 'detail.profile'
      ? `is ${describe(issue.input)}; configured profiles: ${options.profiles.join(', ')}`
      : undefined;
  const checked = check(INBOUND_EVENTS[TASK_INSTANCE_CHANGED], read.event, configured);
  const detail = checked.ok ? checked.value.detail : undefined;
  const profile = detail?.profile ?? options.profiles[0];
  const problems = checked.ok ? [] : checked.problems.map(([path, what]) => `${eventField(path)} ${what}`);
  if (detail && (!profile || !options.profiles.includes(profile))) {
    problems.push(`detail.profile ${configured({ path: ['detail', 'profile'], input: detail.profile })}`);
  }
  if (!detail || !profile || problems.length > 0) return refused(problems.join('; '));
  try {
    const key = orchestratorTaskKey(profile, detail);
    return {
      ok: true,
      cluster: detail.cluster,
      namespace: detail.namespace,
      profile,
      key,
      tryNumber: detail.try_number,
      state: detail.state.toLowerCase(),
    };
  } catch (error) {
    return refused(`detail: ${(error as Error).message}`);
  }
}

/** `{ [key]: value }` when the value is defined, else nothing: keeps optional fields truly absent. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
