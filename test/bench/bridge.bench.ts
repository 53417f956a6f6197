/**
 * `podwarden bridge` figures: pod changes forwarded per second by one bridge, and PutEvents calls
 * per 1,000 changes. The bus is the PutEvents recorder (a fake: no EventBridge engine runs locally)
 * reached through the real AWS SDK over loopback HTTP, so the figures measure the bridge, not AWS.
 *
 * 1. The forwarding pipeline alone (entry building, batching, the SDK, HTTP): its ceiling.
 * 2. End to end on the local control plane (skipped when its binaries are not built): real pods,
 *    scheduled by the real scheduler and run by KWOK, watched and forwarded.
 */
import { performance } from 'node:perf_hooks';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Bridge } from '../../lib/bridge/bridge.ts';
import { parseBridgeConfig } from '../../lib/bridge/config.ts';
import { podChangedItem } from '../../lib/bridge/entries.ts';
import { eventBridgePort } from '../../lib/bridge/eventbridge.ts';
import { Forwarder } from '../../lib/bridge/forwarder.ts';
import { createLogger } from '../../lib/bridge/logger.ts';
import { BridgeMetrics, meanOf, totalOf } from '../../lib/bridge/metrics.ts';
import type { Pod } from '../../lib/core/pod.ts';
import {
  resolveControlPlaneBinaries,
  startControlPlane,
  taskPodManifest,
} from '../../lib/devcluster/index.ts';
import { type EventBridgeRecorder, startEventBridgeRecorder } from '../support/eventbridge-recorder.ts';
import type { Report } from './run.ts';

const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
const LEASE_SECONDS = 3;
const quiet = createLogger({ sink: { write: () => undefined } });

/** A KubernetesPodOperator pod as the API server returns it while it runs (about 3 KB of JSON). */
function kpoPod(index: number, version: number): Pod {
  const name = `etl-transform-${index}-7f3a9c2e`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'airflow',
      uid: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
      resourceVersion: String(version),
      creationTimestamp: '2026-01-02T03:04:05Z',
      labels: {
        kubernetes_pod_operator: 'True',
        dag_id: 'etl',
        task_id: `transform_${index}`,
        run_id: 'scheduled__2026-01-02T00000000000-0a1b2c3d4',
        try_number: '1',
        airflow_version: '2.10.4',
      },
      annotations: { 'podwarden.io/recreate': 'always' },
      managedFields: [
        { manager: 'airflow', operation: 'Update', fieldsV1: { 'f:metadata': { 'f:labels': {} } } },
      ],
    },
    spec: {
      restartPolicy: 'Never',
      priorityClassName: 'batch-low',
      nodeName: 'ip-10-0-1-23.eu-west-1.compute.internal',
      containers: [
        {
          name: 'base',
          image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/etl:2026.01.02',
          command: ['python', '-m', 'etl.transform'],
          env: Array.from({ length: 12 }, (_, n) => ({ name: `SETTING_${n}`, value: `value-${n}-abcdefgh` })),
          resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '1Gi' } },
        },
      ],
    },
    status: {
      phase: 'Running',
      startTime: '2026-01-02T03:04:07Z',
      conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({
        type,
        status: 'True',
        lastTransitionTime: '2026-01-02T03:04:07Z',
      })),
      containerStatuses: [
        {
          name: 'base',
          ready: true,
          started: true,
          restartCount: 0,
          state: { running: { startedAt: '2026-01-02T03:04:08Z' } },
        },
      ],
    },
  };
}

async function pipeline(
  recorder: EventBridgeRecorder,
  changes: Array<{ pod: Pod }>,
): Promise<{ perSecond: number; callsPer1000: number; forwarded: number }> {
  const port = eventBridgePort({ region: 'eu-west-1', endpoint: recorder.endpoint, credentials });
  const metrics = new BridgeMetrics();
  const forwarder = new Forwarder({ port, metrics, log: quiet, backoff: { baseMs: 20, maxMs: 200 } });
  const callsBefore = recorder.calls.length;
  const started = performance.now();
  for (const { pod } of changes) {
    forwarder.enqueue(
      podChangedItem({ cluster: 'bench', bus: 'bench', change: 'modified', pod, observedAt: Date.now() }),
    );
  }
  const { undelivered } = await forwarder.flush(600_000);
  const elapsed = performance.now() - started;
  port.destroy();
  if (undelivered > 0) throw new Error(`${undelivered} entries undelivered`);
  const forwarded = await totalOf(metrics.forwarded);
  return {
    perSecond: (forwarded * 1000) / elapsed,
    callsPer1000: ((recorder.calls.length - callsBefore) * 1000) / changes.length,
    forwarded,
  };
}

function rate(value: number): string {
  return `${value >= 1000 ? `${(value / 1000).toPrecision(3)} k` : value.toPrecision(3)} changes/s`;
}

async function pipelineFigures(report: Report): Promise<void> {
  const recorder = await startEventBridgeRecorder();
  try {
    // Warm-up: the SDK, the HTTP agent and the JIT.
    await pipeline(
      recorder,
      Array.from({ length: 500 }, (_, n) => ({ pod: kpoPod(n, 1) })),
    );

    const spread = Array.from({ length: 10_000 }, (_, n) => ({ pod: kpoPod(n % 1_000, n) }));
    const many = await pipeline(recorder, spread);
    report('pipeline: 10,000 changes of 1,000 pods', rate(many.perSecond));
    report('pipeline: PutEvents calls per 1,000 changes (1,000 pods)', many.callsPer1000.toFixed(0));

    const fewPods = Array.from({ length: 2_000 }, (_, n) => ({ pod: kpoPod(n % 5, n) }));
    const few = await pipeline(recorder, fewPods);
    report('pipeline: 2,000 changes of 5 pods (order per pod)', rate(few.perSecond));
    report('pipeline: PutEvents calls per 1,000 changes (5 pods)', few.callsPer1000.toFixed(0));

    // 5% of entries fail once: only those are sent again.
    let calls = 0;
    recorder.failEntriesWhere(() => (calls++ % 20 === 0 ? { ErrorCode: 'InternalFailure' } : undefined));
    const partial = await pipeline(recorder, spread);
    recorder.failEntriesWhere(undefined);
    report('pipeline: 10,000 changes, 5% of entries failing once', rate(partial.perSecond));
    report('pipeline: PutEvents calls per 1,000 changes (5% failing)', partial.callsPer1000.toFixed(0));
  } finally {
    await recorder.close();
  }
}

async function endToEndFigures(report: Report): Promise<void> {
  try {
    resolveControlPlaneBinaries();
  } catch {
    report(
      'end to end on the local control plane',
      'skipped (binaries not built: npm run controlplane:build)',
    );
    return;
  }
  const controlPlane = await startControlPlane({ nodes: 2 });
  const recorder = await startEventBridgeRecorder();
  const replicas: Bridge[] = [];
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(controlPlane.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const namespace = 'bench';
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const replica = async (identity: string) => {
      const config = parseBridgeConfig(
        [
          ...['--cluster', 'bench', '--bus', 'bench', '--region', 'eu-west-1', '--namespaces', namespace],
          ...[
            '--lease-namespace',
            namespace,
            '--lease-duration',
            `${LEASE_SECONDS}s`,
            '--identity',
            identity,
          ],
          ...['--metrics-host', '127.0.0.1', '--metrics-port', '0'],
        ],
        {},
      );
      const started = new Bridge(config, {
        kubeConfig: kc,
        log: quiet,
        putEvents: eventBridgePort({ region: 'eu-west-1', endpoint: recorder.endpoint, credentials }),
      });
      replicas.push(started);
      await started.start();
      return started;
    };
    const bridge = await replica('bench-a');
    const active = bridge;
    await until(() => active.isForwarding, 60_000);

    const pods = 200;
    const started = performance.now();
    await inParallel(pods, 8, (n) =>
      core.createNamespacedPod({
        namespace,
        body: taskPodManifest({
          name: `bench-${n}`,
          namespace,
          behaviour: { kind: 'exit', code: 0 },
          runForMs: 500,
          labels: {
            kubernetes_pod_operator: 'True',
            dag_id: 'bench',
            task_id: `t${n}`,
            run_id: 'r',
            try_number: '1',
          },
        }),
      }),
    );
    // Each pod is created, scheduled, started, and completes: wait for every Succeeded to be forwarded.
    await until(() => {
      const succeeded = new Set(
        recorder
          .details()
          .filter((detail) => (detail.pod as Pod | undefined)?.status?.phase === 'Succeeded')
          .map((detail) => (detail.pod as Pod).metadata.name),
      );
      return succeeded.size === pods;
    }, 300_000);
    await until(() => active.pendingEntries === 0, 60_000);
    const elapsed = performance.now() - started;
    const forwarded = await totalOf(bridge.metrics.forwarded);
    report(
      `end to end: ${pods} pods run to completion`,
      `${forwarded} changes in ${(elapsed / 1000).toFixed(1)} s`,
    );
    report('end to end: changes forwarded per second', rate((forwarded * 1000) / elapsed));
    report(
      'end to end: PutEvents calls per 1,000 changes',
      ((recorder.calls.length * 1000) / forwarded).toFixed(0),
    );
    report(
      'end to end: mean watch-to-accepted lag',
      `${((await meanOf(bridge.metrics.lag)) * 1000).toFixed(0)} ms`,
    );

    // Failover: a standby takes over when the leader dies without handing the lease back.
    const standby = await replica('bench-b');
    const diedAt = performance.now();
    await bridge.shutdown({ releaseLease: false });
    await until(() => standby.isForwarding, 60_000);
    report(
      `failover after the leader dies (lease ${LEASE_SECONDS} s)`,
      `${((performance.now() - diedAt) / 1000).toFixed(2)} s to forwarding again`,
    );
  } finally {
    await Promise.all(replicas.map((replica) => replica.shutdown()));
    await recorder.close();
    await controlPlane.stop();
  }
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function inParallel(
  count: number,
  width: number,
  task: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

export default async function bridgeBench(report: Report): Promise<void> {
  await pipelineFigures(report);
  await endToEndFigures(report);
}
