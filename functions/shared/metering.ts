/**
 * Counts what the reconciler decided and did, by watching the store it writes through: a decision is
 * counted once its record is saved (the write that puts its outbound events in the outbox), and a
 * reap once its audit line says the pod was deleted. The passes report only totals, so this is the
 * one place that sees every task of a timer or reaper pass, without any change to the reconciler.
 */
import type { AuditEntry, DueOptions, TaskStore } from '../../lib/core/ports.ts';
import type { TaskId, TaskRecord } from '../../lib/core/task.ts';
import { CAUSE_DIMENSION, METRIC, type MetricName, RULE_DIMENSION } from './metric-names.ts';

export type Count = (name: MetricName, value?: number, dimensions?: Record<string, string>) => void;

const REAP_PREFIX = 'reap:';

/** One per invocation: it remembers which events it has counted. */
export class MeteredStore implements TaskStore {
  readonly #inner: TaskStore;
  readonly #count: Count;
  readonly #counted = new Set<string>();
  /**
   * How late the most overdue task `due` returned in this invocation was, in milliseconds, as of
   * the query that returned it (not the invocation's start: a task can come due in between).
   */
  maxLatenessMs: number | undefined;

  constructor(inner: TaskStore, count: Count) {
    this.#inner = inner;
    this.#count = count;
  }

  get(id: TaskId): Promise<TaskRecord | undefined> {
    return this.#inner.get(id);
  }

  getMany(ids: TaskId[]): Promise<TaskRecord[]> {
    return this.#inner.getMany(ids);
  }

  async put(record: TaskRecord, now: number, previous?: TaskRecord): Promise<TaskRecord> {
    const stored = await this.#inner.put(record, now, previous);
    this.#meterDecision(record, now);
    return stored;
  }

  async due(now: number, limit: number, options?: DueOptions): Promise<TaskRecord[]> {
    const tasks = await this.#inner.due(now, limit, options);
    for (const task of tasks) {
      if (task.dueAt !== undefined) this.maxLatenessMs = Math.max(this.maxLatenessMs ?? 0, now - task.dueAt);
    }
    return tasks;
  }

  findByPod(cluster: string, namespace: string, podName: string): Promise<TaskRecord | undefined> {
    return this.#inner.findByPod(cluster, namespace, podName);
  }

  async resyncEntries(cluster: string): Promise<Array<{ id: TaskId; dueAt: number }>> {
    return (await this.#inner.resyncEntries?.(cluster)) ?? [];
  }

  async noteResyncPass(cluster: string, startedAt: number): Promise<void> {
    await this.#inner.noteResyncPass?.(cluster, startedAt);
  }

  async resyncPasses(): Promise<Map<string, number>> {
    return (await this.#inner.resyncPasses?.()) ?? new Map();
  }

  async appendAudit(id: TaskId, entries: AuditEntry[]): Promise<void> {
    await this.#inner.appendAudit(id, entries);
    for (const entry of entries) {
      // Dry-run and deferred reaps are audited too, with another outcome: only real deletes count.
      if (entry.what.startsWith(REAP_PREFIX) && entry.outcome === 'deleted') {
        this.#count(METRIC.podsReaped, 1, { [RULE_DIMENSION]: entry.what.slice(REAP_PREFIX.length) });
      }
    }
  }

  listAudit(id: TaskId, limit?: number): Promise<AuditEntry[]> {
    return this.#inner.listAudit(id, limit);
  }

  markSeen(eventId: string, now: number, ttlMs: number): Promise<boolean> {
    return this.#inner.markSeen(eventId, now, ttlMs);
  }

  #meterDecision(record: TaskRecord, now: number): void {
    for (const event of record.outbox ?? []) {
      // Events decided now carry `at === now`; older ones are undelivered leftovers, counted before.
      if (event.at !== now || this.#counted.has(event.id)) continue;
      this.#counted.add(event.id);
      if (event.type === 'Task Recovered') this.#count(METRIC.tasksRecovered);
      else if (event.type === 'Image Pull Waiting') this.#count(METRIC.imagePullWaits);
      else if (event.type === 'Task Failed') {
        this.#count(METRIC.tasksFailed, 1, { [CAUSE_DIMENSION]: record.cause ?? 'Unknown' });
      }
    }
  }
}
