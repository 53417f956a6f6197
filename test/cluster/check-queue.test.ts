/**
 * Seed 000 as the deployed stack runs it, with the due check delivered through SQS: the real
 * scheduler preempts the task pod, the bridge's entries reach the pod-changed and kubernetes-event
 * functions, the back-off is queued as a delayed message on ElasticMQ (a real SQS engine on
 * loopback), and the check function, fed by that queue, re-creates the pod. No timer pass runs.
 *
 * Behind the functions: the real local control plane, DynamoDB Local, ElasticMQ, and the PutEvents
 * recorder for outbound events (a fake: no EventBridge engine runs locally). Lambda's SQS event
 * source mapping is played by test/support/sqs.ts's QueueConsumer (no local engine either).
 */
import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { handler as checkHandler } from '../../functions/check.ts';
import { handler as kubernetesEventHandler } from '../../functions/kubernetes-event.ts';
import { handler as podChangedHandler } from '../../functions/pod-changed.ts';
import { containerDeps, reconcilerDeps } from '../../functions/shared/deps.ts';
import { kubeEventItem, podChangedItem, toKubeEvent } from '../../lib/bridge/entries.ts';
import { configEnvironment } from '../../lib/config.ts';
import type { Pod } from '../../lib/core/pod.ts';
import type { TaskId } from '../../lib/core/task.ts';
import { EARLY_TOLERANCE_MS, runDueCheck } from '../../lib/reconciler/check.ts';
import { checkMessageBody } from '../../lib/scheduler/check-message.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { createTestTable, dynamodbEndpoint, type TestTable } from '../integration/support.ts';
import { type EventBridgeRecorder, startEventBridgeRecorder } from '../support/eventbridge-recorder.ts';
import {
  createTestQueue,
  localSqsClient,
  messageCounts,
  QueueConsumer,
  type TestQueue,
} from '../support/sqs.ts';
import { sqsEndpoint } from '../support/sqs-endpoint.ts';
import { makeTaskRecord } from '../support/task-fixtures.ts';
import {
  createFakeNode,
  createTestNamespace,
  loadTestKubeConfig,
  priorityClasses,
  readPodOrUndefined,
  taskPod,
  waitFor,
} from './support.ts';

const kc = loadTestKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const CLUSTER = 'local';
const BUS = 'podwarden-check-queue-test';
const RUN_ID = 'scheduled__2026-04-09T0900000000-5d2e7a1c9';
const BACKOFF_MS = 2_000;

let namespace: string;
let table: TestTable;
let store: DynamoTaskStore;
let recorder: EventBridgeRecorder;
let sqs: SQSClient;
let queue: TestQueue;
const savedEnv = { ...process.env };

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

const invokeCheck = (event: SQSEvent) =>
  checkHandler(event, lambdaContext('check')) as Promise<SQSBatchResponse>;

/** A bus entry as EventBridge hands it to a rule target. */
function delivered(entry: { DetailType: string; Source: string; Time: Date; Detail: string }) {
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

const wire = (pod: V1Pod) => JSON.parse(JSON.stringify(pod)) as Pod;

function kpoLabels(taskId: string): Record<string, string> {
  return { kubernetes_pod_operator: 'True', dag_id: 'etl', task_id: taskId, run_id: RUN_ID, try_number: '1' };
}

function taskKey(taskId: string): TaskId {
  return { cluster: CLUSTER, namespace, key: `etl/${taskId}/${RUN_ID}/-1` };
}

function sqsRecord(body: string): SQSRecord {
  return {
    messageId: randomUUID(),
    receiptHandle: randomUUID(),
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(Date.now()),
      SenderId: 'test',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: queue.arn,
    awsRegion: 'local',
  };
}

beforeAll(async () => {
  namespace = await createTestNamespace(kc, 'check-queue');
  table = await createTestTable('podwarden-check-queue');
  store = new DynamoTaskStore({ client: table.client, tableName: table.tableName });
  recorder = await startEventBridgeRecorder();
  sqs = localSqsClient(sqsEndpoint());
  queue = await createTestQueue(sqs, {
    prefix: 'podwarden-check-queue',
    visibilityTimeoutSeconds: 1,
    maxReceiveCount: 2,
  });
  for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL']) delete process.env[name];
  Object.assign(process.env, {
    AWS_REGION: 'local',
    AWS_ACCESS_KEY_ID: 'podwardenlocal',
    AWS_SECRET_ACCESS_KEY: 'podwardenlocal',
    AWS_ENDPOINT_URL_DYNAMODB: dynamodbEndpoint(),
    AWS_ENDPOINT_URL_EVENTBRIDGE: recorder.endpoint,
    AWS_ENDPOINT_URL_SQS: sqsEndpoint(),
    ...configEnvironment({
      tableName: table.tableName,
      eventBusName: BUS,
      clusters: { [CLUSTER]: { kind: 'kubeconfig', path: inject('kubeconfigPath') } },
      allowedNamespaces: [namespace],
      checkQueueUrl: queue.url,
      // The design's re-create back-off (2 s): the delay SQS holds the check back for.
      policy: { recreateBackoffBaseMs: BACKOFF_MS },
    }),
  });
});

afterAll(async () => {
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
  await queue?.drop();
  sqs?.destroy();
  await recorder?.close();
  await table?.drop();
});

describe('seed 000 with the due check on the SQS queue', () => {
  it('re-creates a really preempted pod from the queued check, after the back-off, with no timer pass', async () => {
    const nodeName = `check-queue-${namespace}`;
    const taint = { key: 'podwarden.test/dedicated', value: namespace, effect: 'NoSchedule' };
    await createFakeNode(kc, { name: nodeName, cpu: '1', memory: '1Gi', taints: [taint] });
    const placement = {
      nodeSelector: { 'kubernetes.io/hostname': nodeName },
      tolerations: [{ key: taint.key, operator: 'Equal', value: taint.value, effect: taint.effect }],
    };
    const name = 'load-c8k2m4';
    await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name,
        namespace,
        labels: kpoLabels('load'),
        behaviour: { kind: 'run' },
        priorityClassName: priorityClasses.taskLow.name,
        cpu: '700m',
        ...placement,
      }),
    });
    const victim = await waitFor('the task pod running', async () => {
      const pod = await readPodOrUndefined(kc, namespace, name);
      return pod?.status?.phase === 'Running' ? pod : undefined;
    });
    const added = podChangedItem({
      cluster: CLUSTER,
      bus: BUS,
      change: 'added',
      pod: wire(victim),
      observedAt: Date.now(),
    });
    expect(await podChangedHandler(delivered(added.entry), lambdaContext('pod-changed'))).toMatchObject({
      outcome: 'reconciled',
      state: 'Running',
    });

    const consumer = new QueueConsumer(sqs, queue, invokeCheck);
    try {
      await core.createNamespacedPod({
        namespace,
        body: taskPod({
          name: 'node-agent-c8k2',
          namespace,
          behaviour: { kind: 'run' },
          priorityClassName: priorityClasses.daemonHigh.name,
          cpu: '700m',
          ...placement,
        }),
      });
      // What the bridge forwards: the scheduler's Preempted event, then the pod's deletion.
      const preempted = await waitFor('the scheduler to record the preemption', async () => {
        const events = await core.listNamespacedEvent({
          namespace,
          fieldSelector: `involvedObject.uid=${victim.metadata?.uid}`,
        });
        return events.items.map(toKubeEvent).find((event) => event?.reason === 'Preempted');
      });
      await waitFor('the preempted pod gone', async () => {
        const pod = await readPodOrUndefined(kc, namespace, name);
        return pod === undefined || pod.metadata?.uid !== victim.metadata?.uid;
      });
      const goneAt = Date.now();
      const eventEntry = kubeEventItem({
        cluster: CLUSTER,
        bus: BUS,
        event: preempted,
        podLabels: kpoLabels('load'),
        observedAt: Date.now(),
      });
      expect(
        await kubernetesEventHandler(delivered(eventEntry.entry), lambdaContext('kubernetes-event')),
      ).toMatchObject({ outcome: 'reconciled' });
      const deleted = podChangedItem({
        cluster: CLUSTER,
        bus: BUS,
        change: 'deleted',
        pod: wire(victim),
        observedAt: Date.now(),
      });
      expect(await podChangedHandler(delivered(deleted.entry), lambdaContext('pod-changed'))).toMatchObject({
        outcome: 'reconciled',
        state: 'Recovering',
      });
      const recovering = await store.get(taskKey('load'));
      const recreateAt = recovering?.disruption?.recreateAt;
      expect(recreateAt).toBeGreaterThanOrEqual(goneAt - 1_000);
      // The back-off is now a delayed message, not something a sweep has to find.
      expect((await messageCounts(sqs, queue.url)).delayed).toBeGreaterThanOrEqual(1);

      const reborn = await waitFor('the check function to re-create the pod', async () => {
        const pod = await readPodOrUndefined(kc, namespace, name);
        return pod && pod.metadata?.uid !== victim.metadata?.uid ? pod : undefined;
      });
      expect(reborn.metadata?.labels).toMatchObject({ ...kpoLabels('load'), 'podwarden.io/attempt': '2' });
      expect(reborn.metadata?.annotations?.['podwarden.io/replaces-uid']).toBe(victim.metadata?.uid);
      // Never before the back-off: the queue held the check back, the handler waited out the rest.
      expect(Date.parse(reborn.metadata?.creationTimestamp as unknown as string)).toBeGreaterThanOrEqual(
        Math.floor((recreateAt ?? 0) / 1000) * 1000,
      );

      // The audit entry is written once the create has returned, so it may trail the pod a little.
      const audit = await waitFor('the create to be audited', async () => {
        const entries = await store.listAudit(taskKey('load'));
        return entries.some((entry) => entry.what === 'create-pod') ? entries : undefined;
      });
      expect(audit.find((entry) => entry.what === 'create-pod')).toMatchObject({
        actor: 'lambda:check',
        outcome: 'created',
        podUid: reborn.metadata?.uid,
      });
      const task = await waitFor('the task to adopt the new pod', async () => {
        const current = await store.get(taskKey('load'));
        return current?.podUid === reborn.metadata?.uid ? current : undefined;
      });
      expect(task).toMatchObject({ attempt: 2, recreates: 1, podName: name });
      const recovered = recorder.entries.filter((entry) => entry.DetailType === 'Task Recovered');
      expect(recovered).toHaveLength(1);
      // The consumer notes a batch once its handler has returned, which is after the adoption the
      // test waited for (the handler still writes the pod's Events then).
      const checked = await waitFor('the consumer to note the batch', async () => {
        const bodies = consumer.batches.flatMap((batch) =>
          batch.records.map((record) => JSON.parse(record.body)),
        );
        return bodies.some((body) => body.at === recreateAt) ? bodies : undefined;
      });
      expect(checked).toContainEqual(expect.objectContaining({ task: taskKey('load'), at: recreateAt }));
    } finally {
      await consumer.stop();
    }
  });
});

describe('check function: per-record results', () => {
  it('reports only the record whose reconcile failed; drops a malformed one; skips a stale one', async () => {
    // A task on a cluster this deployment does not know: its reconcile fails with a fatal cluster error.
    const unknown = makeTaskRecord({
      id: { cluster: 'elsewhere', namespace, key: `etl/orphan/${RUN_ID}/-1` },
      dueAt: Date.now() - 1_000,
    });
    await store.put(unknown, Date.now());
    const later = makeTaskRecord({
      id: { cluster: CLUSTER, namespace, key: `etl/later/${RUN_ID}/-1` },
      dueAt: Date.now() + 600_000,
    });
    await store.put(later, Date.now());

    const failing = sqsRecord(checkMessageBody(unknown.id, unknown.dueAt!));
    const malformed = sqsRecord('{"v": 1, "task": {"cluster": "local"}}');
    const stale = sqsRecord(checkMessageBody(later.id, Date.now()));
    const gone = sqsRecord(
      checkMessageBody({ cluster: CLUSTER, namespace, key: 'etl/none/x/-1' }, Date.now()),
    );

    const response = await invokeCheck({ Records: [failing, malformed, stale, gone] });
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: failing.messageId }] });
    // The stale check changed nothing: the record keeps its version and its timer.
    expect(await store.get(later.id)).toMatchObject({ version: 1, dueAt: later.dueAt });
  });

  it('fails no invocation even when every record fails, and the queue moves a failing check to its DLQ', async () => {
    const unknown = makeTaskRecord({
      id: { cluster: 'elsewhere', namespace, key: `etl/orphan-dlq/${RUN_ID}/-1` },
      dueAt: Date.now() - 1_000,
    });
    await store.put(unknown, Date.now());
    const only = sqsRecord(checkMessageBody(unknown.id, unknown.dueAt!));
    expect(await invokeCheck({ Records: [only] })).toEqual({
      batchItemFailures: [{ itemIdentifier: only.messageId }],
    });

    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: checkMessageBody(unknown.id, unknown.dueAt!),
      }),
    );
    const consumer = new QueueConsumer(sqs, queue, invokeCheck);
    try {
      // maxReceiveCount 2 and a 1 s visibility timeout: two failed receives, then the DLQ.
      await waitFor(
        'the failing check in the DLQ',
        async () => (await messageCounts(sqs, queue.dlqUrl)).visible === 1,
        30_000,
      );
    } finally {
      await consumer.stop();
    }
    expect(consumer.batches.filter((batch) => batch.failures.length === 1).length).toBeGreaterThanOrEqual(2);
  });
});

describe('runDueCheck', () => {
  it('waits out a check that came less than the tolerance early, and skips one that came earlier', async () => {
    const start = Date.now();
    let now = start;
    const { reconciler } = reconcilerDeps(containerDeps(), 'check');
    const deps = { ...reconciler, clock: () => now };
    const soon = makeTaskRecord({
      id: { cluster: CLUSTER, namespace, key: `etl/soon/${RUN_ID}/-1` },
      podName: 'soon-q2w3e4',
      dueAt: now + 1_500,
    });
    const later = makeTaskRecord({
      id: { cluster: CLUSTER, namespace, key: `etl/later-still/${RUN_ID}/-1` },
      // Asked right after the first check's 1.5 s wait.
      dueAt: start + 1_500 + EARLY_TOLERANCE_MS + 1,
    });
    await store.put(soon, now);
    await store.put(later, now);
    const waits: number[] = [];
    // The check waits until the clock reaches the due time: this clock moves only by the waits.
    const sleep = async (ms: number) => {
      waits.push(ms);
      now += ms;
    };

    // The SQS delay was rounded down: the handler waits the remaining 1.5 s, then reconciles (its
    // pod never existed on the cluster, so the task ends as deleted by someone else).
    const ran = await runDueCheck(deps, soon.id, { sleep });
    expect(ran).toMatchObject({ outcome: 'reconciled', waitedMs: 1_500 });
    expect(waits).toEqual([1_500]);
    expect((await store.get(soon.id))?.version).toBeGreaterThan(1);

    expect(await runDueCheck(deps, later.id, { sleep })).toEqual({
      outcome: 'skipped',
      reason: expect.stringMatching(/^not due for 2 s: a later decision moved the timer/),
    });
    expect(waits).toEqual([1_500]);
    expect(await store.get(later.id)).toMatchObject({ version: 1 });
  });
});
