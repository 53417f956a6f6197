import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Pod } from '../../lib/core/pod.ts';
import { podShapeProblem, readPod } from '../../lib/core/read-pod.ts';

function fixture(name: string): Pod {
  return JSON.parse(readFileSync(new URL(`../fixtures/pods/${name}.json`, import.meta.url), 'utf8')) as Pod;
}

describe('readPod', () => {
  it('reads a running KPO pod with its xcom sidecar', () => {
    const reading = readPod(fixture('kpo-running'), 'base');
    expect(reading).toEqual({
      name: 'etl-daily-extract-orders-k3v9x2mq',
      namespace: 'airflow-jobs',
      uid: '6a1f4c52-0b7e-4d1a-9f0e-3c2b8d7e5a10',
      phase: 'Running',
      terminal: false,
      deleting: false,
      createdAt: Date.parse('2026-04-09T09:00:12Z'),
      main: { name: 'base', found: true, started: true, running: true },
      sidecarsRunning: ['airflow-xcom-sidecar'],
    });
  });

  it('sees the main container terminated while the sidecar still runs (seed 001)', () => {
    const reading = readPod(fixture('kpo-zombie-sidecar'), 'base');
    expect(reading.terminal).toBe(false);
    expect(reading.main).toEqual({
      name: 'base',
      found: true,
      started: true,
      running: false,
      terminated: { exitCode: 0, reason: 'Completed', finishedAt: Date.parse('2026-04-09T09:14:02Z') },
    });
    expect(reading.sidecarsRunning).toEqual(['airflow-xcom-sidecar']);
  });

  it('reads the DisruptionTarget condition and the deletion of a preempted pod (seed 000)', () => {
    const reading = readPod(fixture('kpo-preempted'), 'base');
    expect(reading.deleting).toBe(true);
    expect(reading.disruption).toEqual({
      reason: 'PreemptionByScheduler',
      message: 'default-scheduler: preempting to accommodate a higher priority pod',
      at: Date.parse('2026-04-09T09:05:11Z'),
    });
  });

  it('ignores DisruptionTarget conditions that are False or carry an unknown reason', () => {
    const pod = fixture('kpo-running');
    pod.status!.conditions = [
      { type: 'DisruptionTarget', status: 'False', reason: 'PreemptionByScheduler' },
      { type: 'DisruptionTarget', status: 'True', reason: 'SomethingNew' },
    ];
    expect(readPod(pod, 'base').disruption).toBeUndefined();
  });

  it('finds a pull error on a sidecar when the main container is not pulling (seed 002)', () => {
    const reading = readPod(fixture('kpo-pull-rate-limited'), 'base');
    expect(reading.phase).toBe('Pending');
    expect(reading.main).toMatchObject({
      started: false,
      running: false,
      waiting: { reason: 'ContainerCreating', message: '' },
    });
    expect(reading.pullError).toMatchObject({ container: 'airflow-xcom-sidecar', reason: 'ErrImagePull' });
    expect(reading.pullError?.message).toContain('toomanyrequests');
  });

  it('prefers the main container’s pull error, then other containers, then init containers', () => {
    const waiting = (name: string, reason: string) => ({
      name,
      state: { waiting: { reason, message: `${name} ${reason}` } },
    });
    const pod: Pod = {
      metadata: { name: 'p', namespace: 'n' },
      spec: { containers: [{ name: 'side' }, { name: 'main' }], initContainers: [{ name: 'init' }] },
      status: {
        initContainerStatuses: [waiting('init', 'ImagePullBackOff')],
        containerStatuses: [waiting('side', 'ErrImagePull'), waiting('main', 'ErrImagePull')],
      },
    };
    expect(readPod(pod, 'main').pullError).toEqual({
      container: 'main',
      reason: 'ErrImagePull',
      message: 'main ErrImagePull',
    });
    pod.status!.containerStatuses = [waiting('side', 'ErrImagePull'), waiting('main', 'PodInitializing')];
    expect(readPod(pod, 'main').pullError?.container).toBe('side');
    pod.status!.containerStatuses = [waiting('side', 'PodInitializing'), waiting('main', 'PodInitializing')];
    expect(readPod(pod, 'main').pullError?.container).toBe('init');
    pod.status!.initContainerStatuses = [waiting('init', 'CrashLoopBackOff')];
    expect(readPod(pod, 'main').pullError).toBeUndefined();
  });

  it('counts native sidecars (init containers with restartPolicy Always) as sidecars, not plain init containers', () => {
    const reading = readPod(fixture('generic-native-sidecar'), 'report');
    expect(reading.sidecarsRunning).toEqual(['cloud-sql-proxy']);
    expect(reading.main.terminated?.exitCode).toBe(0);
    const pod = fixture('generic-native-sidecar');
    delete pod.spec!.initContainers![0]!.restartPolicy;
    expect(readPod(pod, 'report').sidecarsRunning).toEqual([]);
  });

  it('reads a failed pod', () => {
    const reading = readPod(fixture('kpo-failed'), 'base');
    expect(reading).toMatchObject({ phase: 'Failed', terminal: true, sidecarsRunning: [] });
    expect(reading.main.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
  });

  it('reads an unschedulable pod', () => {
    const reading = readPod(fixture('kpo-unschedulable'), 'base');
    expect(reading.unschedulable?.message).toMatch(/^0\/3 nodes are available: 3 Insufficient memory/);
    expect(reading.main).toEqual({ name: 'base', found: true, started: false, running: false });
  });

  it('defaults a pod without status to Pending and reports a missing main container', () => {
    const reading = readPod(
      { metadata: { name: 'p', namespace: 'n' }, spec: { containers: [{ name: 'app' }] } },
      'base',
    );
    expect(reading).toMatchObject({
      phase: 'Pending',
      terminal: false,
      deleting: false,
      sidecarsRunning: [],
    });
    expect(reading.main.found).toBe(false);
    expect(reading.createdAt).toBeUndefined();
  });

  it('counts a main container as started from lastState alone', () => {
    const pod: Pod = {
      metadata: {},
      spec: { containers: [{ name: 'base' }] },
      status: {
        containerStatuses: [
          {
            name: 'base',
            state: {
              waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container' },
            },
            lastState: { terminated: { exitCode: 2 } },
          },
        ],
      },
    };
    expect(readPod(pod, 'base').main).toMatchObject({
      started: true,
      running: false,
      waiting: { reason: 'CrashLoopBackOff' },
    });
  });
});

describe('podShapeProblem', () => {
  it('accepts every fixture', () => {
    for (const name of [
      'kpo-running',
      'kpo-preempted',
      'kpo-pull-rate-limited',
      'generic-native-sidecar',
      'unmanaged',
    ]) {
      expect(podShapeProblem(fixture(name))).toBeUndefined();
    }
  });

  it.each([
    [[], 'expected a Pod object, got an array'],
    [null, 'expected a Pod object, got null'],
    [{ kind: 'List', items: [{}, {}] }, 'kind is "List" of 2 items, expected "Pod"'],
    [{ kind: 'Deployment' }, 'kind is "Deployment", expected "Pod"'],
    [{ spec: { containers: [] } }, 'missing field metadata'],
    [{ metadata: { name: 1 } }, 'metadata.name must be a string, got a number'],
    [{ metadata: { labels: { a: 1 } } }, 'metadata.labels["a"] must be a string, got a number'],
    [{ metadata: {} }, 'missing field spec'],
    [{ metadata: {}, spec: {} }, 'missing field spec.containers'],
    [{ metadata: {}, spec: { containers: [{}] } }, 'spec.containers[0].name must be a string, got nothing'],
    [
      {
        metadata: {},
        spec: { containers: [] },
        status: { containerStatuses: [{ name: 'a', state: { terminated: {} } }] },
      },
      'status.containerStatuses[0].state.terminated.exitCode must be a number',
    ],
    [
      { metadata: {}, spec: { containers: [] }, status: { conditions: {} } },
      'status.conditions must be an array, got an object',
    ],
  ])('names the problem of %j', (value, problem) => {
    expect(podShapeProblem(value)).toBe(problem);
  });
});
