import type { OutboundEvent } from './action.ts';
import type { Pod } from './pod.ts';
import type { StoryEvent } from './story.ts';
import type { Evidence, TaskId, TaskRecord } from './task.ts';

/** One line of a task's audit trail: every delete and re-create writes one. */
export interface AuditEntry {
  at: number;
  /** What was done or decided, e.g. `delete-pod`, `create-pod`, `reap-dry-run`. */
  what: string;
  podName: string;
  podUid?: string;
  /** Who did it: the handler or CLI command, for operators reading the trail. */
  actor: string;
  /** Outcome of the action as the cluster answered it, e.g. `deleted`, `not-found`, `created`. */
  outcome?: string;
  evidence: Evidence[];
}

/** The store lost an optimistic-locking race: re-read, re-decide, never overwrite. */
export class VersionConflictError extends Error {
  override name = 'VersionConflictError';
  readonly id: TaskId;
  readonly expectedVersion: number;
  constructor(id: TaskId, expectedVersion: number) {
    super(`task ${id.cluster}/${id.namespace}/${id.key} changed since version ${expectedVersion}`);
    this.id = id;
    this.expectedVersion = expectedVersion;
  }
}

/** A record (or its captured spec) cannot be stored without losing data. */
export class RecordTooLargeError extends Error {
  override name = 'RecordTooLargeError';
}

/** One entry of the due-timer index, as known before the record is read. */
export interface DueEntry {
  cluster: string;
  namespace: string;
  /** The task's due time (the record's `dueAt`). */
  dueAt: number;
  /** Due only for its periodic resync, not for a deadline. */
  resync: boolean;
}

export interface DueOptions {
  /** Entries to pass over without reading their records (e.g. resyncs a reaper pass has done). */
  skip?: (entry: DueEntry) => boolean;
}

export interface TaskStore {
  get(id: TaskId): Promise<TaskRecord | undefined>;
  /**
   * The stored records of these tasks, read in batches (as consistent as `get`); tasks never stored
   * are left out, and the order is not the order of `ids`.
   */
  getMany(ids: TaskId[]): Promise<TaskRecord[]>;
  /**
   * Writes `record` only if the stored version is still `record.version` (0: must not exist yet).
   * Returns the record as stored, with its version incremented. `previous` is the record as it was
   * read at that version: given it, the store writes only what changed (the captured spec, written
   * once, is not sent again); the condition on the version is the same either way.
   * @throws VersionConflictError when another writer got there first.
   */
  put(record: TaskRecord, now: number, previous?: TaskRecord): Promise<TaskRecord>;
  /**
   * Tasks with `dueAt <= now`, by the due-timer index (never a scan), at most `limit`: every task
   * due for a deadline before any task due only for its resync, each kind oldest first.
   */
  due(now: number, limit: number, options?: DueOptions): Promise<TaskRecord[]>;
  /**
   * The task that holds this pod name now, else the one that last gave it up for a new try (pod
   * names are unique per namespace at any moment). In DynamoDB the pod index behind it is
   * eventually consistent: a task written a moment ago may not be found yet; its resync finds it.
   */
  findByPod(cluster: string, namespace: string, podName: string): Promise<TaskRecord | undefined>;
  appendAudit(id: TaskId, entries: AuditEntry[]): Promise<void>;
  listAudit(id: TaskId, limit?: number): Promise<AuditEntry[]>;
  /** Remembers an inbound event id for `ttlMs`; false if it was already remembered. */
  markSeen(eventId: string, now: number, ttlMs: number): Promise<boolean>;
  /**
   * The tasks of `cluster` due only for their periodic resync (due now or later), by the due-timer
   * index: what a reaper pass re-reads besides the tasks whose pods it listed. Optional: a store
   * without it leaves every resync to the timer.
   */
  resyncEntries?(cluster: string): Promise<Array<{ id: TaskId; dueAt: number }>>;
  /** Notes that a reaper pass begun at `startedAt` re-read every unfinished task of `cluster`. */
  noteResyncPass?(cluster: string, startedAt: number): Promise<void>;
  /** When the last pass noted by `noteResyncPass` began, per cluster. */
  resyncPasses?(): Promise<Map<string, number>>;
}

export type ClusterErrorKind = 'not-found' | 'already-exists' | 'conflict' | 'retryable' | 'fatal';

/** Every Cluster adapter error is mapped to one of the kinds the reconciler knows how to handle. */
export class ClusterError extends Error {
  override name = 'ClusterError';
  readonly kind: ClusterErrorKind;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(kind: ClusterErrorKind, message: string, status?: number, retryAfterMs?: number) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

export interface KubeEvent {
  namespace: string;
  name: string;
  uid?: string;
  reason: string;
  message: string;
  type?: string;
  involvedObject: { kind?: string; name?: string; namespace?: string; uid?: string };
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
  eventTime?: string;
}

/**
 * What the API server answered a delete: `uid-mismatch` when the name belongs to another pod now,
 * `changed` when the pod (same uid) is no longer at the resourceVersion the delete was made for.
 */
export type DeleteOutcome = 'deleted' | 'not-found' | 'uid-mismatch' | 'changed';

/** A delete's preconditions and grace. */
export interface DeleteOptions {
  uid: string;
  gracePeriodSeconds: number;
  /**
   * The pod's resourceVersion as read: the delete then happens only if the pod is still exactly
   * what the decision was made on (the API server checks it atomically with the delete).
   */
  resourceVersion?: string;
}

export interface ListPodsOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Hands over the list one page at a time, each as soon as it is read (the next one is fetched
   * meanwhile), instead of all pods at the end: the answer is then empty, and a caller keeps only
   * what it needs. After an expired continue token the list starts again, so a page may repeat pods.
   */
  onPage?: (pods: Pod[]) => Promise<void>;
}

/** Access to the Kubernetes API of one or more clusters; every call names its cluster. */
export interface Cluster {
  /** The pod, or undefined on 404. */
  getPod(cluster: string, namespace: string, name: string): Promise<Pod | undefined>;
  /** Creates the pod; `exists` when the name is taken (the caller decides whether it is its own). */
  createPod(cluster: string, pod: Pod): Promise<{ outcome: 'created' | 'exists'; pod?: Pod }>;
  /** Deletes with a uid precondition; repeating it answers `not-found`, which counts as done. */
  deletePod(cluster: string, namespace: string, name: string, options: DeleteOptions): Promise<DeleteOutcome>;
  /** Every page (the adapter follows `continue`). */
  listPods(cluster: string, options: ListPodsOptions): Promise<Pod[]>;
  listEvents(cluster: string, namespace: string, fieldSelector: string): Promise<KubeEvent[]>;
  /**
   * Writes one of Podwarden's Events on a pod, named from `event.key`: writing the same key again
   * answers `exists`, which counts as done. `reporter` is the acting instance (the audit's actor).
   */
  createEvent(cluster: string, event: StoryEvent, reporter: string): Promise<'created' | 'exists'>;
}

export interface EventSink {
  emit(events: OutboundEvent[]): Promise<void>;
}
