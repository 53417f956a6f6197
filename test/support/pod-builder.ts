/** Builds Airflow-KPO-shaped pods in API-server wire form for engine and reconciler tests. */
import type { ContainerStatus, Pod, PodCondition } from '../../lib/core/pod.ts';

export interface KpoPodOptions {
  name?: string;
  namespace?: string;
  uid?: string;
  dagId?: string;
  taskId?: string;
  runId?: string;
  tryNumber?: number;
  attempt?: number;
  createdAt?: number;
  phase?: string;
  main?: ContainerStatus['state'];
  sidecar?: ContainerStatus['state'] | 'none';
  conditions?: PodCondition[];
  deleting?: boolean;
  annotations?: Record<string, string>;
  nodeName?: string;
}

export const T0 = Date.parse('2026-04-09T09:00:00Z');
export const iso = (ms: number) => new Date(ms).toISOString();

export function kpoPod(o: KpoPodOptions = {}): Pod {
  const labels: Record<string, string> = {
    kubernetes_pod_operator: 'True',
    dag_id: o.dagId ?? 'etl',
    task_id: o.taskId ?? 'load',
    run_id: o.runId ?? 'scheduled__2026-04-09T0900000000-2b8f1c3a4',
    try_number: String(o.tryNumber ?? 1),
  };
  if (o.attempt !== undefined) labels['podwarden.io/attempt'] = String(o.attempt);
  const statuses: ContainerStatus[] = [{ name: 'base', ...(o.main ? { state: o.main } : {}) }];
  if (o.sidecar !== 'none')
    statuses.push({ name: 'airflow-xcom-sidecar', ...(o.sidecar ? { state: o.sidecar } : {}) });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: o.name ?? 'load-abc123',
      namespace: o.namespace ?? 'airflow',
      uid: o.uid ?? 'uid-1',
      creationTimestamp: iso(o.createdAt ?? T0),
      labels,
      annotations: o.annotations ?? {},
      ...(o.deleting
        ? { deletionTimestamp: iso((o.createdAt ?? T0) + 1000), deletionGracePeriodSeconds: 30 }
        : {}),
    },
    spec: {
      containers: [
        { name: 'base', image: 'busybox:1.36' },
        ...(o.sidecar === 'none' ? [] : [{ name: 'airflow-xcom-sidecar', image: 'alpine' }]),
      ],
      ...(o.nodeName ? { nodeName: o.nodeName } : {}),
      restartPolicy: 'Never',
      volumes: [{ name: 'kube-api-access-x7k2p', projected: {} }],
    },
    status: {
      phase: o.phase ?? 'Running',
      conditions: o.conditions ?? [],
      containerStatuses: statuses,
    },
  };
}

export const running = (at = T0): ContainerStatus['state'] => ({ running: { startedAt: iso(at) } });
export const terminated = (exitCode: number, at = T0): ContainerStatus['state'] => ({
  terminated: {
    exitCode,
    reason: exitCode === 0 ? 'Completed' : 'Error',
    startedAt: iso(at - 1000),
    finishedAt: iso(at),
  },
});
export const waiting = (reason: string, message = ''): ContainerStatus['state'] => ({
  waiting: { reason, message },
});
export const preemptedCondition = (at = T0): PodCondition => ({
  type: 'DisruptionTarget',
  status: 'True',
  reason: 'PreemptionByScheduler',
  message: 'Preempted by pod 38606146-2e79-4ee3-824c-abb1ea96740b on node ip-10-105-68-155',
  lastTransitionTime: iso(at),
});
