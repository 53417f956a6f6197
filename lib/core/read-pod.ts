import { isImagePullReason } from './image-pull.ts';
import {
  type ContainerSpec,
  type ContainerStatus,
  type DisruptionReason,
  isDisruptionReason,
  type Pod,
  parseTime,
} from './pod.ts';

/** What the engine and `explain` need to know about a pod, read once from its API object. */
export interface PodReading {
  name: string;
  namespace: string;
  uid?: string;
  /** `status.phase`, or `Pending` when the pod has no status yet. */
  phase: string;
  /** Succeeded or Failed: the pod will never run again. */
  terminal: boolean;
  /** `metadata.deletionTimestamp` is set: the pod is going away. */
  deleting: boolean;
  /** `metadata.creationTimestamp`, epoch ms. */
  createdAt?: number;
  main: {
    name: string;
    /** The pod's spec or status has a container of that name. */
    found: boolean;
    /** The main container is or was running or terminated (state or lastState). */
    started: boolean;
    running: boolean;
    terminated?: { exitCode: number; reason?: string; finishedAt?: number };
    waiting?: { reason: string; message: string };
  };
  /** Other containers, and native sidecars (init containers with restartPolicy Always), running now. */
  sidecarsRunning: string[];
  /** A `DisruptionTarget` condition with status True and a reason the control plane writes. */
  disruption?: { reason: DisruptionReason; message?: string; at?: number };
  /** The first container waiting on an image pull: main first, then the others, then init containers. */
  pullError?: { container: string; reason: string; message: string };
  /** `PodScheduled` False with reason `Unschedulable`. */
  unschedulable?: { message: string };
}

function hasRunOrEnded(status: ContainerStatus | undefined): boolean {
  if (!status) return false;
  return Boolean(
    status.state?.running ||
      status.state?.terminated ||
      status.lastState?.running ||
      status.lastState?.terminated,
  );
}

export function readPod(pod: Pod, mainContainer: string): PodReading {
  const metadata = pod.metadata ?? {};
  const status = pod.status ?? {};
  const phase = status.phase || 'Pending';
  const containerStatuses = status.containerStatuses ?? [];
  const initStatuses = status.initContainerStatuses ?? [];
  const containers: ContainerSpec[] = pod.spec?.containers ?? [];
  const initContainers: ContainerSpec[] = pod.spec?.initContainers ?? [];

  const mainStatus = containerStatuses.find((container) => container.name === mainContainer);
  const mainTerminated = mainStatus?.state?.terminated;
  const mainWaiting = mainStatus?.state?.waiting;
  const main: PodReading['main'] = {
    name: mainContainer,
    found: containers.some((container) => container.name === mainContainer) || mainStatus !== undefined,
    started: hasRunOrEnded(mainStatus),
    running: Boolean(mainStatus?.state?.running),
  };
  if (mainTerminated) {
    main.terminated = { exitCode: mainTerminated.exitCode };
    if (mainTerminated.reason !== undefined) main.terminated.reason = mainTerminated.reason;
    const finishedAt = parseTime(mainTerminated.finishedAt);
    if (finishedAt !== undefined) main.terminated.finishedAt = finishedAt;
  }
  if (mainWaiting) main.waiting = { reason: mainWaiting.reason ?? '', message: mainWaiting.message ?? '' };

  const nativeSidecars = new Set(
    initContainers
      .filter((container) => container.restartPolicy === 'Always')
      .map((container) => container.name),
  );
  const sidecarsRunning = [
    ...containerStatuses.filter((container) => container.name !== mainContainer),
    ...initStatuses.filter((container) => nativeSidecars.has(container.name)),
  ]
    .filter((container) => container.state?.running)
    .map((container) => container.name);

  const reading: PodReading = {
    name: metadata.name ?? '',
    namespace: metadata.namespace ?? '',
    phase,
    terminal: phase === 'Succeeded' || phase === 'Failed',
    deleting: Boolean(metadata.deletionTimestamp),
    main,
    sidecarsRunning,
  };
  if (metadata.uid !== undefined) reading.uid = metadata.uid;
  const createdAt = parseTime(metadata.creationTimestamp);
  if (createdAt !== undefined) reading.createdAt = createdAt;

  const conditions = status.conditions ?? [];
  const disruption = conditions.find(
    (condition) =>
      condition.type === 'DisruptionTarget' &&
      condition.status === 'True' &&
      isDisruptionReason(condition.reason),
  );
  if (disruption && isDisruptionReason(disruption.reason)) {
    reading.disruption = { reason: disruption.reason };
    if (disruption.message !== undefined) reading.disruption.message = disruption.message;
    const at = parseTime(disruption.lastTransitionTime);
    if (at !== undefined) reading.disruption.at = at;
  }

  const pulling = [
    mainStatus,
    ...containerStatuses.filter((container) => container !== mainStatus),
    ...initStatuses,
  ].find((container) => isImagePullReason(container?.state?.waiting?.reason));
  if (pulling) {
    reading.pullError = {
      container: pulling.name,
      reason: pulling.state?.waiting?.reason ?? '',
      message: pulling.state?.waiting?.message ?? '',
    };
  }

  const scheduled = conditions.find((condition) => condition.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    reading.unschedulable = { message: scheduled.message ?? '' };
  }
  return reading;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

function rfc3339Problem(value: unknown, path: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') return `${path} must be an RFC 3339 time, got ${describeType(value)}`;
  if (!RFC3339.test(value) || Number.isNaN(Date.parse(value))) {
    const shown = value.length > 40 ? `${value.slice(0, 40)}...` : value;
    return `${path} ${JSON.stringify(shown)} is not an RFC 3339 time (e.g. 2026-04-09T09:00:00Z)`;
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringMapProblem(value: unknown, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) return `${path} must be an object of strings, got ${describeType(value)}`;
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string')
      return `${path}[${JSON.stringify(key)}] must be a string, got ${describeType(entry)}`;
  }
  return undefined;
}

function namedListProblem(value: unknown, path: string, required: boolean): string | undefined {
  if (value === undefined) return required ? `missing field ${path}` : undefined;
  if (!Array.isArray(value)) return `${path} must be an array, got ${describeType(value)}`;
  for (const [index, item] of value.entries()) {
    if (!isObject(item)) return `${path}[${index}] must be an object, got ${describeType(item)}`;
    if (typeof item.name !== 'string')
      return `${path}[${index}].name must be a string, got ${describeType(item.name)}`;
  }
  return undefined;
}

function containerStatusesProblem(value: unknown, path: string): string | undefined {
  const listProblem = namedListProblem(value, path, false);
  if (listProblem || value === undefined) return listProblem;
  for (const [index, item] of (value as Record<string, unknown>[]).entries()) {
    for (const field of ['state', 'lastState'] as const) {
      const state = item[field];
      if (state === undefined) continue;
      if (!isObject(state)) return `${path}[${index}].${field} must be an object, got ${describeType(state)}`;
      const terminated = state.terminated;
      if (isObject(state.running)) {
        const problem = rfc3339Problem(
          state.running.startedAt,
          `${path}[${index}].${field}.running.startedAt`,
        );
        if (problem) return problem;
      }
      if (terminated === undefined) continue;
      if (!isObject(terminated) || typeof terminated.exitCode !== 'number') {
        return `${path}[${index}].${field}.terminated.exitCode must be a number`;
      }
      if (!Number.isSafeInteger(terminated.exitCode)) {
        return `${path}[${index}].${field}.terminated.exitCode must be a whole number, got ${terminated.exitCode}`;
      }
      const problem =
        rfc3339Problem(terminated.startedAt, `${path}[${index}].${field}.terminated.startedAt`) ??
        rfc3339Problem(terminated.finishedAt, `${path}[${index}].${field}.terminated.finishedAt`);
      if (problem) return problem;
    }
  }
  return undefined;
}

/**
 * Checks that untrusted JSON (a file, a request body) has the shape of a Pod in the fields Podwarden
 * reads, and names the first field that does not. Accepts what `kubectl get pod -o json` prints.
 */
export function podShapeProblem(value: unknown): string | undefined {
  if (!isObject(value)) return `expected a Pod object, got ${describeType(value)}`;
  if (value.kind !== undefined && value.kind !== 'Pod') {
    const items =
      value.kind === 'List' && Array.isArray(value.items) ? ` of ${value.items.length} items` : '';
    return `kind is ${JSON.stringify(value.kind)}${items}, expected "Pod"`;
  }
  const metadata = value.metadata;
  if (metadata === undefined) return 'missing field metadata';
  if (!isObject(metadata)) return `metadata must be an object, got ${describeType(metadata)}`;
  for (const field of ['name', 'namespace', 'uid', 'creationTimestamp', 'deletionTimestamp'] as const) {
    const text = metadata[field];
    if (text !== undefined && typeof text !== 'string') {
      return `metadata.${field} must be a string, got ${describeType(text)}`;
    }
  }
  const timeProblem =
    rfc3339Problem(metadata.creationTimestamp, 'metadata.creationTimestamp') ??
    rfc3339Problem(metadata.deletionTimestamp, 'metadata.deletionTimestamp');
  if (timeProblem) return timeProblem;
  const mapProblem =
    stringMapProblem(metadata.labels, 'metadata.labels') ??
    stringMapProblem(metadata.annotations, 'metadata.annotations');
  if (mapProblem) return mapProblem;

  const spec = value.spec;
  if (spec === undefined) return 'missing field spec';
  if (!isObject(spec)) return `spec must be an object, got ${describeType(spec)}`;
  const specProblem =
    namedListProblem(spec.containers, 'spec.containers', true) ??
    namedListProblem(spec.initContainers, 'spec.initContainers', false);
  if (specProblem) return specProblem;
  // Container names are unique in a pod (the API server enforces it): a copy would make "the main
  // container" ambiguous.
  const seen = new Set<string>();
  for (const [list, path] of [
    [spec.containers, 'spec.containers'],
    [spec.initContainers ?? [], 'spec.initContainers'],
  ] as const) {
    for (const [index, container] of (list as Array<{ name: string }>).entries()) {
      if (seen.has(container.name))
        return `${path}[${index}].name ${JSON.stringify(container.name)} is used by another container of the pod`;
      seen.add(container.name);
    }
  }

  const status = value.status;
  if (status === undefined) return undefined;
  if (!isObject(status)) return `status must be an object, got ${describeType(status)}`;
  if (status.phase !== undefined && typeof status.phase !== 'string') {
    return `status.phase must be a string, got ${describeType(status.phase)}`;
  }
  const statusProblem =
    containerStatusesProblem(status.containerStatuses, 'status.containerStatuses') ??
    containerStatusesProblem(status.initContainerStatuses, 'status.initContainerStatuses');
  if (statusProblem) return statusProblem;
  if (status.conditions !== undefined) {
    if (!Array.isArray(status.conditions)) {
      return `status.conditions must be an array, got ${describeType(status.conditions)}`;
    }
    for (const [index, condition] of status.conditions.entries()) {
      if (!isObject(condition) || typeof condition.type !== 'string') {
        return `status.conditions[${index}] must be an object with a string type`;
      }
      const problem = rfc3339Problem(
        condition.lastTransitionTime,
        `status.conditions[${index}].lastTransitionTime`,
      );
      if (problem) return problem;
    }
  }
  return undefined;
}
