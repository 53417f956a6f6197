/**
 * Issue 9, in the engine: no event alone moves a task or deletes a pod. A disruption counts only
 * as the API server confirms it; orchestrator facts must be plausible against the pods; a pod whose
 * main container exited 0 is a success whatever the record says.
 */
import { describe, expect, it } from 'vitest';
import type { Action } from '../../lib/core/action.ts';
import { decide, decideAll, startTask } from '../../lib/core/engine.ts';
import { explainPod } from '../../lib/core/explain.ts';
import type { Observation } from '../../lib/core/observation.ts';
import { MAX_DURATION_MS, makePolicy, parseDuration } from '../../lib/core/policy.ts';
import type { TaskRecord } from '../../lib/core/task.ts';
import { kpoPod, preemptedCondition, running, T0, terminated, waiting } from '../support/pod-builder.ts';

const policy = makePolicy();
const S = 1000;

function start(pod = kpoPod({ main: running() }), now = T0): TaskRecord {
  const task = startTask(pod, 'airflow-kpo', 'prod', now);
  if (!task) throw new Error('pod not managed');
  return decide(task, { type: 'pod-seen', pod }, now, policy).task;
}

const podActions = (actions: Action[]) =>
  actions.filter((a) => a.kind === 'delete-pod' || a.kind === 'create-pod');

const preempted = (extra: Partial<Extract<Observation, { type: 'preempted-event' }>> = {}): Observation => ({
  type: 'preempted-event',
  podName: 'load-abc123',
  podUid: 'uid-1',
  reason: 'Preempted',
  message: 'Preempted by pod x on node y',
  at: T0,
  ...extra,
});

describe('case 1: a Preempted event the API server does not confirm', () => {
  it('never moves a healthy task to Recovering; it only schedules a re-read soon', () => {
    const task = start();
    const d = decideAll(
      task,
      [preempted(), { type: 'pod-seen', pod: kpoPod({ main: running() }) }],
      T0 + S,
      policy,
    );
    expect(d.task.state).toBe('Running');
    expect(d.task.disruption).toBeUndefined();
    expect(d.task.disruptionHint).toMatchObject({ reason: 'Preempted', podUid: 'uid-1' });
    expect(d.actions).toContainEqual({ kind: 'schedule-check', at: T0 + 6 * S });
    expect(podActions(d.actions)).toEqual([]);
  });

  it('lets the task finish as it really did: the pod that succeeds is neither deleted nor run twice', () => {
    let task = decide(start(), preempted(), T0 + S, policy).task;
    const done = kpoPod({ phase: 'Succeeded', main: terminated(0, T0 + 20 * S), sidecar: terminated(0) });
    const d = decideAll(
      task,
      [{ type: 'timer-fired' }, { type: 'pod-seen', pod: done }],
      T0 + 30 * S,
      policy,
    );
    task = d.task;
    expect(task).toMatchObject({ state: 'Succeeded', attempt: 1, recreates: 0 });
    expect(podActions(d.actions)).toEqual([]);
    expect(task.disruptionHint).toBeUndefined();
  });

  it('is dropped, with a note, once it stays unconfirmed for the gone grace', () => {
    let task = decide(start(), preempted(), T0, policy).task;
    for (let now = T0; now <= T0 + policy.goneGraceMs; now += 5 * S) {
      task = decideAll(
        task,
        [{ type: 'timer-fired' }, { type: 'pod-seen', pod: kpoPod({ main: running() }) }],
        now,
        policy,
      ).task;
    }
    expect(task.state).toBe('Running');
    expect(task.disruptionHint).toBeUndefined();
    expect(task.message).toMatch(/never confirmed by the API server/);
  });

  it('counts once confirmed (read back from the API server for that uid)', () => {
    const task = decide(start(), preempted(), T0, policy).task;
    const d = decide(task, preempted({ confirmed: true }), T0 + 5 * S, policy);
    expect(d.task.state).toBe('Recovering');
    expect(d.task.disruption?.evidence[0]).toMatchObject({ source: 'event Preempted' });
    expect(d.task.disruptionHint).toBeUndefined();
  });
});

describe('case 1: a pod whose main container exited 0 is a success whatever the record says', () => {
  it('ends a Recovering task Succeeded instead of deleting its pod and running attempt 2', () => {
    let task = start();
    task = decide(
      task,
      { type: 'pod-seen', pod: kpoPod({ main: running(), conditions: [preemptedCondition()] }) },
      T0 + S,
      policy,
    ).task;
    expect(task.state).toBe('Recovering');
    const finished = kpoPod({
      phase: 'Succeeded',
      main: terminated(0, T0 + 2 * S),
      sidecar: terminated(0),
      conditions: [preemptedCondition()],
    });
    const d = decideAll(
      task,
      [{ type: 'pod-seen', pod: finished }, { type: 'timer-fired' }],
      T0 + 60 * S,
      policy,
    );
    expect(d.task).toMatchObject({ state: 'Succeeded', attempt: 1 });
    expect(podActions(d.actions)).toEqual([]);
  });

  it('ends it Succeeded when the disruption came after the main container had exited 0', () => {
    const pod = kpoPod({ main: terminated(0, T0), sidecar: running(), conditions: [preemptedCondition()] });
    const d = decide(start(kpoPod({ main: running() })), { type: 'pod-seen', pod }, T0 + S, policy);
    expect(d.task.state).toBe('Succeeded');
    expect(d.actions.filter((a) => a.kind === 'create-pod')).toEqual([]);
  });
});

describe('case 2: orchestrator facts must be plausible', () => {
  const live = kpoPod({ main: running() });

  it('a try_number of 2^53-1 waits for a pod of that try; the live pod is not reaped', () => {
    let task = start(live);
    let d = decide(
      task,
      { type: 'orchestrator-task-changed', tryNumber: Number.MAX_SAFE_INTEGER, state: 'running' },
      T0 + S,
      policy,
    );
    task = d.task;
    expect(task).toMatchObject({ state: 'Running', tryNumber: 1, highestTry: 1 });
    expect(task.orchestratorClaim?.tryNumber).toBe(Number.MAX_SAFE_INTEGER);
    d = decide(task, { type: 'reaper-scan', pods: [live] }, T0 + 3600 * S, policy);
    expect(d.actions.filter((a) => a.kind === 'delete-pod')).toEqual([]);
    expect(d.task.state).toBe('Running');
  });

  it('a claim counts once the API server shows a pod of that try', () => {
    let task = start(live);
    task = decide(
      task,
      { type: 'orchestrator-task-changed', tryNumber: 4, state: 'failed' },
      T0 + S,
      policy,
    ).task;
    expect(task.state).toBe('Running');
    const try4 = kpoPod({ name: 'load-try4', uid: 'uid-4', tryNumber: 4, main: running() });
    task = decide(task, { type: 'pod-seen', pod: try4 }, T0 + 2 * S, policy).task;
    expect(task).toMatchObject({ tryNumber: 4, state: 'Failed', cause: 'EndedByOrchestrator' });
    expect(task.orchestratorClaim).toBeUndefined();
  });

  it('the next try (one above) is plausible and ends the current one, without deleting its pod', () => {
    let task = start(live);
    task = decide(
      task,
      { type: 'orchestrator-task-changed', tryNumber: 2, state: 'queued' },
      T0 + S,
      policy,
    ).task;
    expect(task).toMatchObject({ state: 'Failed', cause: 'EndedByOrchestrator', highestTry: 1 });
    const d = decide(task, { type: 'reaper-scan', pods: [live] }, T0 + 3600 * S, policy);
    expect(d.actions.filter((a) => a.kind === 'delete-pod')).toEqual([]);
  });

  it('"success" from the orchestrator alone never reaps a pod whose main container still runs', () => {
    let task = start(live);
    task = decide(
      task,
      { type: 'orchestrator-task-changed', tryNumber: 1, state: 'success' },
      T0 + S,
      policy,
    ).task;
    expect(task.state).toBe('Succeeded');
    const d = decide(
      task,
      { type: 'reaper-scan', pods: [live] },
      T0 + S + 10 * policy.finishedGraceMs,
      policy,
    );
    expect(d.actions.filter((a) => a.kind === 'delete-pod')).toEqual([]);
  });

  it('ignores a state it does not know, even if intake let one through', () => {
    const task = start(live);
    const d = decide(
      task,
      { type: 'orchestrator-task-changed', tryNumber: 1, state: 'exploded' },
      T0 + S,
      policy,
    );
    expect(d.task.state).toBe('Running');
    expect(d.task.orchestratorState).toBeUndefined();
  });
});

describe('case 3: durations are bounded; an unreadable annotation is reported and ignored', () => {
  it.each([['9'.repeat(400)], ['Infinity'], ['NaN'], [`1${'0'.repeat(21)}h`], ['-5m'], ['367d'], ['8785h']])(
    'parseDuration(%j) is refused',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );

  it('keeps exact values up to 366 days', () => {
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('8784h')).toBe(MAX_DURATION_MS);
  });

  it('a pull-deadline of 400 nines falls back to the policy default, audited and explained', () => {
    const pod = kpoPod({
      phase: 'Pending',
      main: waiting('ErrImagePull', 'toomanyrequests: rate limit'),
      annotations: { 'podwarden.io/pull-deadline': '9'.repeat(400) },
    });
    const task = startTask(pod, 'airflow-kpo', 'prod', T0);
    if (!task) throw new Error('pod not managed');
    expect(task.overrides.pullDeadlineMs).toBeUndefined();
    const d = decide(task, { type: 'pod-seen', pod }, T0, policy);
    expect(d.task.imagePull?.deadline).toBe(T0 + policy.pullDeadlineMs);
    expect(Number.isFinite(d.task.dueAt)).toBe(true); // what the store choked on
    expect(d.actions).toContainEqual(
      expect.objectContaining({
        kind: 'audit',
        what: 'annotation-ignored',
        evidence: [expect.objectContaining({ message: expect.stringMatching(/pull-deadline.*ignored/) })],
      }),
    );
    expect(explainPod(pod, 'airflow-kpo', { now: T0 }).warnings).toEqual([
      expect.stringMatching(/^annotation podwarden.io\/pull-deadline="9{40}\.\.\." is not a duration/),
    ]);
  });
});
