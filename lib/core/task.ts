import type { OutboundEvent } from './action.ts';
import type { Pod } from './pod.ts';

export type ProfileName = 'airflow-kpo' | 'generic';

export type TaskState =
  | 'Pending'
  | 'Running'
  | 'Recovering'
  | 'WaitingForImage'
  | 'Succeeded'
  | 'Failed'
  | 'Deleted';

/**
 * Why a task ended `Failed`. `Deleted` is a state of its own, not a cause: the pod was removed by
 * someone else (the orchestrator, a user) without any disruption evidence, so Podwarden stops
 * supervising instead of guessing an outcome.
 */
export type FailureCause =
  | 'ContainerFailed'
  | 'DisruptionBudgetExhausted'
  | 'ImagePullPermanent'
  | 'ImagePullDeadline'
  | 'StartupDeadline'
  /** Disrupted, and the pod's `podwarden.io/recreate` policy forbids a re-create. */
  | 'DisruptedNoRecreate'
  /** The orchestrator ended the try (e.g. Airflow marked it failed) while Podwarden was supervising it. */
  | 'EndedByOrchestrator';

export const TERMINAL_STATES: readonly TaskState[] = ['Succeeded', 'Failed', 'Deleted'];

export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** Where a task lives: one record per (cluster, namespace, task key). */
export interface TaskId {
  cluster: string;
  namespace: string;
  /** The profile's identity labels joined into one stable string (see identity.ts). */
  key: string;
}

/**
 * A pod as Podwarden may re-create it: only what was read from the API server, with every field the
 * server fills in (uid, status, nodeName, service-account token volume, ...) removed.
 */
export interface CapturedPod {
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  spec: Record<string, unknown>;
}

export interface Evidence {
  /** Where the evidence came from, e.g. `condition DisruptionTarget`, `event Preempted`. */
  source: string;
  reason?: string;
  message?: string;
  at: number;
}

export interface Transition {
  at: number;
  from: TaskState;
  to: TaskState;
  why: string;
}

export interface Disruption {
  /** uid of the pod that was disrupted: the re-create waits until this uid is gone. */
  podUid?: string;
  evidence: Evidence[];
  /** The attempt the re-create will carry in its `podwarden.io/attempt` label. */
  nextAttempt: number;
  /** When the old pod was seen gone; undefined while it still exists. */
  goneAt?: number;
  /** Earliest time the next attempt may be created (set once the old pod is gone). */
  recreateAt?: number;
  /** Set once the create of `nextAttempt` has been issued (a repeat is then idempotent). */
  recreateIssuedAt?: number;
}

export interface DisruptionHint {
  reason: string;
  podUid?: string;
  receivedAt: number;
  recheckAt: number;
  until: number;
}

/** A delete or create whose outcome is not audited yet (see `TaskRecord.intents`). */
export interface ActionIntent {
  kind: 'delete-pod' | 'create-pod';
  at: number;
  /** The audit entry's `what` (`delete-pod`, `reap:<rule>`, `create-pod`). */
  what: string;
  podName: string;
  /** delete: the uid the delete is conditional on; create: the uid it replaces. */
  podUid?: string;
  /** create: the attempt the new pod carries. */
  attempt?: number;
  evidence: Evidence[];
  /** delete by a reaper rule: the `Pod Reaped` event, owed once the pod is known deleted. */
  announce?: OutboundEvent;
}

export interface ImagePullWait {
  since: number;
  deadline: number;
  checks: number;
  nextCheckAt: number;
  evidence: Evidence;
}

/** Per-task policy read from the pod's annotations when it was first seen. */
export interface TaskOverrides {
  recreate: 'always' | 'before-start' | 'never';
  pullDeadlineMs?: number;
  protect: boolean;
}

export interface TaskRecord {
  id: TaskId;
  profile: ProfileName;
  state: TaskState;
  cause?: FailureCause;
  /** Human-readable reason of the last state change, shown in events and `podwarden status`. */
  message?: string;
  /** The orchestrator's try number of the pod being supervised. */
  tryNumber: number;
  /** The highest try number seen for this task, from pods or from the orchestrator. */
  highestTry: number;
  /** Podwarden's attempt number of the current pod (1 = the orchestrator's own pod). */
  attempt: number;
  /** Re-creates spent on disruptions of the current try (the budget is separate from task retries). */
  recreates: number;
  podName: string;
  podUid?: string;
  /**
   * uids this task's pods had before (gone or replaced), newest last. Kubernetes never reuses a uid,
   * so a sighting of one of these is a stale, reordered event and must not be adopted.
   */
  retiredUids?: string[];
  /** The main container has ever been seen running or terminated. */
  mainStarted: boolean;
  mainExitCode?: number;
  /** When the main container was first seen terminated while the pod was not terminal. */
  mainTerminatedAt?: number;
  /** When the pod was last seen unexplainedly gone, to wait a little for a late Preempted event. */
  goneUnexplainedAt?: number;
  firstSeenAt: number;
  /** When the current attempt's pod was first seen or created: the startup deadline counts from here. */
  attemptSince: number;
  endedAt?: number;
  overrides: TaskOverrides;
  captured?: CapturedPod;
  disruption?: Disruption;
  imagePull?: ImagePullWait;
  /** The orchestrator's own view, from `Task Instance Changed` (e.g. `running`, `success`, `failed`). */
  orchestratorState?: string;
  /** The task was ended on the orchestrator's word alone: the reaper wants the pod to agree first. */
  endedByOrchestrator?: boolean;
  /**
   * A newer try the orchestrator reported that no pod shows yet (more than one above the highest try
   * seen): it counts once a pod of that try is seen, never on the report alone.
   */
  orchestratorClaim?: { tryNumber: number; state: string; at: number };
  /**
   * A disruption event the API server has not confirmed (yet): only a reason to re-read soon, until
   * `until`; it never moves the task by itself.
   */
  disruptionHint?: DisruptionHint;
  /** Next time a timer must look at this task; undefined when nothing is pending. */
  dueAt?: number;
  history: Transition[];
  /**
   * Outbound events decided but not yet delivered (a transactional outbox): saved with the state
   * change that caused them, removed once the sink accepted them, so a crash cannot lose one.
   */
  outbox?: OutboundEvent[];
  /**
   * Deletes and creates decided and saved before they are performed, whose audit entry is still owed.
   * Written with the decision (before acting) and cleared once the outcome is audited, so a failure
   * in between leaves them for the next pass to settle: no delete or re-create goes unaudited.
   */
  intents?: ActionIntent[];
  /** Optimistic-locking version; 0 for a record not yet stored. */
  version: number;
}

export const HISTORY_LIMIT = 50;
export const RETIRED_UIDS_LIMIT = 10;

/** Lets callers log what a task is about without dumping the captured spec. */
export function describeTask(task: TaskRecord): string {
  return `${task.id.cluster}/${task.id.namespace}/${task.id.key} try=${task.tryNumber} attempt=${task.attempt} state=${task.state}`;
}

export type { Pod };
