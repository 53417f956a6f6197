/**
 * The reaper's pass as the periodic resync, against the real API server and DynamoDB Local: it
 * re-reads every unfinished task (listed pods from the list, the rest from the due-timer index),
 * writes nothing for a task where only the resync time would move, notes the pass, and the timer
 * then leaves those resyncs alone; a pod that vanished without an event is still found; once the
 * note is old, the timer does the resyncs again. Resync due times queue no check messages.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import type { TaskId } from '../../lib/core/task.ts';
import { runReaperPass, runTimerPass } from '../../lib/reconciler/passes.ts';
import { type ReconcilerDeps, reconcile } from '../../lib/reconciler/reconcile.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { createTestTable, type TestTable } from '../integration/support.ts';
import { createTestNamespace, loadTestKubeConfig, readPodOrUndefined, taskPod, waitFor } from './support.ts';

const kc = loadTestKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const CLUSTER = 'local';
const RUN_ID = 'manual__2026-12-04T0800000000-3f2a1b0c9';
const MINUTE = 60_000;

let namespace: string;
let table: TestTable;
let store: DynamoTaskStore;

beforeAll(async () => {
  namespace = await createTestNamespace(kc, 'resync');
  table = await createTestTable('podwarden-resync');
  store = new DynamoTaskStore({ client: table.client, tableName: table.tableName });
});

afterAll(async () => {
  await table?.drop();
});

const policy = makePolicy({ goneGraceMs: 1_000 });
const taskId = (task: string): TaskId => ({ cluster: CLUSTER, namespace, key: `etl/${task}/${RUN_ID}/-1` });

describe('the reaper pass as the resync', () => {
  it('re-reads every unfinished task, writes only what changed, and the timer leaves its resyncs alone', async () => {
    let offset = 0;
    const scheduled: Array<{ key: string; at: number }> = [];
    const deps: ReconcilerDeps = {
      store,
      cluster: new KubeCluster(async () => kc),
      sink: { emit: async () => {} },
      policy,
      clock: () => Date.now() + offset,
      actor: 'test:resync',
      log: { info() {}, warn() {}, error() {} },
      scheduler: { schedule: async (id, at) => void scheduled.push({ key: id.key, at }) },
    };
    for (const task of ['steady', 'vanishing']) {
      await core.createNamespacedPod({
        namespace,
        body: taskPod({
          name: `${task}-pod`,
          namespace,
          labels: {
            kubernetes_pod_operator: 'True',
            dag_id: 'etl',
            task_id: task,
            run_id: RUN_ID,
            try_number: '1',
          },
          behaviour: { kind: 'run' },
        }),
      });
    }
    for (const task of ['steady', 'vanishing']) {
      await waitFor(
        `${task} running`,
        async () => (await readPodOrUndefined(kc, namespace, `${task}-pod`))?.status?.phase === 'Running',
      );
      const target = { cluster: CLUSTER, namespace, profile: 'airflow-kpo' as const, podName: `${task}-pod` };
      const { task: record } = await reconcile(deps, target, []);
      expect(record).toMatchObject({ state: 'Running', mainStarted: true });
    }
    // Running tasks wait for nothing but their resync: no check is queued for that.
    expect(scheduled).toEqual([]);
    const steadyBefore = await store.get(taskId('steady'));
    const resyncDue = steadyBefore!.dueAt!;

    // The pod goes away and no event says so.
    await core.deleteNamespacedPod({ namespace, name: 'vanishing-pod', gracePeriodSeconds: 0 });
    await waitFor(
      'vanishing-pod gone',
      async () => !(await readPodOrUndefined(kc, namespace, 'vanishing-pod')),
    );

    offset = resyncDue - Date.now() + MINUTE; // both resyncs overdue by a minute
    const options = {
      cluster: CLUSTER,
      profiles: ['airflow-kpo' as const],
      namespaces: [namespace],
      maxDeletes: 10,
    };
    const pass = await runReaperPass(deps, options);
    expect(pass).toMatchObject({
      podsListed: 1,
      tasks: 1,
      failed: 0,
      resynced: 1,
      resyncFailed: 0,
      resyncNoted: true,
    });
    // The steady task was re-read from the list; only its resync time would have moved: not written.
    expect((await store.get(taskId('steady')))?.version).toBe(steadyBefore!.version);
    // The vanished one was found through the due-timer index and now waits for its grace.
    const vanishing = await store.get(taskId('vanishing'));
    expect(vanishing?.goneUnexplainedAt).toBeDefined();
    expect(scheduled.map((check) => check.key)).toEqual([taskId('vanishing').key]);

    // The timer, at the same time: the deadline is its work, the resync the pass did is not.
    offset += 2_000;
    const timer = await runTimerPass(deps);
    expect(timer).toMatchObject({ due: 1, reconciled: 1, failed: 0 });
    expect((await store.get(taskId('vanishing')))?.state).toBe('Deleted');
    expect((await store.get(taskId('steady')))?.version).toBe(steadyBefore!.version);

    // No pass for longer than the resync interval: the timer does the resync itself.
    offset += policy.resyncMs;
    const alone = await runTimerPass(deps);
    expect(alone).toMatchObject({ due: 1, reconciled: 1, failed: 0 });
    const steadyAfter = await store.get(taskId('steady'));
    expect(steadyAfter?.version).toBe(steadyBefore!.version + 1);
    expect(steadyAfter?.dueAt).toBeGreaterThan(Date.now() + offset);
  });

  it('notes nothing after a dry run, so the timer keeps every resync', async () => {
    const before = await store.resyncPasses();
    const pass = await runReaperPass(
      {
        store,
        cluster: new KubeCluster(async () => kc),
        sink: { emit: async () => {} },
        policy,
        clock: () => Date.now() + 60 * MINUTE,
        actor: 'test:resync',
        log: { info() {}, warn() {}, error() {} },
        dryRun: true,
      },
      { cluster: CLUSTER, profiles: ['airflow-kpo'], namespaces: [namespace], maxDeletes: 10 },
    );
    expect(pass).toMatchObject({ resyncNoted: false, resynced: 0 });
    expect(await store.resyncPasses()).toEqual(before);
  });
});
