/**
 * Tracking the supervised pod: which pod of the task is "ours" (adoption, a new try, a uid seen
 * gone), and folding a fresh reading of it into the record. The API server's copy of the pod is the
 * truth this file reads; every other concern works from what it records.
 */
import { capturePod } from '../capture.ts';
import { identifyPod, mainContainerName, readOverrides } from '../identity.ts';
import type { Pod } from '../pod.ts';
import { type PodReading, readPod } from '../read-pod.ts';
import { isTerminal } from '../task.ts';
import { deleteDisruptedPod, disrupted, disruptionCovers, markGone } from './disruption.ts';
import { pullError } from './image-pull.ts';
import { onOrchestrator } from './orchestrator.ts';
import { describeEvidence, type Run } from './run.ts';

export function onPodSeen(run: Run, pod: Pod): void {
  const t = run.t;
  const identified = identifyPod(pod, t.profile);
  if (identified.kind !== 'managed' || identified.identity.key !== t.id.key) return;
  if (pod.metadata.namespace !== t.id.namespace) return;
  const { tryNumber, attempt } = identified.identity;
  t.highestTry = Math.max(t.highestTry, tryNumber);

  if (tryNumber < t.tryNumber) return; // a stale try: the reaper's business
  if (tryNumber > t.tryNumber) {
    beginTry(run, pod, tryNumber, attempt, `try ${tryNumber} observed (pod ${pod.metadata.name})`);
  } else if (!adopt(run, pod, attempt)) {
    return;
  }
  if (!t.captured) capture(run, pod);
  run.pod = pod;
  absorbReading(run, readPod(pod, mainContainerName(pod, t.profile)));
  // A newer try the orchestrator reported counts now that a pod shows it: the second source.
  const claim = t.orchestratorClaim;
  if (claim && t.tryNumber >= claim.tryNumber) {
    delete t.orchestratorClaim;
    if (claim.tryNumber === t.tryNumber) onOrchestrator(run, claim.tryNumber, claim.state);
  }
}

/** Decides whether a pod of the current try is the one this task supervises; adopts it if so. */
function adopt(run: Run, pod: Pod, attempt: number): boolean {
  const t = run.t;
  const uid = pod.metadata.uid;
  if (uid !== undefined && t.retiredUids?.includes(uid)) return false;
  const sameName = pod.metadata.name === t.podName || t.podName === '';
  if (t.podUid !== undefined && uid === t.podUid && sameName) return true;

  const d = t.disruption;
  if (d && uid !== undefined && uid === d.podUid) {
    // A uid seen gone never comes back (Kubernetes never reuses one): this sighting is a stale hint.
    return d.goneAt === undefined;
  }
  if (!sameName) {
    // Another pod for the same try: adopt it only if ours is gone (someone re-created it under a
    // new name); while ours lives, a second pod is not ours to supervise.
    const oursGone = t.podUid === undefined || d?.goneAt !== undefined || t.goneUnexplainedAt !== undefined;
    if (!oursGone || isTerminal(t.state)) return false;
  }
  if (isTerminal(t.state) && t.state !== 'Deleted') return false;

  const previousUid = t.podUid;
  run.retire(previousUid);
  run.retire(d?.podUid);
  t.podName = pod.metadata.name ?? t.podName;
  if (uid !== undefined) t.podUid = uid;
  else delete t.podUid;
  delete t.goneUnexplainedAt;
  resetPodFacts(run);

  if (d && attempt >= d.nextAttempt) {
    t.attempt = attempt;
    t.recreates += 1;
    delete t.disruption;
    run.transition('Pending', `attempt ${attempt} created after ${describeEvidence(d.evidence)}`);
    run.emit('Task Recovered', `re-created pod ${t.podName} as attempt ${attempt}`, d.evidence);
  } else {
    t.attempt = Math.max(t.attempt, attempt);
    if (d) delete t.disruption;
    if (t.state === 'Deleted') run.reopen(`pod ${t.podName} re-appeared`);
    if (previousUid !== undefined) run.note(`now supervising pod ${t.podName} (uid ${uid ?? '?'})`);
  }
  t.attemptSince = run.now;
  return true;
}

function beginTry(run: Run, pod: Pod, tryNumber: number, attempt: number, why: string): void {
  const t = run.t;
  const wasTerminal = isTerminal(t.state);
  t.tryNumber = tryNumber;
  t.attempt = attempt;
  t.recreates = 0;
  run.retire(t.podUid);
  t.podName = pod.metadata.name ?? '';
  if (pod.metadata.uid) t.podUid = pod.metadata.uid;
  else delete t.podUid;
  t.overrides = readOverrides(pod).overrides;
  delete t.captured;
  delete t.disruption;
  delete t.goneUnexplainedAt;
  delete t.orchestratorState;
  delete t.endedByOrchestrator;
  delete t.disruptionHint;
  resetPodFacts(run);
  t.attemptSince = run.now;
  if (wasTerminal) {
    delete t.cause;
    delete t.endedAt;
  }
  run.transition('Pending', why);
}

function resetPodFacts(run: Run): void {
  const t = run.t;
  t.mainStarted = false;
  delete t.mainExitCode;
  delete t.mainTerminatedAt;
  delete t.imagePull;
}

function capture(run: Run, pod: Pod): void {
  try {
    run.t.captured = capturePod(pod);
  } catch (error) {
    run.note(`spec not captured: ${(error as Error).message}`);
  }
  // An unreadable annotation is ignored (its default applies) and reported, once per try.
  const { problems } = readOverrides(pod);
  if (problems.length > 0) {
    run.audit(
      'annotation-ignored',
      problems.map((message) => ({ source: 'annotation', reason: 'Unreadable', message, at: run.now })),
    );
  }
}

/** Folds a fresh reading of the supervised pod into the record. */
function absorbReading(run: Run, r: PodReading): void {
  const t = run.t;
  if (r.main.started) t.mainStarted = true;
  if (r.main.terminated) {
    t.mainExitCode = r.main.terminated.exitCode;
    if (!r.terminal && t.mainTerminatedAt === undefined)
      t.mainTerminatedAt = r.main.terminated.finishedAt ?? run.now;
  }
  if (isTerminal(t.state)) return;

  // The task's own logic finished well: a success whatever the record says (even Recovering after a
  // disruption that came too late to matter), never a reason to run it again.
  if (
    r.main.terminated?.exitCode === 0 &&
    (r.phase === 'Succeeded' || r.disruption || t.state === 'Recovering')
  ) {
    run.finish('Succeeded', undefined, `pod ${t.podName}: main container ${r.main.name} exited 0`, []);
    return;
  }
  if (r.disruption && !disruptionCovers(run, r.uid)) {
    disrupted(
      run,
      {
        source: 'condition DisruptionTarget',
        reason: r.disruption.reason,
        message: r.disruption.message ?? '',
        at: r.disruption.at ?? run.now,
      },
      r.uid,
    );
  }
  if (t.state === 'Recovering') {
    if (r.terminal && !r.deleting) deleteDisruptedPod(run, r);
    return;
  }
  if (r.phase === 'Succeeded') {
    run.finish('Succeeded', undefined, `pod ${t.podName} succeeded`, []);
    return;
  }
  if (r.phase === 'Failed') {
    const code = r.main.terminated?.exitCode;
    const reason = r.main.terminated?.reason;
    run.finish(
      'Failed',
      'ContainerFailed',
      `pod ${t.podName} failed${code === undefined ? '' : ` with exit code ${code}`}${reason ? ` (${reason})` : ''}`,
      [],
    );
    return;
  }
  if (r.pullError && !t.mainStarted) {
    pullError(run, {
      source: `container ${r.pullError.container} waiting`,
      reason: r.pullError.reason,
      message: r.pullError.message,
      at: run.now,
    });
    return;
  }
  if (t.state === 'WaitingForImage') {
    const wait = t.imagePull;
    delete t.imagePull;
    run.transition(
      r.main.running ? 'Running' : 'Pending',
      `image pulled after ${wait ? run.now - wait.since : 0} ms`,
    );
  }
  if ((r.main.running || r.phase === 'Running') && t.state === 'Pending')
    run.transition('Running', `pod ${t.podName} running`);
}

export function onPodGone(run: Run, podName: string, podUid: string | undefined): void {
  const t = run.t;
  if (podName !== t.podName || isTerminal(t.state)) return;
  const d = t.disruption;
  if (d) {
    if (podUid !== undefined && d.podUid !== undefined && podUid !== d.podUid) return;
    if (d.goneAt === undefined) markGone(run, d);
    return;
  }
  if (podUid !== undefined && t.podUid !== undefined && podUid !== t.podUid) return;
  if (t.mainExitCode !== undefined && t.mainTerminatedAt === undefined) return;
  if (t.goneUnexplainedAt === undefined) {
    run.retire(t.podUid);
    t.goneUnexplainedAt = run.now;
    run.note(`pod ${podName} vanished without disruption evidence; waiting for a late event`);
  }
}
