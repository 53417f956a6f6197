/**
 * A TaskStore in this process's memory, for `podwarden reap --dry-run` without a table (the records
 * then come from what the pods themselves say) and for read-only views of a real table. It keeps
 * the store's contract (conditional writes on the version, pod pointers, newest-first audit) so the
 * reconcile loop behaves on it as on DynamoDB.
 */
import { dueIsDeadline } from '../core/engine.ts';
import { type AuditEntry, type DueOptions, type TaskStore, VersionConflictError } from '../core/ports.ts';
import type { TaskId, TaskRecord } from '../core/task.ts';

function idKey(id: TaskId): string {
  return `${id.cluster}\u0000${id.namespace}\u0000${id.key}`;
}

export class MemoryTaskStore implements TaskStore {
  readonly #tasks = new Map<string, TaskRecord>();
  readonly #pods = new Map<string, string>();
  readonly #audit = new Map<string, AuditEntry[]>();
  readonly #seen = new Map<string, number>();
  readonly #resyncPasses = new Map<string, number>();

  async get(id: TaskId): Promise<TaskRecord | undefined> {
    const found = this.#tasks.get(idKey(id));
    return found ? structuredClone(found) : undefined;
  }

  async getMany(ids: TaskId[]): Promise<TaskRecord[]> {
    const found = await Promise.all(ids.map((id) => this.get(id)));
    return found.filter((task): task is TaskRecord => task !== undefined);
  }

  async put(record: TaskRecord, _now: number): Promise<TaskRecord> {
    const key = idKey(record.id);
    const stored = this.#tasks.get(key);
    if ((stored?.version ?? 0) !== record.version) throw new VersionConflictError(record.id, record.version);
    const next = structuredClone({ ...record, version: record.version + 1 });
    this.#tasks.set(key, next);
    this.#pods.set(`${record.id.cluster}\u0000${record.id.namespace}\u0000${record.podName}`, key);
    return structuredClone(next);
  }

  async due(now: number, limit: number, options: DueOptions = {}): Promise<TaskRecord[]> {
    const lane = (task: TaskRecord) => (dueIsDeadline(task) ? 0 : 1);
    return [...this.#tasks.values()]
      .filter((task) => task.dueAt !== undefined && task.dueAt <= now)
      .filter(
        (task) =>
          !options.skip?.({
            cluster: task.id.cluster,
            namespace: task.id.namespace,
            dueAt: task.dueAt!,
            resync: lane(task) === 1,
          }),
      )
      .sort((a, b) => lane(a) - lane(b) || a.dueAt! - b.dueAt!)
      .slice(0, limit)
      .map((task) => structuredClone(task));
  }

  async resyncEntries(cluster: string): Promise<Array<{ id: TaskId; dueAt: number }>> {
    return [...this.#tasks.values()]
      .filter((task) => task.id.cluster === cluster && task.dueAt !== undefined && !dueIsDeadline(task))
      .map((task) => ({ id: structuredClone(task.id), dueAt: task.dueAt! }));
  }

  async noteResyncPass(cluster: string, startedAt: number): Promise<void> {
    this.#resyncPasses.set(cluster, Math.max(startedAt, this.#resyncPasses.get(cluster) ?? 0));
  }

  async resyncPasses(): Promise<Map<string, number>> {
    return new Map(this.#resyncPasses);
  }

  async findByPod(cluster: string, namespace: string, podName: string): Promise<TaskRecord | undefined> {
    const key = this.#pods.get(`${cluster}\u0000${namespace}\u0000${podName}`);
    const found = key === undefined ? undefined : this.#tasks.get(key);
    return found ? structuredClone(found) : undefined;
  }

  async appendAudit(id: TaskId, entries: AuditEntry[]): Promise<void> {
    const key = idKey(id);
    this.#audit.set(key, [...(this.#audit.get(key) ?? []), ...structuredClone(entries)]);
  }

  async listAudit(id: TaskId, limit = 100): Promise<AuditEntry[]> {
    return [...(this.#audit.get(idKey(id)) ?? [])].reverse().slice(0, limit);
  }

  async markSeen(eventId: string, now: number, ttlMs: number): Promise<boolean> {
    const until = this.#seen.get(eventId);
    if (until !== undefined && until > now) return false;
    this.#seen.set(eventId, now + ttlMs);
    return true;
  }
}

/**
 * A view of another store that notes every audit entry written through it and every record read.
 * `readOnly`: nothing reaches `backing` but reads, so a dry run over a real table leaves not even an
 * audit line there; the entries stay here for the caller to report.
 */
export class TappedTaskStore implements TaskStore {
  readonly #backing: TaskStore;
  readonly #readOnly: boolean;
  readonly audits: Array<{ id: TaskId; entry: AuditEntry }> = [];
  /** Records read so far (one per reconcile round): a progress count for long passes. */
  reads = 0;

  constructor(backing: TaskStore, options: { readOnly: boolean }) {
    this.#backing = backing;
    this.#readOnly = options.readOnly;
  }

  get(id: TaskId): Promise<TaskRecord | undefined> {
    this.reads++;
    return this.#backing.get(id);
  }

  getMany(ids: TaskId[]): Promise<TaskRecord[]> {
    this.reads += ids.length;
    return this.#backing.getMany(ids);
  }

  async put(record: TaskRecord, now: number, previous?: TaskRecord): Promise<TaskRecord> {
    if (this.#readOnly) throw new Error('a read-only view of the task table was asked to write a record');
    return this.#backing.put(record, now, previous);
  }

  due(now: number, limit: number, options?: DueOptions): Promise<TaskRecord[]> {
    return this.#backing.due(now, limit, options);
  }

  async resyncEntries(cluster: string): Promise<Array<{ id: TaskId; dueAt: number }>> {
    return (await this.#backing.resyncEntries?.(cluster)) ?? [];
  }

  async noteResyncPass(cluster: string, startedAt: number): Promise<void> {
    if (!this.#readOnly) await this.#backing.noteResyncPass?.(cluster, startedAt);
  }

  async resyncPasses(): Promise<Map<string, number>> {
    return (await this.#backing.resyncPasses?.()) ?? new Map();
  }

  findByPod(cluster: string, namespace: string, podName: string): Promise<TaskRecord | undefined> {
    this.reads++;
    return this.#backing.findByPod(cluster, namespace, podName);
  }

  async appendAudit(id: TaskId, entries: AuditEntry[]): Promise<void> {
    if (!this.#readOnly) await this.#backing.appendAudit(id, entries);
    for (const entry of entries) this.audits.push({ id, entry });
  }

  listAudit(id: TaskId, limit?: number): Promise<AuditEntry[]> {
    return this.#backing.listAudit(id, limit);
  }

  markSeen(eventId: string, now: number, ttlMs: number): Promise<boolean> {
    return this.#readOnly ? Promise.resolve(true) : this.#backing.markSeen(eventId, now, ttlMs);
  }
}
