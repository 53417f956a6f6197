// Tests of the local control plane itself: what the rest of podwarden relies on the real API
// server, scheduler and the KWOK stages to do.
import {
  CoreV1Api,
  type KubeConfig,
  type V1ContainerStatus,
  type V1Pod,
  VersionApi,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneVersions } from '../../lib/devcluster/index.ts';
import {
  apiStatus,
  createFakeNode,
  createTestNamespace,
  loadTestKubeConfig,
  mainContainerName,
  priorityClasses,
  readPodOrUndefined,
  sidecarContainerName,
  steeringLabels,
  taskPod,
  waitFor,
} from './support.ts';

let kc: KubeConfig;
let core: CoreV1Api;
let namespace: string;

beforeAll(async () => {
  kc = loadTestKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  namespace = await createTestNamespace(kc, 'harness');
});

function containerStatus(pod: V1Pod, name: string): V1ContainerStatus {
  const status = pod.status?.containerStatuses?.find((s) => s.name === name);
  if (!status) throw new Error(`pod ${pod.metadata?.name} has no status for container ${name}`);
  return status;
}

function condition(pod: V1Pod, type: string) {
  return pod.status?.conditions?.find((c) => c.type === type);
}

async function podWhen(name: string, what: string, test: (pod: V1Pod) => boolean, timeoutMs?: number) {
  return waitFor(
    `pod ${name} ${what}`,
    async () => {
      const pod = await core.readNamespacedPod({ namespace, name });
      return test(pod) ? pod : undefined;
    },
    timeoutMs,
  );
}

const isRunning = (pod: V1Pod) =>
  pod.status?.phase === 'Running' &&
  condition(pod, 'Ready')?.status === 'True' &&
  !pod.metadata?.deletionTimestamp;

describe('the API server', () => {
  it('reports the Kubernetes version the binaries were built as', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(controlPlaneVersions().kubernetes);
  });

  it('answers 404 for a pod once its deletion has completed', async () => {
    await core.createNamespacedPod({
      namespace,
      body: taskPod({ name: 'gone', namespace, behaviour: { kind: 'run' } }),
    });
    await podWhen('gone', 'running', isRunning);
    await core.deleteNamespacedPod({ namespace, name: 'gone' });
    const status = await waitFor('a 404 for pod gone', async () => {
      try {
        await core.readNamespacedPod({ namespace, name: 'gone' });
        return undefined;
      } catch (error) {
        return apiStatus(error);
      }
    });
    expect(status).toBe(404);
  });

  it('refuses with 409 AlreadyExists a create whose name is still terminating', async () => {
    const pod = taskPod({ name: 'lingering', namespace, behaviour: { kind: 'run' }, gracePeriodSeconds: 60 });
    await core.createNamespacedPod({ namespace, body: pod });
    await podWhen('lingering', 'running', isRunning);
    await core.deleteNamespacedPod({ namespace, name: 'lingering' });

    const refusal = await core.createNamespacedPod({ namespace, body: pod }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(apiStatus(refusal)).toBe(409);
    expect(JSON.parse(String((refusal as { body: unknown }).body)).reason).toBe('AlreadyExists');
    const old = await readPodOrUndefined(kc, namespace, 'lingering');
    expect(old?.metadata?.deletionTimestamp).toBeTruthy();

    await core.deleteNamespacedPod({ namespace, name: 'lingering', gracePeriodSeconds: 0 });
    await waitFor('pod lingering to be gone after a forced delete', async () =>
      (await readPodOrUndefined(kc, namespace, 'lingering')) === undefined ? true : undefined,
    );
  });
});

describe('the scheduler', () => {
  it('preempts a low-priority task for a high-priority daemon, with DisruptionTarget and a Preempted event', async () => {
    // A node of its own, tainted so no other test's pods land on it and become the victims.
    const nodeName = `preempt-${namespace}`;
    const taint = { key: 'podwarden.test/dedicated', value: namespace, effect: 'NoSchedule' };
    await createFakeNode(kc, { name: nodeName, cpu: '1', memory: '1Gi', taints: [taint] });
    const placement = {
      nodeSelector: { 'kubernetes.io/hostname': nodeName },
      tolerations: [{ key: taint.key, operator: 'Equal', value: taint.value, effect: taint.effect }],
    };
    await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name: 'victim',
        namespace,
        behaviour: { kind: 'run' },
        priorityClassName: priorityClasses.taskLow.name,
        cpu: '700m',
        // Long enough that the terminating victim can be read with its condition.
        gracePeriodSeconds: 10,
        ...placement,
      }),
    });
    const victim = await podWhen(
      'victim',
      `running on ${nodeName}`,
      (p) => isRunning(p) && p.spec?.nodeName === nodeName,
    );

    const daemon = await core.createNamespacedPod({
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
    expect(daemon.spec?.priority).toBe(priorityClasses.daemonHigh.value);

    // The scheduler sets the condition first and then deletes the victim with its grace period.
    const preempted = await podWhen(
      'victim',
      'marked DisruptionTarget and terminating',
      (p) => condition(p, 'DisruptionTarget') !== undefined && Boolean(p.metadata?.deletionTimestamp),
    );
    expect(condition(preempted, 'DisruptionTarget')).toMatchObject({
      status: 'True',
      reason: 'PreemptionByScheduler',
    });
    expect(preempted.metadata?.deletionTimestamp).toBeTruthy();

    const events = await waitFor('a Preempted event for victim', async () => {
      const list = await core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.name=victim,reason=Preempted`,
      });
      return list.items.length > 0 ? list.items : undefined;
    });
    expect(events[0]?.involvedObject.uid).toBe(victim.metadata?.uid);
    expect(events[0]?.message).toContain(daemon.metadata!.uid!);
    expect(events[0]?.message).toContain(nodeName);

    // The victim goes when its grace period ends, and the daemon takes its place.
    await waitFor('victim to be deleted', async () =>
      (await readPodOrUndefined(kc, namespace, 'victim')) === undefined ? true : undefined,
    );
    const placed = await podWhen(
      'daemon',
      `running on ${nodeName}`,
      (p) => isRunning(p) && p.spec?.nodeName === nodeName,
    );
    expect(placed.spec?.nodeName).toBe(nodeName);
  });
});

describe.concurrent('KWOK stages steered by label', () => {
  it('run: the pod starts and stays running', async () => {
    await core.createNamespacedPod({
      namespace,
      body: taskPod({ name: 'runs', namespace, behaviour: { kind: 'run' }, sidecar: true }),
    });
    const pod = await podWhen('runs', 'running', isRunning);
    expect(containerStatus(pod, mainContainerName).state?.running?.startedAt).toBeTruthy();
    expect(containerStatus(pod, sidecarContainerName).state?.running?.startedAt).toBeTruthy();
    expect(pod.status?.podIP).toBeTruthy();
  });

  it('exit: the pod completes with the chosen exit code, and selectors find it', async () => {
    for (const [name, code] of [
      ['exits-3', 3],
      ['exits-0', 0],
    ] as const) {
      await core.createNamespacedPod({
        namespace,
        body: taskPod({ name, namespace, behaviour: { kind: 'exit', code }, sidecar: true, runForMs: 500 }),
      });
    }
    const failed = await podWhen('exits-3', 'Failed', (p) => p.status?.phase === 'Failed');
    expect(containerStatus(failed, mainContainerName).state?.terminated).toMatchObject({
      exitCode: 3,
      reason: 'Error',
    });
    expect(containerStatus(failed, sidecarContainerName).state?.terminated?.exitCode).toBe(0);

    const succeeded = await podWhen('exits-0', 'Succeeded', (p) => p.status?.phase === 'Succeeded');
    expect(containerStatus(succeeded, mainContainerName).state?.terminated).toMatchObject({
      exitCode: 0,
      reason: 'Completed',
    });

    const selected = await core.listNamespacedPod({
      namespace,
      labelSelector: `${steeringLabels.behaviour}=exit`,
      fieldSelector: 'status.phase=Failed',
    });
    expect(selected.items.map((p) => p.metadata?.name)).toEqual(['exits-3']);
  });

  it('zombie-sidecar: the main container exits while the sidecar keeps the pod Running', async () => {
    await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name: 'zombie',
        namespace,
        behaviour: { kind: 'zombie-sidecar', code: 0 },
        sidecar: true,
      }),
    });
    const pod = await podWhen(
      'zombie',
      'with its main container terminated',
      (p) => containerStatus(p, mainContainerName).state?.terminated !== undefined,
    );
    expect(pod.status?.phase).toBe('Running');
    expect(containerStatus(pod, mainContainerName).state?.terminated?.exitCode).toBe(0);
    expect(containerStatus(pod, sidecarContainerName).state?.running?.startedAt).toBeTruthy();
    expect(condition(pod, 'Ready')?.status).toBe('False');
  });

  it('pull-error: ErrImagePull, then ImagePullBackOff with the message, then running once it clears', async () => {
    const message = 'toomanyrequests: You have reached your pull rate limit';
    const created = await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name: 'rate-limited',
        namespace,
        behaviour: { kind: 'pull-error', message, clearAfterSeconds: 8 },
      }),
    });
    const erring = await podWhen('rate-limited', 'waiting with ErrImagePull or ImagePullBackOff', (p) =>
      ['ErrImagePull', 'ImagePullBackOff'].includes(
        containerStatus(p, mainContainerName).state?.waiting?.reason ?? '',
      ),
    );
    expect(erring.status?.phase).toBe('Pending');
    expect(containerStatus(erring, mainContainerName).state?.waiting?.message).toContain(message);

    const backingOff = await podWhen(
      'rate-limited',
      'in ImagePullBackOff',
      (p) =>
        containerStatus(p, mainContainerName).state?.waiting?.reason === 'ImagePullBackOff' || isRunning(p),
    );
    // Seen unless the machine stalled past the whole 8 s window; either way it must clear below.
    if (!isRunning(backingOff)) {
      expect(containerStatus(backingOff, mainContainerName).state?.waiting?.message).toContain(message);
    }

    const running = await podWhen('rate-limited', 'running after the rate limit cleared', isRunning);
    const startedAt = containerStatus(running, mainContainerName).state?.running?.startedAt;
    const createdAt = created.metadata?.creationTimestamp;
    // The pull cannot succeed before it was told to (creation time has whole-second precision).
    expect(new Date(startedAt!).getTime()).toBeGreaterThanOrEqual(new Date(createdAt!).getTime() + 7000);
  });

  it('pull-error without clearAfterSeconds: stays in ImagePullBackOff', async () => {
    await core.createNamespacedPod({
      namespace,
      body: taskPod({
        name: 'pull-denied',
        namespace,
        behaviour: { kind: 'pull-error', message: 'manifest unknown' },
      }),
    });
    const pod = await podWhen(
      'pull-denied',
      'in ImagePullBackOff',
      (p) => containerStatus(p, mainContainerName).state?.waiting?.reason === 'ImagePullBackOff',
    );
    expect(pod.status?.phase).toBe('Pending');
    expect(containerStatus(pod, mainContainerName).state?.waiting?.message).toContain('manifest unknown');
  });

  it('deletion: the pod lingers, terminating, for its grace period and then goes', async () => {
    await core.createNamespacedPod({
      namespace,
      body: taskPod({ name: 'graceful', namespace, behaviour: { kind: 'run' }, gracePeriodSeconds: 6 }),
    });
    await podWhen('graceful', 'running', isRunning);
    const deleting = await core.deleteNamespacedPod({ namespace, name: 'graceful' });
    expect(deleting.metadata?.deletionGracePeriodSeconds).toBe(6);
    const deletionTimestamp = new Date(deleting.metadata!.deletionTimestamp!).getTime();

    await waitFor('pod graceful to be gone', async () =>
      (await readPodOrUndefined(kc, namespace, 'graceful')) === undefined ? true : undefined,
    );
    // KWOK must not remove it before the grace period ends (timestamps have whole-second precision).
    expect(Date.now()).toBeGreaterThanOrEqual(deletionTimestamp - 1000);
  });
});
