/**
 * The three seed failures, end to end: the real scheduler preempts, KWOK plays the kubelet, the
 * store is DynamoDB Local, and the shared reconcile loop decides and acts through the real
 * cluster adapter. Only the transport is local (lib/local/poller.ts lists what the bridge would
 * forward); the outbound sink is an in-memory list, as Podwarden's own EventSink port allows.
 */
import { CoreV1Api, type CoreV1Event, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import type { OutboundEvent } from '../../lib/core/action.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import type { TaskId, TaskRecord } from '../../lib/core/task.ts';
import { Poller } from '../../lib/local/poller.ts';
import type { ReconcilerDeps } from '../../lib/reconciler/reconcile.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { createTestTable, type TestTable } from '../integration/support.ts';
import {
  createFakeNode,
  createTestNamespace,
  loadTestKubeConfig,
  priorityClasses,
  readPodOrUndefined,
  type TaskPodOptions,
  taskPod,
  waitFor,
} from './support.ts';

const kc = loadTestKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const CLUSTER = 'local';
const RUN_ID = 'scheduled__2026-04-09T0900000000-2b8f1c3a4';

let namespace: string;
let table: TestTable;
let store: DynamoTaskStore;
let deps: ReconcilerDeps;
let poller: Poller;
const emitted: OutboundEvent[] = [];

beforeAll(async () => {
  namespace = await createTestNamespace(kc, 'seeds');
  table = await createTestTable('podwarden-seeds');
  store = new DynamoTaskStore({ client: table.client, tableName: table.tableName });
  deps = {
    store,
    cluster: new KubeCluster(async () => kc),
    sink: { emit: async (events) => void emitted.push(...events) },
    // The design's durations, shortened so a test takes seconds; the logic is the same.
    policy: makePolicy({
      recreateBackoffBaseMs: 500,
      goneGraceMs: 5_000,
      sidecarGraceMs: 2_000,
      finishedGraceMs: 2_000,
      reaperMinAgeMs: 0,
      pullRecheckBaseMs: 1_000,
      pullRecheckCapMs: 2_000,
    }),
    clock: Date.now,
    actor: 'test:seeds',
    log: { info() {}, warn() {}, error() {} },
  };
  poller = new Poller(deps, { cluster: CLUSTER, namespace, profile: 'airflow-kpo', maxDeletes: 10 });
});

afterAll(async () => {
  await table?.drop();
});

const poll = (reaper = false) => poller.poll(reaper);

function kpoLabels(taskId: string, tryNumber = 1): Record<string, string> {
  return {
    kubernetes_pod_operator: 'True',
    dag_id: 'etl',
    task_id: taskId,
    run_id: RUN_ID,
    try_number: String(tryNumber),
  };
}

function taskKey(taskId: string): TaskId {
  return { cluster: CLUSTER, namespace, key: `etl/${taskId}/${RUN_ID}/-1` };
}

async function createPod(options: Omit<TaskPodOptions, 'namespace'>): Promise<V1Pod> {
  return core.createNamespacedPod({ namespace, body: taskPod({ ...options, namespace }) });
}

/** Polls Podwarden (as its event stream would wake it) until the task record satisfies `ready`. */
function taskWhen(
  taskId: string,
  what: string,
  ready: (task: TaskRecord) => boolean,
  reaper = false,
): Promise<TaskRecord> {
  return waitFor(`task ${taskId} ${what}`, async () => {
    await poll(reaper);
    const task = await store.get(taskKey(taskId));
    return task && ready(task) ? task : undefined;
  });
}

const eventsOf = (type: OutboundEvent['type'], taskId: string) =>
  emitted.filter((e) => e.type === type && e.task.key === taskKey(taskId).key);

/** The Events Podwarden wrote on a pod, read back from the API server as the Airflow side reads them. */
async function storyOn(podName: string): Promise<CoreV1Event[]> {
  const { items } = await core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.name=${podName}`,
  });
  return items.filter((e) => e.source?.component === 'podwarden');
}

describe('seed 000: a preempted task pod comes back under the same name', () => {
  it('re-creates the pod after the scheduler preempts it for a daemon, and follows it to Running', async () => {
    const nodeName = `seeds-${namespace}`;
    const taint = { key: 'podwarden.test/dedicated', value: namespace, effect: 'NoSchedule' };
    await createFakeNode(kc, { name: nodeName, cpu: '1', memory: '1Gi', taints: [taint] });
    const placement = {
      nodeSelector: { 'kubernetes.io/hostname': nodeName },
      tolerations: [{ key: taint.key, operator: 'Equal', value: taint.value, effect: taint.effect }],
    };
    const victim = await createPod({
      name: 'load-vqfekgln',
      labels: kpoLabels('load'),
      behaviour: { kind: 'run' },
      priorityClassName: priorityClasses.taskLow.name,
      cpu: '700m',
      ...placement,
    });
    await taskWhen(
      'load',
      'running with a captured spec',
      (t) => t.state === 'Running' && t.captured !== undefined,
    );

    const daemon = await createPod({
      name: 'calico-node-x',
      behaviour: { kind: 'run' },
      priorityClassName: priorityClasses.daemonHigh.name,
      cpu: '700m',
      ...placement,
    });

    const recovered = await taskWhen(
      'load',
      'recovered as attempt 2',
      (t) => t.attempt === 2 && t.state !== 'Recovering',
    );
    expect(recovered).toMatchObject({ recreates: 1, podName: 'load-vqfekgln', tryNumber: 1 });
    const reborn = await readPodOrUndefined(kc, namespace, 'load-vqfekgln');
    expect(reborn?.metadata?.uid).toBe(recovered.podUid);
    expect(reborn?.metadata?.uid).not.toBe(victim.metadata?.uid);
    expect(reborn?.metadata?.labels).toMatchObject({ ...kpoLabels('load'), 'podwarden.io/attempt': '2' });
    expect(reborn?.metadata?.annotations?.['podwarden.io/replaces-uid']).toBe(victim.metadata?.uid);
    expect(reborn?.spec?.nodeName === nodeName || reborn?.spec?.nodeName === undefined).toBe(true);
    expect(eventsOf('Task Recovered', 'load')).toHaveLength(1);
    const audit = await store.listAudit(taskKey('load'));
    expect(audit.find((a) => a.what === 'create-pod')).toMatchObject({
      outcome: 'created',
      podUid: recovered.podUid,
    });
    expect(recovered.history.map((h) => h.to)).toContain('Recovering');
    // The pod's story, as `kubectl describe pod` and the Airflow package read it.
    const story = await storyOn('load-vqfekgln');
    const pending = story.filter((e) => e.reason === 'RecreatePending');
    expect(pending.length).toBeGreaterThanOrEqual(1);
    expect(pending.every((e) => e.involvedObject.uid === victim.metadata?.uid)).toBe(true);
    expect(pending.map((e) => e.metadata.annotations?.['podwarden.io/next-attempt'])).toContain('2');
    expect(Date.parse(pending.at(-1)?.metadata.annotations?.['podwarden.io/due-at'] ?? '')).toBeGreaterThan(
      0,
    );
    const recreated = story.filter((e) => e.reason === 'Recreated');
    expect(recreated).toHaveLength(1);
    expect(recreated[0]?.involvedObject.uid).toBe(recovered.podUid);
    expect(recreated[0]?.metadata.annotations).toMatchObject({
      'podwarden.io/new-uid': recovered.podUid,
      'podwarden.io/replaces-uid': victim.metadata?.uid,
      'podwarden.io/attempt': '2',
    });

    // Once the daemon's place frees up, the re-created pod runs and Podwarden follows it.
    await core.deleteNamespacedPod({ namespace, name: daemon.metadata?.name ?? '', gracePeriodSeconds: 0 });
    const running = await taskWhen('load', 'running again', (t) => t.state === 'Running');
    expect(running.attempt).toBe(2);
    expect(eventsOf('Task Failed', 'load')).toHaveLength(0);
  });
});

describe('seed 001: zombie pods', () => {
  it('ends a task whose sidecar never exits by the main exit code, and deletes the pod', async () => {
    const zombie = await createPod({
      name: 'zombie-kpo-task-1',
      labels: kpoLabels('zombie'),
      behaviour: { kind: 'zombie-sidecar', code: 0 },
      sidecar: true,
      runForMs: 300,
      gracePeriodSeconds: 86_400,
    });
    const ended = await taskWhen('zombie', 'ended', (t) => t.state === 'Succeeded');
    expect(ended.mainExitCode).toBe(0);
    await waitFor('the zombie pod to be deleted', async () => {
      await poll(true);
      return (await readPodOrUndefined(kc, namespace, 'zombie-kpo-task-1')) === undefined;
    });
    const audit = await store.listAudit(taskKey('zombie'));
    expect(audit.find((a) => a.what === 'reap:sidecar-zombie')).toMatchObject({
      podUid: zombie.metadata?.uid,
      outcome: 'deleted',
    });
    expect(eventsOf('Pod Reaped', 'zombie')[0]).toMatchObject({
      rule: 'sidecar-zombie',
      podName: 'zombie-kpo-task-1',
    });
    const reaped = (await storyOn('zombie-kpo-task-1')).filter((e) => e.reason === 'Reaped');
    expect(reaped).toHaveLength(1);
    expect(reaped[0]?.involvedObject.uid).toBe(zombie.metadata?.uid);
    expect(reaped[0]?.metadata.annotations).toMatchObject({
      'podwarden.io/rule': 'sidecar-zombie',
      'podwarden.io/exit-code': '0',
    });
  });

  it('reaps the pod of a stale try but never a protected one', async () => {
    await createPod({ name: 'retry-t1', labels: kpoLabels('retry', 1), behaviour: { kind: 'run' } });
    await createPod({ name: 'retry-t2', labels: kpoLabels('retry', 2), behaviour: { kind: 'run' } });
    await createPod({
      name: 'kept-t1',
      labels: kpoLabels('kept', 1),
      annotations: { 'podwarden.io/protect': 'true' },
      behaviour: { kind: 'run' },
    });
    await createPod({ name: 'kept-t2', labels: kpoLabels('kept', 2), behaviour: { kind: 'run' } });
    await waitFor('the stale try retry-t1 to be reaped', async () => {
      await poll(true);
      return (await readPodOrUndefined(kc, namespace, 'retry-t1')) === undefined;
    });
    expect(await readPodOrUndefined(kc, namespace, 'retry-t2')).toBeDefined();
    expect(await readPodOrUndefined(kc, namespace, 'kept-t1')).toBeDefined();
    const keptAudit = await waitFor('the protected pod to be reported', async () => {
      await poll(true);
      const audit = await store.listAudit(taskKey('kept'));
      return audit.some((a) => a.what === 'reap-skipped-protected') ? audit : undefined;
    });
    expect(keptAudit.filter((a) => a.what.startsWith('reap:'))).toEqual([]);
    expect((await store.listAudit(taskKey('retry'))).find((a) => a.what === 'reap:stale-try')).toMatchObject({
      podName: 'retry-t1',
      outcome: 'deleted',
    });
  });
});

describe('seed 002: image pulls', () => {
  it('waits out a registry rate limit and follows the pod once the image arrives', async () => {
    await createPod({
      name: 'pull-rate-limited',
      labels: kpoLabels('pull'),
      behaviour: { kind: 'pull-error', message: 'pull QPS exceeded.', clearAfterSeconds: 4 },
    });
    const waiting = await taskWhen('pull', 'waiting for its image', (t) => t.state === 'WaitingForImage');
    expect(waiting.imagePull?.evidence.message).toMatch(/pull QPS exceeded/);
    expect(eventsOf('Image Pull Waiting', 'pull')).toHaveLength(1);
    const told = (await storyOn('pull-rate-limited')).filter((e) => e.reason === 'ImagePullWaiting');
    expect(told).toHaveLength(1);
    expect(told[0]?.metadata.annotations).toMatchObject({
      'podwarden.io/classification': 'transient',
      'podwarden.io/deadline': new Date(waiting.imagePull?.deadline ?? 0).toISOString(),
    });
    const running = await taskWhen('pull', 'running after the pull cleared', (t) => t.state === 'Running');
    expect(running.imagePull).toBeUndefined();
    expect(eventsOf('Task Failed', 'pull')).toHaveLength(0);
  });

  it('fails fast on a permanent pull error, naming it', async () => {
    await createPod({
      name: 'pull-missing-tag',
      labels: kpoLabels('missing'),
      behaviour: {
        kind: 'pull-error',
        message: 'failed to resolve reference "registry.invalid/podwarden/task:nope": manifest unknown',
      },
    });
    const failed = await taskWhen('missing', 'failed', (t) => t.state === 'Failed');
    expect(failed.cause).toBe('ImagePullPermanent');
    expect(eventsOf('Task Failed', 'missing')[0]?.message).toMatch(/manifest unknown|not-found/i);
    const gaveUp = (await storyOn('pull-missing-tag')).filter((e) => e.reason === 'GaveUp');
    expect(gaveUp).toHaveLength(1);
    expect(gaveUp[0]).toMatchObject({
      type: 'Warning',
      metadata: { annotations: { 'podwarden.io/cause': 'ImagePullPermanent' } },
    });
    expect(gaveUp[0]?.message).toMatch(/manifest unknown/);
  });
});
