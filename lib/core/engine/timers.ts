/**
 * Time-based evaluation, run after every observation, and the deadlines a task waits for. Whatever
 * the observation was, the same evaluation runs, so a lost or duplicated event only changes when a
 * task converges, never where.
 */
import { DEFAULT_POLICY, type Policy } from '../policy.ts';
import { isTerminal, type TaskRecord } from '../task.ts';
import { ageHint, RECHECK_MS, recreateWhenDue } from './disruption.ts';
import { pullDeadlineOrRecheck } from './image-pull.ts';
import { sidecarZombieDue } from './reaper.ts';
import type { Decision, Run } from './run.ts';

export function evaluate(run: Run): void {
  const t = run.t;
  if (isTerminal(t.state)) return;
  ageHint(run);
  if (t.state === 'Recovering' && t.disruption) {
    recreateWhenDue(run);
    return;
  }
  if (t.goneUnexplainedAt !== undefined && run.now - t.goneUnexplainedAt >= run.policy.goneGraceMs) {
    run.finish(
      'Deleted',
      undefined,
      `pod ${t.podName} was deleted without disruption evidence; not re-created`,
      [],
    );
    return;
  }
  if (t.state === 'WaitingForImage' && t.imagePull) {
    pullDeadlineOrRecheck(run);
    return;
  }
  if (sidecarZombieDue(run)) return;
  if (
    !t.mainStarted &&
    t.goneUnexplainedAt === undefined &&
    run.now - t.attemptSince >= run.policy.startupDeadlineMs
  ) {
    run.finish(
      'Failed',
      'StartupDeadline',
      `main container not started ${Math.round((run.now - t.attemptSince) / 1000)} s after the pod was first seen`,
      [],
    );
  }
}

/** The decision with its next due time set, and a schedule-check when that time changed. */
export function withSchedule(run: Run): Decision {
  const due = nextDue(run.t, run.policy, run.now);
  if (due === undefined) delete run.t.dueAt;
  else run.t.dueAt = due;
  if (due !== undefined && due !== run.dueBefore) run.actions.push({ kind: 'schedule-check', at: due });
  return { task: run.t, actions: run.actions };
}

/** The earliest deadline the task is waiting for (a back-off, a grace, a re-check), if any. */
export function nextDeadline(t: TaskRecord, policy: Policy, now: number): number | undefined {
  if (isTerminal(t.state)) return undefined;
  const d = t.disruption;
  if (t.state === 'Recovering' && d) {
    if (d.recreateAt === undefined) {
      // The old pod's deletion event may be lost: look again soon. A look already due within that
      // time is kept, so that every reconcile meanwhile does not move it and rewrite the record.
      const pending = t.dueAt !== undefined && t.dueAt > now && t.dueAt <= now + RECHECK_MS;
      return pending ? t.dueAt : now + RECHECK_MS;
    }
    return d.recreateIssuedAt === undefined ? d.recreateAt : d.recreateIssuedAt + RECHECK_MS;
  }
  const candidates: number[] = [];
  if (t.disruptionHint) candidates.push(t.disruptionHint.recheckAt);
  if (t.goneUnexplainedAt !== undefined) candidates.push(t.goneUnexplainedAt + policy.goneGraceMs);
  if (t.state === 'WaitingForImage' && t.imagePull)
    candidates.push(Math.min(t.imagePull.nextCheckAt, t.imagePull.deadline));
  if (t.mainTerminatedAt !== undefined) candidates.push(t.mainTerminatedAt + policy.sidecarGraceMs);
  if (!t.mainStarted) candidates.push(t.attemptSince + policy.startupDeadlineMs);
  return candidates.length === 0 ? undefined : Math.min(...candidates);
}

/**
 * Whether the task's `dueAt` is a deadline it waits for (a back-off, a re-check, a grace, an owed
 * audit entry), as opposed to only its periodic resync. Only the kind matters here, not the time,
 * and which deadlines exist does not depend on the policy's values.
 */
export function dueIsDeadline(t: TaskRecord): boolean {
  if (t.dueAt === undefined) return false;
  if ((t.intents?.length ?? 0) > 0) return true;
  return nextDeadline(t, DEFAULT_POLICY, t.dueAt) !== undefined;
}

/**
 * The next time a timer must look at the task: its next deadline, or else a resync, so that an
 * unfinished task never depends on a single event that may be lost. Undefined once it has ended.
 */
export function nextDue(t: TaskRecord, policy: Policy, now: number): number | undefined {
  if (isTerminal(t.state)) return undefined;
  const deadline = nextDeadline(t, policy, now);
  if (deadline !== undefined) return deadline;
  return t.dueAt !== undefined && t.dueAt > now ? t.dueAt : now + policy.resyncMs;
}
