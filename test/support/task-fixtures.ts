import type { CapturedPod, TaskId, TaskRecord } from '../../lib/core/task.ts';

/** 2025-01-06T10:00:00Z: fixtures use fixed times so tests never depend on the clock. */
export const FIXTURE_NOW = Date.UTC(2025, 0, 6, 10, 0, 0);

const DAG_ID = 'etl_daily';
const TASK_ID = 'load_orders';
const RUN_ID = 'scheduled__2025-01-06T00_00_00_00_00-7a1c9e4b2';

export function makeTaskId(overrides: Partial<TaskId> = {}): TaskId {
  return {
    cluster: 'eks-prod',
    namespace: 'airflow',
    key: `${DAG_ID}/${TASK_ID}/${RUN_ID}/-1`,
    ...overrides,
  };
}

/**
 * A pod as Airflow's KubernetesPodOperator creates it, captured the way capturePod keeps it: the
 * author's labels, annotations and spec, without server-set fields.
 */
export function makeCapturedPod(
  options: { name?: string; namespace?: string; tryNumber?: number } = {},
): CapturedPod {
  const { name = 'load-orders-k3x9q2lm', namespace = 'airflow', tryNumber = 1 } = options;
  return {
    metadata: {
      name,
      namespace,
      labels: {
        dag_id: DAG_ID,
        task_id: TASK_ID,
        run_id: RUN_ID,
        try_number: String(tryNumber),
        kubernetes_pod_operator: 'True',
        airflow_version: '2.10.4',
        airflow_kpo_in_cluster: 'True',
        'app.kubernetes.io/part-of': 'etl',
      },
      annotations: {
        'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false',
        'podwarden.io/recreate': 'always',
      },
    },
    spec: {
      restartPolicy: 'Never',
      priorityClassName: 'batch-low',
      serviceAccountName: 'airflow-worker',
      terminationGracePeriodSeconds: 30,
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'karpenter.sh/capacity-type', operator: 'In', values: ['spot'] }] },
            ],
          },
        },
      },
      tolerations: [{ key: 'workload', operator: 'Equal', value: 'batch', effect: 'NoSchedule' }],
      containers: [
        {
          name: 'base',
          image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/etl/loader:2025.01.03',
          imagePullPolicy: 'IfNotPresent',
          command: ['python', '-m', 'loader'],
          args: ['--date', '2025-01-06', '--table', 'orders', '--mode', 'append'],
          env: [
            { name: 'AIRFLOW_CTX_DAG_ID', value: DAG_ID },
            { name: 'AIRFLOW_CTX_TASK_ID', value: TASK_ID },
            { name: 'WAREHOUSE_URL', valueFrom: { secretKeyRef: { name: 'warehouse', key: 'url' } } },
          ],
          resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '2Gi' } },
          volumeMounts: [{ name: 'xcom', mountPath: '/airflow/xcom' }],
        },
        {
          name: 'airflow-xcom-sidecar',
          image: 'alpine:3.20',
          command: ['sh', '-c', 'trap "exit 0" INT; while true; do sleep 1; done;'],
          resources: { requests: { cpu: '1m', memory: '10Mi' } },
          volumeMounts: [{ name: 'xcom', mountPath: '/airflow/xcom' }],
        },
      ],
      volumes: [{ name: 'xcom', emptyDir: {} }],
    },
  };
}

/** A running, supervised task with a captured pod spec; overrides replace whole fields. */
export function makeTaskRecord(overrides: Partial<TaskRecord> = {}): TaskRecord {
  const id = overrides.id ?? makeTaskId();
  const podName = overrides.podName ?? 'load-orders-k3x9q2lm';
  return {
    id,
    profile: 'airflow-kpo',
    state: 'Running',
    message: 'main container base is running',
    tryNumber: 1,
    highestTry: 1,
    attempt: 1,
    recreates: 0,
    podName,
    podUid: '6f1d2c3b-8a4e-4f0a-9b7c-2d5e8f1a3c4b',
    mainStarted: true,
    firstSeenAt: FIXTURE_NOW - 120_000,
    attemptSince: FIXTURE_NOW - 120_000,
    overrides: { recreate: 'always', protect: false },
    captured: makeCapturedPod({ name: podName, namespace: id.namespace }),
    history: [
      { at: FIXTURE_NOW - 120_000, from: 'Pending', to: 'Pending', why: 'first seen' },
      { at: FIXTURE_NOW - 90_000, from: 'Pending', to: 'Running', why: 'main container base started' },
    ],
    version: 0,
    ...overrides,
  };
}
