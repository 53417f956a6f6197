import {
  BRIDGE_DETAIL_VERSION,
  BRIDGE_SOURCE,
  KUBERNETES_EVENT,
  type KubernetesEventDetail,
  POD_CHANGED,
  type PodChange,
  type PodChangedDetail,
  type PodReference,
} from '../core/inbound.ts';
import type { Pod } from '../core/pod.ts';
import type { KubeEvent } from '../core/ports.ts';

/** EventBridge's documented limits: 256 KB per entry and per PutEvents request, 10 entries per call. */
export const MAX_ENTRY_BYTES = 256 * 1024;
export const MAX_REQUEST_BYTES = 256 * 1024;
export const MAX_ENTRIES_PER_CALL = 10;
/** EventBridge counts a present `Time` as 14 bytes. */
const TIME_BYTES = 14;
/** Event messages are short in practice; a runaway one is cut rather than costing the entry. */
const MAX_EVENT_MESSAGE_CHARS = 4096;
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export interface BusEntry {
  Source: string;
  DetailType: string;
  Detail: string;
  EventBusName: string;
  Time: Date;
}

/** One entry on its way to the bus, with what the forwarder needs to order, size and account for it. */
export interface OutboundItem {
  /** `namespace/name` of the pod it is about: entries with the same key are never reordered. */
  key: string;
  entry: BusEntry;
  size: number;
  /** When the watch delivered the change (epoch ms), for the lag metric. */
  observedAt: number;
}

/** Entry size as EventBridge computes it (UTF-8 bytes of Source, DetailType, Detail, plus Time). */
export function entrySize(
  entry: Pick<BusEntry, 'Source' | 'DetailType' | 'Detail'> & { Time?: Date },
): number {
  return (
    (entry.Time ? TIME_BYTES : 0) +
    Buffer.byteLength(entry.Source) +
    Buffer.byteLength(entry.DetailType) +
    Buffer.byteLength(entry.Detail)
  );
}

/**
 * The pod without what nobody downstream reads and what bloats it most: `managedFields` and kubectl's
 * copy of the whole last-applied object. Returns a copy; the input is left alone.
 */
export function trimPod(pod: Pod): Pod {
  const { managedFields: _managedFields, ...metadata } = pod.metadata;
  if (metadata.annotations && LAST_APPLIED in metadata.annotations) {
    const { [LAST_APPLIED]: _lastApplied, ...annotations } = metadata.annotations;
    metadata.annotations = annotations;
  }
  return { ...pod, metadata };
}

export function podKey(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ''}/${name ?? ''}`;
}

export interface PodChangedInput {
  cluster: string;
  bus: string;
  change: PodChange;
  pod: Pod;
  observedAt: number;
  resync?: boolean;
  maxEntryBytes?: number;
}

/** A `Pod Changed` entry: the trimmed pod, or a reference to it when the pod is too large to send. */
export function podChangedItem(input: PodChangedInput): OutboundItem {
  const limit = input.maxEntryBytes ?? MAX_ENTRY_BYTES;
  const pod = trimPod(input.pod);
  const base: Omit<PodChangedDetail, 'pod' | 'reference'> = {
    version: BRIDGE_DETAIL_VERSION,
    cluster: input.cluster,
    change: input.change,
    observedAt: new Date(input.observedAt).toISOString(),
    ...(input.resync ? { resync: true } : {}),
  };
  const key = podKey(pod.metadata.namespace, pod.metadata.name);
  const full = makeItem(input, POD_CHANGED, { ...base, pod }, key);
  if (full.size <= limit) return full;
  const { namespace, name, uid, resourceVersion, labels } = pod.metadata;
  const reference: PodReference = {
    namespace: namespace ?? '',
    name: name ?? '',
    ...(uid ? { uid } : {}),
    ...(resourceVersion ? { resourceVersion } : {}),
    ...(labels ? { labels } : {}),
    why: 'too-large',
  };
  const referenced = makeItem(input, POD_CHANGED, { ...base, reference }, key);
  if (referenced.size <= limit) return referenced;
  // Labels are bounded by Kubernetes (63-character values) but their number is not.
  const { labels: _labels, ...bare } = reference;
  return makeItem(input, POD_CHANGED, { ...base, reference: bare }, key);
}

export interface KubeEventInput {
  cluster: string;
  bus: string;
  event: KubeEvent;
  podLabels?: Record<string, string>;
  observedAt: number;
  maxEntryBytes?: number;
}

export function kubeEventItem(input: KubeEventInput): OutboundItem {
  const limit = input.maxEntryBytes ?? MAX_ENTRY_BYTES;
  const event =
    input.event.message.length > MAX_EVENT_MESSAGE_CHARS
      ? { ...input.event, message: `${input.event.message.slice(0, MAX_EVENT_MESSAGE_CHARS)}...` }
      : input.event;
  const detail: KubernetesEventDetail = {
    version: BRIDGE_DETAIL_VERSION,
    cluster: input.cluster,
    observedAt: new Date(input.observedAt).toISOString(),
    event,
    ...(input.podLabels ? { podLabels: input.podLabels } : {}),
  };
  const item = makeItem(
    input,
    KUBERNETES_EVENT,
    detail,
    podKey(event.involvedObject.namespace ?? event.namespace, event.involvedObject.name),
  );
  if (item.size <= limit || !detail.podLabels) return item;
  const { podLabels: _podLabels, ...withoutLabels } = detail;
  return makeItem(input, KUBERNETES_EVENT, withoutLabels, item.key);
}

function makeItem(
  input: { bus: string; observedAt: number },
  detailType: string,
  detail: PodChangedDetail | KubernetesEventDetail,
  key: string,
): OutboundItem {
  const entry: BusEntry = {
    Source: BRIDGE_SOURCE,
    DetailType: detailType,
    Detail: JSON.stringify(detail),
    EventBusName: input.bus,
    Time: new Date(input.observedAt),
  };
  return {
    key,
    entry,
    size: entrySize(entry),
    observedAt: input.observedAt,
  };
}

/**
 * A core/v1 Event (as the API server sends it) in the shape the core reads. Events written through
 * events.k8s.io/v1 show `regarding` as `involvedObject` and `note` as `message` in this view.
 */
export function toKubeEvent(raw: unknown): KubeEvent | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const event = raw as Record<string, unknown>;
  const metadata = (event.metadata ?? {}) as Record<string, unknown>;
  const involved = (event.involvedObject ?? {}) as Record<string, unknown>;
  const namespace = str(metadata.namespace);
  const name = str(metadata.name);
  const reason = str(event.reason);
  if (!namespace || !name || !reason) return undefined;
  const result: KubeEvent = {
    namespace,
    name,
    reason,
    message: str(event.message) ?? '',
    involvedObject: {
      ...defined('kind', str(involved.kind)),
      ...defined('name', str(involved.name)),
      ...defined('namespace', str(involved.namespace)),
      ...defined('uid', str(involved.uid)),
    },
    ...defined('uid', str(metadata.uid)),
    ...defined('type', str(event.type)),
    ...defined('count', typeof event.count === 'number' ? event.count : undefined),
    ...defined('firstTimestamp', str(event.firstTimestamp)),
    ...defined('lastTimestamp', str(event.lastTimestamp)),
    ...defined('eventTime', str(event.eventTime)),
  };
  return result;
}

/** When the event last happened (epoch ms), or undefined when it carries no usable time. */
export function kubeEventTime(event: KubeEvent): number | undefined {
  for (const text of [event.lastTimestamp, event.eventTime, event.firstTimestamp]) {
    if (!text) continue;
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) return ms;
  }
  return undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
