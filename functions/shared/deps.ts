/**
 * What the functions work with, built once per Lambda container (on the first invocation, so a bad
 * configuration fails an invocation with a clear error instead of the container's start), and the
 * per-invocation reconciler dependencies on top of it.
 *
 * The AWS clients take region, credentials and endpoints from the environment as the SDK always
 * does (AWS_REGION; AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_EVENTBRIDGE / AWS_ENDPOINT_URL_SQS
 * point them at local engines in tests).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import { loadConfig, type PodwardenConfig } from '../../lib/config.ts';
import type { Cluster, EventSink, TaskStore } from '../../lib/core/ports.ts';
import type { CheckScheduler, ReconcilerDeps } from '../../lib/reconciler/reconcile.ts';
import type { FunctionName } from '../../lib/routes.ts';
import { SqsCheckScheduler } from '../../lib/scheduler/sqs-check-scheduler.ts';
import { EventBridgeSink } from '../../lib/sink/eventbridge-sink.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { AWS_CLIENT_OPTIONS } from './aws-clients.ts';
import { MeteredStore } from './metering.ts';
import { METRIC } from './metric-names.ts';
import { count, logger, reconcilerLog } from './observability.ts';
import { eventBridgeKeeper, type KeepRejected } from './rejected.ts';

export interface ContainerDeps {
  config: PodwardenConfig;
  store: TaskStore;
  cluster: Cluster;
  sink: EventSink;
  clock: () => number;
  /** Delivers due times on the second (the check queue); absent: the timer sweep alone. */
  scheduler?: CheckScheduler;
  /** Where rejected events go to stay replayable (see rejected.ts); absent: the log line only. */
  keepRejected?: KeepRejected;
}

let built: ContainerDeps | undefined;

/** The container's dependencies; built on first use and reused by every later invocation. */
export function containerDeps(): ContainerDeps {
  built ??= buildContainerDeps(process.env);
  return built;
}

export function buildContainerDeps(env: Readonly<Record<string, string | undefined>>): ContainerDeps {
  const config = loadConfig(env);
  const store = new DynamoTaskStore({
    client: new DynamoDBClient(AWS_CLIENT_OPTIONS),
    tableName: config.tableName,
    retentionMs: config.policy.retentionMs,
  });
  const cluster = new KubeCluster(config.clusters, {
    onRetry: ({ attempt, delayMs, error, target }) =>
      logger.warn('Kubernetes API call retried', { attempt, delayMs, error: error.message, target }),
  });
  const eventBridge = new EventBridgeClient(AWS_CLIENT_OPTIONS);
  const sink = new EventBridgeSink({ client: eventBridge, eventBusName: config.eventBusName });
  const keepRejected = eventBridgeKeeper(eventBridge, config.eventBusName);
  const scheduler = config.checkQueueUrl
    ? new SqsCheckScheduler({
        client: new SQSClient(AWS_CLIENT_OPTIONS),
        queueUrl: config.checkQueueUrl,
        clock: Date.now,
      })
    : undefined;
  return { config, store, cluster, sink, clock: Date.now, keepRejected, ...(scheduler ? { scheduler } : {}) };
}

/**
 * A check that cannot be queued is not a failure of the reconcile that decided it: the record (with
 * its `dueAt`) is already saved, and the timer sweep runs it within a minute. Throwing here would
 * also drop the audit lines the reconcile writes after its actions.
 */
export function bestEffort(scheduler: CheckScheduler): CheckScheduler {
  return {
    async schedule(id, at) {
      try {
        await scheduler.schedule(id, at);
      } catch (error) {
        count(METRIC.checksNotQueued);
        logger.warn('due check not queued; the timer sweep will run it', {
          task: id,
          dueAt: new Date(at).toISOString(),
          error: error as Error,
        });
      }
    },
  };
}

/** Reconciler dependencies for one invocation, counting what it decides through a metered store. */
export function reconcilerDeps(
  deps: ContainerDeps,
  handler: FunctionName,
): { reconciler: ReconcilerDeps; store: MeteredStore } {
  const store = new MeteredStore(deps.store, count);
  return {
    store,
    reconciler: {
      store,
      cluster: deps.cluster,
      sink: deps.sink,
      policy: deps.config.policy,
      clock: deps.clock,
      actor: `lambda:${handler}`,
      log: reconcilerLog,
      ...(deps.scheduler ? { scheduler: bestEffort(deps.scheduler) } : {}),
      ...(handler === 'reaper' && deps.config.reaper.dryRun ? { dryRun: true } : {}),
    },
  };
}
