/**
 * The decision engine: `(task, observation, now, policy) -> (task', actions)`, pure and total.
 *
 * It is level-triggered: every observation is folded into the record, then the same evaluation runs
 * whatever the observation was, so a duplicated, lost or reordered observation only changes *when*
 * the task converges, never *where*. Actions are data; an executor performs them idempotently.
 *
 * The rooms, one concern each: `tracking.ts` (which pod is ours, and reading it), `disruption.ts`
 * (Recovering and re-create), `image-pull.ts`, `orchestrator.ts`, `reaper.ts` (zombie rules),
 * `timers.ts` (deadlines and due times), `backoff.ts`; `run.ts` holds the shared bookkeeping.
 */
import type { Action } from '../action.ts';
import { identifyPod, readOverrides } from '../identity.ts';
import type { Observation } from '../observation.ts';
import type { Pod } from '../pod.ts';
import type { Policy } from '../policy.ts';
import type { ProfileName, TaskRecord } from '../task.ts';
import { onDisruptionEvent } from './disruption.ts';
import { onImagePullEvent } from './image-pull.ts';
import { onOrchestrator } from './orchestrator.ts';
import { onReaperScan } from './reaper.ts';
import { type Decision, Run } from './run.ts';
import { evaluate, withSchedule } from './timers.ts';
import { onPodGone, onPodSeen } from './tracking.ts';

export { pullRecheckMs, recreateBackoffMs } from './backoff.ts';
export { isOrchestratorFinished, isOrchestratorState, ORCHESTRATOR_STATES } from './orchestrator.ts';
export type { Decision } from './run.ts';
export { dueIsDeadline, nextDeadline, nextDue } from './timers.ts';

/**
 * A new record for a managed pod seen for the first time. Returns undefined for a pod that is not
 * the profile's or whose identity labels are malformed: such pods are reported, never supervised.
 */
export function startTask(
  pod: Pod,
  profile: ProfileName,
  cluster: string,
  now: number,
): TaskRecord | undefined {
  const identified = identifyPod(pod, profile);
  if (identified.kind !== 'managed' || !pod.metadata.name || !pod.metadata.namespace) return undefined;
  const { identity } = identified;
  return {
    id: { cluster, namespace: pod.metadata.namespace, key: identity.key },
    profile,
    state: 'Pending',
    tryNumber: identity.tryNumber,
    highestTry: identity.tryNumber,
    attempt: identity.attempt,
    recreates: 0,
    podName: pod.metadata.name,
    ...(pod.metadata.uid ? { podUid: pod.metadata.uid } : {}),
    mainStarted: false,
    firstSeenAt: now,
    attemptSince: now,
    overrides: readOverrides(pod).overrides,
    history: [],
    version: 0,
  };
}

/** Folds several observations, in order, into one decision. */
export function decideAll(
  task: TaskRecord,
  observations: Observation[],
  now: number,
  policy: Policy,
): Decision {
  let current = task;
  const actions: Action[] = [];
  for (const observation of observations) {
    const step = decide(current, observation, now, policy);
    current = step.task;
    actions.push(...step.actions);
  }
  return { task: current, actions: collapseSchedules(actions) };
}

export function decide(task: TaskRecord, observation: Observation, now: number, policy: Policy): Decision {
  const run = new Run(task, now, policy);
  observe(run, observation);
  evaluate(run);
  return withSchedule(run);
}

function observe(run: Run, observation: Observation): void {
  switch (observation.type) {
    case 'pod-seen':
      onPodSeen(run, observation.pod);
      return;
    case 'pod-gone':
      onPodGone(run, observation.podName, observation.podUid);
      return;
    case 'preempted-event':
      onDisruptionEvent(run, observation);
      return;
    case 'image-pull-event':
      onImagePullEvent(run, observation);
      return;
    case 'timer-fired':
      return; // evaluate() does the time-based work for every observation
    case 'orchestrator-task-changed':
      onOrchestrator(run, observation.tryNumber, observation.state);
      return;
    case 'reaper-scan':
      onReaperScan(run, observation.pods);
      return;
  }
}

/** Keeps only the last schedule-check of a folded decision: one timer per task is enough. */
function collapseSchedules(actions: Action[]): Action[] {
  const last = actions.findLastIndex((a) => a.kind === 'schedule-check');
  return actions.filter((a, i) => a.kind !== 'schedule-check' || i === last);
}
