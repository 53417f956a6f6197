// Two bridge replicas electing a leader on a real coordination.k8s.io Lease: one forwards at a time,
// and a standby takes over when the leader dies (lease expiry) or steps down (lease released).
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Bridge } from '../../lib/bridge/bridge.ts';
import { parseBridgeConfig } from '../../lib/bridge/config.ts';
import { eventBridgePort } from '../../lib/bridge/eventbridge.ts';
import { kubeApi } from '../../lib/bridge/kube.ts';
import { type Lease, microTime } from '../../lib/bridge/leader.ts';
import { createLogger } from '../../lib/bridge/logger.ts';
import { seriesValue, totalOf } from '../../lib/bridge/metrics.ts';
import { parseInboundEvent } from '../../lib/core/inbound.ts';
import { type EventBridgeRecorder, startEventBridgeRecorder } from '../support/eventbridge-recorder.ts';
import { createTestNamespace, loadTestKubeConfig, taskPod, waitFor } from './support.ts';

const LEASE_SECONDS = 3;
const RETRY_MS = Math.round((LEASE_SECONDS * 1000 * 2) / 15);

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

async function replica(namespace: string, identity: string, logLines: string[] = []): Promise<Bridge> {
  const config = parseBridgeConfig(
    [
      ...[
        '--cluster',
        'failover',
        '--bus',
        'podwarden-test',
        '--region',
        'eu-west-1',
        '--namespaces',
        namespace,
      ],
      ...['--profiles', 'generic', '--lease-namespace', namespace, '--lease-name', 'bridge'],
      ...['--lease-duration', `${LEASE_SECONDS}s`, '--identity', identity],
      ...['--metrics-host', '127.0.0.1', '--metrics-port', '0', '--eventbridge-endpoint', recorder.endpoint],
    ],
    {},
  );
  const bridge = new Bridge(config, {
    kubeConfig: kc,
    log: createLogger({ sink: { write: (line) => logLines.push(line) } }),
    putEvents: eventBridgePort({
      region: config.region,
      endpoint: recorder.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    }),
    forwarder: { backoff: { baseMs: 50, maxMs: 500 }, lingerMs: 10 },
  });
  running.push(bridge);
  await bridge.start();
  return bridge;
}

function arrived(podName: string): boolean {
  return recorder
    .targetEvents()
    .map((event) => parseInboundEvent(event))
    .some((result) => result.ok && result.kind === 'pod-changed' && result.podName === podName);
}

async function createManaged(namespace: string, name: string): Promise<void> {
  await core.createNamespacedPod({
    namespace,
    body: taskPod({
      name,
      namespace,
      behaviour: { kind: 'run' },
      labels: { 'podwarden.io/managed': 'true', 'podwarden.io/task': name },
    }),
  });
}

async function holder(namespace: string) {
  const lease = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace, name: 'bridge' });
  return { identity: lease.spec?.holderIdentity ?? '', transitions: lease.spec?.leaseTransitions ?? 0 };
}

describe('bridge leader election', () => {
  it('lets one replica forward; a standby takes over after the leader dies, and at once when it steps down', async () => {
    const namespace = await createTestNamespace(kc, 'bridge-leader');
    const replicas = [await replica(namespace, 'replica-a'), await replica(namespace, 'replica-b')];
    const leader = await waitFor('a leader that forwards', async () =>
      replicas.find((bridge) => bridge.isForwarding),
    );
    const standby = replicas.find((bridge) => bridge !== leader)!;
    expect(standby.isLeader).toBe(false);
    expect((await holder(namespace)).identity).toBe(leader.config.identity);

    await createManaged(namespace, 'before');
    await waitFor('the first pod to arrive', async () => arrived('before'));
    // The standby does not even watch: one replica forwards at a time.
    expect(await totalOf(standby.metrics.seen)).toBe(0);
    // The recorder keeps an entry before it answers; the bridge counts it once the answer is back.
    await waitFor(
      'the leader to count it forwarded',
      async () => (await totalOf(leader.metrics.forwarded)) > 0,
    );

    // The leader dies without handing the lease back: the standby waits for the lease to expire.
    const transitionsBefore = (await holder(namespace)).transitions;
    const diedAt = Date.now();
    await leader.shutdown({ releaseLease: false });
    await waitFor('the standby to take over', async () => standby.isForwarding, 30_000);
    const takeoverMs = Date.now() - diedAt;
    // Never before the lease could have expired (the last renewal was at most a retry period before).
    expect(takeoverMs).toBeGreaterThanOrEqual(LEASE_SECONDS * 1000 - RETRY_MS * 1.2 - 100);
    const after = await holder(namespace);
    expect(after).toEqual({ identity: standby.config.identity, transitions: transitionsBefore + 1 });

    await createManaged(namespace, 'after');
    await waitFor('a pod created after the failover to arrive', async () => arrived('after'));
    await waitFor(
      'the new leader to count it forwarded',
      async () => (await totalOf(standby.metrics.forwarded)) > 0,
    );

    // A third replica stands by; the leader steps down cleanly and hands the lease over.
    const third = await replica(namespace, 'replica-c');
    const steppedDownAt = Date.now();
    await standby.shutdown();
    await waitFor('the third replica to take over', async () => third.isLeader, 30_000);
    const handoverMs = Date.now() - steppedDownAt;
    expect(handoverMs).toBeLessThan(LEASE_SECONDS * 1000);
    expect((await holder(namespace)).identity).toBe('replica-c');
  });

  it('steps down at once when it finds another replica holding the lease', async () => {
    const namespace = await createTestNamespace(kc, 'bridge-taken');
    const logLines: string[] = [];
    const only = await replica(namespace, 'replica-a', logLines);
    await waitFor('the replica to lead', async () => only.isForwarding);
    // Another holder writes itself into the lease (as after a partition healed): two must never forward.
    // Raw JSON: the typed client writes Lease times with millisecond precision, which the API server refuses.
    const api = kubeApi(kc);
    const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/bridge`;
    const lease = (await api.request('GET', path)) as Lease;
    await api.request('PUT', path, {
      body: {
        ...lease,
        spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: microTime(Date.now()) },
      },
    });
    const takenAt = Date.now();
    await waitFor('the replica to step down', async () => !only.isLeader && !only.isForwarding);
    expect(Date.now() - takenAt).toBeLessThan(LEASE_SECONDS * 1000);
    // It stepped down because it saw the other holder, not because its renew deadline ran out.
    const messages = logLines.map((line) => JSON.parse(line).message);
    expect(messages).toContain('the lease is held by another replica; stepping down');
    expect(messages).not.toContain('could not renew the lease in time; stepping down');
    expect(await seriesValue(only.metrics.isLeader)).toBe(0);
    // The intruder never renews: once its lease has expired, the replica leads again.
    await waitFor('the replica to lead again', async () => only.isForwarding, 30_000);
    expect((await holder(namespace)).identity).toBe('replica-a');
  });
});
