/**
 * P1, as the deployed wiring does it: a task pod really preempted by the scheduler is gone → its
 * replacement is created. In the loop: the real bridge watching the local control plane, its
 * entries handed to the functions by the route table (the PutEvents recorder stands in for
 * EventBridge: no engine runs locally), the pod-changed and kubernetes-event functions on DynamoDB
 * Local, the back-off queued as a delayed SQS message on ElasticMQ, and the check function fed by
 * that queue (test/support/sqs.ts plays Lambda's event source mapping). No timer sweep runs.
 *
 * "Gone" and "created" are the API server's own moments, seen by a watch of this bench's own;
 * the policy's back-off (2 s before the first re-create) is subtracted. What is left is detection
 * (watch → bridge → function), the SQS delay's precision and the check function's reconcile.
 * PODWARDEN_BENCH_PREEMPTIONS sets the number of preemptions (default 20).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { CoreV1Api, KubeConfig, type V1Pod, Watch } from '@kubernetes/client-node';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { handler as checkHandler } from '../../functions/check.ts';
import { handler as kubernetesEventHandler } from '../../functions/kubernetes-event.ts';
import { handler as podChangedHandler } from '../../functions/pod-changed.ts';
import { Bridge } from '../../lib/bridge/bridge.ts';
import { parseBridgeConfig } from '../../lib/bridge/config.ts';
import { eventBridgePort } from '../../lib/bridge/eventbridge.ts';
import { createLogger } from '../../lib/bridge/logger.ts';
import { configEnvironment, loadConfig, routeOptions } from '../../lib/config.ts';
import { DEFAULT_POLICY } from '../../lib/core/policy.ts';
import { startDynamoDbLocal } from '../../lib/devcluster/dynamodb-local.ts';
import { startElasticMq } from '../../lib/devcluster/elasticmq.ts';
import {
  fakeNodeManifest,
  priorityClasses,
  resolveControlPlaneBinaries,
  startControlPlane,
  taskPodManifest,
} from '../../lib/devcluster/index.ts';
import { dispatch, routeTable } from '../../lib/routes.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { tableDefinition } from '../../lib/store/schema.ts';
import { startEventBridgeRecorder } from '../support/eventbridge-recorder.ts';
import { createTestQueue, localSqsClient, QueueConsumer } from '../support/sqs.ts';
import type { Report } from './run.ts';

const CLUSTER = 'bench';
const BUS = 'podwarden-bench';
const NAMESPACE = 'recovery';
const RUN_ID = 'scheduled__2026-04-09T0900000000-0b1c2d3e4';
const CREDENTIALS = { accessKeyId: 'podwardenlocal', secretAccessKey: 'podwardenlocal' };
/** The back-off before the first re-create (attempt 2), the policy's default: subtracted from P1. */
const BACKOFF_MS = DEFAULT_POLICY.recreateBackoffBaseMs;

function context(name: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: `podwarden-${name}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:podwarden-${name}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/podwarden-${name}`,
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

const ms = (value: number) => `${Math.round(value)} ms`;

const allLines: string[] = [];

/** Powertools writes a JSON line per log and metric: keep them off the report, but keep the errors. */
function quietJsonLines(errors: string[]): () => void {
  const keep = (chunk: unknown) => {
    for (const line of String(chunk).split('\n')) {
      if (/"level":"(ERROR|WARN)"/.test(line)) errors.push(line);
      if (line.startsWith('{"level"')) allLines.push(line);
    }
    return true;
  };
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) =>
    String(chunk).trimStart().startsWith('{')
      ? keep(chunk)
      : original(chunk as string, ...(rest as []))) as typeof process.stdout.write;
  const originalErr = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: unknown, ...rest: unknown[]) =>
    String(chunk).trimStart().startsWith('{')
      ? keep(chunk)
      : originalErr(chunk as string, ...(rest as []))) as typeof process.stderr.write;
  return () => {
    process.stdout.write = original;
    process.stderr.write = originalErr;
  };
}

export default async function recovery(report: Report): Promise<void> {
  try {
    resolveControlPlaneBinaries();
  } catch {
    report('P1 through the check queue', 'skipped (binaries not built: npm run controlplane:build)');
    return;
  }
  const preemptions = Number(process.env.PODWARDEN_BENCH_PREEMPTIONS ?? '20');
  if (!Number.isInteger(preemptions) || preemptions < 1)
    throw new Error('PODWARDEN_BENCH_PREEMPTIONS must be a whole number >= 1');

  const [controlPlane, dynamo, elasticMq, recorder] = await Promise.all([
    startControlPlane({ nodes: 1 }),
    startDynamoDbLocal(),
    startElasticMq(),
    startEventBridgeRecorder(),
  ]);
  const savedEnv = { ...process.env };
  const errors: string[] = [];
  const restoreOutput = quietJsonLines(errors);
  const stoppers: Array<() => Promise<void>> = [];
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(controlPlane.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });

    const dynamoClient = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: 'local',
      credentials: CREDENTIALS,
    });
    const tableName = `podwarden-bench-${randomUUID().slice(0, 8)}`;
    await dynamoClient.send(new CreateTableCommand(tableDefinition(tableName)));
    await waitUntilTableExists({ client: dynamoClient, maxWaitTime: 60 }, { TableName: tableName });
    const store = new DynamoTaskStore({ client: dynamoClient, tableName });
    const sqs = localSqsClient(elasticMq.endpoint);
    const queue = await createTestQueue(sqs, { prefix: 'podwarden-bench-checks' });

    for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL']) delete process.env[name];
    Object.assign(process.env, {
      AWS_REGION: 'local',
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: recorder.endpoint,
      AWS_ENDPOINT_URL_SQS: elasticMq.endpoint,
      POWERTOOLS_LOG_LEVEL: 'WARN',
      ...configEnvironment({
        tableName,
        eventBusName: BUS,
        clusters: { [CLUSTER]: { kind: 'kubeconfig', path: controlPlane.kubeconfigPath } },
        allowedNamespaces: [NAMESPACE],
        checkQueueUrl: queue.url,
      }),
    });
    const routes = routeTable(routeOptions(loadConfig(process.env)));
    const handlers = {
      'pod-changed': podChangedHandler,
      'kubernetes-event': kubernetesEventHandler,
    } as const;

    // EventBridge's part: every accepted entry goes, in order, to the function its route names.
    let delivering = true;
    let cursor = 0;
    const delivery = (async () => {
      while (delivering) {
        const events = recorder.targetEvents();
        for (; cursor < events.length; cursor++) {
          const event = events[cursor]!;
          const route = dispatch(event, routes);
          const handler = route && handlers[route.handler as keyof typeof handlers];
          if (handler) await handler(event, context(route.handler)).catch(() => undefined);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    stoppers.push(async () => {
      delivering = false;
      await delivery;
    });
    const consumer = new QueueConsumer(
      sqs,
      queue,
      (event: SQSEvent) => checkHandler(event, context('check')) as Promise<SQSBatchResponse>,
    );
    stoppers.push(() => consumer.stop());

    const bridge = new Bridge(
      parseBridgeConfig(
        [
          ...['--cluster', CLUSTER, '--bus', BUS, '--region', 'eu-west-1', '--namespaces', NAMESPACE],
          ...['--lease-namespace', NAMESPACE, '--metrics-host', '127.0.0.1', '--metrics-port', '0'],
        ],
        {},
      ),
      {
        kubeConfig: kc,
        log: createLogger({ sink: { write: () => undefined } }),
        putEvents: eventBridgePort({
          region: 'eu-west-1',
          endpoint: recorder.endpoint,
          credentials: CREDENTIALS,
        }),
      },
    );
    await bridge.start();
    stoppers.push(() => bridge.shutdown());
    await until('the bridge to lead', () => bridge.isForwarding);

    // The API server's moments, from a watch of our own: when a pod's uid was deleted, and created.
    const deletedAt = new Map<string, number>();
    const addedAt = new Map<string, number>();
    const watch = await new Watch(kc).watch(
      `/api/v1/namespaces/${NAMESPACE}/pods`,
      {},
      (type: string, pod: V1Pod) => {
        const uid = pod.metadata?.uid ?? '';
        if (type === 'ADDED') addedAt.set(uid, performance.now());
        if (type === 'DELETED') deletedAt.set(uid, performance.now());
      },
      () => undefined,
    );
    stoppers.push(async () => watch.abort());

    const node = 'recovery-node';
    const taint = { key: 'podwarden.bench/dedicated', value: 'recovery', effect: 'NoSchedule' };
    await core.createNode({
      body: fakeNodeManifest({ name: node, cpu: '1', memory: '1Gi', taints: [taint] }),
    });
    const placement = {
      nodeSelector: { 'kubernetes.io/hostname': node },
      tolerations: [{ key: taint.key, operator: 'Equal', value: taint.value, effect: taint.effect }],
    };

    const p1: number[] = [];
    const lateness: number[] = [];
    const outliers: string[] = [];
    for (let n = 0; n < preemptions; n++) {
      const name = `load-${n}-c8k2m4`;
      const key = { cluster: CLUSTER, namespace: NAMESPACE, key: `etl/load_${n}/${RUN_ID}/-1` };
      const victim = await core.createNamespacedPod({
        namespace: NAMESPACE,
        body: taskPodManifest({
          name,
          namespace: NAMESPACE,
          labels: {
            kubernetes_pod_operator: 'True',
            dag_id: 'etl',
            task_id: `load_${n}`,
            run_id: RUN_ID,
            try_number: '1',
          },
          behaviour: { kind: 'run' },
          priorityClassName: priorityClasses.taskLow.name,
          cpu: '700m',
          ...placement,
        }),
      });
      await until(`task ${n} supervised while running`, async () => {
        const task = await store.get(key);
        return task?.state === 'Running' && task.captured !== undefined;
      });
      const agent = `agent-${n}`;
      await core.createNamespacedPod({
        namespace: NAMESPACE,
        body: taskPodManifest({
          name: agent,
          namespace: NAMESPACE,
          behaviour: { kind: 'run' },
          priorityClassName: priorityClasses.daemonHigh.name,
          cpu: '700m',
          ...placement,
        }),
      });
      const oldUid = victim.metadata?.uid ?? '';
      const reborn = await until(`pod ${name} re-created`, async () => {
        const task = await store.get(key);
        return task && task.attempt === 2 && task.podUid && task.podUid !== oldUid && addedAt.has(task.podUid)
          ? task
          : undefined;
      });
      const gone = deletedAt.get(oldUid);
      const created = addedAt.get(reborn.podUid ?? '');
      if (gone === undefined || created === undefined)
        throw new Error(`preemption ${n}: watch saw no deletion or creation`);
      p1.push(created - gone - BACKOFF_MS);
      // The creator audits after the create returns; the new pod's own Pod Changed may record attempt
      // 2 before that, so the audit entry is waited for, not assumed.
      const createAudit = await until(`pod ${name}'s create audited`, async () =>
        (await store.listAudit(key)).find((entry) => entry.what === 'create-pod'),
      );
      // The due time the check that re-created the pod carried (the re-create's back-off end).
      const dueTimes = consumer.batches
        .flatMap((batch) =>
          batch.records.map((record) => JSON.parse(record.body) as { task: { key: string }; at: number }),
        )
        .filter(
          (check) => check.task.key === key.key && createAudit !== undefined && check.at <= createAudit.at,
        )
        .map((check) => check.at);
      if (createAudit && dueTimes.length > 0) lateness.push(createAudit.at - Math.max(...dueTimes));
      if (createAudit && dueTimes.length > 0 && createAudit.at - Math.max(...dueTimes) > 5_000) {
        // An outlier: say what the checks and the record did, relative to the pod's deletion.
        const goneWall = Date.now() - (performance.now() - (deletedAt.get(oldUid) ?? 0));
        const checks = consumer.batches.flatMap((batch) =>
          batch.records
            .filter((record) => (JSON.parse(record.body) as { task: { key: string } }).task.key === key.key)
            .map((record) => {
              const { at } = JSON.parse(record.body) as { at: number };
              const failed = batch.failures.includes(record.messageId) ? ' failed' : '';
              return `due ${at - goneWall} ms, taken ${batch.at - goneWall} ms${failed}`;
            }),
        );
        outliers.push(
          `preemption ${n}: checks [${checks.join('; ')}]; history ${reborn.history
            .map((entry) => `${entry.to}@${entry.at - goneWall}ms (${entry.why.slice(0, 60)})`)
            .join(', ')}; created ${createAudit.at - goneWall} ms`,
        );
        for (const line of allLines.filter((candidate) => candidate.includes(`load_${n}/`))) {
          const entry = JSON.parse(line) as Record<string, unknown>;
          outliers.push(
            `  ${Date.parse(String(entry.timestamp)) - goneWall} ms ${entry.handler} ${entry.message} ${JSON.stringify(entry.actions ?? entry.reason ?? entry.state ?? '')} ${(typeof entry.task === 'string' ? entry.task : JSON.stringify(entry.task)).slice(-48)}`,
          );
        }
      }
      if (createAudit?.actor !== 'lambda:check')
        throw new Error(`preemption ${n}: re-created by ${createAudit?.actor}, not the check function`);
      // Free the node for the next round.
      await core.deleteNamespacedPod({ namespace: NAMESPACE, name: agent, gracePeriodSeconds: 0 });
      await core.deleteNamespacedPod({ namespace: NAMESPACE, name, gracePeriodSeconds: 0 });
      await until(`round ${n} cleaned up`, async () => {
        const pods = await core.listNamespacedPod({ namespace: NAMESPACE });
        return pods.items.every((pod) => pod.metadata?.name !== agent && pod.metadata?.name !== name);
      });
    }
    const sorted = [...p1].sort((a, b) => a - b);
    const late = [...lateness].sort((a, b) => a - b);
    report(
      `P1 gone → re-created, minus the ${BACKOFF_MS / 1000} s back-off, ${p1.length} preemptions`,
      `p50 ${ms(percentile(sorted, 50))}, p99 ${ms(percentile(sorted, 99))}`,
    );
    report(
      '  of which: due time → re-create (SQS delay + check)',
      `p50 ${ms(percentile(late, 50))}, p99 ${ms(percentile(late, 99))}`,
    );
    report('  range', `${ms(sorted[0]!)} .. ${ms(sorted.at(-1)!)}`);
    const failedBatches = consumer.batches.filter((batch) => batch.failures.length > 0).length;
    report(
      '  check batches with a failed record (retried)',
      `${failedBatches} of ${consumer.batches.length}`,
    );
    report('  error and warning log lines', String(errors.length));
    for (const outlier of outliers) report('  outlier', outlier);
    for (const line of errors.slice(0, 5)) {
      const { message, error, failure } = JSON.parse(line) as {
        message?: string;
        error?: { message?: string };
        failure?: string;
      };
      report(
        '    ',
        `${message}${failure ? ` (${failure})` : ''}${error?.message ? `: ${error.message.slice(0, 160)}` : ''}`,
      );
    }
  } finally {
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
    restoreOutput();
    for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
    Object.assign(process.env, savedEnv);
    await Promise.allSettled([controlPlane.stop(), dynamo.stop(), elasticMq.stop(), recorder.close()]);
  }
}
