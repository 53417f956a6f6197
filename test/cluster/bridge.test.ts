// `podwarden bridge` against the real local control plane (API server, scheduler, KWOK). The bus side
// is the PutEvents recorder (a fake: no EventBridge engine runs locally), reached through the real
// AWS SDK; what it recorded is read back through the receiving side's parser.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { Bridge } from '../../lib/bridge/bridge.ts';
import { parseBridgeConfig } from '../../lib/bridge/config.ts';
import { eventBridgePort } from '../../lib/bridge/eventbridge.ts';
import { createLogger } from '../../lib/bridge/logger.ts';
import { seriesValue, totalOf } from '../../lib/bridge/metrics.ts';
import {
  type InboundEvent,
  type InboundKubernetesEvent,
  type InboundPodChanged,
  parseInboundEvent,
} from '../../lib/core/inbound.ts';
import { followBridgeLog } from '../support/bridge-log.ts';
import { type EventBridgeRecorder, startEventBridgeRecorder } from '../support/eventbridge-recorder.ts';
import {
  createFakeNode,
  createTestNamespace,
  loadTestKubeConfig,
  priorityClasses,
  readPodOrUndefined,
  taskPod,
  waitFor,
} from './support.ts';

let kc: KubeConfig;
let core: CoreV1Api;
let recorder: EventBridgeRecorder;
const running: Bridge[] = [];

beforeAll(() => {
  kc = loadTestKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
});

beforeEach(async () => {
  recorder = await startEventBridgeRecorder();
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((bridge) => bridge.shutdown()));
  await recorder.close();
});

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

function clusterName(): string {
  return `test-${randomBytes(3).toString('hex')}`;
}

async function startBridge(options: {
  namespace: string;
  cluster: string;
  watchTimeoutSeconds?: number;
}): Promise<Bridge> {
  const config = parseBridgeConfig(
    [
      ...['--cluster', options.cluster, '--bus', 'podwarden-test', '--region', 'eu-west-1'],
      ...['--namespaces', options.namespace, '--profiles', 'airflow-kpo'],
      ...['--lease-namespace', options.namespace, '--lease-name', 'bridge', '--lease-duration', '3s'],
      ...['--identity', `bridge-${options.cluster}`, '--metrics-host', '127.0.0.1', '--metrics-port', '0'],
      ...['--eventbridge-endpoint', recorder.endpoint, '--flush-timeout', '10s'],
    ],
    {},
  );
  const bridge = new Bridge(config, {
    kubeConfig: kc,
    log: createLogger({ sink: { write: () => undefined } }),
    putEvents: eventBridgePort({ region: config.region, endpoint: recorder.endpoint, credentials }),
    forwarder: { backoff: { baseMs: 50, maxMs: 500 }, lingerMs: 10 },
    watchBackoff: { baseMs: 100, maxMs: 1_000 },
    ...(options.watchTimeoutSeconds ? { watchTimeoutSeconds: options.watchTimeoutSeconds } : {}),
  });
  running.push(bridge);
  await bridge.start();
  await waitFor('the bridge to lead and list', async () => bridge.isForwarding);
  return bridge;
}

/** What the receiving side makes of everything the recorder accepted for this cluster. */
function received(cluster: string): InboundEvent[] {
  return recorder
    .targetEvents()
    .map((event) => parseInboundEvent(event))
    .map((result) => {
      if (!result.ok) throw new Error(`the receiver refused an entry the bridge sent: ${result.problem}`);
      return result;
    })
    .filter((result) => result.cluster === cluster);
}

function podChanges(cluster: string, podName: string): InboundPodChanged[] {
  return received(cluster).filter(
    (event): event is InboundPodChanged => event.kind === 'pod-changed' && event.podName === podName,
  );
}

const versionOf = (change: InboundPodChanged) =>
  Number(change.pod?.metadata.resourceVersion ?? change.reference?.resourceVersion);

function airflowLabels(task: string): Record<string, string> {
  return {
    kubernetes_pod_operator: 'True',
    dag_id: 'bridge_test',
    task_id: task,
    run_id: 'manual__1',
    try_number: '1',
  };
}

async function phaseIs(namespace: string, name: string, phase: string): Promise<V1Pod | undefined> {
  const pod = await readPodOrUndefined(kc, namespace, name);
  return pod?.status?.phase === phase ? pod : undefined;
}

async function relabel(namespace: string, name: string, step: number): Promise<number> {
  const pod = await core.patchNamespacedPod({
    namespace,
    name,
    body: [{ op: 'add', path: '/metadata/labels/step', value: String(step) }],
  });
  return Number(pod.metadata?.resourceVersion);
}

function expectOrderedPerPod(changes: InboundPodChanged[]): void {
  const versions = changes.map(versionOf);
  expect(versions).toEqual([...versions].sort((a, b) => a - b));
  expect(new Set(versions).size).toBe(versions.length);
  expect(changes[0]?.change).toBe('added');
  expect(changes.slice(0, -1).every((change) => change.change !== 'deleted')).toBe(true);
}

describe('podwarden bridge', () => {
  it('forwards managed pods created, changed, completed and deleted, in order per pod, and nothing else', async () => {
    const namespace = await createTestNamespace(kc, 'bridge-order');
    const cluster = clusterName();
    // Short server-side watch windows: the watch also resumes several times from bookmarks meanwhile.
    const bridge = await startBridge({ namespace, cluster, watchTimeoutSeconds: 2 });

    const managed = (
      name: string,
      behaviour: Parameters<typeof taskPod>[0]['behaviour'],
      runForMs?: number,
    ) =>
      taskPod({ name, namespace, behaviour, labels: airflowLabels(name), ...(runForMs ? { runForMs } : {}) });
    await core.createNamespacedPod({
      namespace,
      body: managed('completes', { kind: 'exit', code: 0 }, 1_500),
    });
    await core.createNamespacedPod({ namespace, body: managed('changes', { kind: 'run' }) });
    await core.createNamespacedPod({ namespace, body: managed('deleted', { kind: 'run' }) });
    await core.createNamespacedPod({
      namespace,
      body: taskPod({ name: 'unmanaged', namespace, behaviour: { kind: 'run' } }),
    });

    await waitFor('pod changes to be running', () => phaseIs(namespace, 'changes', 'Running'));
    const patched: number[] = [];
    for (let step = 1; step <= 3; step += 1) patched.push(await relabel(namespace, 'changes', step));
    await waitFor('pod deleted to be running', () => phaseIs(namespace, 'deleted', 'Running'));
    await core.deleteNamespacedPod({ namespace, name: 'deleted', gracePeriodSeconds: 0 });

    await waitFor('the completed pod to arrive Succeeded', async () =>
      podChanges(cluster, 'completes').some((change) => change.pod?.status?.phase === 'Succeeded'),
    );
    await waitFor('every relabelling to arrive', async () => {
      const seen = new Set(podChanges(cluster, 'changes').map(versionOf));
      return patched.every((version) => seen.has(version));
    });
    await waitFor('the deletion to arrive', async () =>
      podChanges(cluster, 'deleted').some((change) => change.change === 'deleted'),
    );

    for (const name of ['completes', 'changes', 'deleted']) expectOrderedPerPod(podChanges(cluster, name));
    const phases = podChanges(cluster, 'completes').map((change) => change.pod?.status?.phase ?? 'Pending');
    const rank = (phase: string) => ['Pending', 'Running', 'Succeeded'].indexOf(phase);
    expect(phases.map(rank)).toEqual([...phases.map(rank)].sort((a, b) => a - b));
    expect(phases).toContain('Running');
    expect(podChanges(cluster, 'deleted').at(-1)?.change).toBe('deleted');
    expect(podChanges(cluster, 'changes').at(-1)?.labels?.step).toBe('3');

    expect(received(cluster).filter((event) => event.podName === 'unmanaged')).toEqual([]);
    for (const change of received(cluster).filter((event) => event.kind === 'pod-changed')) {
      expect(change.pod?.metadata.managedFields).toBeUndefined();
    }
    expect(recorder.calls.every((call) => call.entries <= 10 && call.bytes <= 256 * 1024)).toBe(true);
    expect(await totalOf(bridge.metrics.failed)).toBe(0);
    // The server ends each 2 s watch with a bookmark and the watch resumes from it, losing nothing.
    await waitFor(
      'a server-closed watch to resume',
      async () =>
        (await seriesValue(bridge.metrics.watchRestarts, { resource: 'pods', reason: 'closed' })) > 0,
    );
  });

  it('forwards a real preemption as its Preempted event, labelled with the victim\u2019s labels', async () => {
    const namespace = await createTestNamespace(kc, 'bridge-preempt');
    const cluster = clusterName();
    await startBridge({ namespace, cluster });
    // A node of its own, tainted so no other test's pods land on it and become the victims.
    const nodeName = `bridge-${namespace}`;
    const taint = { key: 'podwarden.test/dedicated', value: namespace, effect: 'NoSchedule' };
    await createFakeNode(kc, { name: nodeName, cpu: '1', memory: '1Gi', taints: [taint] });
    const placement = {
      nodeSelector: { 'kubernetes.io/hostname': nodeName },
      tolerations: [{ key: taint.key, operator: 'Equal', value: taint.value, effect: taint.effect }],
    };
    const victim = await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name: 'victim',
        namespace,
        behaviour: { kind: 'run' },
        labels: airflowLabels('victim'),
        priorityClassName: priorityClasses.taskLow.name,
        cpu: '700m',
        gracePeriodSeconds: 2,
        ...placement,
      }),
    });
    await waitFor('the victim to run', () => phaseIs(namespace, 'victim', 'Running'));
    await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name: 'daemon',
        namespace,
        behaviour: { kind: 'run' },
        priorityClassName: priorityClasses.daemonHigh.name,
        cpu: '700m',
        ...placement,
      }),
    });

    const preempted = await waitFor('the Preempted event to arrive', async () =>
      received(cluster).find(
        (event): event is InboundKubernetesEvent =>
          event.kind === 'kubernetes-event' && event.reason === 'Preempted' && event.podName === 'victim',
      ),
    );
    expect(preempted).toMatchObject({
      origin: 'bridge',
      cluster,
      namespace,
      podUid: victim.metadata?.uid,
      labels: airflowLabels('victim'),
    });
    expect(preempted.message).toContain(nodeName);
    await waitFor('the victim\u2019s deletion to arrive', async () =>
      podChanges(cluster, 'victim').some((change) => change.change === 'deleted'),
    );
    const victimChanges = podChanges(cluster, 'victim');
    expectOrderedPerPod(victimChanges);
    expect(
      victimChanges.some((change) =>
        change.pod?.status?.conditions?.some(
          (c) => c.type === 'DisruptionTarget' && c.reason === 'PreemptionByScheduler',
        ),
      ),
    ).toBe(true);
    expect(received(cluster).filter((event) => event.podName === 'daemon')).toEqual([]);
  });

  it('sends a pod too large for one entry as a reference the receiver re-reads', async () => {
    const namespace = await createTestNamespace(kc, 'bridge-large');
    const cluster = clusterName();
    await startBridge({ namespace, cluster });
    // Kubernetes allows 256 KiB of annotations; with the rest of the pod that exceeds EventBridge's entry limit.
    await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name: 'large',
        namespace,
        behaviour: { kind: 'run' },
        labels: airflowLabels('large'),
        annotations: { 'podwarden.test/blob': 'x'.repeat(261_000) },
      }),
    });
    const first = await waitFor('the large pod to arrive', async () => podChanges(cluster, 'large')[0]);
    expect(first.pod).toBeUndefined();
    expect(first.reference).toMatchObject({
      namespace,
      name: 'large',
      why: 'too-large',
      labels: airflowLabels('large'),
    });
    expect(first.podUid).toBeTruthy();
    expect(recorder.calls.every((call) => call.outcome !== 'invalid')).toBe(true);
  });

  it('loses nothing when its watches are cut again and again while pods change', async () => {
    const namespace = await createTestNamespace(kc, 'bridge-cut');
    const cluster = clusterName();
    const bridge = await startBridge({ namespace, cluster });
    const names = ['cut-a', 'cut-b', 'cut-c'];
    for (const name of names) {
      await core.createNamespacedPod({
        namespace,
        body: taskPod({ name, namespace, behaviour: { kind: 'run' }, labels: airflowLabels(name) }),
      });
    }
    for (const name of names) await waitFor(`${name} to run`, () => phaseIs(namespace, name, 'Running'));
    const patched = new Map<string, number[]>(names.map((name) => [name, []]));
    for (let step = 1; step <= 5; step += 1) {
      // Changes land both while a stream is open and while it is down, reconnecting.
      await waitFor('the watches to reconnect', async () => bridge.watchesConnected);
      for (const name of names) patched.get(name)!.push(await relabel(namespace, name, step));
      bridge.interruptWatches();
    }
    for (const name of names) {
      await waitFor(`every change of ${name} to arrive`, async () => {
        const seen = new Set(podChanges(cluster, name).map(versionOf));
        return patched.get(name)!.every((version) => seen.has(version));
      });
      expectOrderedPerPod(podChanges(cluster, name));
    }
    const restarts = await Promise.all(
      ['closed', 'error'].map((reason) =>
        seriesValue(bridge.metrics.watchRestarts, { resource: 'pods', reason }),
      ),
    );
    expect(restarts[0]! + restarts[1]!).toBeGreaterThanOrEqual(5);
    expect(await seriesValue(bridge.metrics.relists, { resource: 'pods', via: 'relist' })).toBe(0);
  });

  it('as a process: logs JSON, serves /metrics, and on SIGTERM flushes what is queued before it exits 0', async () => {
    const namespace = await createTestNamespace(kc, 'bridge-sigterm');
    const cluster = clusterName();
    const child = spawn(
      process.execPath,
      [
        'bin/podwarden.ts',
        'bridge',
        ...[
          '--cluster',
          cluster,
          '--bus',
          'podwarden-test',
          '--region',
          'eu-west-1',
          '--namespaces',
          namespace,
        ],
        ...['--lease-namespace', namespace, '--lease-duration', '3s', '--identity', 'sigterm-test'],
        ...[
          '--metrics-host',
          '127.0.0.1',
          '--metrics-port',
          '0',
          '--eventbridge-endpoint',
          recorder.endpoint,
        ],
        ...['--kubeconfig', inject('kubeconfigPath'), '--flush-timeout', '20s'],
      ],
      {
        env: { ...process.env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const log = followBridgeLog(child);
    const { lines, stderr, exited } = log;
    try {
      await log.waitFor('forwarding: every watch has listed', 60_000);
      const port = log.find('bridge started')?.port as number;
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toContain('podwarden_bridge_is_leader 1');
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);

      // The entry is refused twice, so it is still queued (backing off) when the signal comes.
      recorder.throttleNextCalls(2);
      await core.createNamespacedPod({
        namespace,
        body: taskPod({ name: 'late', namespace, behaviour: { kind: 'run' }, labels: airflowLabels('late') }),
      });
      await waitFor('the first PutEvents to be throttled', async () =>
        recorder.calls.some((call) => call.outcome === 'throttled'),
      );
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(stderr.join('')).toBe('');
    expect(
      lines.every(
        (line) =>
          typeof line.timestamp === 'string' &&
          typeof line.level === 'string' &&
          line.service === 'podwarden-bridge' &&
          line.cluster === cluster,
      ),
    ).toBe(true);
    expect(podChanges(cluster, 'late').length).toBeGreaterThan(0);
    const stopped = log.find('bridge stopped');
    expect(stopped).toMatchObject({ failed: 0, undeliveredAtShutdown: 0 });
    const lease = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ namespace, name: 'podwarden-bridge' });
    expect(lease.spec?.holderIdentity ?? '').toBe('');
  });
});
