import { describe, expect, it } from 'vitest';
import type { Action } from '../../lib/core/action.ts';
import { decide, decideAll, startTask } from '../../lib/core/engine.ts';
import type { Observation } from '../../lib/core/observation.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import type { TaskRecord } from '../../lib/core/task.ts';
import { iso, kpoPod, preemptedCondition, running, T0, terminated, waiting } from '../support/pod-builder.ts';

const policy = makePolicy();
const S = 1000;

function start(pod = kpoPod({ main: running() }), now = T0): TaskRecord {
  const task = startTask(pod, 'airflow-kpo', 'prod', now);
  if (!task) throw new Error('pod not managed');
  return decide(task, { type: 'pod-seen', pod }, now, policy).task;
}

const kinds = (actions: Action[]) =>
  actions.flatMap((a) =>
    a.kind === 'emit'
      ? [`emit:${a.event.type}`]
      : a.kind === 'delete-pod' && a.announce
        ? [a.kind, `emit:${a.announce.type}`] // announced once the cluster confirms the delete
        : [a.kind],
  );
const creates = (actions: Action[]) => actions.filter((a) => a.kind === 'create-pod');

describe('seed 000: a preempted pod is re-created with the same name', () => {
  it('waits for the old pod to be gone, backs off 2 s, then creates attempt 2 from the captured spec', () => {
    let task = start(kpoPod({ main: running(), nodeName: 'node-a' }));
    expect(task.state).toBe('Running');
    expect(task.captured?.spec.nodeName).toBeUndefined();

    const victim = kpoPod({ main: running(), conditions: [preemptedCondition()], deleting: true });
    let d = decide(task, { type: 'pod-seen', pod: victim }, T0 + 1 * S, policy);
    task = d.task;
    expect(task.state).toBe('Recovering');
    expect(creates(d.actions)).toHaveLength(0); // the old pod still exists: same name would be 409

    d = decide(task, { type: 'pod-gone', podName: 'load-abc123', podUid: 'uid-1' }, T0 + 3 * S, policy);
    task = d.task;
    expect(task.disruption?.recreateAt).toBe(T0 + 5 * S);
    expect(d.actions).toContainEqual({ kind: 'schedule-check', at: T0 + 5 * S });
    expect(creates(decide(task, { type: 'timer-fired' }, T0 + 4 * S, policy).actions)).toHaveLength(0);

    d = decide(task, { type: 'timer-fired' }, T0 + 5 * S, policy);
    const [create] = creates(d.actions);
    expect(create).toMatchObject({
      podName: 'load-abc123',
      namespace: 'airflow',
      attempt: 2,
      replacesUid: 'uid-1',
    });
    if (create?.kind !== 'create-pod') throw new Error('no create');
    expect(create.pod.metadata.labels).toMatchObject({
      dag_id: 'etl',
      try_number: '1',
      'podwarden.io/attempt': '2',
    });
    expect(create.pod.spec?.nodeName).toBeUndefined();
    expect(create.pod.spec?.volumes).toBeUndefined(); // the injected token volume is left to admission

    // A repeated timer before the create is seen does not create a second pod.
    expect(creates(decide(d.task, { type: 'timer-fired' }, T0 + 6 * S, policy).actions)).toHaveLength(0);

    const reborn = kpoPod({ uid: 'uid-2', attempt: 2, phase: 'Pending' });
    d = decide(d.task, { type: 'pod-seen', pod: reborn }, T0 + 7 * S, policy);
    expect(d.task).toMatchObject({ state: 'Pending', attempt: 2, recreates: 1, podUid: 'uid-2' });
    expect(kinds(d.actions)).toContain('emit:Task Recovered');
  });

  it('spends a budget of 3 with back-offs 2 s, 4 s, 8 s, then fails naming the preemption', () => {
    let task = start();
    let now = T0;
    const backoffs: number[] = [];
    for (let n = 1; n <= 3; n++) {
      const uid = `uid-${n}`;
      now += 60 * S;
      task = decide(
        task,
        { type: 'pod-seen', pod: kpoPod({ uid, attempt: n, conditions: [preemptedCondition(now)] }) },
        now,
        policy,
      ).task;
      task = decide(task, { type: 'pod-gone', podName: 'load-abc123', podUid: uid }, now, policy).task;
      backoffs.push((task.disruption?.recreateAt ?? 0) - now);
      now = task.disruption?.recreateAt ?? now;
      const d = decide(task, { type: 'timer-fired' }, now, policy);
      expect(creates(d.actions)).toHaveLength(1);
      task = decide(
        d.task,
        { type: 'pod-seen', pod: kpoPod({ uid: `uid-${n + 1}`, attempt: n + 1, main: running(now) }) },
        now,
        policy,
      ).task;
    }
    expect(backoffs).toEqual([2 * S, 4 * S, 8 * S]);
    expect(task.recreates).toBe(3);

    const d = decide(
      task,
      { type: 'pod-seen', pod: kpoPod({ uid: 'uid-4', attempt: 4, conditions: [preemptedCondition()] }) },
      now + S,
      policy,
    );
    expect(d.task).toMatchObject({ state: 'Failed', cause: 'DisruptionBudgetExhausted' });
    expect(d.task.message).toMatch(/PreemptionByScheduler.*budget of 3/);
    expect(kinds(d.actions)).toContain('emit:Task Failed');
  });

  it('recovers when the Preempted event arrives after the pod vanished', () => {
    let task = start();
    task = decide(task, { type: 'pod-gone', podName: 'load-abc123' }, T0 + 10 * S, policy).task;
    expect(task.state).toBe('Running');
    expect(task.goneUnexplainedAt).toBe(T0 + 10 * S);
    const event: Observation = {
      type: 'preempted-event',
      podName: 'load-abc123',
      podUid: 'uid-1',
      reason: 'Preempted',
      message: 'Preempted by pod x on node y',
      at: T0 + 9 * S,
      confirmed: true, // read back from the API server by the reconciler
    };
    const d = decideAll(task, [event, { type: 'pod-gone', podName: 'load-abc123' }], T0 + 11 * S, policy);
    expect(d.task.state).toBe('Recovering');
    expect(d.task.disruption?.recreateAt).toBe(T0 + 12 * S);
  });

  it('never re-creates a pod deleted without disruption evidence (the orchestrator may have killed it)', () => {
    let task = start();
    task = decide(task, { type: 'pod-gone', podName: 'load-abc123' }, T0, policy).task;
    const d = decide(task, { type: 'timer-fired' }, T0 + policy.goneGraceMs, policy);
    expect(d.task.state).toBe('Deleted');
    expect(creates(d.actions)).toHaveLength(0);
  });

  it('honours podwarden.io/recreate: never and before-start', () => {
    const never = start(kpoPod({ main: running(), annotations: { 'podwarden.io/recreate': 'never' } }));
    const d = decide(
      never,
      { type: 'pod-seen', pod: kpoPod({ main: running(), conditions: [preemptedCondition()] }) },
      T0,
      policy,
    );
    expect(d.task).toMatchObject({ state: 'Failed', cause: 'DisruptedNoRecreate' });

    const beforeStart = start(
      kpoPod({
        phase: 'Pending',
        main: waiting('ContainerCreating'),
        annotations: { 'podwarden.io/recreate': 'before-start' },
      }),
    );
    const d2 = decide(
      beforeStart,
      { type: 'pod-seen', pod: kpoPod({ phase: 'Pending', conditions: [preemptedCondition()] }) },
      T0,
      policy,
    );
    expect(d2.task.state).toBe('Recovering');
  });

  it('deletes an evicted pod (phase Failed, still present) to free its name, by uid', () => {
    const task = start();
    const evicted = kpoPod({
      phase: 'Failed',
      main: terminated(137),
      conditions: [{ ...preemptedCondition(), reason: 'TerminationByKubelet' }],
    });
    const d = decide(task, { type: 'pod-seen', pod: evicted }, T0, policy);
    expect(d.task.state).toBe('Recovering');
    expect(d.actions).toContainEqual(
      expect.objectContaining({ kind: 'delete-pod', uid: 'uid-1', gracePeriodSeconds: 0 }),
    );
  });
});

describe('seed 001: zombie pods', () => {
  const zombie = (finishedAt: number, code = 0, annotations: Record<string, string> = {}) =>
    kpoPod({ main: terminated(code, finishedAt), sidecar: running(), annotations });

  it('ends the task by the main exit code and deletes the pod once the sidecar grace has passed', () => {
    let task = start(zombie(T0));
    expect(task.mainTerminatedAt).toBe(T0);
    expect(task.dueAt).toBe(T0 + policy.sidecarGraceMs);
    expect(decide(task, { type: 'timer-fired' }, T0 + policy.sidecarGraceMs - 1, policy).task.state).toBe(
      'Running',
    );

    const d = decideAll(
      task,
      [{ type: 'pod-seen', pod: zombie(T0, 3) }, { type: 'timer-fired' }],
      T0 + policy.sidecarGraceMs,
      policy,
    );
    task = d.task;
    expect(task).toMatchObject({ state: 'Failed', cause: 'ContainerFailed' });
    expect(d.actions).toContainEqual(
      expect.objectContaining({ kind: 'delete-pod', uid: 'uid-1', rule: 'sidecar-zombie' }),
    );
    expect(kinds(d.actions)).toContain('emit:Pod Reaped');
  });

  it('reports but never deletes a protected zombie', () => {
    const task = start(zombie(T0, 0, { 'podwarden.io/protect': 'true' }));
    const d = decide(task, { type: 'timer-fired' }, T0 + policy.sidecarGraceMs, policy);
    expect(d.task.state).toBe('Succeeded');
    expect(d.actions.filter((a) => a.kind === 'delete-pod')).toHaveLength(0);
    expect(d.actions).toContainEqual(
      expect.objectContaining({ kind: 'audit', what: 'reap-skipped-protected' }),
    );
  });

  it('reaps pods of stale tries and of finished tasks, but not young or completed ones', () => {
    const now = T0 + 3600 * S;
    let task = start(kpoPod({ name: 'load-try2', uid: 'u2', tryNumber: 2, main: running() }), T0);
    const stale = kpoPod({ name: 'load-try1', uid: 'u1', tryNumber: 1, main: running() });
    const staleYoung = kpoPod({
      name: 'load-try1b',
      uid: 'u1b',
      tryNumber: 1,
      main: running(),
      createdAt: now - 10 * S,
    });
    const staleDone = kpoPod({
      name: 'load-try1c',
      uid: 'u1c',
      tryNumber: 1,
      phase: 'Failed',
      main: terminated(1),
    });
    const current = kpoPod({ name: 'load-try2', uid: 'u2', tryNumber: 2, main: running() });
    let d = decide(task, { type: 'reaper-scan', pods: [stale, staleYoung, staleDone, current] }, now, policy);
    const deleted = d.actions.flatMap((a) => (a.kind === 'delete-pod' ? [`${a.podName}:${a.rule}`] : []));
    expect(deleted).toEqual(['load-try1:stale-try']);

    task = decide(
      d.task,
      { type: 'orchestrator-task-changed', tryNumber: 2, state: 'failed' },
      now,
      policy,
    ).task;
    expect(task.state).toBe('Failed');
    // The orchestrator's word alone never deletes a pod whose own state says it is still working.
    d = decide(task, { type: 'reaper-scan', pods: [current] }, now + policy.finishedGraceMs, policy);
    expect(d.actions.filter((a) => a.kind === 'delete-pod')).toHaveLength(0);
    // Once the pod agrees (its main container ended, a sidecar keeps it alive), it goes.
    const ended = kpoPod({
      name: 'load-try2',
      uid: 'u2',
      tryNumber: 2,
      main: terminated(1, now),
      sidecar: running(),
    });
    d = decide(task, { type: 'reaper-scan', pods: [ended] }, now + policy.finishedGraceMs, policy);
    expect(d.actions).toContainEqual(
      expect.objectContaining({ kind: 'delete-pod', podName: 'load-try2', rule: 'sidecar-zombie' }),
    );
    // A Podwarden-ended task (from the pod's own state) is reaped by the finished-task rule.
    const deadline = decide(
      start(kpoPod({ name: 'load-try2', uid: 'u2', tryNumber: 2, phase: 'Pending' }), T0),
      { type: 'timer-fired' },
      T0 + policy.startupDeadlineMs,
      policy,
    ).task;
    expect(deadline).toMatchObject({ state: 'Failed', cause: 'StartupDeadline' });
    const stuck = kpoPod({ name: 'load-try2', uid: 'u2', tryNumber: 2, phase: 'Pending' });
    d = decide(
      deadline,
      { type: 'reaper-scan', pods: [stuck] },
      T0 + policy.startupDeadlineMs + policy.finishedGraceMs,
      policy,
    );
    expect(d.actions).toContainEqual(
      expect.objectContaining({ kind: 'delete-pod', podName: 'load-try2', rule: 'finished-task' }),
    );
  });
});

describe('seed 002: transient image-pull errors', () => {
  const rateLimited =
    'failed to pull and unpack image "docker.io/library/busybox:1.36": 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.';

  it('waits with 10 s, 20 s, 40 s re-checks and follows the pod once it starts', () => {
    let d = decide(
      start(kpoPod({ phase: 'Pending', main: waiting('ContainerCreating') })),
      { type: 'pod-seen', pod: kpoPod({ phase: 'Pending', main: waiting('ErrImagePull', rateLimited) }) },
      T0,
      policy,
    );
    expect(d.task.state).toBe('WaitingForImage');
    expect(kinds(d.actions)).toContain('emit:Image Pull Waiting');
    expect(d.task.imagePull?.deadline).toBe(T0 + policy.pullDeadlineMs);
    const checks: number[] = [];
    let now = T0;
    for (let i = 0; i < 3; i++) {
      now = d.task.dueAt ?? now;
      checks.push(now);
      d = decideAll(
        d.task,
        [
          {
            type: 'pod-seen',
            pod: kpoPod({
              phase: 'Pending',
              main: waiting('ImagePullBackOff', 'Back-off pulling image "busybox:1.36"'),
            }),
          },
          { type: 'timer-fired' },
        ],
        now,
        policy,
      );
      expect(d.task.state).toBe('WaitingForImage');
    }
    expect(checks).toEqual([T0 + 10 * S, T0 + 30 * S, T0 + 70 * S]);
    expect(d.task.imagePull?.evidence.message).toMatch(/toomanyrequests/); // the bare back-off did not erase it

    d = decide(d.task, { type: 'pod-seen', pod: kpoPod({ main: running(now) }) }, now + S, policy);
    expect(d.task.state).toBe('Running');
    expect(d.task.imagePull).toBeUndefined();
  });

  it('fails fast on a permanent error, with the evidence', () => {
    const d = decide(
      start(kpoPod({ phase: 'Pending' })),
      {
        type: 'pod-seen',
        pod: kpoPod({
          phase: 'Pending',
          main: waiting('ErrImagePull', 'failed to resolve reference "busybox:nope": not found'),
        }),
      },
      T0,
      policy,
    );
    expect(d.task).toMatchObject({ state: 'Failed', cause: 'ImagePullPermanent' });
    const failed = d.actions.find((a) => a.kind === 'emit' && a.event.type === 'Task Failed');
    expect(failed?.kind === 'emit' && failed.event.evidence[0]?.message).toMatch(/not found/);
  });

  it('fails at the deadline, which the pod can shorten by annotation', () => {
    const pod = kpoPod({
      phase: 'Pending',
      main: waiting('ErrImagePull', 'pull QPS exceeded'),
      annotations: { 'podwarden.io/pull-deadline': '2m' },
    });
    let d = decide(start(pod), { type: 'pod-seen', pod }, T0, policy);
    expect(d.task.imagePull?.deadline).toBe(T0 + 120 * S);
    d = decide(d.task, { type: 'timer-fired' }, T0 + 120 * S, policy);
    expect(d.task).toMatchObject({ state: 'Failed', cause: 'ImagePullDeadline' });
  });
});

describe('tries and the orchestrator', () => {
  it('follows a new try and never re-creates a superseded one', () => {
    let task = start();
    task = decide(
      task,
      { type: 'pod-seen', pod: kpoPod({ conditions: [preemptedCondition()] }) },
      T0,
      policy,
    ).task;
    task = decide(
      task,
      { type: 'orchestrator-task-changed', tryNumber: 2, state: 'queued' },
      T0 + S,
      policy,
    ).task;
    expect(task).toMatchObject({ state: 'Failed', cause: 'EndedByOrchestrator' });
    const d = decideAll(
      task,
      [{ type: 'pod-gone', podName: 'load-abc123' }, { type: 'timer-fired' }],
      T0 + 60 * S,
      policy,
    );
    expect(creates(d.actions)).toHaveLength(0);

    const next = decide(
      d.task,
      { type: 'pod-seen', pod: kpoPod({ name: 'load-def456', uid: 'uid-9', tryNumber: 2, main: running() }) },
      T0 + 61 * S,
      policy,
    );
    expect(next.task).toMatchObject({ state: 'Running', tryNumber: 2, podName: 'load-def456', recreates: 0 });
    expect(next.task.endedAt).toBeUndefined();
  });

  it('ignores duplicated and stale observations', () => {
    const task = start(kpoPod({ main: running(), uid: 'uid-2', attempt: 2 }));
    const old: Observation = {
      type: 'preempted-event',
      podName: 'load-abc123',
      podUid: 'uid-1',
      reason: 'Preempted',
      message: 'old',
      at: T0,
    };
    expect(decide(task, old, T0 + S, policy).task.state).toBe('Running');
    const again = decide(
      task,
      { type: 'pod-seen', pod: kpoPod({ main: running(), uid: 'uid-2', attempt: 2 }) },
      T0,
      policy,
    );
    expect(again.task).toEqual(task);
    expect(again.actions).toEqual([]);
  });

  it('timestamps in records are the decision time, not the wall clock', () => {
    const task = start(kpoPod({ main: running() }), Date.parse('2030-01-01T00:00:00Z'));
    expect(task.firstSeenAt).toBe(Date.parse('2030-01-01T00:00:00Z'));
    expect(iso(task.attemptSince)).toBe('2030-01-01T00:00:00.000Z');
  });
});

describe('one decision, one delete', () => {
  it('a zombie found by the reaper and by its own timer in one pass is deleted and announced once', () => {
    const zombiePod = kpoPod({ main: terminated(0, T0), sidecar: running() });
    const task = start(zombiePod);
    const d = decide(
      task,
      { type: 'reaper-scan', pods: [zombiePod] },
      T0 + policy.sidecarGraceMs + policy.reaperMinAgeMs,
      policy,
    );
    expect(d.actions.filter((a) => a.kind === 'delete-pod')).toHaveLength(1);
    expect(kinds(d.actions).filter((k) => k === 'emit:Pod Reaped')).toHaveLength(1);
    expect(d.task.state).toBe('Succeeded');
  });
});
