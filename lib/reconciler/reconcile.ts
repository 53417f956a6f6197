/**
 * The reconcile loop shared by every handler: load the record, re-read the pod, decide, save
 * (conditionally on the version read), then act. It knows only the ports, never a concrete AWS or
 * Kubernetes client, so the Lambda functions and the local runtime run the very same code.
 */

import type { Action, OutboundEvent } from '../core/action.ts';
import { ATTEMPT_LABEL } from '../core/capture.ts';
import { decideAll, dueIsDeadline, startTask } from '../core/engine.ts';
import { identifyPod, PROFILES } from '../core/identity.ts';
import type { Observation } from '../core/observation.ts';
import type { Pod } from '../core/pod.ts';
import type { Policy } from '../core/policy.ts';
import {
  type AuditEntry,
  type Cluster,
  type DeleteOutcome,
  type EventSink,
  type KubeEvent,
  type TaskStore,
  VersionConflictError,
} from '../core/ports.ts';
import { type PerformedAction, type StoryEvent, storyOf } from '../core/story.ts';
import type { ActionIntent, ProfileName, TaskId, TaskRecord } from '../core/task.ts';

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Optional fast path for `schedule-check`: the stored `dueAt` and the timer sweep are the truth. */
export interface CheckScheduler {
  schedule(id: TaskId, at: number): Promise<void>;
}

export interface ReconcilerDeps {
  store: TaskStore;
  cluster: Cluster;
  sink: EventSink;
  policy: Policy;
  clock: () => number;
  /** Who acts, written into every audit entry (e.g. `lambda:pod-changed`, `cli:reap`). */
  actor: string;
  log: Logger;
  scheduler?: CheckScheduler;
  /** Report deletes instead of performing them (the reaper's dry-run). */
  dryRun?: boolean;
  /**
   * A decision with deletes is left for later, changing nothing and writing nothing (no audit):
   * the reaper's first round, which learns how many deletes a pass has before it allows any.
   */
  holdDeletes?: boolean;
  /**
   * This reconcile is the task's periodic resync, by a pass that notes it did them all (the
   * reaper's; see runReaperPass): a decision that would only move a resync due time is not
   * written. The stored due time then lags, and the timer passes over such tasks while the pass's
   * note is fresh.
   */
  resyncPass?: boolean;
}

/** What a reconcile pass is about: a task (by id) or a pod (by name, with the labels if known). */
export interface Target {
  cluster: string;
  namespace: string;
  profile: ProfileName;
  podName?: string;
  taskId?: TaskId;
  /**
   * The task's pods as just listed from the API server (the reaper's list): they are the fresh
   * reading, instead of a GET per pod. A delete of a listed pod carries its listed resourceVersion
   * as a precondition, so the API server deletes it only if it has not changed since the list;
   * if it has, the task is decided again on fresh reads.
   */
  listedPods?: Pod[];
  /** The task's record as just read in a batch (`undefined` inside: none is stored). */
  preRead?: { record: TaskRecord | undefined };
}

export interface ReconcileResult {
  task?: TaskRecord;
  actions: Action[];
  /** Pods the cluster answered it deleted: what happened, not what was planned (a uid refusal is not one). */
  deleted: number;
  /** Why nothing was done, when nothing was. */
  skipped?: string;
  /** Deletes decided and left for later under `holdDeletes` (nothing else was done either). */
  heldDeletes?: number;
  /** A delete was refused because its listed pod had changed since the list (see `Target.listedPods`). */
  changedSinceRead?: boolean;
}

/** An intent younger than this may belong to a handler still acting on it: it is not settled yet. */
export const INTENT_SETTLE_AFTER_MS = 30_000;
/** Intents kept per record at most (the oldest are settled first; a record never grows unbounded). */
const MAX_INTENTS = 20;

const MAX_CONFLICT_RETRIES = 5;

/**
 * Brings one task to its decided state. `hints` are the inbound observations (an event, a timer);
 * the pod's current state is always re-read and folded in after them, so the API server has the
 * last word.
 */
export async function reconcile(
  deps: ReconcilerDeps,
  target: Target,
  hints: Observation[],
): Promise<ReconcileResult> {
  for (let round = 1; ; round++) {
    try {
      // After a lost race, what was read before the race is outdated: read everything afresh.
      return await reconcileOnce(deps, round === 1 ? target : withoutReadings(target), hints);
    } catch (error) {
      if (!(error instanceof VersionConflictError) || round >= MAX_CONFLICT_RETRIES) throw error;
      deps.log.info('lost a write race; re-reading', { task: error.id, round });
    }
  }
}

/** The target without what its caller had read for it: the pods and the record are read afresh. */
function withoutReadings(target: Target): Target {
  const { listedPods: _listed, preRead: _preRead, ...reread } = target;
  return reread;
}

async function reconcileOnce(
  deps: ReconcilerDeps,
  target: Target,
  hints: Observation[],
): Promise<ReconcileResult> {
  const now = deps.clock();
  const { cluster, namespace } = target;
  const readPod = (name: string): Promise<Pod | undefined> | Pod => {
    const listed = target.listedPods?.find((pod) => pod.metadata.name === name);
    return listed ?? deps.cluster.getPod(cluster, namespace, name);
  };
  // The pod's labels name its task; the pod index is only for a pod that is already gone.
  const targetPod = target.podName ? await readPod(target.podName) : undefined;
  const identified = targetPod ? identifyPod(targetPod, target.profile) : undefined;
  const id =
    target.taskId ??
    (identified?.kind === 'managed' ? { cluster, namespace, key: identified.identity.key } : undefined);
  let record = target.preRead
    ? target.preRead.record
    : id
      ? await deps.store.get(id)
      : target.podName && !targetPod
        ? await deps.store.findByPod(cluster, namespace, target.podName)
        : undefined;
  if (!record) {
    record = targetPod ? startTask(targetPod, target.profile, cluster, now) : undefined;
    if (!record)
      return {
        actions: [],
        deleted: 0,
        skipped: targetPod ? 'pod is not a managed task pod' : 'no task record and no pod',
      };
  }
  // Deletes and creates an earlier pass performed (or not) but failed to audit: settle them first.
  const settled = await settleIntents(deps, record, now);
  // The supervised pod, re-read (unless it is the one just read): the API server has the last word.
  const podName = record.podName || target.podName;
  const pod = podName === target.podName ? targetPod : podName ? await readPod(podName) : undefined;
  const fresh: Observation[] = [];
  if (targetPod && targetPod !== pod) fresh.push({ type: 'pod-seen', pod: targetPod });
  if (pod) fresh.push({ type: 'pod-seen', pod });
  else if (podName) fresh.push({ type: 'pod-gone', podName });
  // Events are hints: a disruption counts only as the API server has it, and a newer try the
  // orchestrator reports counts once the API server shows a pod of it (folded in first).
  const confirmed = await confirmDisruptions(deps, record, hints, pod);
  const orchestratorAhead = hints.some(
    (hint) => hint.type === 'orchestrator-task-changed' && hint.tryNumber > record.tryNumber,
  );
  const secondSource = orchestratorAhead
    ? (await newerTryPods(deps, record)).map((pod) => ({ type: 'pod-seen' as const, pod }))
    : [];
  hints = [...secondSource, ...hints, ...confirmed];
  let decision = decideAll(record, [...hints, ...fresh], now, deps.policy);
  if (decision.actions.some((a) => a.kind === 'create-pod')) {
    // Just before a re-create, ask the API server whether the orchestrator has moved on to a newer
    // try: such a pod is folded in first, which drops the superseded re-create.
    const newer = await newerTryPods(deps, decision.task);
    if (newer.length > 0)
      decision = decideAll(
        record,
        [...newer.map((pod) => ({ type: 'pod-seen' as const, pod })), ...hints, ...fresh],
        now,
        deps.policy,
      );
  }
  const result = await commit(deps, record, decision.task, decision.actions, now, settled, target.listedPods);
  if (!result.changedSinceRead) return result;
  // A listed pod about to be deleted had changed since the list (the API server refused the delete
  // for its resourceVersion; nothing was deleted, and the refusal is audited): decide again on
  // fresh reads only.
  const again = await reconcileOnce(deps, withoutReadings(target), hints);
  return {
    ...again,
    actions: [...result.actions, ...again.actions],
    deleted: result.deleted + again.deleted,
  };
}

/**
 * The API server's own copies of the disruption events the hints name (and of the one the record
 * waits to confirm), as confirmed observations. Only events about the same pod uid count: a forged
 * event, one of another cluster or of a pod long gone is never confirmed.
 */
async function confirmDisruptions(
  deps: ReconcilerDeps,
  record: TaskRecord,
  hints: Observation[],
  pod: Pod | undefined,
): Promise<Observation[]> {
  const wanted = new Map<string, { podName: string; reason: string; podUid: string | undefined }>();
  for (const hint of hints) {
    if (hint.type !== 'preempted-event' || hint.confirmed) continue;
    const podUid = hint.podUid ?? record.podUid;
    wanted.set(`${hint.podName}\u0000${hint.reason}`, { podName: hint.podName, reason: hint.reason, podUid });
  }
  const pending = record.disruptionHint;
  if (pending && record.podName) {
    const podUid = pending.podUid ?? record.podUid;
    wanted.set(`${record.podName}\u0000${pending.reason}`, {
      podName: record.podName,
      reason: pending.reason,
      podUid,
    });
  }
  const confirmed: Observation[] = [];
  for (const { podName, reason, podUid } of wanted.values()) {
    // The pod's own DisruptionTarget condition, re-read just now, is confirmation enough.
    if (pod?.metadata.name === podName && pod.metadata.uid === podUid && hasDisruptionTarget(pod)) continue;
    const events = await deps.cluster.listEvents(
      record.id.cluster,
      record.id.namespace,
      `involvedObject.name=${podName},reason=${reason}`,
    );
    const match = events.find((event) => confirmsDisruption(event, podName, reason, podUid));
    if (!match) continue;
    confirmed.push({
      type: 'preempted-event',
      podName,
      ...(match.involvedObject.uid ? { podUid: match.involvedObject.uid } : {}),
      reason: match.reason,
      message: match.message,
      at: eventTime(match) ?? deps.clock(),
      confirmed: true,
    });
  }
  return confirmed;
}

function confirmsDisruption(event: KubeEvent, podName: string, reason: string, podUid: string | undefined) {
  const about = event.involvedObject;
  if (about.kind !== undefined && about.kind !== 'Pod') return false;
  if (about.name !== podName || event.reason !== reason) return false;
  // Without a uid on either side, the name must do; with one, only the same pod counts.
  return podUid === undefined || about.uid === podUid;
}

function hasDisruptionTarget(pod: Pod): boolean {
  return (pod.status?.conditions ?? []).some(
    (condition) => condition.type === 'DisruptionTarget' && condition.status === 'True',
  );
}

function eventTime(event: KubeEvent): number | undefined {
  const at = Date.parse(event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? '');
  return Number.isNaN(at) ? undefined : at;
}

interface Settled {
  audits: AuditEntry[];
  events: OutboundEvent[];
  /** Intents left as they were (too young to settle). */
  kept: ActionIntent[];
}

/**
 * Audits the intents an earlier pass saved but never marked done, from what the API server shows
 * now: a delete whose pod (that uid) is gone, or a create whose attempt exists, happened.
 */
async function settleIntents(deps: ReconcilerDeps, record: TaskRecord, now: number): Promise<Settled> {
  const settled: Settled = { audits: [], events: [], kept: [] };
  for (const intent of record.intents ?? []) {
    if (now - intent.at < INTENT_SETTLE_AFTER_MS) {
      settled.kept.push(intent);
      continue;
    }
    const pod = await deps.cluster.getPod(record.id.cluster, record.id.namespace, intent.podName);
    let outcome: string;
    let podUid = intent.podUid;
    if (intent.kind === 'delete-pod') {
      const gone = pod === undefined || pod.metadata.uid !== intent.podUid;
      outcome = gone ? 'gone-after-interruption' : 'not-deleted-interrupted';
      if (gone && intent.announce) settled.events.push(intent.announce);
    } else {
      const ours = pod?.metadata.labels?.[ATTEMPT_LABEL] === String(intent.attempt);
      outcome = ours ? 'created-after-interruption' : 'not-created-interrupted';
      if (ours) podUid = pod?.metadata.uid;
    }
    settled.audits.push({
      at: intent.at,
      what: intent.what,
      podName: intent.podName,
      ...(podUid ? { podUid } : {}),
      actor: deps.actor,
      outcome,
      evidence: intent.evidence,
    });
    deps.log.warn('settled an action an earlier pass did not audit', {
      task: record.id,
      pod: intent.podName,
      what: intent.what,
      outcome,
    });
  }
  return settled;
}

function intentKey(intent: ActionIntent): string {
  return `${intent.kind}/${intent.podName}/${intent.podUid ?? ''}/${intent.attempt ?? ''}/${intent.at}`;
}

function intentOf(deps: ReconcilerDeps, action: Action): ActionIntent | undefined {
  if (action.kind === 'delete-pod') {
    const audit = deleteAudit(deps, action, 'intended');
    return {
      kind: 'delete-pod',
      at: audit.at,
      what: audit.what,
      podName: action.podName,
      podUid: action.uid,
      evidence: audit.evidence,
      ...(action.announce ? { announce: action.announce } : {}),
    };
  }
  if (action.kind === 'create-pod') {
    return {
      kind: 'create-pod',
      at: deps.clock(),
      what: 'create-pod',
      podName: action.podName,
      ...(action.replacesUid ? { podUid: action.replacesUid } : {}),
      attempt: action.attempt,
      evidence: [createEvidence(deps, action)],
    };
  }
  return undefined;
}

/** Live pods of the same task with a higher try number than the record's, newest last. */
async function newerTryPods(deps: ReconcilerDeps, task: TaskRecord): Promise<Pod[]> {
  const selector = taskLabelSelector(task);
  if (!selector) return [];
  const pods = await deps.cluster.listPods(task.id.cluster, {
    namespace: task.id.namespace,
    labelSelector: selector,
  });
  return pods
    .map((pod) => ({ pod, identified: identifyPod(pod, task.profile) }))
    .filter(
      ({ identified }) =>
        identified.kind === 'managed' &&
        identified.identity.key === task.id.key &&
        identified.identity.tryNumber > task.tryNumber,
    )
    .sort((a, b) =>
      a.identified.kind === 'managed' && b.identified.kind === 'managed'
        ? a.identified.identity.tryNumber - b.identified.identity.tryNumber
        : 0,
    )
    .map(({ pod }) => pod);
}

/** A label selector matching every try of the task, from the labels captured from its pod. */
export function taskLabelSelector(task: TaskRecord): string | undefined {
  const labels = task.captured?.metadata.labels;
  if (!labels) return undefined;
  const profile = PROFILES[task.profile];
  const terms = [profile.labelSelector];
  for (const name of profile.identityLabels) {
    const value = labels[name];
    if (value !== undefined) terms.push(`${name}=${value}`);
    else if (name in profile.optionalIdentityLabels) terms.push(`!${name}`);
    else return undefined;
  }
  return terms.join(',');
}

/**
 * Saves the decided record, then performs the actions. The record is written first, with the new
 * events in its outbox and every delete and create as an intent, so a failure anywhere after it
 * loses neither an event nor an audit entry: the intents are settled by the next pass.
 */
async function commit(
  deps: ReconcilerDeps,
  before: TaskRecord,
  after: TaskRecord,
  actions: Action[],
  now: number,
  settled: Settled = { audits: [], events: [], kept: before.intents ?? [] },
  listedPods?: Pod[],
): Promise<ReconcileResult> {
  if (deps.holdDeletes) {
    const heldDeletes = actions.filter((a) => a.kind === 'delete-pod').length;
    if (heldDeletes > 0) return { task: before, actions, heldDeletes, deleted: 0 };
  }
  if (deps.dryRun) {
    // A dry run reports what it would delete and changes nothing else: no record, no event, no pod.
    const audits = actions.flatMap((a) => (a.kind === 'delete-pod' ? [deleteAudit(deps, a, 'dry-run')] : []));
    for (const audit of audits)
      deps.log.info('would delete pod (dry run)', { task: before.id, pod: audit.podName });
    if (audits.length > 0) await deps.store.appendAudit(before.id, audits);
    return { task: before, actions, deleted: 0 };
  }
  if (settled.audits.length > 0) await deps.store.appendAudit(before.id, settled.audits);
  const events = [...settled.events, ...actions.flatMap((a) => (a.kind === 'emit' ? [a.event] : []))];
  if (events.length > 0) after.outbox = [...(after.outbox ?? []), ...events];
  const fresh = actions.flatMap((action) => {
    const intent = intentOf(deps, action);
    return intent ? [intent] : [];
  });
  const intents = [...settled.kept, ...fresh].slice(-MAX_INTENTS);
  const decidedDueAt = after.dueAt;
  if (intents.length > 0) {
    after.intents = intents;
    // Owed audit entries keep the task on the timer, even a finished one no event will bring back.
    const settleAt = Math.min(...intents.map((intent) => intent.at + INTENT_SETTLE_AFTER_MS));
    after.dueAt = Math.min(after.dueAt ?? settleAt, settleAt);
  } else delete after.intents;
  let saved = after;
  if (before.version === 0 || !sameRecord(before, after)) {
    if (deps.resyncPass && onlyResyncMoved(before, after)) saved = before;
    else saved = await deps.store.put(after, now, before.version === 0 ? undefined : before);
  }
  const followUps: Observation[] = [];
  const audits: AuditEntry[] = [];
  const announced: OutboundEvent[] = [];
  let deleted = 0;
  let changedSinceRead = false;
  const performed: PerformedAction[] = [];
  for (const action of actions) {
    const { seen, done } = await perform(deps, saved, action, audits, listedPods, (outcome) => {
      if (action.kind !== 'delete-pod') return;
      if (outcome === 'changed') changedSinceRead = true;
      if (outcome !== 'deleted') return;
      deleted++;
      if (action.announce) announced.push(action.announce);
    });
    performed.push(done);
    if (seen) followUps.push({ type: 'pod-seen', pod: seen });
  }
  if (audits.length > 0) await deps.store.appendAudit(saved.id, audits);
  // The pod's Events are best effort and never fail (see tellStory): written while the settling
  // write goes on, instead of one more round trip before it.
  const story = tellStory(deps, saved.id.cluster, storyOf(before, saved, performed, now, deps.policy));
  const audited = new Set(fresh.map(intentKey));
  const owed = (saved.intents ?? []).filter((intent) => !audited.has(intentKey(intent)));
  if (announced.length > 0 || owed.length !== (saved.intents ?? []).length) {
    // The outcomes are audited: the intents are done, and the deletes that happened are announced.
    // Every pending event is already saved (the outbox, or the intent's announcement), so it is
    // delivered before this write, which then clears the outbox too instead of a write of its own.
    // A failure in between leaves them in the outbox for the next pass (a repeat has the same id).
    const pending = [...(saved.outbox ?? []), ...announced];
    const delivered = pending.length > 0 && (await deliver(deps, saved.id, pending));
    const done: TaskRecord = { ...saved, outbox: delivered ? [] : pending };
    if (done.outbox?.length === 0) delete done.outbox;
    if (owed.length > 0) done.intents = owed;
    else {
      delete done.intents;
      if (decidedDueAt === undefined) delete done.dueAt;
      else done.dueAt = decidedDueAt;
    }
    // `saved` is what the store holds at this version: only the intents and the outbox are sent.
    saved = await deps.store.put(done, now, saved);
  }
  saved = await flushOutbox(deps, saved, now);
  await story;

  // A pod just created is adopted at once (its uid recorded), instead of on the next event.
  if (followUps.length > 0) {
    const next = decideAll(saved, followUps, now, deps.policy);
    const result = await commit(deps, saved, next.task, next.actions, now);
    return {
      task: result.task,
      actions: [...actions, ...result.actions],
      deleted: deleted + result.deleted,
      ...(changedSinceRead ? { changedSinceRead } : {}),
    };
  }
  return { task: saved, actions, deleted, ...(changedSinceRead ? { changedSinceRead } : {}) };
}

/** The decision changes nothing but a resync due time, before and after. */
function onlyResyncMoved(before: TaskRecord, after: TaskRecord): boolean {
  if (before.version === 0 || before.dueAt === undefined || after.dueAt === undefined) return false;
  if (dueIsDeadline(before) || dueIsDeadline(after)) return false;
  return sameRecord({ ...before, dueAt: 0 }, { ...after, dueAt: 0 });
}

/** Field by field as stored; the captured spec, usually the same object, is not serialised for it. */
function sameRecord(a: TaskRecord, b: TaskRecord): boolean {
  if (a.captured === b.captured)
    return JSON.stringify({ ...a, captured: undefined }) === JSON.stringify({ ...b, captured: undefined });
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Writes the decision's Events on the pod. They are the orchestrator's and the operator's view, not
 * the truth (the record is): a failed write is logged and left to the next reconcile, which
 * re-asserts what still holds, and never fails this one.
 */
async function tellStory(deps: ReconcilerDeps, cluster: string, story: StoryEvent[]): Promise<void> {
  for (const event of story) {
    try {
      const outcome = await deps.cluster.createEvent(cluster, event, deps.actor);
      if (outcome === 'created')
        deps.log.info('told the pod', { pod: event.podName, reason: event.reason, message: event.message });
    } catch (error) {
      deps.log.warn('could not write an Event on the pod', {
        pod: event.podName,
        reason: event.reason,
        error: String(error),
      });
    }
  }
}

/** Performs one action; returns what the cluster answered, and a pod to fold back in if one was revealed. */
async function perform(
  deps: ReconcilerDeps,
  task: TaskRecord,
  action: Action,
  audits: AuditEntry[],
  listedPods: Pod[] | undefined,
  onDelete: (outcome: DeleteOutcome) => void,
): Promise<{ seen?: Pod; done: PerformedAction }> {
  const { cluster } = task.id;
  switch (action.kind) {
    case 'create-pod': {
      const created = await deps.cluster.createPod(cluster, action.pod);
      let pod = created.pod;
      let outcome: string = created.outcome;
      if (created.outcome === 'exists') {
        // 409: either our own earlier create (a repeat) or the old pod still terminating.
        pod = await deps.cluster.getPod(cluster, action.namespace, action.podName);
        const ours = pod?.metadata.labels?.[ATTEMPT_LABEL] === String(action.attempt);
        outcome = ours ? 'exists-ours' : 'exists-other';
      }
      audits.push({
        at: deps.clock(),
        what: 'create-pod',
        podName: action.podName,
        ...(pod?.metadata.uid ? { podUid: pod.metadata.uid } : {}),
        actor: deps.actor,
        outcome,
        evidence: [createEvidence(deps, action)],
      });
      deps.log.info('re-created pod', {
        task: task.id,
        pod: action.podName,
        attempt: action.attempt,
        outcome,
      });
      const uid = pod?.metadata.uid;
      return { ...(pod ? { seen: pod } : {}), done: { action, outcome, ...(uid ? { uid } : {}) } };
    }
    case 'delete-pod': {
      // A pod decided on from the list is deleted only as listed: the API server checks that it
      // has not changed since (instead of a GET of every such pod before its delete).
      const listed = listedPods?.find(
        (pod) => pod.metadata.name === action.podName && pod.metadata.uid === action.uid,
      );
      const resourceVersion = listed?.metadata.resourceVersion;
      const outcome = await deps.cluster.deletePod(cluster, action.namespace, action.podName, {
        uid: action.uid,
        gracePeriodSeconds: action.gracePeriodSeconds,
        ...(resourceVersion ? { resourceVersion } : {}),
      });
      audits.push(deleteAudit(deps, action, outcome));
      onDelete(outcome);
      deps.log.info('deleted pod', {
        task: task.id,
        pod: action.podName,
        uid: action.uid,
        outcome,
        why: action.why,
      });
      return { done: { action, outcome } };
    }
    case 'audit':
      audits.push({
        at: action.at,
        what: action.what,
        podName: action.podName,
        ...(action.podUid ? { podUid: action.podUid } : {}),
        actor: deps.actor,
        evidence: action.evidence,
      });
      return { done: { action } };
    case 'schedule-check':
      // A resync needs no exact time (the timer sweep and the reaper's pass do it); a queued check
      // per running task would only crowd the queue that carries the re-creates.
      if (dueIsDeadline(task)) await deps.scheduler?.schedule(task.id, action.at);
      return { done: { action } };
    case 'emit':
      return { done: { action } }; // delivered from the outbox after the record is saved
  }
}

function createEvidence(deps: ReconcilerDeps, action: Extract<Action, { kind: 'create-pod' }>) {
  return {
    source: 'reconciler',
    reason: `attempt ${action.attempt}`,
    message: action.replacesUid ? `replaces uid ${action.replacesUid}` : 're-create',
    at: deps.clock(),
  };
}

function deleteAudit(
  deps: ReconcilerDeps,
  action: Extract<Action, { kind: 'delete-pod' }>,
  outcome: string,
): AuditEntry {
  return {
    at: deps.clock(),
    what: action.rule ? `reap:${action.rule}` : 'delete-pod',
    podName: action.podName,
    podUid: action.uid,
    actor: deps.actor,
    outcome,
    evidence: [
      { source: 'reconciler', reason: action.rule ?? 'delete', message: action.why, at: deps.clock() },
    ],
  };
}

/** Hands saved events to the sink; false (logged) when it refused them. */
async function deliver(deps: ReconcilerDeps, id: TaskId, events: OutboundEvent[]): Promise<boolean> {
  try {
    await deps.sink.emit(events);
    return true;
  } catch (error) {
    deps.log.warn('outbound events not delivered; kept in the outbox', {
      task: id,
      count: events.length,
      error: String(error),
    });
    return false;
  }
}

/** Delivers the outbox, then clears it; a failure leaves it for the next pass to deliver. */
async function flushOutbox(deps: ReconcilerDeps, task: TaskRecord, now: number): Promise<TaskRecord> {
  const outbox: OutboundEvent[] = task.outbox ?? [];
  if (outbox.length === 0) return task;
  if (!(await deliver(deps, task.id, outbox))) return task;
  const cleared = { ...task };
  delete cleared.outbox;
  try {
    return await deps.store.put(cleared, now, task);
  } catch (error) {
    if (error instanceof VersionConflictError) return task; // the winner delivers (duplicates carry the same id)
    throw error;
  }
}
