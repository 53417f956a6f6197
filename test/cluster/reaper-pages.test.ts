/**
 * The reaper pass works on the list page by page. A task whose pods fall on pages far apart must
 * still be judged on all of them, against the real API server (pages of two pods) and DynamoDB
 * Local: a stale try seen before the newer one, and a supervised pod listed after an older one. And
 * a pass ends only after the deletes it began, even when its list fails.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import type { Cluster } from '../../lib/core/ports.ts';
import type { TaskId } from '../../lib/core/task.ts';
import { runReaperPass } from '../../lib/reconciler/passes.ts';
import { type ReconcilerDeps, reconcile } from '../../lib/reconciler/reconcile.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { createTestTable, type TestTable } from '../integration/support.ts';
import { createTestNamespace, loadTestKubeConfig, readPodOrUndefined, taskPod, waitFor } from './support.ts';

const kc = loadTestKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const CLUSTER = 'local';
const RUN_ID = 'manual__2026-12-04T0830000000-9e8d7c6b5';

let table: TestTable;
let store: DynamoTaskStore;

beforeAll(async () => {
  table = await createTestTable('podwarden-reaper-pages');
  store = new DynamoTaskStore({ client: table.client, tableName: table.tableName });
});

afterAll(async () => {
  await table?.drop();
});

const policy = makePolicy({ reaperMinAgeMs: 1_000 });

function deps(): ReconcilerDeps {
  return {
    store,
    // Two pods a page: the pods of one task land pages apart.
    cluster: new KubeCluster(async () => kc, { pageSize: 2 }),
    sink: { emit: async () => {} },
    policy,
    clock: () => Date.now() + 60_000,
    actor: 'test:reaper-pages',
    log: { info() {}, warn() {}, error() {} },
  };
}

async function createPods(namespace: string, pods: Array<{ name: string; task: string; tryNumber: number }>) {
  for (const { name, task, tryNumber } of pods) {
    await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name,
        namespace,
        labels: {
          kubernetes_pod_operator: 'True',
          dag_id: 'pages',
          task_id: task,
          run_id: RUN_ID,
          try_number: String(tryNumber),
        },
        behaviour: { kind: 'run' },
      }),
    });
  }
  for (const { name } of pods)
    await waitFor(
      `${name} running`,
      async () => (await readPodOrUndefined(kc, namespace, name))?.status?.phase === 'Running',
    );
}

const fillers = ['m-filler-1', 'm-filler-2', 'm-filler-3', 'm-filler-4'].map((name) => ({
  name,
  task: name,
  tryNumber: 1,
}));

describe('a reaper pass page by page', () => {
  it('deletes a stale try listed pages before the newer try, in one pass', async () => {
    const namespace = await createTestNamespace(kc, 'reaper-pages-new');
    await createPods(namespace, [
      { name: 'a-split-try1', task: 'split', tryNumber: 1 },
      ...fillers,
      { name: 'z-split-try2', task: 'split', tryNumber: 2 },
    ]);
    const id: TaskId = { cluster: CLUSTER, namespace, key: `pages/split/${RUN_ID}/-1` };
    const pass = await runReaperPass(deps(), {
      cluster: CLUSTER,
      profiles: ['airflow-kpo'],
      namespaces: [namespace],
      maxDeletes: 10,
    });
    expect(pass).toMatchObject({ podsListed: 6, tasks: 5, deleted: 1, failed: 0 });
    expect(await readPodOrUndefined(kc, namespace, 'a-split-try1')).toBeUndefined();
    expect(await store.get(id)).toMatchObject({ tryNumber: 2, podName: 'z-split-try2', state: 'Running' });
    const audit = await store.listAudit(id);
    expect(audit.map((entry) => [entry.what, entry.podName, entry.outcome])).toContainEqual([
      'reap:stale-try',
      'a-split-try1',
      'deleted',
    ]);
  });

  it('deletes while the list goes on only within the cap of what it has listed, the rest in list order after it', async () => {
    const namespace = await createTestNamespace(kc, 'reaper-pages-cap');
    // Four tasks with a stale try each, a page per task, then two pages of others: 12 pods, so the
    // pass's cap is 3 (25%), but after the second page (4 pods listed) it is 1.
    const tasks = ['s1', 's2', 's3', 's4'];
    await createPods(namespace, [
      ...tasks.flatMap((task) => [
        { name: `a-${task}-try1`, task, tryNumber: 1 },
        { name: `a-${task}-try2`, task, tryNumber: 2 },
      ]),
      ...fillers,
    ]);
    const capped = { ...deps(), policy: makePolicy({ reaperMinAgeMs: 1_000, reaperMaxDeletesPercent: 25 }) };
    const pass = await runReaperPass(capped, {
      cluster: CLUSTER,
      profiles: ['airflow-kpo'],
      namespaces: [namespace],
      maxDeletes: 1,
    });
    expect(pass).toMatchObject({ podsListed: 12, deleteCap: 3, deleted: 3, deferred: 1, failed: 0 });
    for (const task of ['s1', 's2', 's3'])
      expect(await readPodOrUndefined(kc, namespace, `a-${task}-try1`)).toBeUndefined();
    expect(await readPodOrUndefined(kc, namespace, 'a-s4-try1')).toBeDefined();
    expect(await readPodOrUndefined(kc, namespace, 'a-s4-try2')).toBeDefined();
  });

  it('does not end before the deletes it began, even when its list fails', async () => {
    const namespace = await createTestNamespace(kc, 'reaper-pages-fail');
    // The stale try's task is settled once the fillers' page has come; the page after fails.
    await createPods(namespace, [
      { name: 'a-f1-try1', task: 'f1', tryNumber: 1 },
      { name: 'a-f1-try2', task: 'f1', tryNumber: 2 },
      ...fillers,
    ]);
    const base = deps();
    let listFailed!: () => void;
    const failure = new Promise<void>((resolve) => {
      listFailed = resolve;
    });
    const cluster: Cluster = {
      getPod: (...args) => base.cluster.getPod(...args),
      createPod: (...args) => base.cluster.createPod(...args),
      listEvents: (...args) => base.cluster.listEvents(...args),
      createEvent: (...args) => base.cluster.createEvent(...args),
      // The delete goes on only after the list has failed: the pass must still wait for it.
      deletePod: async (...args) => {
        await failure;
        return base.cluster.deletePod(...args);
      },
      listPods: (name, options) => {
        let page = 0;
        return base.cluster.listPods(name, {
          ...options,
          onPage: async (pods) => {
            if (++page === 3) {
              listFailed();
              throw new Error('the list broke off');
            }
            await options.onPage?.(pods);
          },
        });
      },
    };
    const id: TaskId = { cluster: CLUSTER, namespace, key: `pages/f1/${RUN_ID}/-1` };
    await expect(
      runReaperPass(
        { ...base, cluster },
        { cluster: CLUSTER, profiles: ['airflow-kpo'], namespaces: [namespace], maxDeletes: 10 },
      ),
    ).rejects.toThrow('the list broke off');
    const audit = await store.listAudit(id);
    expect(audit.map((entry) => [entry.what, entry.podName, entry.outcome])).toContainEqual([
      'reap:stale-try',
      'a-f1-try1',
      'deleted',
    ]);
  });

  it('never takes a supervised pod listed pages later for gone', async () => {
    const namespace = await createTestNamespace(kc, 'reaper-pages-held');
    // The task supervises its newer try; an older pod of it sorts first, before two pages of others.
    await createPods(namespace, [{ name: 'z-held-try2', task: 'held', tryNumber: 2 }, ...fillers]);
    const id: TaskId = { cluster: CLUSTER, namespace, key: `pages/held/${RUN_ID}/-1` };
    await reconcile(
      deps(),
      { cluster: CLUSTER, namespace, profile: 'airflow-kpo', podName: 'z-held-try2' },
      [],
    );
    // A pod of the older try, too young for the reaper to delete, so the pass writes what it decides.
    await createPods(namespace, [{ name: 'a-held-try1', task: 'held', tryNumber: 1 }]);
    const before = await store.get(id);
    const pass = await runReaperPass(
      { ...deps(), clock: Date.now },
      { cluster: CLUSTER, profiles: ['airflow-kpo'], namespaces: [namespace], maxDeletes: 10 },
    );
    expect(pass).toMatchObject({ podsListed: 6, failed: 0 });
    const after = await store.get(id);
    expect(after).toMatchObject({ state: 'Running', podName: 'z-held-try2', podUid: before?.podUid });
    expect(after?.goneUnexplainedAt).toBeUndefined();
    expect(after?.retiredUids ?? []).not.toContain(before?.podUid);
  });
});
