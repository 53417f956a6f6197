/**
 * What the functions work with, built once per Lambda container (on the first invocation, so a bad
 * configuration fails an invocation with a clear error instead of the container's start), and the
 * per-invocation reconciler dependencies on top of it.
 *
 * The AWS clients take region, credentials and endpoints from the environment as the SDK always
 * does (AWS_REGION; AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_EVENTBRIDGE point them at local
 * engines in tests).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import { loadConfig, type PodwardenConfig } from '../../lib/config.ts';
import type { Cluster, EventSink, TaskStore } from '../../lib/core/ports.ts';
import type { ReconcilerDeps } from '../../lib/reconciler/reconcile.ts';
import type { HandlerName } from '../../lib/routes.ts';
import { EventBridgeSink } from '../../lib/sink/eventbridge-sink.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { MeteredStore } from './metering.ts';
import { count, logger, reconcilerLog } from './observability.ts';
import { eventBridgeKeeper, type KeepRejected } from './rejected.ts';

export interface ContainerDeps {
  config: PodwardenConfig;
  store: TaskStore;
  cluster: Cluster;
  sink: EventSink;
  clock: () => number;
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
    client: new DynamoDBClient({}),
    tableName: config.tableName,
    retentionMs: config.policy.retentionMs,
  });
  const cluster = new KubeCluster(config.clusters, {
    onRetry: ({ attempt, delayMs, error, target }) =>
      logger.warn('Kubernetes API call retried', { attempt, delayMs, error: error.message, target }),
  });
  const eventBridge = new EventBridgeClient({});
  const sink = new EventBridgeSink({ client: eventBridge, eventBusName: config.eventBusName });
  const keepRejected = eventBridgeKeeper(eventBridge, config.eventBusName);
  return { config, store, cluster, sink, clock: Date.now, keepRejected };
}

/** Reconciler dependencies for one invocation, counting what it decides through a metered store. */
export function reconcilerDeps(
  deps: ContainerDeps,
  handler: HandlerName,
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
      ...(handler === 'reaper' && deps.config.reaper.dryRun ? { dryRun: true } : {}),
    },
  };
}
