/**
 * Image pulls (seed 002): a transient pull error puts the task in `WaitingForImage` with re-checks
 * until a deadline; a permanent one, or the deadline passing, fails it.
 */
import { classifyPullError, isImagePullReason } from '../image-pull.ts';
import type { Observation } from '../observation.ts';
import { type Evidence, isTerminal } from '../task.ts';
import { pullRecheckMs } from './backoff.ts';
import type { Run } from './run.ts';

export function onImagePullEvent(run: Run, o: Extract<Observation, { type: 'image-pull-event' }>): void {
  const t = run.t;
  if (o.podName !== t.podName || isTerminal(t.state) || t.mainStarted || t.state === 'Recovering') return;
  if (o.podUid !== undefined && t.podUid !== undefined && o.podUid !== t.podUid) return;
  pullError(run, { source: `event ${o.reason}`, reason: o.reason, message: o.message, at: o.at });
}

export function pullError(run: Run, evidence: Evidence): void {
  const t = run.t;
  const reason = isImagePullReason(evidence.reason ?? '') ? (evidence.reason ?? '') : 'ErrImagePull';
  const verdict = classifyPullError(reason, evidence.message ?? '');
  const classified: Evidence = {
    ...evidence,
    message:
      `${evidence.message ?? ''} [${verdict.kind}: ${verdict.category}, matched ${verdict.matched}]`.trim(),
  };
  if (verdict.kind === 'permanent') {
    run.finish(
      'Failed',
      'ImagePullPermanent',
      `image pull failed permanently (${verdict.category}: ${verdict.matched})`,
      [classified],
    );
    return;
  }
  if (t.imagePull) {
    // Keep the first informative message: a later bare "Back-off pulling image" says less.
    if (verdict.category !== 'back-off') t.imagePull.evidence = classified;
    return;
  }
  const deadlineMs = t.overrides.pullDeadlineMs ?? run.policy.pullDeadlineMs;
  t.imagePull = {
    since: run.now,
    deadline: run.now + deadlineMs,
    checks: 0,
    nextCheckAt: run.now + pullRecheckMs(1, run.policy),
    evidence: classified,
  };
  run.transition('WaitingForImage', `transient image pull error (${verdict.category}: ${verdict.matched})`);
  run.emit(
    'Image Pull Waiting',
    `waiting up to ${Math.round(deadlineMs / 1000)} s for the image (${verdict.category})`,
    [classified],
  );
}

/** In `WaitingForImage`: fails the task at the deadline, else advances the re-check back-off. */
export function pullDeadlineOrRecheck(run: Run): void {
  const wait = run.t.imagePull;
  if (!wait) return;
  if (run.now >= wait.deadline) {
    run.finish(
      'Failed',
      'ImagePullDeadline',
      `image still not pulled after ${Math.round((run.now - wait.since) / 1000)} s (deadline passed)`,
      [wait.evidence],
    );
    return;
  }
  if (run.now >= wait.nextCheckAt) {
    wait.checks += 1;
    wait.nextCheckAt = Math.min(wait.deadline, run.now + pullRecheckMs(wait.checks + 1, run.policy));
  }
}
