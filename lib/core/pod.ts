/**
 * The slice of a Kubernetes Pod that Podwarden reads, in the API server's JSON wire form
 * (timestamps are RFC 3339 strings). Adapters convert client objects to this shape, so the core
 * never imports a Kubernetes client.
 */
export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: PodMetadata;
  spec?: PodSpec;
  status?: PodStatus;
}

export interface PodMetadata {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: unknown[];
  finalizers?: string[];
  managedFields?: unknown[];
  [field: string]: unknown;
}

export interface ContainerSpec {
  name: string;
  image?: string;
  restartPolicy?: string;
  [field: string]: unknown;
}

export interface PodSpec {
  containers: ContainerSpec[];
  initContainers?: ContainerSpec[];
  nodeName?: string;
  priority?: number;
  priorityClassName?: string;
  restartPolicy?: string;
  volumes?: Array<{ name: string; [field: string]: unknown }>;
  [field: string]: unknown;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: {
    exitCode: number;
    reason?: string;
    message?: string;
    startedAt?: string;
    finishedAt?: string;
  };
}

export interface ContainerStatus {
  name: string;
  state?: ContainerState;
  lastState?: ContainerState;
  ready?: boolean;
  started?: boolean;
  restartCount?: number;
  image?: string;
  [field: string]: unknown;
}

export interface PodCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export interface PodStatus {
  phase?: PodPhase | string;
  reason?: string;
  message?: string;
  conditions?: PodCondition[];
  containerStatuses?: ContainerStatus[];
  initContainerStatuses?: ContainerStatus[];
  startTime?: string;
  nominatedNodeName?: string;
  [field: string]: unknown;
}

/** Reasons the control plane writes into the `DisruptionTarget` pod condition. */
export const DISRUPTION_REASONS = [
  'PreemptionByScheduler',
  'DeletionByTaintManager',
  'EvictionByEvictionAPI',
  'DeletionByPodGC',
  'TerminationByKubelet',
] as const;
export type DisruptionReason = (typeof DISRUPTION_REASONS)[number];

export function isDisruptionReason(reason: string | undefined): reason is DisruptionReason {
  return (DISRUPTION_REASONS as readonly string[]).includes(reason ?? '');
}

/** A pod's namespace/name, the handle every log line and audit item uses. */
export function podRef(pod: Pod): string {
  return `${pod.metadata.namespace ?? '?'}/${pod.metadata.name ?? '?'}`;
}

export function parseTime(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
