import type { V1Node, V1Pod, V1PriorityClass, V1Taint, V1Toleration } from '@kubernetes/client-node';

/**
 * Labels and annotations that steer what KWOK makes a pod do; scripts/controlplane/kwok-stages.yaml
 * documents each and implements it.
 */
export const steeringLabels = {
  behaviour: 'podwarden.test/behaviour',
  exitCode: 'podwarden.test/exit-code',
} as const;

export const steeringAnnotations = {
  runFor: 'podwarden.test/run-for',
  pullMessage: 'podwarden.test/pull-message',
  pullClearsAfter: 'podwarden.test/pull-clears-after',
} as const;

/** KWOK manages only nodes with this annotation (its --manage-nodes-with-annotation-selector). */
export const fakeNodeAnnotation = { key: 'kwok.x-k8s.io/node', value: 'fake' } as const;

/** Airflow's KubernetesPodOperator names its containers so; the first one is the main container. */
export const mainContainerName = 'base';
export const sidecarContainerName = 'airflow-xcom-sidecar';

/** Created by startControlPlane, so a test can make the scheduler preempt a task for a daemon. */
export const priorityClasses = {
  taskLow: { name: 'podwarden-task-low', value: 1000 },
  daemonHigh: { name: 'podwarden-daemon-high', value: 1_000_000 },
} as const;

export type PodBehaviour =
  | { kind: 'run' }
  | { kind: 'exit'; code: number }
  | { kind: 'zombie-sidecar'; code: number }
  | { kind: 'pull-error'; message: string; clearAfterSeconds?: number };

export interface TaskPodOptions {
  name: string;
  namespace: string;
  behaviour: PodBehaviour;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** How long `exit` and `zombie-sidecar` pods run first; KWOK's default is 1 s. */
  runForMs?: number;
  priorityClassName?: string;
  /** Resource requests of the main container, e.g. `500m`, `256Mi`. */
  cpu?: string;
  memory?: string;
  /** Adds the xcom sidecar container (needed for `zombie-sidecar` to mean anything). */
  sidecar?: boolean;
  /** terminationGracePeriodSeconds; 2 unless given, so deletions in tests finish quickly. */
  gracePeriodSeconds?: number;
  image?: string;
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
}

function exitCodeLabel(code: number, kind: string): string {
  if (!Number.isInteger(code) || code < 0 || code > 255) {
    throw new Error(`behaviour ${kind}: exit code must be an integer from 0 to 255, got ${code}`);
  }
  return String(code);
}

/** The labels and annotations that make KWOK play `behaviour`. */
export function behaviourMetadata(
  behaviour: PodBehaviour,
  runForMs?: number,
): { labels: Record<string, string>; annotations: Record<string, string> } {
  const labels: Record<string, string> = { [steeringLabels.behaviour]: behaviour.kind };
  const annotations: Record<string, string> = {};
  switch (behaviour.kind) {
    case 'run':
      break;
    case 'exit':
    case 'zombie-sidecar':
      labels[steeringLabels.exitCode] = exitCodeLabel(behaviour.code, behaviour.kind);
      break;
    case 'pull-error': {
      if (behaviour.message.trim() === '') throw new Error('behaviour pull-error: message must not be empty');
      annotations[steeringAnnotations.pullMessage] = behaviour.message;
      const clear = behaviour.clearAfterSeconds;
      if (clear !== undefined) {
        if (!Number.isInteger(clear) || clear < 0) {
          throw new Error(
            `behaviour pull-error: clearAfterSeconds must be a whole number >= 0, got ${clear}`,
          );
        }
        annotations[steeringAnnotations.pullClearsAfter] = String(clear);
      }
      break;
    }
    default:
      throw new Error(`unknown pod behaviour ${JSON.stringify(behaviour satisfies never)}`);
  }
  if (runForMs !== undefined) {
    if (!Number.isInteger(runForMs) || runForMs < 0) {
      throw new Error(`runForMs must be a whole number of milliseconds >= 0, got ${runForMs}`);
    }
    annotations[steeringAnnotations.runFor] = `${runForMs}ms`;
  }
  return { labels, annotations };
}

/** A pod shaped like a KubernetesPodOperator task pod, steered by `behaviour`. */
export function taskPodManifest(options: TaskPodOptions): V1Pod {
  const steering = behaviourMetadata(options.behaviour, options.runForMs);
  const requests: Record<string, string> = {};
  if (options.cpu) requests.cpu = options.cpu;
  if (options.memory) requests.memory = options.memory;
  const image = options.image ?? 'registry.invalid/podwarden/task:1';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: options.name,
      namespace: options.namespace,
      labels: { ...options.labels, ...steering.labels },
      annotations: { ...options.annotations, ...steering.annotations },
    },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: options.gracePeriodSeconds ?? 2,
      priorityClassName: options.priorityClassName,
      nodeName: options.nodeName,
      nodeSelector: options.nodeSelector,
      tolerations: options.tolerations,
      containers: [
        {
          name: mainContainerName,
          image,
          command: ['python', '-m', 'task'],
          resources: Object.keys(requests).length > 0 ? { requests } : undefined,
        },
        ...(options.sidecar
          ? [
              {
                name: sidecarContainerName,
                image: 'registry.invalid/alpine:3',
                command: ['sh', '-c', 'sleep infinity'],
              },
            ]
          : []),
      ],
    },
  };
}

export interface FakeNodeOptions {
  name: string;
  cpu?: string;
  memory?: string;
  pods?: string;
  labels?: Record<string, string>;
  taints?: V1Taint[];
}

/** A node KWOK plays the kubelet of; small by default so a test can fill it. */
export function fakeNodeManifest(options: FakeNodeOptions): V1Node {
  const resources = { cpu: options.cpu ?? '2', memory: options.memory ?? '4Gi', pods: options.pods ?? '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: options.name,
      annotations: { [fakeNodeAnnotation.key]: fakeNodeAnnotation.value },
      labels: {
        'kubernetes.io/hostname': options.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        ...options.labels,
      },
    },
    spec: { taints: options.taints },
    status: { capacity: resources, allocatable: resources },
  };
}

export function priorityClassManifests(): V1PriorityClass[] {
  return [
    {
      apiVersion: 'scheduling.k8s.io/v1',
      kind: 'PriorityClass',
      metadata: { name: priorityClasses.taskLow.name },
      value: priorityClasses.taskLow.value,
      preemptionPolicy: 'PreemptLowerPriority',
      description: 'Task pods in podwarden tests: the ones a daemon preempts.',
    },
    {
      apiVersion: 'scheduling.k8s.io/v1',
      kind: 'PriorityClass',
      metadata: { name: priorityClasses.daemonHigh.name },
      value: priorityClasses.daemonHigh.value,
      preemptionPolicy: 'PreemptLowerPriority',
      description: 'Daemonset-like pods in podwarden tests: they preempt tasks for room.',
    },
  ];
}
