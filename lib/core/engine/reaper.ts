/**
 * The reaper's rules (seed 001): sidecar zombies, pods of stale tries, pods of finished tasks. A
 * reaper scan first re-converges the supervised pod, exactly as if a handler had re-read it, then
 * judges every pod of the task.
 */
import type { ReapRule } from '../action.ts';
import { identifyPod, mainContainerName } from '../identity.ts';
import type { Pod } from '../pod.ts';
import { type PodReading, readPod } from '../read-pod.ts';
import { type Evidence, isTerminal } from '../task.ts';
import { isOrchestratorFinished } from './orchestrator.ts';
import type { Run } from './run.ts';
import { onPodGone, onPodSeen } from './tracking.ts';

interface Verdict {
  rule: ReapRule;
  evidence: Evidence;
}

export function onReaperScan(run: Run, pods: Pod[]): void {
  const t = run.t;
  const mine: Array<{ pod: Pod; tryNumber: number }> = [];
  for (const pod of pods) {
    const identified = identifyPod(pod, t.profile);
    if (identified.kind !== 'managed' || identified.identity.key !== t.id.key) continue;
    if (pod.metadata.namespace !== t.id.namespace) continue;
    mine.push({ pod, tryNumber: identified.identity.tryNumber });
    t.highestTry = Math.max(t.highestTry, identified.identity.tryNumber);
  }
  // Re-converge the supervised pod first, exactly as if a handler had re-read it.
  const current = mine.find((m) => m.pod.metadata.name === t.podName && m.tryNumber === t.tryNumber);
  const newest = mine.filter((m) => m.tryNumber > t.tryNumber).sort((a, b) => b.tryNumber - a.tryNumber)[0];
  if (newest) onPodSeen(run, newest.pod);
  else if (current) onPodSeen(run, current.pod);
  else if (t.podName !== '' && !mine.some((m) => m.pod.metadata.name === t.podName))
    onPodGone(run, t.podName, undefined);

  for (const { pod, tryNumber } of mine) {
    const verdict = zombieRule(run, pod, tryNumber);
    if (verdict) reap(run, pod, verdict.rule, verdict.evidence);
  }
}

/** The reaper's three rules for one pod; undefined when the pod may stay. */
function zombieRule(run: Run, pod: Pod, tryNumber: number): Verdict | undefined {
  const t = run.t;
  const r = readPod(pod, mainContainerName(pod, t.profile));
  const createdAt = r.createdAt ?? run.now;
  if (run.now - createdAt < run.policy.reaperMinAgeMs) return undefined;
  const zombie = sidecarZombie(run, r);
  if (zombie) return zombie;
  if (r.terminal) return undefined; // finished pods use no resources; their owner decides (keep_pod)
  if (tryNumber < t.highestTry) {
    return {
      rule: 'stale-try',
      evidence: {
        source: 'reaper',
        reason: 'StaleTry',
        message: `try ${tryNumber} < highest try ${t.highestTry}`,
        at: run.now,
      },
    };
  }
  const endedAt = t.endedAt ?? (isOrchestratorFinished(t.orchestratorState) ? t.attemptSince : undefined);
  const finished = isTerminal(t.state) || isOrchestratorFinished(t.orchestratorState);
  // The orchestrator's word alone never deletes a pod: the pod's own state must show it finished too.
  const onOrchestratorsWordOnly = !isTerminal(t.state) || t.endedByOrchestrator === true;
  if (finished && onOrchestratorsWordOnly && !r.main.terminated) return undefined;
  if (finished && endedAt !== undefined && run.now - endedAt >= run.policy.finishedGraceMs) {
    const by = isTerminal(t.state) ? `task ${t.state}` : `orchestrator ${t.orchestratorState}`;
    return {
      rule: 'finished-task',
      evidence: {
        source: 'reaper',
        reason: 'FinishedTask',
        message: `${by} ${Math.round((run.now - endedAt) / 1000)} s ago, pod still ${r.phase}`,
        at: run.now,
      },
    };
  }
  return undefined;
}

function sidecarZombie(run: Run, r: PodReading): Verdict | undefined {
  const finishedAt = r.main.terminated?.finishedAt;
  if (!r.main.terminated || r.terminal || finishedAt === undefined) return undefined;
  if (run.now - finishedAt < run.policy.sidecarGraceMs) return undefined;
  const sidecars = r.sidecarsRunning.length > 0 ? r.sidecarsRunning.join(', ') : 'no container';
  return {
    rule: 'sidecar-zombie',
    evidence: {
      source: 'reaper',
      reason: 'SidecarZombie',
      message: `main container ${r.main.name} exited ${r.main.terminated.exitCode} ${Math.round((run.now - finishedAt) / 1000)} s ago; ${sidecars} still running`,
      at: run.now,
    },
  };
}

/** Deletes a pod by rule, after the safety checks; protected pods are reported instead. */
function reap(run: Run, pod: Pod, rule: ReapRule, evidence: Evidence): void {
  const t = run.t;
  const uid = pod.metadata.uid;
  const name = pod.metadata.name ?? '';
  if (!uid) return;
  if (run.actions.some((a) => a.kind === 'delete-pod' && a.uid === uid)) return;
  if (run.isProtected(pod)) {
    run.audit('reap-skipped-protected', [evidence], name, uid);
    return;
  }
  run.actions.push({
    kind: 'delete-pod',
    namespace: t.id.namespace,
    podName: name,
    uid,
    gracePeriodSeconds: 0,
    why: evidence.message ?? rule,
    rule,
    announce: run.event('Pod Reaped', `deleted pod ${name} (${rule})`, [evidence], rule, name),
  });
}

/** A supervised pod past its sidecar grace ends the task by its main exit code and is deleted. */
export function sidecarZombieDue(run: Run): boolean {
  const t = run.t;
  if (t.mainTerminatedAt === undefined || t.mainExitCode === undefined) return false;
  if (run.now - t.mainTerminatedAt < run.policy.sidecarGraceMs) return false;
  const code = t.mainExitCode;
  const evidence: Evidence = {
    source: 'engine',
    reason: 'SidecarZombie',
    message: `main container exited ${code}; pod ${t.podName} still not terminal after ${Math.round((run.now - t.mainTerminatedAt) / 1000)} s`,
    at: run.now,
  };
  if (code === 0)
    run.finish('Succeeded', undefined, `main container succeeded; sidecar never exited`, [evidence]);
  else
    run.finish(
      'Failed',
      'ContainerFailed',
      `main container failed with exit code ${code}; sidecar never exited`,
      [evidence],
    );
  const pod = run.pod;
  const uid = t.podUid;
  const alreadyReaped = run.actions.some((a) => a.kind === 'delete-pod' && a.uid === uid);
  if (uid && !alreadyReaped && (!pod || pod.metadata.uid === uid)) {
    const protectedPod = pod ? run.isProtected(pod) : t.overrides.protect;
    if (protectedPod) run.audit('reap-skipped-protected', [evidence]);
    else {
      run.actions.push({
        kind: 'delete-pod',
        namespace: t.id.namespace,
        podName: t.podName,
        uid,
        gracePeriodSeconds: 0,
        why: evidence.message ?? 'sidecar zombie',
        rule: 'sidecar-zombie',
        announce: run.event(
          'Pod Reaped',
          `deleted pod ${t.podName} (sidecar-zombie)`,
          [evidence],
          'sidecar-zombie',
        ),
      });
    }
  }
  return true;
}
