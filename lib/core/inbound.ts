import type { Pod } from './pod.ts';
import type { KubeEvent } from './ports.ts';

/**
 * The wire format between a cluster and the receiving Lambda functions: what `podwarden bridge` puts
 * on the EventBridge bus, and the parser that turns an incoming EventBridge event (the bridge's own,
 * or kubernetes-event-exporter's) into one validated shape. Pure: no AWS or Kubernetes import.
 */

export const BRIDGE_SOURCE = 'podwarden.bridge';
export const POD_CHANGED = 'Pod Changed';
export const KUBERNETES_EVENT = 'Kubernetes Event';
/** Bumped when a detail changes incompatibly, so an old receiver says so instead of misreading it. */
export const BRIDGE_DETAIL_VERSION = 1;

export const POD_CHANGES = ['added', 'modified', 'deleted'] as const;
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

/** Thrown inside the parser only; every public answer is an `InboundResult`. */
class Problem extends Error {}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function isValidClusterName(name: string): boolean {
  return CLUSTER_NAME.test(name);
}

export function parseInboundEvent(event: unknown, options: InboundOptions = {}): InboundResult {
  try {
    return parseOrThrow(event, options);
  } catch (error) {
    if (error instanceof Problem) return { ok: false, problem: error.message };
    throw error;
  }
}

function parseOrThrow(event: unknown, options: InboundOptions): InboundEvent {
  const envelope = asRecord(event, 'event');
  const source = requiredString(envelope.source, 'event.source');
  const detailType = requiredString(envelope['detail-type'], 'event.detail-type');
  const eventId = typeof envelope.id === 'string' && envelope.id !== '' ? envelope.id : undefined;
  const detail = asRecord(decodeDetail(envelope.detail), 'event.detail');

  if (source === BRIDGE_SOURCE) {
    if (detailType === POD_CHANGED) return parsePodChanged(detail, eventId);
    if (detailType === KUBERNETES_EVENT) return parseBridgeKubeEvent(detail, eventId);
    throw new Problem(
      `event.detail-type "${detailType}" is not one the bridge sends ("${POD_CHANGED}", "${KUBERNETES_EVENT}")`,
    );
  }
  const exporterSources = options.exporterSources ?? {};
  if (Object.hasOwn(exporterSources, source)) {
    const cluster = exporterSources[source] ?? '';
    if (!isValidClusterName(cluster)) {
      throw new Problem(`exporterSources["${source}"] is "${cluster}", not a valid cluster name`);
    }
    return parseExporterEvent(detail, cluster, eventId);
  }
  const known = [BRIDGE_SOURCE, ...Object.keys(exporterSources)].map((name) => `"${name}"`).join(', ');
  throw new Problem(`event.source "${source}" is not a known sender (expected one of ${known})`);
}

function parsePodChanged(detail: Record<string, unknown>, eventId: string | undefined): InboundPodChanged {
  checkVersion(detail);
  const cluster = clusterName(detail.cluster, 'detail.cluster');
  const change = detail.change;
  if (typeof change !== 'string' || !(POD_CHANGES as readonly string[]).includes(change)) {
    throw new Problem(`detail.change is ${describe(change)}; expected one of ${POD_CHANGES.join(', ')}`);
  }
  const observedAt = optionalTime(detail.observedAt, 'detail.observedAt');
  const resync = detail.resync === true;
  const hasPod = detail.pod !== undefined && detail.pod !== null;
  const hasReference = detail.reference !== undefined && detail.reference !== null;
  if (hasPod === hasReference) {
    throw new Problem('detail must carry exactly one of pod and reference');
  }
  const common = { ok: true as const, origin: 'bridge' as const, eventId, cluster };
  if (hasPod) {
    const pod = asRecord(detail.pod, 'detail.pod') as unknown as Pod;
    if (pod.kind !== undefined && pod.kind !== 'Pod') {
      throw new Problem(`detail.pod.kind is ${describe(pod.kind)}, not "Pod"`);
    }
    const metadata = asRecord(pod.metadata, 'detail.pod.metadata');
    const labels = optionalLabels(metadata.labels, 'detail.pod.metadata.labels');
    return {
      ...common,
      namespace: namespaceName(metadata.namespace, 'detail.pod.metadata.namespace'),
      podName: podName(metadata.name, 'detail.pod.metadata.name'),
      ...optional('podUid', optionalString(metadata.uid, 'detail.pod.metadata.uid')),
      ...optional('labels', labels),
      kind: 'pod-changed',
      change: change as PodChange,
      resync,
      ...optional('observedAt', observedAt),
      pod,
    };
  }
  const raw = asRecord(detail.reference, 'detail.reference');
  const namespace = namespaceName(raw.namespace, 'detail.reference.namespace');
  const name = podName(raw.name, 'detail.reference.name');
  const uid = optionalString(raw.uid, 'detail.reference.uid');
  const labels = optionalLabels(raw.labels, 'detail.reference.labels');
  const reference: PodReference = {
    namespace,
    name,
    ...optional('uid', uid),
    ...optional('resourceVersion', optionalString(raw.resourceVersion, 'detail.reference.resourceVersion')),
    ...optional('labels', labels),
    why: 'too-large',
  };
  return {
    ...common,
    namespace,
    podName: name,
    ...optional('podUid', uid),
    ...optional('labels', labels),
    kind: 'pod-changed',
    change: change as PodChange,
    resync,
    ...optional('observedAt', observedAt),
    reference,
  };
}

function parseBridgeKubeEvent(
  detail: Record<string, unknown>,
  eventId: string | undefined,
): InboundKubernetesEvent {
  checkVersion(detail);
  const cluster = clusterName(detail.cluster, 'detail.cluster');
  const event = asRecord(detail.event, 'detail.event');
  const labels = optionalLabels(detail.podLabels, 'detail.podLabels');
  return kubeEventResult(event, 'detail.event', { origin: 'bridge', eventId, cluster, labels });
}

/** kubernetes-event-exporter sends its whole `EnhancedEvent` (a core/v1 Event plus object labels). */
function parseExporterEvent(
  detail: Record<string, unknown>,
  cluster: string,
  eventId: string | undefined,
): InboundKubernetesEvent {
  const involved = asRecord(detail.involvedObject, 'detail.involvedObject');
  const labels = optionalLabels(involved.labels, 'detail.involvedObject.labels');
  return kubeEventResult(detail, 'detail', { origin: 'exporter', eventId, cluster, labels });
}

function kubeEventResult(
  event: Record<string, unknown>,
  where: string,
  context: {
    origin: InboundOrigin;
    eventId: string | undefined;
    cluster: string;
    labels: Record<string, string> | undefined;
  },
): InboundKubernetesEvent {
  const involved = asRecord(event.involvedObject, `${where}.involvedObject`);
  if (involved.kind !== 'Pod') {
    throw new Problem(`${where}.involvedObject.kind is ${describe(involved.kind)}, not "Pod"`);
  }
  const metadata = event.metadata === undefined ? {} : asRecord(event.metadata, `${where}.metadata`);
  const namespace = namespaceName(
    involved.namespace ?? event.namespace ?? metadata.namespace,
    `${where}.involvedObject.namespace`,
  );
  const reason = requiredString(event.reason, `${where}.reason`);
  const message = optionalString(event.message, `${where}.message`) ?? '';
  const at = eventTime(event, metadata, where);
  const eventType = optionalString(event.type, `${where}.type`);
  const count = typeof event.count === 'number' && Number.isFinite(event.count) ? event.count : undefined;
  return {
    ok: true,
    origin: context.origin,
    ...optional('eventId', context.eventId),
    cluster: context.cluster,
    namespace,
    podName: podName(involved.name, `${where}.involvedObject.name`),
    ...optional('podUid', optionalString(involved.uid, `${where}.involvedObject.uid`)),
    ...optional('labels', context.labels),
    kind: 'kubernetes-event',
    reason,
    message,
    at,
    ...optional('eventType', eventType),
    ...optional('count', count),
  };
}

/**
 * The latest moment the event describes. Events written through events.k8s.io/v1 (the scheduler's
 * `Preempted`) carry only `eventTime`; core/v1 writers (the kubelet) fill `lastTimestamp`.
 */
function eventTime(event: Record<string, unknown>, metadata: Record<string, unknown>, where: string): number {
  for (const field of ['lastTimestamp', 'eventTime', 'firstTimestamp'] as const) {
    const at = optionalTime(event[field], `${where}.${field}`);
    if (at !== undefined) return at;
  }
  const created = optionalTime(metadata.creationTimestamp, `${where}.metadata.creationTimestamp`);
  if (created !== undefined) return created;
  throw new Problem(
    `${where} has no time (lastTimestamp, eventTime, firstTimestamp or metadata.creationTimestamp)`,
  );
}

function decodeDetail(detail: unknown): unknown {
  // EventBridge hands targets the detail as an object; a string is what a sender put on the wire.
  if (typeof detail !== 'string') return detail;
  try {
    return JSON.parse(detail);
  } catch {
    throw new Problem('event.detail is a string that is not valid JSON');
  }
}

function checkVersion(detail: Record<string, unknown>): void {
  if (detail.version !== BRIDGE_DETAIL_VERSION) {
    throw new Problem(
      `detail.version is ${describe(detail.version)}; this receiver understands version ${BRIDGE_DETAIL_VERSION}`,
    );
  }
}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Problem(`${what} is ${describe(value)}, not an object`);
  }
  return value as Record<string, unknown>;
}

function requiredString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '')
    throw new Problem(`${what} is ${describe(value)}, not a non-empty string`);
  return value;
}

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new Problem(`${what} is ${describe(value)}, not a string`);
  return value;
}

function optionalTime(value: unknown, what: string): number | undefined {
  const text = optionalString(value, what);
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new Problem(`${what} is "${text}", not an RFC 3339 time`);
  return ms;
}

function optionalLabels(value: unknown, what: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  const labels = asRecord(value, what);
  for (const [key, label] of Object.entries(labels)) {
    if (typeof label !== 'string') throw new Problem(`${what}["${key}"] is ${describe(label)}, not a string`);
  }
  return labels as Record<string, string>;
}

function clusterName(value: unknown, what: string): string {
  const name = requiredString(value, what);
  if (!isValidClusterName(name)) throw new Problem(`${what} "${name}" is not a valid cluster name`);
  return name;
}

// Names end up in API paths of the receiver's re-read, so anything outside Kubernetes' own
// name grammar is refused here rather than trusted.
function namespaceName(value: unknown, what: string): string {
  const name = requiredString(value, what);
  if (name.length > 63 || !DNS_LABEL.test(name))
    throw new Problem(`${what} ${describe(name)} is not a valid namespace name`);
  return name;
}

function podName(value: unknown, what: string): string {
  const name = requiredString(value, what);
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name))
    throw new Problem(`${what} ${describe(name)} is not a valid pod name`);
  return name;
}

/** A short description of an untrusted value for error messages (never the whole value). */
export function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `"${value.length > 60 ? `${value.slice(0, 60)}...` : value}"`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** `{ [key]: value }` when the value is defined, else nothing: keeps optional fields truly absent. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
