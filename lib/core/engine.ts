/**
 * The decision engine: `(task, observation, now, policy) -> (task', actions)`, pure and total.
 *
 * It is level-triggered: every observation is folded into the record, then the same evaluation runs
 * whatever the observation was, so a duplicated, lost or reordered observation only changes *when*
 * the task converges, never *where*. Actions are data; an executor performs them idempotently.
 */
import type { Action, OutboundEvent, OutboundEventType, ReapRule } from './action.ts';
import { capturePod, podForAttempt } from './capture.ts';
import { identifyPod, mainContainerName, readOverrides } from './identity.ts';
import { classifyPullError, isImagePullReason } from './image-pull.ts';
import type { Observation } from './observation.ts';
import type { Pod } from './pod.ts';
import type { Policy } from './policy.ts';
import { type PodReading, readPod } from './read-pod.ts';
import {
  type Evidence,
  type FailureCause,
  HISTORY_LIMIT,
  isTerminal,
  type ProfileName,
  RETIRED_UIDS_LIMIT,
  type TaskId,
  type TaskRecord,
  type TaskState,
} from './task.ts';

export interface Decision {
  task: TaskRecord;
  actions: Action[];
}

/** Orchestrator (Airflow) task-instance states after which no pod of that try should run. */
const ORCHESTRATOR_FINISHED = new Set(['success', 'failed', 'skipped', 'upstream_failed', 'removed']);

/** A create issued but not yet seen is issued again after this long (the repeat answers 409 or creates). */
const RECHECK_MS = 30_000;

export function isOrchestratorFinished(state: string | undefined): boolean {
  return state !== undefined && ORCHESTRATOR_FINISHED.has(state);
}

/** Back-off before re-create number `n` (1-based): base, 2*base, 4*base, ... */
export function recreateBackoffMs(n: number, policy: Policy): number {
  return policy.recreateBackoffBaseMs * 2 ** Math.max(0, n - 1);
}

/** Delay before image-pull re-check number `n` (1-based): base, 2*base, ... capped. */
export function pullRecheckMs(n: number, policy: Policy): number {
  return Math.min(policy.pullRecheckCapMs, policy.pullRecheckBaseMs * 2 ** Math.max(0, n - 1));
}

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
  run.observe(observation);
  run.evaluate();
  return run.result();
}

/** One decision in progress: a mutable copy of the record and the actions decided so far. */
class Run {
  readonly t: TaskRecord;
  readonly actions: Action[] = [];
  readonly now: number;
  readonly policy: Policy;
  pod: Pod | undefined;
  private readonly dueBefore: number | undefined;

  constructor(task: TaskRecord, now: number, policy: Policy) {
    this.t = structuredClone(task);
    this.now = now;
    this.policy = policy;
    this.dueBefore = task.dueAt;
  }

  // ---- observations -------------------------------------------------------------------------

  observe(observation: Observation): void {
    switch (observation.type) {
      case 'pod-seen':
        this.onPodSeen(observation.pod);
        return;
      case 'pod-gone':
        this.onPodGone(observation.podName, observation.podUid);
        return;
      case 'preempted-event':
        this.onDisruptionEvent(observation);
        return;
      case 'image-pull-event':
        this.onImagePullEvent(observation);
        return;
      case 'timer-fired':
        return; // evaluate() below does the time-based work for every observation
      case 'orchestrator-task-changed':
        this.onOrchestrator(observation.tryNumber, observation.state);
        return;
      case 'reaper-scan':
        this.onReaperScan(observation.pods);
        return;
    }
  }

  private onPodSeen(pod: Pod): void {
    const identified = identifyPod(pod, this.t.profile);
    if (identified.kind !== 'managed' || identified.identity.key !== this.t.id.key) return;
    if (pod.metadata.namespace !== this.t.id.namespace) return;
    const { tryNumber, attempt } = identified.identity;
    this.t.highestTry = Math.max(this.t.highestTry, tryNumber);

    if (tryNumber < this.t.tryNumber) return; // a stale try: the reaper's business
    if (tryNumber > this.t.tryNumber) {
      this.beginTry(pod, tryNumber, attempt, `try ${tryNumber} observed (pod ${pod.metadata.name})`);
    } else if (!this.adopt(pod, attempt)) {
      return;
    }
    if (!this.t.captured) this.capture(pod);
    this.pod = pod;
    this.absorbReading(readPod(pod, mainContainerName(pod, this.t.profile)));
  }

  /** Decides whether a pod of the current try is the one this task supervises; adopts it if so. */
  private adopt(pod: Pod, attempt: number): boolean {
    const t = this.t;
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
    this.retire(previousUid);
    this.retire(d?.podUid);
    t.podName = pod.metadata.name ?? t.podName;
    if (uid !== undefined) t.podUid = uid;
    else delete t.podUid;
    delete t.goneUnexplainedAt;
    this.resetPodFacts();

    if (d && attempt >= d.nextAttempt) {
      t.attempt = attempt;
      t.recreates += 1;
      delete t.disruption;
      this.transition('Pending', `attempt ${attempt} created after ${describeEvidence(d.evidence)}`);
      this.emit('Task Recovered', `re-created pod ${t.podName} as attempt ${attempt}`, d.evidence);
    } else {
      t.attempt = Math.max(t.attempt, attempt);
      if (d) delete t.disruption;
      if (t.state === 'Deleted') this.reopen(`pod ${t.podName} re-appeared`);
      if (previousUid !== undefined) this.note(`now supervising pod ${t.podName} (uid ${uid ?? '?'})`);
    }
    t.attemptSince = this.now;
    return true;
  }

  private beginTry(pod: Pod, tryNumber: number, attempt: number, why: string): void {
    const t = this.t;
    const wasTerminal = isTerminal(t.state);
    t.tryNumber = tryNumber;
    t.attempt = attempt;
    t.recreates = 0;
    this.retire(t.podUid);
    t.podName = pod.metadata.name ?? '';
    if (pod.metadata.uid) t.podUid = pod.metadata.uid;
    else delete t.podUid;
    t.overrides = readOverrides(pod).overrides;
    delete t.captured;
    delete t.disruption;
    delete t.goneUnexplainedAt;
    delete t.orchestratorState;
    this.resetPodFacts();
    t.attemptSince = this.now;
    if (wasTerminal) {
      delete t.cause;
      delete t.endedAt;
    }
    this.transition('Pending', why);
  }

  private retire(uid: string | undefined): void {
    const t = this.t;
    if (uid === undefined || t.retiredUids?.includes(uid)) return;
    t.retiredUids = [...(t.retiredUids ?? []), uid].slice(-RETIRED_UIDS_LIMIT);
  }

  private resetPodFacts(): void {
    const t = this.t;
    t.mainStarted = false;
    delete t.mainExitCode;
    delete t.mainTerminatedAt;
    delete t.imagePull;
  }

  private capture(pod: Pod): void {
    try {
      this.t.captured = capturePod(pod);
    } catch (error) {
      this.note(`spec not captured: ${(error as Error).message}`);
    }
  }

  /** Folds a fresh reading of the supervised pod into the record. */
  private absorbReading(r: PodReading): void {
    const t = this.t;
    if (r.main.started) t.mainStarted = true;
    if (r.main.terminated) {
      t.mainExitCode = r.main.terminated.exitCode;
      if (!r.terminal && t.mainTerminatedAt === undefined)
        t.mainTerminatedAt = r.main.terminated.finishedAt ?? this.now;
    }
    if (isTerminal(t.state)) return;

    if (r.disruption && !this.disruptionCovers(r.uid)) {
      this.disrupted(
        {
          source: 'condition DisruptionTarget',
          reason: r.disruption.reason,
          message: r.disruption.message ?? '',
          at: r.disruption.at ?? this.now,
        },
        r.uid,
      );
    }
    if (t.state === 'Recovering') {
      if (r.terminal && !r.deleting) this.deleteDisruptedPod(r);
      return;
    }
    if (r.phase === 'Succeeded') {
      this.finish('Succeeded', undefined, `pod ${t.podName} succeeded`, []);
      return;
    }
    if (r.phase === 'Failed') {
      const code = r.main.terminated?.exitCode;
      const reason = r.main.terminated?.reason;
      this.finish(
        'Failed',
        'ContainerFailed',
        `pod ${t.podName} failed${code === undefined ? '' : ` with exit code ${code}`}${reason ? ` (${reason})` : ''}`,
        [],
      );
      return;
    }
    if (r.pullError && !t.mainStarted) {
      this.pullError({
        source: `container ${r.pullError.container} waiting`,
        reason: r.pullError.reason,
        message: r.pullError.message,
        at: this.now,
      });
      return;
    }
    if (t.state === 'WaitingForImage') {
      const wait = t.imagePull;
      delete t.imagePull;
      this.transition(
        r.main.running ? 'Running' : 'Pending',
        `image pulled after ${wait ? this.now - wait.since : 0} ms`,
      );
    }
    if ((r.main.running || r.phase === 'Running') && t.state === 'Pending')
      this.transition('Running', `pod ${t.podName} running`);
  }

  private disruptionCovers(uid: string | undefined): boolean {
    const d = this.t.disruption;
    return d !== undefined && (d.podUid === undefined || uid === undefined || d.podUid === uid);
  }

  private onPodGone(podName: string, podUid: string | undefined): void {
    const t = this.t;
    if (podName !== t.podName || isTerminal(t.state)) return;
    const d = t.disruption;
    if (d) {
      if (podUid !== undefined && d.podUid !== undefined && podUid !== d.podUid) return;
      if (d.goneAt === undefined) this.markGone(d);
      return;
    }
    if (podUid !== undefined && t.podUid !== undefined && podUid !== t.podUid) return;
    if (t.mainExitCode !== undefined && t.mainTerminatedAt === undefined) return;
    if (t.goneUnexplainedAt === undefined) {
      this.retire(t.podUid);
      t.goneUnexplainedAt = this.now;
      this.note(`pod ${podName} vanished without disruption evidence; waiting for a late event`);
    }
  }

  private markGone(d: NonNullable<TaskRecord['disruption']>): void {
    this.retire(d.podUid);
    d.goneAt = this.now;
    d.recreateAt = this.now + recreateBackoffMs(this.t.recreates + 1, this.policy);
  }

  private onDisruptionEvent(o: Extract<Observation, { type: 'preempted-event' }>): void {
    const t = this.t;
    if (o.podName !== t.podName || isTerminal(t.state)) return;
    if (o.podUid !== undefined && t.podUid !== undefined && o.podUid !== t.podUid) return;
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
    this.disrupted(evidence, o.podUid ?? t.podUid);
  }

  /** Enters `Recovering` for a disruption of pod `uid`, or fails when policy or budget forbid it. */
  private disrupted(evidence: Evidence, uid: string | undefined): void {
    const t = this.t;
    const gone = t.goneUnexplainedAt;
    delete t.goneUnexplainedAt;
    const mode = t.overrides.recreate;
    if (mode === 'never' || (mode === 'before-start' && t.mainStarted)) {
      this.finish(
        'Failed',
        'DisruptedNoRecreate',
        `pod ${t.podName} was disrupted (${evidenceText(evidence)}); podwarden.io/recreate=${mode} forbids a re-create`,
        [evidence],
      );
      return;
    }
    if (!t.captured) {
      this.finish(
        'Failed',
        'DisruptionBudgetExhausted',
        `pod ${t.podName} was disrupted (${evidenceText(evidence)}) and no spec was captured to re-create it from`,
        [evidence],
      );
      return;
    }
    if (t.recreates >= this.policy.recreateBudget) {
      this.finish(
        'Failed',
        'DisruptionBudgetExhausted',
        `pod ${t.podName} was disrupted again (${evidenceText(evidence)}); the re-create budget of ${this.policy.recreateBudget} is spent`,
        [evidence],
      );
      return;
    }
    t.disruption = { evidence: [evidence], nextAttempt: t.attempt + 1, ...(uid ? { podUid: uid } : {}) };
    this.transition('Recovering', `disrupted: ${evidenceText(evidence)}`);
    this.audit('disruption-recorded', [evidence]);
    if (gone !== undefined) {
      t.disruption.goneAt = gone;
      t.disruption.recreateAt = gone + recreateBackoffMs(t.recreates + 1, this.policy);
    }
  }

  private deleteDisruptedPod(r: PodReading): void {
    // An evicted pod stays, phase Failed, until pod GC: the same name is free only once it is deleted.
    if (!r.uid || !this.pod || this.isProtected(this.pod)) return;
    this.actions.push({
      kind: 'delete-pod',
      namespace: this.t.id.namespace,
      podName: r.name,
      uid: r.uid,
      gracePeriodSeconds: 0,
      why: 'free the name of a disrupted, terminated pod for its re-create',
    });
  }

  private onImagePullEvent(o: Extract<Observation, { type: 'image-pull-event' }>): void {
    const t = this.t;
    if (o.podName !== t.podName || isTerminal(t.state) || t.mainStarted || t.state === 'Recovering') return;
    if (o.podUid !== undefined && t.podUid !== undefined && o.podUid !== t.podUid) return;
    this.pullError({ source: `event ${o.reason}`, reason: o.reason, message: o.message, at: o.at });
  }

  private pullError(evidence: Evidence): void {
    const t = this.t;
    const reason = isImagePullReason(evidence.reason ?? '') ? (evidence.reason ?? '') : 'ErrImagePull';
    const verdict = classifyPullError(reason, evidence.message ?? '');
    const classified: Evidence = {
      ...evidence,
      message:
        `${evidence.message ?? ''} [${verdict.kind}: ${verdict.category}, matched ${verdict.matched}]`.trim(),
    };
    if (verdict.kind === 'permanent') {
      this.finish(
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
    const deadlineMs = t.overrides.pullDeadlineMs ?? this.policy.pullDeadlineMs;
    t.imagePull = {
      since: this.now,
      deadline: this.now + deadlineMs,
      checks: 0,
      nextCheckAt: this.now + pullRecheckMs(1, this.policy),
      evidence: classified,
    };
    this.transition(
      'WaitingForImage',
      `transient image pull error (${verdict.category}: ${verdict.matched})`,
    );
    this.emit(
      'Image Pull Waiting',
      `waiting up to ${Math.round(deadlineMs / 1000)} s for the image (${verdict.category})`,
      [classified],
    );
  }

  private onOrchestrator(tryNumber: number, state: string): void {
    const t = this.t;
    t.highestTry = Math.max(t.highestTry, tryNumber);
    if (tryNumber < t.tryNumber) return;
    if (tryNumber > t.tryNumber) {
      // The orchestrator moved on: whatever this try still wanted (a re-create) is moot.
      if (!isTerminal(t.state))
        this.finish('Failed', 'EndedByOrchestrator', `the orchestrator started try ${tryNumber}`, []);
      return;
    }
    t.orchestratorState = state;
    if (isOrchestratorFinished(state) && !isTerminal(t.state)) {
      const ended = state === 'success' ? 'Succeeded' : 'Failed';
      this.finish(
        ended,
        ended === 'Failed' ? 'EndedByOrchestrator' : undefined,
        `the orchestrator reports try ${tryNumber} ${state}`,
        [],
      );
    }
  }

  private onReaperScan(pods: Pod[]): void {
    const t = this.t;
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
    if (newest) this.onPodSeen(newest.pod);
    else if (current) this.onPodSeen(current.pod);
    else if (t.podName !== '' && !mine.some((m) => m.pod.metadata.name === t.podName))
      this.onPodGone(t.podName, undefined);

    for (const { pod, tryNumber } of mine) {
      const verdict = this.zombieRule(pod, tryNumber);
      if (verdict) this.reap(pod, verdict.rule, verdict.evidence);
    }
  }

  /** The reaper's three rules for one pod; undefined when the pod may stay. */
  private zombieRule(pod: Pod, tryNumber: number): { rule: ReapRule; evidence: Evidence } | undefined {
    const t = this.t;
    const r = readPod(pod, mainContainerName(pod, t.profile));
    const createdAt = r.createdAt ?? this.now;
    if (this.now - createdAt < this.policy.reaperMinAgeMs) return undefined;
    const zombie = this.sidecarZombie(r);
    if (zombie) return zombie;
    if (r.terminal) return undefined; // finished pods use no resources; their owner decides (keep_pod)
    if (tryNumber < t.highestTry) {
      return {
        rule: 'stale-try',
        evidence: {
          source: 'reaper',
          reason: 'StaleTry',
          message: `try ${tryNumber} < highest try ${t.highestTry}`,
          at: this.now,
        },
      };
    }
    const endedAt = t.endedAt ?? (isOrchestratorFinished(t.orchestratorState) ? t.attemptSince : undefined);
    const finished = isTerminal(t.state) || isOrchestratorFinished(t.orchestratorState);
    if (finished && endedAt !== undefined && this.now - endedAt >= this.policy.finishedGraceMs) {
      const by = isTerminal(t.state) ? `task ${t.state}` : `orchestrator ${t.orchestratorState}`;
      return {
        rule: 'finished-task',
        evidence: {
          source: 'reaper',
          reason: 'FinishedTask',
          message: `${by} ${Math.round((this.now - endedAt) / 1000)} s ago, pod still ${r.phase}`,
          at: this.now,
        },
      };
    }
    return undefined;
  }

  private sidecarZombie(r: PodReading): { rule: ReapRule; evidence: Evidence } | undefined {
    const finishedAt = r.main.terminated?.finishedAt;
    if (!r.main.terminated || r.terminal || finishedAt === undefined) return undefined;
    if (this.now - finishedAt < this.policy.sidecarGraceMs) return undefined;
    const sidecars = r.sidecarsRunning.length > 0 ? r.sidecarsRunning.join(', ') : 'no container';
    return {
      rule: 'sidecar-zombie',
      evidence: {
        source: 'reaper',
        reason: 'SidecarZombie',
        message: `main container ${r.main.name} exited ${r.main.terminated.exitCode} ${Math.round((this.now - finishedAt) / 1000)} s ago; ${sidecars} still running`,
        at: this.now,
      },
    };
  }

  /** Deletes a pod by rule, after the safety checks; protected pods are reported instead. */
  private reap(pod: Pod, rule: ReapRule, evidence: Evidence): void {
    const t = this.t;
    const uid = pod.metadata.uid;
    const name = pod.metadata.name ?? '';
    if (!uid) return;
    if (this.actions.some((a) => a.kind === 'delete-pod' && a.uid === uid)) return;
    if (this.isProtected(pod)) {
      this.audit('reap-skipped-protected', [evidence], name, uid);
      return;
    }
    this.actions.push({
      kind: 'delete-pod',
      namespace: t.id.namespace,
      podName: name,
      uid,
      gracePeriodSeconds: 0,
      why: evidence.message ?? rule,
      rule,
    });
    this.actions.push({
      kind: 'emit',
      event: this.event('Pod Reaped', `deleted pod ${name} (${rule})`, [evidence], rule, name),
    });
  }

  private isProtected(pod: Pod): boolean {
    return this.t.overrides.protect || readOverrides(pod).overrides.protect;
  }

  // ---- time-based evaluation, after every observation ---------------------------------------

  evaluate(): void {
    const t = this.t;
    if (isTerminal(t.state)) return;
    const d = t.disruption;
    if (t.state === 'Recovering' && d) {
      if (d.goneAt !== undefined && d.recreateAt !== undefined && this.now >= d.recreateAt) {
        const due = d.recreateIssuedAt === undefined || this.now - d.recreateIssuedAt >= RECHECK_MS;
        if (due && t.captured) {
          d.recreateIssuedAt = this.now;
          this.actions.push({
            kind: 'create-pod',
            namespace: t.id.namespace,
            podName: t.captured.metadata.name,
            attempt: d.nextAttempt,
            ...(d.podUid ? { replacesUid: d.podUid } : {}),
            pod: podForAttempt(t.captured, d.nextAttempt, d.podUid),
          });
        }
      }
      return;
    }
    if (t.goneUnexplainedAt !== undefined && this.now - t.goneUnexplainedAt >= this.policy.goneGraceMs) {
      this.finish(
        'Deleted',
        undefined,
        `pod ${t.podName} was deleted without disruption evidence; not re-created`,
        [],
      );
      return;
    }
    if (t.state === 'WaitingForImage' && t.imagePull) {
      const wait = t.imagePull;
      if (this.now >= wait.deadline) {
        this.finish(
          'Failed',
          'ImagePullDeadline',
          `image still not pulled after ${Math.round((this.now - wait.since) / 1000)} s (deadline passed)`,
          [wait.evidence],
        );
        return;
      }
      if (this.now >= wait.nextCheckAt) {
        wait.checks += 1;
        wait.nextCheckAt = Math.min(wait.deadline, this.now + pullRecheckMs(wait.checks + 1, this.policy));
      }
      return;
    }
    if (this.sidecarZombieDue()) return;
    if (
      !t.mainStarted &&
      t.goneUnexplainedAt === undefined &&
      this.now - t.attemptSince >= this.policy.startupDeadlineMs
    ) {
      this.finish(
        'Failed',
        'StartupDeadline',
        `main container not started ${Math.round((this.now - t.attemptSince) / 1000)} s after the pod was first seen`,
        [],
      );
    }
  }

  /** A supervised pod past its sidecar grace ends the task by its main exit code and is deleted. */
  private sidecarZombieDue(): boolean {
    const t = this.t;
    if (t.mainTerminatedAt === undefined || t.mainExitCode === undefined) return false;
    if (this.now - t.mainTerminatedAt < this.policy.sidecarGraceMs) return false;
    const code = t.mainExitCode;
    const evidence: Evidence = {
      source: 'engine',
      reason: 'SidecarZombie',
      message: `main container exited ${code}; pod ${t.podName} still not terminal after ${Math.round((this.now - t.mainTerminatedAt) / 1000)} s`,
      at: this.now,
    };
    if (code === 0)
      this.finish('Succeeded', undefined, `main container succeeded; sidecar never exited`, [evidence]);
    else
      this.finish(
        'Failed',
        'ContainerFailed',
        `main container failed with exit code ${code}; sidecar never exited`,
        [evidence],
      );
    const pod = this.pod;
    const uid = t.podUid;
    const alreadyReaped = this.actions.some((a) => a.kind === 'delete-pod' && a.uid === uid);
    if (uid && !alreadyReaped && (!pod || pod.metadata.uid === uid)) {
      const protectedPod = pod ? this.isProtected(pod) : t.overrides.protect;
      if (protectedPod) this.audit('reap-skipped-protected', [evidence]);
      else {
        this.actions.push({
          kind: 'delete-pod',
          namespace: t.id.namespace,
          podName: t.podName,
          uid,
          gracePeriodSeconds: 0,
          why: evidence.message ?? 'sidecar zombie',
          rule: 'sidecar-zombie',
        });
        this.actions.push({
          kind: 'emit',
          event: this.event(
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

  // ---- bookkeeping --------------------------------------------------------------------------

  private finish(
    state: TaskState,
    cause: FailureCause | undefined,
    message: string,
    evidence: Evidence[],
  ): void {
    const t = this.t;
    if (cause) t.cause = cause;
    else delete t.cause;
    t.endedAt = this.now;
    delete t.disruption;
    delete t.imagePull;
    delete t.goneUnexplainedAt;
    this.transition(state, message);
    if (state === 'Succeeded') this.emit('Task Succeeded', message, evidence);
    if (state === 'Failed') this.emit('Task Failed', message, evidence);
  }

  private reopen(why: string): void {
    delete this.t.endedAt;
    delete this.t.cause;
    this.transition('Pending', why);
  }

  private transition(to: TaskState, why: string): void {
    const t = this.t;
    t.message = why;
    if (t.state === to) return;
    t.history.push({ at: this.now, from: t.state, to, why });
    if (t.history.length > HISTORY_LIMIT) t.history.splice(0, t.history.length - HISTORY_LIMIT);
    t.state = to;
  }

  private note(what: string): void {
    this.t.message = what;
  }

  private audit(what: string, evidence: Evidence[], podName = this.t.podName, podUid = this.t.podUid): void {
    this.actions.push({
      kind: 'audit',
      at: this.now,
      what,
      podName,
      ...(podUid ? { podUid } : {}),
      evidence,
    });
  }

  private emit(type: OutboundEventType, message: string, evidence: Evidence[]): void {
    this.actions.push({ kind: 'emit', event: this.event(type, message, evidence) });
  }

  private event(
    type: OutboundEventType,
    message: string,
    evidence: Evidence[],
    rule?: ReapRule,
    podName = this.t.podName,
  ): OutboundEvent {
    const t = this.t;
    const id = `${t.id.cluster}/${t.id.namespace}/${t.id.key}/${t.tryNumber}/${t.attempt}/${type}/${podName}/${this.now}`;
    return {
      id,
      type,
      at: this.now,
      task: cloneId(t.id),
      tryNumber: t.tryNumber,
      attempt: t.attempt,
      podName,
      message,
      evidence,
      ...(rule ? { rule } : {}),
    };
  }

  result(): Decision {
    const due = nextDue(this.t, this.policy, this.now);
    if (due === undefined) delete this.t.dueAt;
    else this.t.dueAt = due;
    if (due !== undefined && due !== this.dueBefore) this.actions.push({ kind: 'schedule-check', at: due });
    return { task: this.t, actions: this.actions };
  }
}

/** The earliest deadline the task is waiting for (a back-off, a grace, a re-check), if any. */
export function nextDeadline(t: TaskRecord, policy: Policy, now: number): number | undefined {
  if (isTerminal(t.state)) return undefined;
  const d = t.disruption;
  if (t.state === 'Recovering' && d) {
    if (d.recreateAt === undefined) return now + RECHECK_MS; // the old pod's deletion event may be lost
    return d.recreateIssuedAt === undefined ? d.recreateAt : d.recreateIssuedAt + RECHECK_MS;
  }
  const candidates: number[] = [];
  if (t.goneUnexplainedAt !== undefined) candidates.push(t.goneUnexplainedAt + policy.goneGraceMs);
  if (t.state === 'WaitingForImage' && t.imagePull)
    candidates.push(Math.min(t.imagePull.nextCheckAt, t.imagePull.deadline));
  if (t.mainTerminatedAt !== undefined) candidates.push(t.mainTerminatedAt + policy.sidecarGraceMs);
  if (!t.mainStarted) candidates.push(t.attemptSince + policy.startupDeadlineMs);
  return candidates.length === 0 ? undefined : Math.min(...candidates);
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

/** Keeps only the last schedule-check of a folded decision: one timer per task is enough. */
function collapseSchedules(actions: Action[]): Action[] {
  const last = actions.findLastIndex((a) => a.kind === 'schedule-check');
  return actions.filter((a, i) => a.kind !== 'schedule-check' || i === last);
}

function evidenceText(e: Evidence): string {
  return `${e.source}${e.reason && !e.source.endsWith(e.reason) ? ` ${e.reason}` : ''}${e.message ? `: ${e.message}` : ''}`;
}

function describeEvidence(list: Evidence[]): string {
  return list.map(evidenceText).join('; ');
}

function cloneId(id: TaskId): TaskId {
  return { cluster: id.cluster, namespace: id.namespace, key: id.key };
}
