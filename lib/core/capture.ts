import { LABELS } from './identity.ts';
import type { Pod } from './pod.ts';
import type { CapturedPod } from './task.ts';

/** The label carrying Podwarden's attempt number on the pods it re-creates. */
export const ATTEMPT_LABEL = LABELS.attempt;
/** Annotation naming the pod uid a re-created pod replaces, for operators following the trail. */
export const REPLACES_ANNOTATION = 'podwarden.io/replaces-uid';

/** The projected token volume the ServiceAccount admission plugin injects; it re-injects it on create. */
const INJECTED_TOKEN_VOLUME = /^kube-api-access-[a-z0-9]+$/;

/** Spec fields the control plane fills in: copying them would pin the new pod to the old node. */
const SERVER_SET_SPEC_FIELDS = ['nodeName'] as const;

export class CaptureError extends Error {
  override name = 'CaptureError';
}

/**
 * Keeps what the pod's author wrote, from a pod read from the API server, so a disrupted pod can be
 * re-created with the same name and labels. Never called on data from an inbound event: an event is
 * a hint anyone on the bus could forge, the API server is the only source of a spec.
 */
export function capturePod(pod: Pod): CapturedPod {
  const { name, namespace } = pod.metadata;
  if (!name || !namespace)
    throw new CaptureError('cannot capture a pod without metadata.name and metadata.namespace');
  if (!pod.spec || !Array.isArray(pod.spec.containers) || pod.spec.containers.length === 0) {
    throw new CaptureError(`cannot capture pod ${namespace}/${name}: spec.containers is missing or empty`);
  }
  const spec: Record<string, unknown> = structuredClone(pod.spec);
  for (const field of SERVER_SET_SPEC_FIELDS) delete spec[field];

  const injected = new Set(
    (pod.spec.volumes ?? []).filter((v) => INJECTED_TOKEN_VOLUME.test(v.name)).map((v) => v.name),
  );
  if (injected.size > 0) {
    spec.volumes = (spec.volumes as Array<{ name: string }>).filter((v) => !injected.has(v.name));
    if ((spec.volumes as unknown[]).length === 0) delete spec.volumes;
    for (const key of ['containers', 'initContainers', 'ephemeralContainers'] as const) {
      const containers = spec[key] as Array<{ volumeMounts?: Array<{ name: string }> }> | undefined;
      for (const container of containers ?? []) {
        if (!container.volumeMounts) continue;
        container.volumeMounts = container.volumeMounts.filter((m) => !injected.has(m.name));
        if (container.volumeMounts.length === 0) delete container.volumeMounts;
      }
    }
  }
  return {
    metadata: {
      name,
      namespace,
      labels: { ...(pod.metadata.labels ?? {}) },
      annotations: { ...(pod.metadata.annotations ?? {}) },
    },
    spec,
  };
}

/** The pod to create for attempt `attempt`: the captured pod, same name, with the attempt label. */
export function podForAttempt(captured: CapturedPod, attempt: number, replacesUid?: string): Pod {
  const annotations = { ...captured.metadata.annotations };
  if (replacesUid) annotations[REPLACES_ANNOTATION] = replacesUid;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: captured.metadata.name,
      namespace: captured.metadata.namespace,
      labels: { ...captured.metadata.labels, [ATTEMPT_LABEL]: String(attempt) },
      annotations,
    },
    spec: structuredClone(captured.spec) as unknown as Pod['spec'],
  };
}
