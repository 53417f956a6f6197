/**
 * One decision in progress: a mutable copy of the record, the actions decided so far, and the
 * bookkeeping every concern shares (state transitions, audit entries, outbound events). The concern
 * files (tracking, disruption, image pull, orchestrator, reaper, timers) act on a Run; none of them
 * keeps state of its own.
 */
import type { Action, OutboundEvent, OutboundEventType, ReapRule } from '../action.ts';
import { readOverrides } from '../identity.ts';
import type { Pod } from '../pod.ts';
import type { Policy } from '../policy.ts';
import {
  type Evidence,
  type FailureCause,
  HISTORY_LIMIT,
  RETIRED_UIDS_LIMIT,
  type TaskId,
  type TaskRecord,
  type TaskState,
} from '../task.ts';

export interface Decision {
  task: TaskRecord;
  actions: Action[];
}

export class Run {
  readonly t: TaskRecord;
  readonly actions: Action[] = [];
  readonly now: number;
  readonly policy: Policy;
  /** The supervised pod as this decision saw it, if it saw it. */
  pod: Pod | undefined;
  /** The record's `dueAt` before this decision: a schedule-check is issued only when it changes. */
  readonly dueBefore: number | undefined;

  constructor(task: TaskRecord, now: number, policy: Policy) {
    // The captured spec is never changed in place, only replaced or dropped: it is shared instead of
    // copied, which is most of a record, and lets callers see it unchanged by reference.
    const { captured, ...fields } = task;
    this.t = copyData(fields) as TaskRecord;
    if (captured !== undefined) this.t.captured = captured;
    this.now = now;
    this.policy = policy;
    this.dueBefore = task.dueAt;
  }

  finish(state: TaskState, cause: FailureCause | undefined, message: string, evidence: Evidence[]): void {
    const t = this.t;
    if (cause) t.cause = cause;
    else delete t.cause;
    t.endedAt = this.now;
    delete t.disruption;
    delete t.imagePull;
    delete t.goneUnexplainedAt;
    delete t.disruptionHint;
    this.transition(state, message);
    if (state === 'Succeeded') this.emit('Task Succeeded', message, evidence);
    if (state === 'Failed') this.emit('Task Failed', message, evidence);
  }

  reopen(why: string): void {
    delete this.t.endedAt;
    delete this.t.cause;
    delete this.t.endedByOrchestrator;
    this.transition('Pending', why);
  }

  transition(to: TaskState, why: string): void {
    const t = this.t;
    t.message = why;
    if (t.state === to) return;
    t.history.push({ at: this.now, from: t.state, to, why });
    if (t.history.length > HISTORY_LIMIT) t.history.splice(0, t.history.length - HISTORY_LIMIT);
    t.state = to;
  }

  note(what: string): void {
    this.t.message = what;
  }

  /** Remembers a uid as gone or replaced: Kubernetes never reuses one, so it is never adopted again. */
  retire(uid: string | undefined): void {
    const t = this.t;
    if (uid === undefined || t.retiredUids?.includes(uid)) return;
    t.retiredUids = [...(t.retiredUids ?? []), uid].slice(-RETIRED_UIDS_LIMIT);
  }

  isProtected(pod: Pod): boolean {
    return this.t.overrides.protect || readOverrides(pod).overrides.protect;
  }

  audit(what: string, evidence: Evidence[], podName = this.t.podName, podUid = this.t.podUid): void {
    this.actions.push({
      kind: 'audit',
      at: this.now,
      what,
      podName,
      ...(podUid ? { podUid } : {}),
      evidence,
    });
  }

  emit(type: OutboundEventType, message: string, evidence: Evidence[]): void {
    this.actions.push({ kind: 'emit', event: this.event(type, message, evidence) });
  }

  event(
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
}

export function evidenceText(e: Evidence): string {
  return `${e.source}${e.reason && !e.source.endsWith(e.reason) ? ` ${e.reason}` : ''}${e.message ? `: ${e.message}` : ''}`;
}

export function describeEvidence(list: Evidence[]): string {
  return list.map(evidenceText).join('; ');
}

function cloneId(id: TaskId): TaskId {
  return { cluster: id.cluster, namespace: id.namespace, key: id.key };
}

/**
 * A deep copy of plain data (objects, arrays, primitives), which is all a record holds: several
 * times cheaper than structuredClone, which a reaper pass called for each of its thousands of tasks.
 */
function copyData(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyData);
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) copy[key] = copyData((value as Record<string, unknown>)[key]);
  return copy;
}
