/**
 * The Lambda functions as Lambda runs them (the exported middy handlers, configured from environment
 * variables, dependencies built once per container), fed EventBridge events made by the bridge's own
 * entry builders and routed by the route table. Behind them: the real local control plane, DynamoDB
 * Local, and a local PutEvents recorder for the outbound events (a fake: no EventBridge engine runs
 * locally). Logs and metrics are read from what Powertools writes to stdout and stderr.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import {
  handleKubernetesEvent,
  handler as kubernetesEventHandler,
} from '../../functions/kubernetes-event.ts';
import { handler as orchestratorHandler } from '../../functions/orchestrator.ts';
import { handlePodChanged, handler as podChangedHandler } from '../../functions/pod-changed.ts';
import { handleReaper, handler as reaperHandler } from '../../functions/reaper.ts';
import { type ContainerDeps, containerDeps } from '../../functions/shared/deps.ts';
import { instrument } from '../../functions/shared/observability.ts';
import { handler as timerHandler } from '../../functions/timer.ts';
import { type BusEntry, kubeEventItem, podChangedItem } from '../../lib/bridge/entries.ts';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import { configEnvironment, loadConfig, routeOptions } from '../../lib/config.ts';
import type { Pod } from '../../lib/core/pod.ts';
import { ClusterError } from '../../lib/core/ports.ts';
import type { TaskId } from '../../lib/core/task.ts';
import {
  dispatch,
  type HandlerName,
  type Route,
  routeTable,
  type ScheduleRoute,
  scheduleEvent,
} from '../../lib/routes.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { createTestTable, dynamodbEndpoint, type TestTable } from '../integration/support.ts';
import { type EventBridgeRecorder, startEventBridgeRecorder } from '../support/eventbridge-recorder.ts';
import { createTestNamespace, loadTestKubeConfig, readPodOrUndefined, taskPod, waitFor } from './support.ts';

const kc = loadTestKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const CLUSTER = 'local';
const BUS = 'podwarden-functions-test';
const RUN_ID = 'scheduled__2026-04-09T0900000000-7c1d2e3f4';

let namespace: string;
let otherNamespace: string;
let table: TestTable;
let store: DynamoTaskStore;
let recorder: EventBridgeRecorder;
let routes: readonly Route[];
const savedEnv = { ...process.env };

// ---- what Powertools writes ------------------------------------------------------------------

const jsonLines: Array<Record<string, unknown>> = [];
const restoreWrites: Array<() => void> = [];

/** Keeps the JSON lines (logs and EMF metrics) a stream gets; passes everything else on. */
function captureJsonLines(stream: NodeJS.WriteStream): void {
  const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  const spy = vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
    const text = String(chunk);
    if (!text.trimStart().startsWith('{')) return original(chunk, ...rest);
    for (const line of text.split('\n').filter((candidate) => candidate.trim() !== '')) {
      jsonLines.push(JSON.parse(line) as Record<string, unknown>);
    }
    return true;
  }) as never);
  restoreWrites.push(() => spy.mockRestore());
}

interface EmittedMetric {
  name: string;
  value: number;
  dimensions: Record<string, string>;
}

/** The EMF metrics written since `mark` (an index into jsonLines). */
function metricsSince(mark: number): EmittedMetric[] {
  const metrics: EmittedMetric[] = [];
  for (const line of jsonLines.slice(mark)) {
    const aws = line._aws as
      | {
          CloudWatchMetrics: Array<{
            Namespace: string;
            Dimensions: string[][];
            Metrics: Array<{ Name: string }>;
          }>;
        }
      | undefined;
    for (const directive of aws?.CloudWatchMetrics ?? []) {
      expect(directive.Namespace).toBe('Podwarden');
      const dimensions = Object.fromEntries(
        (directive.Dimensions[0] ?? []).map((name) => [name, String(line[name])]),
      );
      for (const { Name } of directive.Metrics) {
        const raw = line[Name];
        const value = Array.isArray(raw)
          ? raw.reduce((sum: number, item: number) => sum + item, 0)
          : Number(raw);
        metrics.push({ name: Name, value, dimensions });
      }
    }
  }
  return metrics;
}

function total(metrics: EmittedMetric[], name: string, dimensions: Record<string, string> = {}): number {
  return metrics
    .filter((metric) => metric.name === name)
    .filter((metric) => Object.entries(dimensions).every(([key, value]) => metric.dimensions[key] === value))
    .reduce((sum, metric) => sum + metric.value, 0);
}

function logsSince(mark: number, message: string): Array<Record<string, unknown>> {
  return jsonLines.slice(mark).filter((line) => line.message === message);
}

// ---- invoking the functions -------------------------------------------------------------------

type LambdaHandler = (event: unknown, context: Context) => Promise<unknown>;
const HANDLERS: Record<HandlerName, LambdaHandler> = {
  'pod-changed': podChangedHandler,
  'kubernetes-event': kubernetesEventHandler,
  orchestrator: orchestratorHandler,
  timer: timerHandler,
  reaper: reaperHandler,
};

function lambdaContext(name: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: `podwarden-${name}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:podwarden-${name}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/podwarden-${name}`,
    logStreamName: 'test',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Routes the event with the route table, as the stack's rules do, and invokes that function. */
async function deliver(event: unknown): Promise<Record<string, unknown>> {
  const route = dispatch(event, routes);
  if (!route) throw new Error(`no route for ${JSON.stringify(event).slice(0, 200)}`);
  return (await HANDLERS[route.handler](event, lambdaContext(route.handler))) as Record<string, unknown>;
}

/** A bus entry as EventBridge hands it to a rule target. */
function delivered(entry: BusEntry): Record<string, unknown> {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': entry.DetailType,
    source: entry.Source,
    account: '123456789012',
    time: entry.Time.toISOString(),
    region: 'eu-west-1',
    resources: [],
    detail: JSON.parse(entry.Detail),
  };
}

function podChangedEvent(pod: V1Pod, change: 'added' | 'modified' | 'deleted' = 'modified') {
  return delivered(
    podChangedItem({ cluster: CLUSTER, bus: BUS, change, pod: wire(pod), observedAt: Date.now() }).entry,
  );
}

function kubeEvent(pod: V1Pod, reason: string, message: string) {
  const { name, namespace: podNamespace, uid, labels } = pod.metadata ?? {};
  return delivered(
    kubeEventItem({
      cluster: CLUSTER,
      bus: BUS,
      event: {
        namespace: podNamespace ?? '',
        name: `${name}.${randomUUID().slice(0, 8)}`,
        reason,
        message,
        type: 'Warning',
        involvedObject: { kind: 'Pod', name, namespace: podNamespace, uid },
        lastTimestamp: new Date().toISOString(),
      },
      ...(labels ? { podLabels: labels } : {}),
      observedAt: Date.now(),
    }).entry,
  );
}

/** What the scheduler does on preemption: it writes the event on the API server, then the bridge forwards it. */
async function serverKubeEvent(pod: V1Pod, reason: string, message: string) {
  const { name, namespace: podNamespace, uid } = pod.metadata ?? {};
  await core.createNamespacedEvent({
    namespace: podNamespace ?? '',
    body: {
      metadata: { name: `${name}.${randomUUID().slice(0, 8)}` },
      involvedObject: { kind: 'Pod', name, namespace: podNamespace, uid },
      reason,
      message,
      type: 'Warning',
      firstTimestamp: new Date(),
      lastTimestamp: new Date(),
    },
  });
  return kubeEvent(pod, reason, message);
}

function scheduled(handler: 'timer' | 'reaper') {
  const route = routes.find((candidate): candidate is ScheduleRoute => candidate.handler === handler);
  if (!route) throw new Error(`no schedule route for ${handler}`);
  return scheduleEvent(route, { id: randomUUID(), time: new Date().toISOString() });
}

// ---- pods and tasks ---------------------------------------------------------------------------

function wire(pod: V1Pod): Pod {
  return JSON.parse(JSON.stringify(pod)) as Pod;
}

function kpoLabels(taskId: string, tryNumber = 1): Record<string, string> {
  return {
    kubernetes_pod_operator: 'True',
    dag_id: 'etl',
    task_id: taskId,
    run_id: RUN_ID,
    try_number: String(tryNumber),
  };
}

function taskKey(taskId: string, podNamespace = namespace): TaskId {
  return { cluster: CLUSTER, namespace: podNamespace, key: `etl/${taskId}/${RUN_ID}/-1` };
}

async function runningPod(name: string, taskId: string, podNamespace = namespace): Promise<V1Pod> {
  await core.createNamespacedPod({
    namespace: podNamespace,
    body: taskPod({ name, namespace: podNamespace, labels: kpoLabels(taskId), behaviour: { kind: 'run' } }),
  });
  return waitFor(`pod ${name} running`, async () => {
    const pod = await readPodOrUndefined(kc, podNamespace, name);
    return pod?.status?.phase === 'Running' ? pod : undefined;
  });
}

function recordedOfType(type: string, taskId: string) {
  return recorder.entries
    .filter((entry) => entry.DetailType === type)
    .map((entry) => JSON.parse(entry.Detail ?? '{}') as { task: TaskId; rule?: string; podName: string })
    .filter((detail) => detail.task.key === taskKey(taskId).key);
}

async function freePortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

// ---- setup ------------------------------------------------------------------------------------

beforeAll(async () => {
  namespace = await createTestNamespace(kc, 'functions');
  otherNamespace = await createTestNamespace(kc, 'functions-other');
  table = await createTestTable('podwarden-functions');
  store = new DynamoTaskStore({ client: table.client, tableName: table.tableName });
  recorder = await startEventBridgeRecorder();
  for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL']) delete process.env[name];
  Object.assign(process.env, {
    // DynamoDB Local keeps one database per access key and region: the same pair as the test table's.
    AWS_REGION: 'local',
    AWS_ACCESS_KEY_ID: 'podwardenlocal',
    AWS_SECRET_ACCESS_KEY: 'podwardenlocal',
    AWS_ENDPOINT_URL_DYNAMODB: dynamodbEndpoint(),
    AWS_ENDPOINT_URL_EVENTBRIDGE: recorder.endpoint,
    ...configEnvironment({
      tableName: table.tableName,
      eventBusName: BUS,
      clusters: { [CLUSTER]: { kind: 'kubeconfig', path: inject('kubeconfigPath') } },
      allowedNamespaces: [namespace],
      // The design's durations, shortened so a test takes seconds; the logic is the same.
      policy: { recreateBackoffBaseMs: 200, sidecarGraceMs: 1_000, reaperMinAgeMs: 1_000 },
    }),
  });
  routes = routeTable(routeOptions(loadConfig(process.env)));
  captureJsonLines(process.stdout);
  captureJsonLines(process.stderr);
});

afterAll(async () => {
  for (const restore of restoreWrites.splice(0)) restore();
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
  await recorder?.close();
  await table?.drop();
});

// ---- tests ------------------------------------------------------------------------------------

describe('pod-changed', () => {
  it('starts supervising a managed pod, from the pod as the API server has it, not as the event says', async () => {
    const pod = await runningPod('extract-q7w2k9', 'extract');
    const event = podChangedEvent(pod, 'added');
    const forged = event.detail as { pod: Pod };
    forged.pod.spec = {
      ...forged.pod.spec,
      containers: [{ name: 'base', image: 'attacker.invalid/miner:latest' }],
    };

    const result = await deliver(event);
    expect(result).toMatchObject({ outcome: 'reconciled', state: 'Running' });
    const task = await store.get(taskKey('extract'));
    expect(task).toMatchObject({
      state: 'Running',
      podName: 'extract-q7w2k9',
      podUid: pod.metadata?.uid,
      tryNumber: 1,
    });
    const containers = task?.captured?.spec.containers as Array<{ image: string }>;
    expect(containers[0]?.image).toBe(pod.spec?.containers[0]?.image);
  });

  it('rejects a malformed event without throwing, with a log line naming the problem and a metric', async () => {
    const pod = await runningPod('bad-event-h3k2', 'bad-event');
    const event = podChangedEvent(pod);
    (event.detail as Record<string, unknown>).change = 'exploded';
    const mark = jsonLines.length;

    const result = await deliver(event);
    expect(result).toEqual({
      outcome: 'rejected',
      problem: expect.stringMatching(/detail.change is "exploded"/),
    });
    expect(total(metricsSince(mark), 'MalformedEvents')).toBe(1);
    const [log] = logsSince(mark, 'malformed event rejected');
    expect(log).toMatchObject({
      level: 'ERROR',
      handler: 'pod-changed',
      function_name: 'podwarden-pod-changed',
      problem: expect.stringContaining('detail.change'),
    });
    expect(await store.get(taskKey('bad-event'))).toBeUndefined();
  });

  it('rejects an event about a cluster that is not configured', async () => {
    const event = podChangedEvent(await readPod('extract-q7w2k9'));
    (event.detail as Record<string, unknown>).cluster = 'elsewhere';
    const mark = jsonLines.length;
    expect(await deliver(event)).toMatchObject({
      outcome: 'rejected',
      problem: expect.stringMatching(
        /cluster "elsewhere" is not configured \(PODWARDEN_CLUSTERS has: local\)/,
      ),
    });
    expect(total(metricsSince(mark), 'MalformedEvents')).toBe(1);
  });

  it('leaves pods outside the allowed namespaces alone', async () => {
    const pod = await runningPod('outside-p2m8', 'outside', otherNamespace);
    expect(await deliver(podChangedEvent(pod))).toEqual({
      outcome: 'skipped',
      reason: `namespace ${otherNamespace} is not an allowed namespace`,
    });
    expect(await store.get(taskKey('outside', otherNamespace))).toBeUndefined();
  });

  it('throws when DynamoDB is unreachable, so that Lambda retries the event (then its DLQ)', async () => {
    const deps = containerDeps();
    const unreachable: ContainerDeps = {
      ...deps,
      store: new DynamoTaskStore({
        client: new DynamoDBClient({ endpoint: await freePortUrl(), maxAttempts: 1 }),
        tableName: deps.config.tableName,
      }),
    };
    const handler = instrument('pod-changed', (event) => handlePodChanged(event, unreachable));
    const mark = jsonLines.length;
    await expect(
      handler(podChangedEvent(await readPod('extract-q7w2k9')), lambdaContext('pod-changed')),
    ).rejects.toThrow();
    expect(total(metricsSince(mark), 'ReconcileErrors')).toBe(1);
    expect(logsSince(mark, 'reconcile failed; the invocation will be retried')[0]).toMatchObject({
      failure: expect.not.stringMatching(/^cluster/),
    });
  });

  it('throws a retryable cluster error when the API server is unreachable', async () => {
    const server = (await freePortUrl()).replace('http:', 'https:');
    const unreachableApi = new KubeConfig();
    unreachableApi.loadFromOptions({
      clusters: [{ name: 'gone', server, skipTLSVerify: true }],
      users: [{ name: 'gone', token: 'unused' }],
      contexts: [{ name: 'gone', cluster: 'gone', user: 'gone' }],
      currentContext: 'gone',
    });
    const deps: ContainerDeps = {
      ...containerDeps(),
      cluster: new KubeCluster(async () => unreachableApi, { attempts: 1 }),
    };
    const handler = instrument('pod-changed', (event) => handlePodChanged(event, deps));
    const mark = jsonLines.length;
    const error = await handler(
      podChangedEvent(await readPod('extract-q7w2k9')),
      lambdaContext('pod-changed'),
    ).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ClusterError);
    expect((error as ClusterError).kind).toBe('retryable');
    expect(logsSince(mark, 'reconcile failed; the invocation will be retried')[0]).toMatchObject({
      failure: 'cluster retryable',
    });
  });
});

describe('seed 000 through the functions: preempted, then re-created by the timer', () => {
  it('records the disruption from the Preempted event and the timer re-creates the pod under its name', async () => {
    const pod = await runningPod('load-r4n8x2', 'load');
    expect(await deliver(podChangedEvent(pod, 'added'))).toMatchObject({
      outcome: 'reconciled',
      state: 'Running',
    });
    const oldUid = pod.metadata?.uid;

    // What the scheduler does on preemption: the pod is deleted, and a Preempted event names it.
    await core.deleteNamespacedPod({ namespace, name: 'load-r4n8x2', gracePeriodSeconds: 0 });
    await waitFor(
      'preempted pod gone',
      async () => (await readPodOrUndefined(kc, namespace, 'load-r4n8x2')) === undefined,
    );
    const preempted = await deliver(
      await serverKubeEvent(
        pod,
        'Preempted',
        'Preempted by pod 6b1f0c2e-kube-system/node-agent-x on node kwok-node-1',
      ),
    );
    expect(preempted).toMatchObject({ outcome: 'reconciled', state: 'Recovering' });
    // The timer first runs once the re-create is overdue by a little, so the pass that finds it due
    // reports a lag above zero (one that ran in the very millisecond of its due time would report 0).
    const recreateDueAt = (await store.get(taskKey('load')))?.dueAt;
    expect(recreateDueAt).toBeDefined();
    await waitFor('the re-create to be overdue', async () => Date.now() >= recreateDueAt! + 20);

    const mark = jsonLines.length;
    const recreated = await waitFor('the timer to re-create the pod', async () => {
      const result = await deliver(scheduled('timer'));
      expect(result).toMatchObject({ outcome: 'timer-pass', failed: 0 });
      const current = await readPodOrUndefined(kc, namespace, 'load-r4n8x2');
      return current && current.metadata?.uid !== oldUid ? current : undefined;
    });
    expect(recreated.metadata?.labels).toMatchObject({ ...kpoLabels('load'), 'podwarden.io/attempt': '2' });

    const task = await store.get(taskKey('load'));
    expect(task).toMatchObject({
      attempt: 2,
      recreates: 1,
      podName: 'load-r4n8x2',
      podUid: recreated.metadata?.uid,
    });
    expect(task?.outbox ?? []).toEqual([]);
    const [announced] = recordedOfType('Task Recovered', 'load');
    expect(announced).toMatchObject({ podName: 'load-r4n8x2', attempt: 2 });
    expect(recorder.entries.find((entry) => entry.DetailType === 'Task Recovered')).toMatchObject({
      Source: 'podwarden',
      EventBusName: BUS,
    });

    const metrics = metricsSince(mark);
    expect(total(metrics, 'TasksRecovered')).toBe(1);
    const lags = metrics.filter((metric) => metric.name === 'TimerLagSeconds');
    expect(lags.length).toBeGreaterThan(0);
    // The pass that found the re-create due was late by at least the margin waited for above.
    expect(Math.max(...lags.map((lag) => lag.value))).toBeGreaterThanOrEqual(0.02);
  });
});

describe('kubernetes-event: a spent re-create budget', () => {
  it('fails the task with cause DisruptionBudgetExhausted, the metric its alarm watches', async () => {
    const pod = await runningPod('budget-z3c7', 'budget');
    await deliver(podChangedEvent(pod, 'added'));
    const deps = containerDeps();
    const noBudget: ContainerDeps = {
      ...deps,
      config: { ...deps.config, policy: { ...deps.config.policy, recreateBudget: 0 } },
    };
    const handler = instrument('kubernetes-event', (event) => handleKubernetesEvent(event, noBudget));
    const mark = jsonLines.length;
    const result = await handler(
      await serverKubeEvent(
        pod,
        'Preempted',
        'Preempted by pod kube-system/node-agent-q on node kwok-node-1',
      ),
      lambdaContext('kubernetes-event'),
    );
    expect(result).toMatchObject({ outcome: 'reconciled', state: 'Failed' });
    expect((await store.get(taskKey('budget')))?.cause).toBe('DisruptionBudgetExhausted');
    expect(
      total(metricsSince(mark), 'TasksFailed', { cause: 'DisruptionBudgetExhausted', service: 'podwarden' }),
    ).toBe(1);
    expect(recordedOfType('Task Failed', 'budget')).toHaveLength(1);
  });
});

describe('kubernetes-event: image pulls', () => {
  it('waits out a transient pull error, announcing the wait', async () => {
    const message =
      'toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit';
    await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name: 'pull-k2v9c4',
        namespace,
        labels: kpoLabels('pull'),
        behaviour: { kind: 'pull-error', message },
      }),
    });
    // The kubelet reports the event once the container waits on the pull; the reconciler re-reads it.
    const pod = await waitFor('the pull error on the pod', async () => {
      const current = await readPodOrUndefined(kc, namespace, 'pull-k2v9c4');
      const reason = current?.status?.containerStatuses?.[0]?.state?.waiting?.reason;
      return reason === 'ErrImagePull' || reason === 'ImagePullBackOff' ? current : undefined;
    });
    const mark = jsonLines.length;
    const result = await deliver(
      kubeEvent(pod, 'Failed', `Failed to pull image "registry.invalid/podwarden/task:1": ${message}`),
    );
    expect(result).toMatchObject({ outcome: 'reconciled', state: 'WaitingForImage' });
    expect(total(metricsSince(mark), 'ImagePullWaits')).toBe(1);
    expect(recordedOfType('Image Pull Waiting', 'pull')).toHaveLength(1);
  });

  it('skips events about reasons Podwarden does not act on', async () => {
    const pod = await readPod('extract-q7w2k9');
    expect(await deliver(kubeEvent(pod, 'Pulled', 'Successfully pulled image "x" in 1.2s'))).toEqual({
      outcome: 'skipped',
      reason: 'event reason Pulled is not one Podwarden acts on',
    });
  });
});

describe('orchestrator', () => {
  const taskInstance = (detail: Record<string, unknown>) => ({
    version: '0',
    id: randomUUID(),
    source: 'airflow.listener',
    'detail-type': 'Task Instance Changed',
    time: new Date().toISOString(),
    detail,
  });

  it("folds the orchestrator's state into the task", async () => {
    const result = await deliver(
      taskInstance({
        dag_id: 'etl',
        task_id: 'extract',
        run_id: RUN_ID,
        map_index: -1,
        try_number: 1,
        state: 'running',
        cluster: CLUSTER,
        namespace,
      }),
    );
    expect(result).toMatchObject({ outcome: 'reconciled' });
    expect((await store.get(taskKey('extract')))?.orchestratorState).toBe('running');
  });

  it('rejects a task instance without a try number, naming the field', async () => {
    const mark = jsonLines.length;
    const result = await deliver(
      taskInstance({
        dag_id: 'etl',
        task_id: 'extract',
        run_id: RUN_ID,
        state: 'running',
        cluster: CLUSTER,
        namespace,
      }),
    );
    expect(result).toEqual({
      outcome: 'rejected',
      problem: 'detail.try_number is missing, not a whole number >= 0',
    });
    expect(total(metricsSince(mark), 'MalformedEvents')).toBe(1);
  });
});

describe('reaper', () => {
  async function zombiePod(name: string, taskId: string): Promise<V1Pod> {
    await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name,
        namespace,
        labels: kpoLabels(taskId),
        behaviour: { kind: 'zombie-sidecar', code: 0 },
        sidecar: true,
        runForMs: 300,
      }),
    });
    return waitFor(`main container of ${name} terminated`, async () => {
      const pod = await readPodOrUndefined(kc, namespace, name);
      const main = pod?.status?.containerStatuses?.find((status) => status.name === 'base');
      // Past the reaper's minimum age and the sidecar grace (1 s each here; zero is refused).
      const pastGuards =
        Date.now() - Date.parse(main?.state?.terminated?.finishedAt?.toString() ?? '') > 1_500 &&
        Date.now() - Date.parse(pod?.metadata?.creationTimestamp?.toString() ?? '') > 1_500;
      return main?.state?.terminated && pod?.status?.phase !== 'Succeeded' && pastGuards ? pod : undefined;
    });
  }

  it('deletes a sidecar zombie, with an audit line, an event and a metric', async () => {
    const zombie = await zombiePod('zombie-m5t1q8', 'zombie');
    const mark = jsonLines.length;
    const result = await deliver(scheduled('reaper'));
    expect(result).toMatchObject({
      outcome: 'reaper-pass',
      dryRun: false,
      clusters: { [CLUSTER]: { failed: 0 } },
    });
    await waitFor(
      'zombie gone',
      async () => (await readPodOrUndefined(kc, namespace, 'zombie-m5t1q8')) === undefined,
    );

    expect(total(metricsSince(mark), 'PodsReaped', { rule: 'sidecar-zombie' })).toBe(1);
    expect(recordedOfType('Pod Reaped', 'zombie')).toMatchObject([
      { rule: 'sidecar-zombie', podName: 'zombie-m5t1q8' },
    ]);
    const audit = await store.listAudit(taskKey('zombie'));
    expect(audit).toContainEqual(
      expect.objectContaining({
        what: 'reap:sidecar-zombie',
        outcome: 'deleted',
        podUid: zombie.metadata?.uid,
        actor: 'lambda:reaper',
      }),
    );
  });

  it('in dry-run mode audits what it would delete and deletes nothing', async () => {
    const deps = containerDeps();
    const dryRun: ContainerDeps = {
      ...deps,
      config: { ...deps.config, reaper: { ...deps.config.reaper, dryRun: true } },
    };
    const handler = instrument('reaper', (event) => handleReaper(event, dryRun));
    const zombie = await zombiePod('zombie-dry-w8e3', 'zombie-dry');
    const mark = jsonLines.length;
    const recordBefore = await store.get(taskKey('zombie-dry'));

    expect(await handler(scheduled('reaper'), lambdaContext('reaper'))).toMatchObject({
      outcome: 'reaper-pass',
      dryRun: true,
    });
    expect((await readPodOrUndefined(kc, namespace, 'zombie-dry-w8e3'))?.metadata?.uid).toBe(
      zombie.metadata?.uid,
    );
    expect(total(metricsSince(mark), 'PodsReaped')).toBe(0);
    // Nothing but the audit changes: the record (state, outbox of events) is as it was.
    expect(await store.get(taskKey('zombie-dry'))).toEqual(recordBefore);
    expect(await store.listAudit(taskKey('zombie-dry'))).toContainEqual(
      expect.objectContaining({ what: 'reap:sidecar-zombie', outcome: 'dry-run' }),
    );
  });
});

async function readPod(name: string): Promise<V1Pod> {
  const pod = await readPodOrUndefined(kc, namespace, name);
  if (!pod) throw new Error(`pod ${namespace}/${name} does not exist`);
  return pod;
}
