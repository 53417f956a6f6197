import { identifyPod, mainContainerName, readOverrides } from './identity.ts';
import { classifyPullError } from './image-pull.ts';
import type { Pod } from './pod.ts';
import { DEFAULT_POLICY } from './policy.ts';
import { type PodReading, readPod } from './read-pod.ts';
import type { ProfileName } from './task.ts';

export type VerdictKind =
  | 'pending'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'image-pull-transient'
  | 'image-pull-permanent'
  | 'disrupted'
  | 'zombie-sidecar'
  | 'unmanaged';

export interface Explanation {
  task: { key: string; try: number; profile: ProfileName } | null;
  verdict: { kind: VerdictKind; reason: string };
  /** Annotations Podwarden cannot read: each is ignored (its default applies), and said so here. */
  warnings?: string[];
}

export interface ExplainOptions {
  /** Epoch ms used for "how long ago"; defaults to the clock. */
  now?: number;
  sidecarGraceMs?: number;
  /** Deadline quoted for transient pull errors when the pod has no `podwarden.io/pull-deadline`. */
  pullDeadlineMs?: number;
}

/** `42s`, `3m12s`, `2h5m`: short enough for one line, precise enough for an operator. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${seconds % 60 ? `${seconds % 60}s` : ''}`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h${minutes % 60 ? `${minutes % 60}m` : ''}`;
  return `${Math.floor(hours / 24)}d${hours % 24 ? `${hours % 24}h` : ''}`;
}

function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function exitText(terminated: NonNullable<PodReading['main']['terminated']>): string {
  return `exited ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}`;
}

function list(names: string[]): string {
  return names.join(', ');
}

/**
 * Says, for one pod, which task it belongs to and what Podwarden makes of it, in the order the
 * engine acts: identity, disruption, terminal phase, sidecar zombie, image pull, running, pending.
 * A pure function of the pod (and `now`), so `podwarden explain` and tests agree with the engine's
 * reading without needing a cluster or a task record.
 */
export function explainPod(pod: Pod, profile: ProfileName, options: ExplainOptions = {}): Explanation {
  const explanation = explainVerdict(pod, profile, options);
  const { problems } = readOverrides(pod);
  return problems.length > 0 && explanation.task ? { ...explanation, warnings: problems } : explanation;
}

function explainVerdict(pod: Pod, profile: ProfileName, options: ExplainOptions): Explanation {
  const now = options.now ?? Date.now();
  const sidecarGraceMs = options.sidecarGraceMs ?? DEFAULT_POLICY.sidecarGraceMs;

  const identified = identifyPod(pod, profile);
  if (identified.kind === 'unmanaged') {
    return {
      task: null,
      verdict: { kind: 'unmanaged', reason: `not a task of profile ${profile}: ${identified.why}` },
    };
  }
  if (identified.kind === 'malformed') {
    return {
      task: null,
      verdict: {
        kind: 'unmanaged',
        reason: `selected by profile ${profile} but its identity is malformed: ${identified.problem}; the reaper reports such pods and never deletes them`,
      },
    };
  }
  const { identity } = identified;
  const task = { key: identity.key, try: identity.tryNumber, profile };
  const reading = readPod(pod, mainContainerName(pod, profile));
  const { overrides } = readOverrides(pod);
  const main = reading.main;
  const deleting = reading.deleting
    ? `; the pod is being deleted${pod.metadata.deletionTimestamp ? ` (since ${pod.metadata.deletionTimestamp})` : ''}`
    : '';

  if (reading.disruption) {
    const { reason, message, at } = reading.disruption;
    let next: string;
    if (overrides.recreate === 'never') {
      next = 'annotation podwarden.io/recreate=never: it is not re-created and the task fails';
    } else if (overrides.recreate === 'before-start' && main.started) {
      next = `annotation podwarden.io/recreate=before-start and main container ${main.name} already started: it is not re-created and the task fails`;
    } else {
      next = `once it is gone Podwarden re-creates it with the same name as attempt ${identity.attempt + 1}, if the re-create budget allows`;
    }
    const detail = `${message ? `: ${message}` : ''}${at !== undefined ? ` (at ${formatTime(at)})` : ''}`;
    return {
      task,
      verdict: { kind: 'disrupted', reason: `DisruptionTarget ${reason}${detail}${deleting}; ${next}` },
    };
  }

  if (reading.phase === 'Succeeded' || reading.phase === 'Failed') {
    const outcome = main.terminated
      ? `main container ${main.name} ${exitText(main.terminated)}`
      : main.found
        ? `main container ${main.name} never ran`
        : `the pod has no container named ${main.name}`;
    const podReason = pod.status?.reason
      ? `; ${pod.status.reason}${pod.status.message ? `: ${pod.status.message}` : ''}`
      : '';
    return {
      task,
      verdict: {
        kind: reading.phase === 'Succeeded' ? 'succeeded' : 'failed',
        reason: `pod ${reading.phase}: ${outcome}${podReason}`,
      },
    };
  }

  if (main.terminated && reading.sidecarsRunning.length > 0) {
    const finishedAt = main.terminated.finishedAt;
    const plural = reading.sidecarsRunning.length > 1 ? 'sidecars' : 'sidecar';
    let since: string;
    let next: string;
    if (finishedAt === undefined) {
      since = 'at an unknown time';
      next =
        'the reaper takes the outcome from the exit code and deletes the pod once the sidecar grace has passed';
    } else {
      const stuck = now - finishedAt;
      since = `${formatDuration(stuck)} ago (at ${formatTime(finishedAt)})`;
      next =
        stuck >= sidecarGraceMs
          ? `past the ${formatDuration(sidecarGraceMs)} sidecar grace: the reaper takes the outcome from the exit code and deletes the pod`
          : `within the ${formatDuration(sidecarGraceMs)} sidecar grace (${formatDuration(sidecarGraceMs - stuck)} left), then the reaper takes the outcome from the exit code and deletes the pod`;
    }
    return {
      task,
      verdict: {
        kind: 'zombie-sidecar',
        reason: `main container ${main.name} ${exitText(main.terminated)} ${since} but the pod is still ${reading.phase}: ${plural} ${list(reading.sidecarsRunning)} still running${deleting}; ${next}`,
      },
    };
  }

  if (reading.pullError) {
    const { container, reason, message } = reading.pullError;
    const verdict = classifyPullError(reason, message);
    const evidence = `${verdict.kind} (${verdict.category}), matched ${JSON.stringify(verdict.matched)}`;
    const pullDeadlineMs =
      overrides.pullDeadlineMs ?? options.pullDeadlineMs ?? DEFAULT_POLICY.pullDeadlineMs;
    const next =
      verdict.kind === 'permanent'
        ? 'it will not heal by retrying: the task fails with ImagePullPermanent'
        : `the kubelet keeps retrying; Podwarden waits${verdict.untilDeadline ? ', unsure it heals,' : ''} until the pull deadline (${formatDuration(pullDeadlineMs)} after the first error)`;
    return {
      task,
      verdict: {
        kind: verdict.kind === 'permanent' ? 'image-pull-permanent' : 'image-pull-transient',
        reason: `container ${container}: ${reason}, ${evidence}${deleting}; ${next}`,
      },
    };
  }

  if (reading.phase === 'Running' || main.running) {
    let state: string;
    if (main.running) {
      const startedAt = pod.status?.containerStatuses?.find((status) => status.name === main.name)?.state
        ?.running?.startedAt;
      state = `main container ${main.name} running${startedAt ? ` since ${startedAt}` : ''}`;
    } else if (main.terminated) {
      state = `main container ${main.name} ${exitText(main.terminated)}; the pod phase has not caught up yet`;
    } else if (main.waiting) {
      state = `main container ${main.name} waiting: ${main.waiting.reason}${main.waiting.message ? ` (${main.waiting.message})` : ''}`;
    } else {
      state = main.found
        ? `main container ${main.name} not started`
        : `the pod has no container named ${main.name}`;
    }
    const sidecars =
      reading.sidecarsRunning.length > 0 ? `; running alongside: ${list(reading.sidecarsRunning)}` : '';
    return { task, verdict: { kind: 'running', reason: `${state}${sidecars}${deleting}` } };
  }

  let why: string;
  if (reading.unschedulable) {
    why = `unschedulable: ${reading.unschedulable.message}`;
  } else if (main.waiting) {
    why = `main container ${main.name} waiting: ${main.waiting.reason}${main.waiting.message ? ` (${main.waiting.message})` : ''}`;
  } else if (!main.found) {
    why = `the pod has no container named ${main.name}`;
  } else {
    why = 'not started yet';
  }
  const phase = reading.phase === 'Pending' ? 'pod Pending' : `pod phase ${reading.phase}`;
  return { task, verdict: { kind: 'pending', reason: `${phase}: ${why}${deleting}` } };
}

/** A few lines for a terminal. */
export function formatExplanation(explanation: Explanation): string {
  const { task, verdict } = explanation;
  const taskLine = task ? `${task.key} (try ${task.try}, profile ${task.profile})` : 'none';
  return [
    `task:    ${taskLine}`,
    `verdict: ${verdict.kind}`,
    `why:     ${verdict.reason}`,
    ...(explanation.warnings ?? []).map((warning) => `warning: ${warning}`),
  ].join('\n');
}
