/**
 * Issue 9: the real engines fail in the middle of Podwarden's work, and nothing is lost. This file
 * starts a control plane and a DynamoDB Local of its own (tables on disk), so it can stop and start
 * the kube-apiserver, and separately DynamoDB Local, between two steps of a reconcile and of a
 * reaper pass. The stop is triggered from a wrapper around the real adapters at the exact step;
 * the failure that follows is the real engine's (connection refused), not a simulated one.
 *
 * After each fault: 0 lost tasks (every record is there and converges), 0 double pods (one pod per
 * try), 0 unaudited deletes or re-creates (each has its audit entry, settled from the intent saved
 * before acting when the fault struck between the act and its audit).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import type { OutboundEvent } from '../../lib/core/action.ts';
import type { Observation } from '../../lib/core/observation.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import type { AuditEntry, Cluster, TaskStore } from '../../lib/core/ports.ts';
import type { TaskId, TaskRecord } from '../../lib/core/task.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../../lib/devcluster/dynamodb-local.ts';
import { type ControlPlane, startControlPlane, taskPodManifest } from '../../lib/devcluster/index.ts';
import { runReaperPass, runTimerPass } from '../../lib/reconciler/passes.ts';
import { INTENT_SETTLE_AFTER_MS, type ReconcilerDeps, reconcile } from '../../lib/reconciler/reconcile.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { tableDefinition } from '../../lib/store/schema.ts';

const CLUSTER = 'faulty';
const RUN_ID = 'manual__2026-12-02T0900000000-5d2c1b9e0';

let controlPlane: ControlPlane;
let dynamo: DynamoDbLocal;
let dbDir: string;
let kc: KubeConfig;
let core: CoreV1Api;
let store: DynamoTaskStore;
let dynamoClient: DynamoDBClient;

beforeAll(async () => {
  dbDir = await mkdtemp(join(tmpdir(), 'podwarden-faults-db-'));
  [controlPlane, dynamo] = await Promise.all([
    startControlPlane({ nodes: 1 }),
    startDynamoDbLocal({ dbPath: dbDir }),
  ]);
  kc = new KubeConfig();
  kc.loadFromFile(controlPlane.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  // Few SDK retries: while DynamoDB Local is down a call should fail, not wait it out.
  dynamoClient = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: 'local',
    credentials: { accessKeyId: 'podwardenfaults', secretAccessKey: 'podwardenfaults' },
    maxAttempts: 2,
  });
  const tableName = 'podwarden-faults';
  await dynamoClient.send(new CreateTableCommand(tableDefinition(tableName)));
  await waitUntilTableExists({ client: dynamoClient, maxWaitTime: 60 }, { TableName: tableName });
  store = new DynamoTaskStore({ client: dynamoClient, tableName });
}, 180_000);

afterAll(async () => {
  dynamoClient?.destroy();
  await Promise.allSettled([controlPlane?.stop(), dynamo?.stop()]);
  if (dbDir) await rm(dbDir, { recursive: true, force: true });
});

/** The real adapters, with a hook at one step: where the test stops an engine. */
interface Hooks {
  afterCreate?: () => Promise<void>;
  beforeCreate?: () => Promise<void>;
  afterDelete?: () => Promise<void>;
  beforeDelete?: () => Promise<void>;
}

function hooked(cluster: Cluster, hooks: Hooks): Cluster {
  // Deletes go one at a time, so a hook after one delete falls before the next starts, whatever
  // the reaper pass's concurrency (concurrent deletes made "stop after the first" race the others).
  let deletes: Promise<unknown> = Promise.resolve();
  return {
    getPod: (...args) => cluster.getPod(...args),
    listPods: (...args) => cluster.listPods(...args),
    listEvents: (...args) => cluster.listEvents(...args),
    createEvent: (...args) => cluster.createEvent(...args),
    async createPod(name, pod) {
      const before = hooks.beforeCreate;
      hooks.beforeCreate = undefined;
      await before?.();
      const created = await cluster.createPod(name, pod);
      const after = hooks.afterCreate;
      hooks.afterCreate = undefined;
      await after?.();
      return created;
    },
    deletePod(...args) {
      const turn = deletes.then(async () => {
        const before = hooks.beforeDelete;
        hooks.beforeDelete = undefined;
        await before?.();
        const outcome = await cluster.deletePod(...args);
        const after = hooks.afterDelete;
        hooks.afterDelete = undefined;
        await after?.();
        return outcome;
      });
      deletes = turn.catch(() => undefined);
      return turn;
    },
  };
}

const emitted: OutboundEvent[] = [];
/** Time moves on by `skewMs` in later passes (past back-offs and the intent settling age). */
let skewMs = 0;

function deps(hooks: Hooks = {}, taskStore: TaskStore = store): ReconcilerDeps {
  return {
    store: taskStore,
    cluster: hooked(
      new KubeCluster(async () => kc, {
        attempts: 2,
        baseDelayMs: 50,
        maxDelayMs: 100,
        requestTimeoutMs: 5_000,
      }),
      hooks,
    ),
    // EventBridge is a boundary here: the outbound events are only collected.
    sink: { emit: async (events) => void emitted.push(...events) },
    policy: makePolicy({ recreateBackoffBaseMs: 5_000, sidecarGraceMs: 1_000, reaperMinAgeMs: 1_000 }),
    clock: () => Date.now() + skewMs,
    actor: 'test:faults',
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

async function namespaceFor(name: string): Promise<string> {
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${String(last)})`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function readPod(namespace: string, name: string): Promise<V1Pod | undefined> {
  try {
    return await core.readNamespacedPod({ namespace, name });
  } catch {
    return undefined;
  }
}

async function podsOf(namespace: string, task: string): Promise<V1Pod[]> {
  const list = await core.listNamespacedPod({ namespace, labelSelector: `task_id=${task}` });
  return list.items.filter((pod) => !pod.metadata?.deletionTimestamp);
}

const taskId = (namespace: string, task: string): TaskId => ({
  cluster: CLUSTER,
  namespace,
  key: `etl/${task}/${RUN_ID}/-1`,
});

/** A running task pod, supervised, then preempted for real: a Preempted event, and gone. */
async function preemptedTask(
  namespace: string,
  task: string,
): Promise<{ record: TaskRecord; oldUid: string }> {
  const name = `${task}-pod`;
  await core.createNamespacedPod({
    namespace,
    body: taskPodManifest({ name, namespace, labels: labels(task), behaviour: { kind: 'run' } }),
  });
  await waitFor(`${name} running`, async () => (await readPod(namespace, name))?.status?.phase === 'Running');
  const target = { cluster: CLUSTER, namespace, profile: 'airflow-kpo' as const, podName: name };
  await reconcile(deps(), target, []);
  const pod = await readPod(namespace, name);
  const oldUid = pod?.metadata?.uid ?? '';
  await core.createNamespacedEvent({
    namespace,
    body: {
      metadata: { name: `${name}.preempted` },
      involvedObject: { kind: 'Pod', namespace, name, uid: oldUid },
      reason: 'Preempted',
      message: 'Preempted by pod kube-system/agent on node kwok-node-0',
      type: 'Normal',
      firstTimestamp: new Date(),
      lastTimestamp: new Date(),
    },
  });
  await core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
  await waitFor(`${name} gone`, async () => (await readPod(namespace, name)) === undefined);
  const hint: Observation = {
    type: 'preempted-event',
    podName: name,
    podUid: oldUid,
    reason: 'Preempted',
    message: 'forwarded by the bridge',
    at: Date.now(),
  };
  const result = await reconcile(deps(), target, [hint]);
  expect(result.task).toMatchObject({ state: 'Recovering', disruption: { goneAt: expect.any(Number) } });
  return { record: result.task as TaskRecord, oldUid };
}

/** Reconciles (as the timer would) until `done`, with a deadline; every pass must succeed in the end. */
async function convergeTask(namespace: string, task: string, done: (task: TaskRecord) => boolean) {
  const target = {
    cluster: CLUSTER,
    namespace,
    profile: 'airflow-kpo' as const,
    taskId: taskId(namespace, task),
  };
  return waitFor(`task ${task} to converge`, async () => {
    skewMs += INTENT_SETTLE_AFTER_MS + 1_000;
    const result = await reconcile(deps(), target, [{ type: 'timer-fired' }]);
    return result.task && done(result.task) ? result.task : undefined;
  });
}

/** The invariants after a fault around a re-create. */
async function expectRecreatedOnce(namespace: string, task: string, oldUid: string, audit: AuditEntry[]) {
  const pods = await podsOf(namespace, task);
  expect(pods, 'one pod for the try (no double pod)').toHaveLength(1);
  const [pod] = pods;
  expect(pod?.metadata?.labels?.['podwarden.io/attempt']).toBe('2');
  const record = await store.get(taskId(namespace, task));
  expect(record, 'the task record is not lost').toMatchObject({ attempt: 2, podUid: pod?.metadata?.uid });
  expect(record?.intents ?? []).toEqual([]);
  const creates = audit.filter((entry) => entry.what === 'create-pod');
  expect(
    creates.some((entry) => entry.podUid === pod?.metadata?.uid && /created/.test(entry.outcome ?? '')),
    `the re-create of ${pod?.metadata?.uid} is audited: ${JSON.stringify(creates)}`,
  ).toBe(true);
  expect(creates.every((entry) => entry.podUid !== oldUid || !/^created/.test(entry.outcome ?? ''))).toBe(
    true,
  );
}

describe('the kube-apiserver restarts', () => {
  it('in the middle of a re-create: the create fails, the intent stays, the next pass creates once', async () => {
    const namespace = await namespaceFor('fault-apiserver-recreate');
    const { oldUid } = await preemptedTask(namespace, 'apicreate');
    const target = {
      cluster: CLUSTER,
      namespace,
      profile: 'airflow-kpo' as const,
      taskId: taskId(namespace, 'apicreate'),
    };
    skewMs += 10_000; // past the re-create back-off
    await expect(
      reconcile(deps({ beforeCreate: () => controlPlane.stopApiserver() }), target, [
        { type: 'timer-fired' },
      ]),
    ).rejects.toThrow();
    const interrupted = await store.get(taskId(namespace, 'apicreate'));
    expect(interrupted?.intents?.map((intent) => intent.kind)).toEqual(['create-pod']);

    await controlPlane.startApiserver();
    await convergeTask(namespace, 'apicreate', (task) => task.attempt === 2 && task.podUid !== undefined);
    await expectRecreatedOnce(
      namespace,
      'apicreate',
      oldUid,
      await store.listAudit(taskId(namespace, 'apicreate')),
    );
    const settled = (await store.listAudit(taskId(namespace, 'apicreate'))).filter(
      (e) => e.what === 'create-pod',
    );
    expect(settled.map((entry) => entry.outcome)).toContain('not-created-interrupted');
  });

  it('in the middle of a reaper pass: the deletes done are audited, the rest follow, once each', async () => {
    const namespace = await namespaceFor('fault-apiserver-reaper');
    const zombies = await zombieTasks(namespace, ['apiz1', 'apiz2', 'apiz3']);
    const first = await runReaperPass(deps({ afterDelete: () => controlPlane.stopApiserver() }), {
      cluster: CLUSTER,
      profiles: ['airflow-kpo'],
      namespaces: [namespace],
      maxDeletes: 10,
    });
    // Restarted whatever the assertions say, so one failure here does not fail every later test.
    await controlPlane.startApiserver();
    expect(first.deleted).toBe(1);
    expect(first.failed).toBe(2);
    const deleted = await reapUntilGone(namespace, zombies);
    expect(first.deleted + deleted).toBe(3);
    await expectReapedOnce(namespace, zombies);
  });
});

describe('DynamoDB Local restarts', () => {
  it('between a re-create and its audit: the saved intent is settled, the pod is adopted, none is doubled', async () => {
    const namespace = await namespaceFor('fault-dynamo-recreate');
    const { oldUid } = await preemptedTask(namespace, 'dbcreate');
    const target = {
      cluster: CLUSTER,
      namespace,
      profile: 'airflow-kpo' as const,
      taskId: taskId(namespace, 'dbcreate'),
    };
    skewMs += 10_000; // past the re-create back-off
    await expect(
      reconcile(deps({ afterCreate: () => dynamo.stop() }), target, [{ type: 'timer-fired' }]),
    ).rejects.toThrow();
    // The create happened; its audit entry did not: DynamoDB Local was down.
    expect(await podsOf(namespace, 'dbcreate')).toHaveLength(1);

    await dynamo.startAgain();
    await convergeTask(
      namespace,
      'dbcreate',
      (task) => task.attempt === 2 && (task.intents ?? []).length === 0,
    );
    const audit = await store.listAudit(taskId(namespace, 'dbcreate'));
    await expectRecreatedOnce(namespace, 'dbcreate', oldUid, audit);
    expect(audit.filter((e) => e.what === 'create-pod').map((e) => e.outcome)).toContain(
      'created-after-interruption',
    );
  });

  it('in the middle of a reaper pass: a delete whose audit failed is settled and announced, once', async () => {
    const namespace = await namespaceFor('fault-dynamo-reaper');
    const zombies = await zombieTasks(namespace, ['dbz1', 'dbz2']);
    const reapedBefore = emitted.filter((event) => event.type === 'Pod Reaped').length;
    const first = await runReaperPass(deps({ afterDelete: () => dynamo.stop() }), {
      cluster: CLUSTER,
      profiles: ['airflow-kpo'],
      namespaces: [namespace],
      maxDeletes: 10,
    });
    // The first delete happened, but its reconcile failed at the audit write; the second at the read.
    expect(first.failed).toBe(2);
    await dynamo.startAgain();
    await reapUntilGone(namespace, zombies);
    await expectReapedOnce(namespace, zombies);
    const reaped = emitted.filter((event) => event.type === 'Pod Reaped').slice(reapedBefore);
    expect(new Set(reaped.map((event) => event.podName))).toEqual(new Set(zombies.map((z) => z.name)));
    const audits = await Promise.all(zombies.map((z) => store.listAudit(taskId(namespace, z.task))));
    expect(audits.flat().map((entry) => entry.outcome)).toContain('gone-after-interruption');
  });
});

interface Zombie {
  task: string;
  name: string;
  uid: string;
}

/** Sidecar zombies, supervised, and past the reaper's minimum age and the sidecar grace. */
async function zombieTasks(namespace: string, tasks: string[]): Promise<Zombie[]> {
  const zombies: Zombie[] = [];
  for (const task of tasks) {
    const name = `${task}-pod`;
    await core.createNamespacedPod({
      namespace,
      body: taskPodManifest({
        name,
        namespace,
        labels: labels(task),
        behaviour: { kind: 'zombie-sidecar', code: 0 },
        sidecar: true,
        runForMs: 300,
      }),
    });
    await reconcile(deps(), { cluster: CLUSTER, namespace, profile: 'airflow-kpo', podName: name }, []);
  }
  for (const task of tasks) {
    const name = `${task}-pod`;
    const pod = await waitFor(`${name} a zombie past its grace`, async () => {
      const current = await readPod(namespace, name);
      const main = current?.status?.containerStatuses?.find((status) => status.name === 'base');
      const finishedAt = Date.parse(main?.state?.terminated?.finishedAt?.toString() ?? '');
      const createdAt = Date.parse(current?.metadata?.creationTimestamp?.toString() ?? '');
      return Date.now() - finishedAt > 1_500 && Date.now() - createdAt > 1_500 ? current : undefined;
    });
    zombies.push({ task, name, uid: pod.metadata?.uid ?? '' });
  }
  return zombies;
}

/** Reaper and timer passes (later and later) until every zombie is gone; returns the deletes counted. */
async function reapUntilGone(namespace: string, zombies: Zombie[]): Promise<number> {
  let deleted = 0;
  await waitFor('every zombie reaped', async () => {
    skewMs += INTENT_SETTLE_AFTER_MS + 1_000;
    const pass = await runReaperPass(deps(), {
      cluster: CLUSTER,
      profiles: ['airflow-kpo'],
      namespaces: [namespace],
      maxDeletes: 10,
    });
    deleted += pass.deleted;
    // As in production, the timer pass runs too: it settles what no pod brings the reaper back to.
    const timers = await runTimerPass(deps());
    const left = await Promise.all(zombies.map((z) => readPod(namespace, z.name)));
    const records = await Promise.all(zombies.map((z) => store.get(taskId(namespace, z.task))));
    return pass.failed === 0 &&
      timers.failed === 0 &&
      left.every((pod) => pod === undefined) &&
      records.every((record) => (record?.intents ?? []).length === 0)
      ? true
      : undefined;
  });
  return deleted;
}

async function expectReapedOnce(namespace: string, zombies: Zombie[]): Promise<void> {
  for (const zombie of zombies) {
    const record = await store.get(taskId(namespace, zombie.task));
    expect(record, `task ${zombie.task} is not lost`).toMatchObject({ state: 'Succeeded' });
    const audit = await store.listAudit(taskId(namespace, zombie.task));
    const reaps = audit.filter(
      (entry) =>
        entry.what === 'reap:sidecar-zombie' && entry.podUid === zombie.uid && entry.outcome !== 'intended',
    );
    expect(reaps.length, `the delete of ${zombie.name} is audited: ${JSON.stringify(audit)}`).toBeGreaterThan(
      0,
    );
    expect(reaps.some((entry) => ['deleted', 'gone-after-interruption'].includes(entry.outcome ?? ''))).toBe(
      true,
    );
  }
}

describe('what is reported is what happened', () => {
  it('a pod that changed between the list and its delete is decided again on a fresh read, then deleted once', async () => {
    const namespace = await namespaceFor('fault-changed');
    const [zombie] = await zombieTasks(namespace, ['chgz1']);
    if (!zombie) throw new Error('no zombie');
    const reapedBefore = emitted.filter((event) => event.type === 'Pod Reaped').length;
    // Between the reaper's list and its delete, someone labels the pod: its resourceVersion moves.
    const touch = async () => {
      await core.patchNamespacedPod({
        namespace,
        name: zombie.name,
        body: [{ op: 'add', path: '/metadata/labels/touched', value: 'yes' }],
      });
    };
    const pass = await runReaperPass(deps({ beforeDelete: touch }), {
      cluster: CLUSTER,
      profiles: ['airflow-kpo'],
      namespaces: [namespace],
      maxDeletes: 10,
    });
    expect(pass).toMatchObject({ deleted: 1, failed: 0 });
    await waitFor('the zombie gone', async () => (await readPod(namespace, zombie.name)) === undefined);
    const reaps = (await store.listAudit(taskId(namespace, 'chgz1'))).filter(
      (entry) => entry.what === 'reap:sidecar-zombie',
    );
    // Newest first: the refusal of the delete made on the listed reading, then the delete.
    expect(reaps.map((entry) => entry.outcome)).toEqual(['deleted', 'changed']);
    expect(reaps.every((entry) => entry.podUid === zombie.uid)).toBe(true);
    expect(emitted.filter((event) => event.type === 'Pod Reaped').slice(reapedBefore)).toHaveLength(1);
  });

  it('a delete the uid precondition refused is neither announced nor counted', async () => {
    const namespace = await namespaceFor('fault-uid-refused');
    const [zombie] = await zombieTasks(namespace, ['uidz1']);
    if (!zombie) throw new Error('no zombie');
    const reapedBefore = emitted.filter((event) => event.type === 'Pod Reaped').length;
    // Between the reaper's decision and its delete, someone replaces the pod under the same name.
    const replace = async () => {
      await core.deleteNamespacedPod({ namespace, name: zombie.name, gracePeriodSeconds: 0 });
      await waitFor('the old pod gone', async () => (await readPod(namespace, zombie.name)) === undefined);
      await core.createNamespacedPod({
        namespace,
        body: taskPodManifest({
          name: zombie.name,
          namespace,
          labels: labels('uidz1'),
          behaviour: { kind: 'run' },
        }),
      });
    };
    const pass = await runReaperPass(deps({ beforeDelete: replace }), {
      cluster: CLUSTER,
      profiles: ['airflow-kpo'],
      namespaces: [namespace],
      maxDeletes: 10,
    });
    expect(pass).toMatchObject({ deleted: 0, failed: 0 });
    const successor = await readPod(namespace, zombie.name);
    expect(successor?.metadata?.uid).not.toBe(zombie.uid); // the successor was not deleted
    expect(emitted.filter((event) => event.type === 'Pod Reaped').slice(reapedBefore)).toEqual([]);
    const audit = await store.listAudit(taskId(namespace, 'uidz1'));
    expect(audit.find((entry) => entry.what === 'reap:sidecar-zombie')).toMatchObject({
      podUid: zombie.uid,
      outcome: 'uid-mismatch',
    });
  });
});
