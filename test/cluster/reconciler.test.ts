/**
 * The reconcile loop's own guarantees against the real API server and DynamoDB Local: events are
 * never lost when the sink fails (transactional outbox), concurrent handlers converge without
 * overwriting each other, a repeated re-create is a 409 that counts as done, and every delete and
 * re-create leaves an audit item.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import type { OutboundEvent } from '../../lib/core/action.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import type { EventSink } from '../../lib/core/ports.ts';
import type { TaskId } from '../../lib/core/task.ts';
import { type ReconcilerDeps, reconcile } from '../../lib/reconciler/reconcile.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { createTestTable, type TestTable } from '../integration/support.ts';
import { createTestNamespace, loadTestKubeConfig, readPodOrUndefined, taskPod, waitFor } from './support.ts';

const kc = loadTestKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const CLUSTER = 'local';
const RUN_ID = 'manual__2026-11-23T0900000000-7c1e2d9a0';

let namespace: string;
let table: TestTable;
let store: DynamoTaskStore;

beforeAll(async () => {
  namespace = await createTestNamespace(kc, 'reconciler');
  table = await createTestTable('podwarden-reconciler');
  store = new DynamoTaskStore({ client: table.client, tableName: table.tableName });
});

afterAll(async () => {
  await table?.drop();
});

function depsWith(sink: EventSink, now = Date.now): ReconcilerDeps {
  return {
    store,
    cluster: new KubeCluster(async () => kc),
    sink,
    policy: makePolicy({ recreateBackoffBaseMs: 1, goneGraceMs: 1_000 }),
    clock: now,
    actor: 'test:reconciler',
    log: { info() {}, warn() {}, error() {} },
  };
}

const labels = (task: string) => ({
  kubernetes_pod_operator: 'True',
  dag_id: 'etl',
  task_id: task,
  run_id: RUN_ID,
  try_number: '1',
});
const taskId = (task: string): TaskId => ({ cluster: CLUSTER, namespace, key: `etl/${task}/${RUN_ID}/-1` });

async function runningPod(
  name: string,
  task: string,
  behaviour: Parameters<typeof taskPod>[0]['behaviour'] = { kind: 'run' },
) {
  await core.createNamespacedPod({
    namespace,
    body: taskPod({ name, namespace, labels: labels(task), behaviour, runForMs: 3_000 }),
  });
  await waitFor(
    `${name} running`,
    async () => (await readPodOrUndefined(kc, namespace, name))?.status?.phase === 'Running',
  );
}

describe('the reconcile loop', () => {
  it('keeps outbound events in the outbox while the sink fails and delivers them later, once', async () => {
    await runningPod('outbox-pod', 'outbox', { kind: 'exit', code: 0 });
    const delivered: OutboundEvent[] = [];
    let failing = true;
    const sink: EventSink = {
      async emit(events) {
        if (failing) throw new Error('EventBridge unavailable');
        delivered.push(...events);
      },
    };
    const deps = depsWith(sink);
    const target = { cluster: CLUSTER, namespace, profile: 'airflow-kpo' as const, podName: 'outbox-pod' };
    await reconcile(deps, target, []);
    await waitFor(
      'the pod to succeed',
      async () => (await readPodOrUndefined(kc, namespace, 'outbox-pod'))?.status?.phase === 'Succeeded',
    );
    await reconcile(deps, target, []);
    const stuck = await store.get(taskId('outbox'));
    expect(stuck?.state).toBe('Succeeded');
    expect(stuck?.outbox?.map((e) => e.type)).toEqual(['Task Succeeded']);
    expect(delivered).toEqual([]);

    failing = false;
    await reconcile(deps, target, []);
    await reconcile(deps, target, []);
    expect(delivered.map((e) => e.type)).toEqual(['Task Succeeded']);
    expect((await store.get(taskId('outbox')))?.outbox).toBeUndefined();
  });

  it('lets concurrent handlers converge: one re-create, no lost update, an audit item for it', async () => {
    await runningPod('race-pod', 'race');
    const deps = depsWith({ emit: async () => {} });
    const target = { cluster: CLUSTER, namespace, profile: 'airflow-kpo' as const, podName: 'race-pod' };
    await reconcile(deps, target, []);
    const first = await readPodOrUndefined(kc, namespace, 'race-pod');
    // The scheduler writes a Preempted event, the bridge forwards it, then the pod is gone (grace 0:
    // as after a real preemption). The reconciler reads the event back before it counts.
    await core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name: `race-pod.${Date.now()}` },
        involvedObject: { kind: 'Pod', namespace, name: 'race-pod', uid: first?.metadata?.uid ?? '' },
        reason: 'Preempted',
        message: 'Preempted by pod d on node n',
        type: 'Normal',
        firstTimestamp: new Date(),
        lastTimestamp: new Date(),
      },
    });
    const preempted = {
      type: 'preempted-event' as const,
      podName: 'race-pod',
      podUid: first?.metadata?.uid ?? '',
      reason: 'Preempted',
      message: 'Preempted by pod d on node n',
      at: Date.now(),
    };
    await reconcile(deps, target, [preempted]);
    await core.deleteNamespacedPod({ namespace, name: 'race-pod', gracePeriodSeconds: 0 });
    await waitFor(
      'race-pod gone',
      async () => (await readPodOrUndefined(kc, namespace, 'race-pod')) === undefined,
    );

    // The deletion is noticed (the back-off starts), then five handlers run at once past the
    // back-off, as duplicated events and a timer would wake them.
    await reconcile(deps, target, []);
    expect((await store.get(taskId('race')))?.disruption?.goneAt).toBeDefined();
    const later = depsWith({ emit: async () => {} }, () => Date.now() + 10_000);
    await Promise.all(Array.from({ length: 5 }, () => reconcile(later, target, [{ type: 'timer-fired' }])));
    const task = await store.get(taskId('race'));
    expect(task).toMatchObject({ attempt: 2, recreates: 1 });
    const reborn = await readPodOrUndefined(kc, namespace, 'race-pod');
    expect(reborn?.metadata?.labels?.['podwarden.io/attempt']).toBe('2');
    expect(task?.podUid).toBe(reborn?.metadata?.uid);
    const creates = (await store.listAudit(taskId('race'))).filter((a) => a.what === 'create-pod');
    expect(creates.filter((a) => a.outcome === 'created')).toHaveLength(1);
    expect(creates.every((a) => a.outcome === 'created' || a.outcome === 'exists-ours')).toBe(true);
  });
});
