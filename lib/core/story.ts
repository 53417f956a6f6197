/**
 * The pod's story: the Kubernetes Events Podwarden writes on a task's pod for each decision, so an
 * operator reads them with `kubectl describe pod` and the orchestrator side (the Airflow package)
 * reads them through the Kubernetes API it already uses, with no AWS credentials. The wire contract
 * (reasons, annotations) is in README's "Events on the pod"; the Airflow package parses exactly these.
 *
 * Derived from what a decision changed and from what the actions really did (the uid a create
 * returned, whether a delete happened), never from what was only planned. Each story event has a
 * stable key, so writing it again (a retried reconcile, a repeated decision) is a no-op.
 */

import type { Action } from './action.ts';
import { recreateBackoffMs } from './engine.ts';
import type { Policy } from './policy.ts';
import type { TaskRecord } from './task.ts';

export type StoryReason = 'RecreatePending' | 'Recreated' | 'GaveUp' | 'ImagePullWaiting' | 'Reaped';

/** Annotation keys on Podwarden's Events: the machine-readable half of the story. */
export const STORY_ANNOTATIONS = {
  taskKey: 'podwarden.io/task-key',
  tryNumber: 'podwarden.io/try',
  attempt: 'podwarden.io/attempt',
  dueAt: 'podwarden.io/due-at',
  nextAttempt: 'podwarden.io/next-attempt',
  newUid: 'podwarden.io/new-uid',
  replacesUid: 'podwarden.io/replaces-uid',
  cause: 'podwarden.io/cause',
  deadline: 'podwarden.io/deadline',
  container: 'podwarden.io/container',
  classification: 'podwarden.io/classification',
  rule: 'podwarden.io/rule',
  exitCode: 'podwarden.io/exit-code',
} as const;

export interface StoryEvent {
  namespace: string;
  podName: string;
  /** The pod the decision is about (for `Recreated`, the new pod). */
  podUid?: string;
  reason: StoryReason;
  type: 'Normal' | 'Warning';
  message: string;
  at: number;
  annotations: Record<string, string>;
  /** Same decision, same key: the adapter names the Event from it, so a repeat answers 409. */
  key: string;
}

/** An action with what the cluster answered, as the reconciler performed it. */
export type PerformedAction =
  | { action: Extract<Action, { kind: 'create-pod' }>; outcome: string; uid?: string }
  | { action: Extract<Action, { kind: 'delete-pod' }>; outcome: string }
  | { action: Exclude<Action, { kind: 'create-pod' | 'delete-pod' }> };

/**
 * The Events one reconcile writes. `RecreatePending` and `ImagePullWaiting` are re-asserted on every
 * reconcile while they hold (same key, so only the first write creates anything): a write lost to a
 * failure is made good by the next reconcile instead of leaving the orchestrator without word.
 */
export function storyOf(
  before: TaskRecord,
  after: TaskRecord,
  performed: PerformedAction[],
  now: number,
  policy: Policy,
): StoryEvent[] {
  const story: StoryEvent[] = [];
  const recreated = new Set<number>();
  for (const done of performed) {
    if (done.action.kind === 'create-pod' && 'outcome' in done) {
      const created = done as Extract<PerformedAction, { action: { kind: 'create-pod' } }>;
      if (created.uid && (created.outcome === 'created' || created.outcome === 'exists-ours')) {
        recreated.add(created.action.attempt);
        story.push(recreatedEvent(after, created.action, created.uid, now));
      }
    }
    if (done.action.kind === 'delete-pod' && 'outcome' in done) {
      const deleted = done as Extract<PerformedAction, { action: { kind: 'delete-pod' } }>;
      if (deleted.action.rule && deleted.outcome === 'deleted')
        story.push(reapedEvent(after, deleted.action, now));
    }
  }
  const d = after.disruption;
  if (after.state === 'Recovering' && d && !recreated.has(d.nextAttempt)) {
    const dueAt = d.recreateAt ?? now + recreateBackoffMs(after.recreates + 1, policy);
    const gone = d.goneAt !== undefined;
    story.push({
      ...base(after, d.podUid, now),
      reason: 'RecreatePending',
      type: 'Normal',
      message: gone
        ? `pod was disrupted (${evidenceText(d.evidence)}); re-creating it as attempt ${d.nextAttempt} at ${iso(dueAt)}`
        : `pod is being disrupted (${evidenceText(d.evidence)}); Podwarden re-creates it as attempt ${d.nextAttempt} once it is gone (about ${iso(dueAt)})`,
      annotations: {
        ...identity(after),
        [STORY_ANNOTATIONS.dueAt]: iso(dueAt),
        [STORY_ANNOTATIONS.nextAttempt]: String(d.nextAttempt),
      },
      key: `recreate-pending/${d.podUid ?? after.podName}/${d.nextAttempt}/${gone ? 'gone' : 'going'}`,
    });
  }
  if (after.state === 'WaitingForImage' && after.imagePull) {
    const wait = after.imagePull;
    const container = /^container (\S+)/.exec(wait.evidence.source)?.[1];
    story.push({
      ...base(after, after.podUid, now),
      reason: 'ImagePullWaiting',
      type: 'Normal',
      message: `transient image pull error (${wait.evidence.message ?? wait.evidence.reason ?? 'no message'}); Podwarden waits for the image until ${iso(wait.deadline)}`,
      annotations: {
        ...identity(after),
        [STORY_ANNOTATIONS.deadline]: iso(wait.deadline),
        [STORY_ANNOTATIONS.classification]: 'transient',
        ...(container ? { [STORY_ANNOTATIONS.container]: container } : {}),
      },
      key: `image-pull-waiting/${after.podUid ?? after.podName}/${wait.since}`,
    });
  }
  if (after.state === 'Failed' && before.state !== 'Failed') {
    const evidence = performed.flatMap((p) =>
      p.action.kind === 'emit' && p.action.event.type === 'Task Failed' ? p.action.event.evidence : [],
    );
    const uid = before.podUid ?? before.disruption?.podUid ?? after.podUid;
    story.push({
      ...base(after, uid, now),
      reason: 'GaveUp',
      type: 'Warning',
      message:
        evidence.length > 0 ? `${after.message}: ${evidenceText(evidence)}` : (after.message ?? 'failed'),
      annotations: { ...identity(after), [STORY_ANNOTATIONS.cause]: after.cause ?? 'Unknown' },
      key: `gave-up/${uid ?? after.podName}/${after.attempt}`,
    });
  }
  return story;
}

function recreatedEvent(
  after: TaskRecord,
  action: Extract<Action, { kind: 'create-pod' }>,
  uid: string,
  now: number,
): StoryEvent {
  return {
    ...base(after, uid, now),
    podName: action.podName,
    reason: 'Recreated',
    type: 'Normal',
    message: `re-created as attempt ${action.attempt} (uid ${uid})${action.replacesUid ? ` replacing uid ${action.replacesUid}` : ''}`,
    annotations: {
      ...identity(after),
      [STORY_ANNOTATIONS.attempt]: String(action.attempt),
      [STORY_ANNOTATIONS.newUid]: uid,
      ...(action.replacesUid ? { [STORY_ANNOTATIONS.replacesUid]: action.replacesUid } : {}),
    },
    key: `recreated/${uid}`,
  };
}

function reapedEvent(
  after: TaskRecord,
  action: Extract<Action, { kind: 'delete-pod' }>,
  now: number,
): StoryEvent {
  return {
    ...base(after, action.uid, now),
    podName: action.podName,
    reason: 'Reaped',
    type: 'Normal',
    message: `deleted by the reaper (${action.rule}): ${action.why}`,
    annotations: {
      ...identity(after),
      [STORY_ANNOTATIONS.rule]: action.rule ?? 'unknown',
      ...(after.mainExitCode !== undefined
        ? { [STORY_ANNOTATIONS.exitCode]: String(after.mainExitCode) }
        : {}),
    },
    key: `reaped/${action.uid}`,
  };
}

function base(
  task: TaskRecord,
  podUid: string | undefined,
  now: number,
): Pick<StoryEvent, 'namespace' | 'podName' | 'at'> & { podUid?: string } {
  return {
    namespace: task.id.namespace,
    podName: task.podName,
    at: now,
    ...(podUid ? { podUid } : {}),
  };
}

function identity(task: TaskRecord): Record<string, string> {
  return {
    [STORY_ANNOTATIONS.taskKey]: task.id.key,
    [STORY_ANNOTATIONS.tryNumber]: String(task.tryNumber),
    [STORY_ANNOTATIONS.attempt]: String(task.attempt),
  };
}

function evidenceText(evidence: { source: string; reason?: string; message?: string }[]): string {
  return evidence.map((e) => [e.source, e.message].filter(Boolean).join(': ')).join('; ');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
