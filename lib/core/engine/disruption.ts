/**
 * Disruption and re-create (seed 000): a disrupted pod puts the task in `Recovering`; once the old
 * uid is gone and the back-off has passed, the next attempt is created from the captured spec.
 */
import { podForAttempt } from '../capture.ts';
import type { Observation } from '../observation.ts';
import type { PodReading } from '../read-pod.ts';
import { type Evidence, isTerminal, type TaskRecord } from '../task.ts';
import { recreateBackoffMs } from './backoff.ts';
import { evidenceText, type Run } from './run.ts';

/** A create issued but not yet seen is issued again after this long (the repeat answers 409 or creates). */
export const RECHECK_MS = 30_000;
/** An unconfirmed disruption event is checked against the API server again this often. */
export const HINT_RECHECK_MS = 5_000;

/** Whether the recorded disruption already covers pod `uid` (so a second sighting adds nothing). */
export function disruptionCovers(run: Run, uid: string | undefined): boolean {
  const d = run.t.disruption;
  return d !== undefined && (d.podUid === undefined || uid === undefined || d.podUid === uid);
}

export function markGone(run: Run, d: NonNullable<TaskRecord['disruption']>): void {
  run.retire(d.podUid);
  d.goneAt = run.now;
  d.recreateAt = run.now + recreateBackoffMs(run.t.recreates + 1, run.policy);
}

export function onDisruptionEvent(run: Run, o: Extract<Observation, { type: 'preempted-event' }>): void {
  const t = run.t;
  if (o.podName !== t.podName || isTerminal(t.state)) return;
  if (o.podUid !== undefined && t.podUid !== undefined && o.podUid !== t.podUid) return;
  if (!o.confirmed) {
    rememberHint(run, o);
    return;
  }
  delete t.disruptionHint;
  const evidence: Evidence = {
    source: `event ${o.reason}`,
    reason: o.reason,
    message: o.message,
    at: o.at,
  };
  if (t.disruption) {
    if (!t.disruption.evidence.some((e) => e.source === evidence.source))
      t.disruption.evidence.push(evidence);
    return;
  }
  disrupted(run, evidence, o.podUid ?? t.podUid);
}

/**
 * An event the API server has not confirmed only schedules re-reads (every HINT_RECHECK_MS, for
 * `goneGraceMs`): a forged, stale or other cluster's event never moves the task by itself.
 */
function rememberHint(run: Run, o: Extract<Observation, { type: 'preempted-event' }>): void {
  const t = run.t;
  if (t.disruption || t.disruptionHint) return;
  t.disruptionHint = {
    reason: o.reason,
    ...(o.podUid !== undefined ? { podUid: o.podUid } : {}),
    receivedAt: run.now,
    recheckAt: run.now + HINT_RECHECK_MS,
    until: run.now + run.policy.goneGraceMs,
  };
  run.note(`${o.reason} event for pod ${t.podName} not confirmed by the API server; re-reading`);
}

/** Advances or drops an unconfirmed disruption hint as time passes. */
export function ageHint(run: Run): void {
  const t = run.t;
  const hint = t.disruptionHint;
  if (!hint) return;
  if (run.now >= hint.until) {
    delete t.disruptionHint;
    run.note(`${hint.reason} event for pod ${t.podName} was never confirmed by the API server; ignored`);
  } else if (run.now >= hint.recheckAt) {
    hint.recheckAt = Math.min(hint.until, run.now + HINT_RECHECK_MS);
  }
}

/** Enters `Recovering` for a disruption of pod `uid`, or fails when policy or budget forbid it. */
export function disrupted(run: Run, evidence: Evidence, uid: string | undefined): void {
  const t = run.t;
  delete t.disruptionHint;
  const gone = t.goneUnexplainedAt;
  delete t.goneUnexplainedAt;
  const mode = t.overrides.recreate;
  if (mode === 'never' || (mode === 'before-start' && t.mainStarted)) {
    run.finish(
      'Failed',
      'DisruptedNoRecreate',
      `pod ${t.podName} was disrupted (${evidenceText(evidence)}); podwarden.io/recreate=${mode} forbids a re-create`,
      [evidence],
    );
    return;
  }
  if (!t.captured) {
    run.finish(
      'Failed',
      'DisruptionBudgetExhausted',
      `pod ${t.podName} was disrupted (${evidenceText(evidence)}) and no spec was captured to re-create it from`,
      [evidence],
    );
    return;
  }
  if (t.recreates >= run.policy.recreateBudget) {
    run.finish(
      'Failed',
      'DisruptionBudgetExhausted',
      `pod ${t.podName} was disrupted again (${evidenceText(evidence)}); the re-create budget of ${run.policy.recreateBudget} is spent`,
      [evidence],
    );
    return;
  }
  t.disruption = { evidence: [evidence], nextAttempt: t.attempt + 1, ...(uid ? { podUid: uid } : {}) };
  run.transition('Recovering', `disrupted: ${evidenceText(evidence)}`);
  run.audit('disruption-recorded', [evidence]);
  if (gone !== undefined) {
    t.disruption.goneAt = gone;
    t.disruption.recreateAt = gone + recreateBackoffMs(t.recreates + 1, run.policy);
  }
}

export function deleteDisruptedPod(run: Run, r: PodReading): void {
  // An evicted pod stays, phase Failed, until pod GC: the same name is free only once it is deleted.
  if (!r.uid || !run.pod || run.isProtected(run.pod)) return;
  run.actions.push({
    kind: 'delete-pod',
    namespace: run.t.id.namespace,
    podName: r.name,
    uid: r.uid,
    gracePeriodSeconds: 0,
    why: 'free the name of a disrupted, terminated pod for its re-create',
  });
}

/** In `Recovering`: issues the create of the next attempt once the old pod is gone and the back-off passed. */
export function recreateWhenDue(run: Run): void {
  const t = run.t;
  const d = t.disruption;
  if (!d || d.goneAt === undefined || d.recreateAt === undefined || run.now < d.recreateAt) return;
  const due = d.recreateIssuedAt === undefined || run.now - d.recreateIssuedAt >= RECHECK_MS;
  if (!due || !t.captured) return;
  d.recreateIssuedAt = run.now;
  run.actions.push({
    kind: 'create-pod',
    namespace: t.id.namespace,
    podName: t.captured.metadata.name,
    attempt: d.nextAttempt,
    ...(d.podUid ? { replacesUid: d.podUid } : {}),
    pod: podForAttempt(t.captured, d.nextAttempt, d.podUid),
  });
}
