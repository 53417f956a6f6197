/**
 * The reaper pass as an operator runs it from a laptop (`podwarden reap`): the very pass the Lambda
 * reaper runs (lib/reconciler/passes.ts, the engine's reaper-scan observation), with a report of
 * every managed pod it looked at: the ones it deletes (or would) with rule and evidence, and the
 * ones it spares with the reason. The report reads what the pass did through the ports (the
 * listed pods, the delete audits), so it cannot disagree with what the pass decided.
 */
import { formatDuration } from '../core/explain.ts';
import { PROFILES, readOverrides } from '../core/identity.ts';
import type { Pod } from '../core/pod.ts';
import type { Policy } from '../core/policy.ts';
import type {
  AuditEntry,
  Cluster,
  DeleteOptions,
  EventSink,
  ListPodsOptions,
  TaskStore,
} from '../core/ports.ts';
import type { StoryEvent } from '../core/story.ts';
import type { ProfileName } from '../core/task.ts';
import { type ReaperPassResult, runReaperPass } from '../reconciler/passes.ts';
import type { Logger } from '../reconciler/reconcile.ts';
import { MemoryTaskStore, TappedTaskStore } from './memory-store.ts';

export type PodVerdict = 'would-delete' | 'deleted' | 'deferred' | 'spared';

export interface PodJudgement {
  namespace: string;
  name: string;
  uid?: string;
  verdict: PodVerdict;
  /** The reaper rule (`sidecar-zombie`, `stale-try`, `finished-task`) or `delete` for a disrupted pod. */
  rule?: string;
  evidence?: string;
  /** What the API server answered to the delete (`deleted`, `not-found`, `uid-mismatch`). */
  outcome?: string;
  /** Why a spared pod stays. */
  reason?: string;
  task?: string;
}

export interface ReapReport {
  dryRun: boolean;
  /** Where the task records came from. */
  records: 'table' | 'pods';
  pods: PodJudgement[];
  pass: ReaperPassResult;
  /** Tasks the pass could not judge (the error), never silently skipped. */
  failures: Array<{ task: string; error: string }>;
  notes: string[];
}

export interface ReapOptions {
  cluster: Cluster;
  clusterName: string;
  /** The task table; undefined: records are rebuilt from the pods, in memory (dry run only). */
  store?: TaskStore;
  sink: EventSink;
  policy: Policy;
  profiles: ProfileName[];
  /** Namespaces the reaper may act in; empty: every namespace. */
  namespaces: string[];
  maxDeletes: number;
  dryRun: boolean;
  actor: string;
  clock?: () => number;
  /** Told the number of pods listed, then (now and then) the number of task reads so far. */
  progress?: (event: { listed: number } | { judged: number }) => void;
}

/** The Cluster port with every listed pod noted (by uid), so the report covers exactly what the pass saw. */
class ListingTap implements Cluster {
  readonly pods = new Map<string, Pod>();
  readonly #inner: Cluster;
  readonly #onList: (count: number) => void;
  constructor(inner: Cluster, onList: (count: number) => void) {
    this.#inner = inner;
    this.#onList = onList;
  }
  getPod(cluster: string, namespace: string, name: string) {
    return this.#inner.getPod(cluster, namespace, name);
  }
  createPod(cluster: string, pod: Pod) {
    return this.#inner.createPod(cluster, pod);
  }
  deletePod(cluster: string, namespace: string, name: string, options: DeleteOptions) {
    return this.#inner.deletePod(cluster, namespace, name, options);
  }
  async listPods(cluster: string, options: ListPodsOptions): Promise<Pod[]> {
    const note = (pods: Pod[]) => {
      for (const pod of pods)
        this.pods.set(pod.metadata.uid ?? `${pod.metadata.namespace}/${pod.metadata.name}`, pod);
      this.#onList(this.pods.size);
    };
    const { onPage } = options;
    const pods = await this.#inner.listPods(
      cluster,
      onPage
        ? {
            ...options,
            onPage: async (page) => {
              note(page);
              await onPage(page);
            },
          }
        : options,
    );
    note(pods);
    return pods;
  }
  listEvents(cluster: string, namespace: string, fieldSelector: string) {
    return this.#inner.listEvents(cluster, namespace, fieldSelector);
  }
  createEvent(cluster: string, event: StoryEvent, reporter: string) {
    return this.#inner.createEvent(cluster, event, reporter);
  }
}

const DELETE_AUDIT = /^(reap:|delete-pod$)/;

export async function runReap(options: ReapOptions): Promise<ReapReport> {
  const clock = options.clock ?? Date.now;
  const failures: ReapReport['failures'] = [];
  const notes: string[] = [];
  const store = new TappedTaskStore(options.store ?? new MemoryTaskStore(), { readOnly: options.dryRun });
  const cluster = new ListingTap(options.cluster, (listed) => options.progress?.({ listed }));
  const log: Logger = {
    info() {},
    warn() {},
    error(message, fields) {
      if (message === 'reaper reconcile failed')
        failures.push({
          task: `${String(fields?.namespace)}/${String(fields?.key)}`,
          error: String(fields?.error),
        });
    },
  };
  const ticker = setInterval(() => options.progress?.({ judged: store.reads }), 2_000);
  let pass: ReaperPassResult;
  try {
    pass = await runReaperPass(
      {
        store,
        cluster,
        sink: options.sink,
        policy: options.policy,
        clock,
        actor: options.actor,
        log,
        ...(options.dryRun ? { dryRun: true } : {}),
      },
      {
        cluster: options.clusterName,
        profiles: options.profiles,
        namespaces: options.namespaces,
        maxDeletes: options.maxDeletes,
      },
    );
  } finally {
    clearInterval(ticker);
  }

  const deletes = new Map<string, { entry: AuditEntry; task: string; order: number }>();
  for (const { id, entry } of store.audits) {
    if (!DELETE_AUDIT.test(entry.what) || !entry.podUid || deletes.has(entry.podUid)) continue;
    deletes.set(entry.podUid, { entry, task: id.key, order: deletes.size });
  }
  const malformed = new Map(pass.malformed.map((m) => [m.pod, m.problem]));
  const now = clock();
  const judged: PodJudgement[] = [];
  for (const pod of cluster.pods.values()) {
    const namespace = pod.metadata.namespace ?? '';
    const name = pod.metadata.name ?? '';
    const uid = pod.metadata.uid;
    const base = { namespace, name, ...(uid ? { uid } : {}) };
    const done = uid ? deletes.get(uid) : undefined;
    if (done) {
      const rule = done.entry.what.startsWith('reap:') ? done.entry.what.slice('reap:'.length) : 'delete';
      const evidence = done.entry.evidence.map((e) => e.message ?? e.reason ?? e.source).join('; ');
      if (options.dryRun && done.order >= options.maxDeletes) {
        judged.push({
          ...base,
          verdict: 'deferred',
          rule,
          evidence,
          task: done.task,
          reason: `over the limit of ${options.maxDeletes} deletes per pass: a later pass takes it`,
        });
      } else if (options.dryRun) {
        judged.push({ ...base, verdict: 'would-delete', rule, evidence, task: done.task });
      } else {
        judged.push({
          ...base,
          verdict: 'deleted',
          rule,
          evidence,
          task: done.task,
          ...(done.entry.outcome ? { outcome: done.entry.outcome } : {}),
        });
      }
      continue;
    }
    judged.push({ ...base, verdict: 'spared', reason: spareReason(pod, malformed, options.policy, now) });
  }
  if (!options.dryRun && pass.deferred > 0)
    notes.push(
      `${pass.deferred} more deletes wait for a later pass (at most ${options.maxDeletes} per pass)`,
    );

  if (options.namespaces.length > 0) {
    // Pods the pass never looked at because of where they run: said, so nobody wonders.
    for (const profile of options.profiles) {
      let everywhere: Pod[];
      try {
        everywhere = await options.cluster.listPods(options.clusterName, {
          labelSelector: PROFILES[profile].labelSelector,
        });
      } catch (error) {
        notes.push(
          `pods outside ${options.namespaces.join(', ')} not listed (${(error as Error).message}); only the allowed namespaces were judged`,
        );
        break;
      }
      for (const pod of everywhere) {
        const namespace = pod.metadata.namespace ?? '';
        if (options.namespaces.includes(namespace)) continue;
        if (judged.some((j) => j.uid !== undefined && j.uid === pod.metadata.uid)) continue;
        judged.push({
          namespace,
          name: pod.metadata.name ?? '',
          ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
          verdict: 'spared',
          reason: `outside the allowed namespaces (${options.namespaces.join(', ')})`,
        });
      }
    }
  }
  const order: Record<PodVerdict, number> = { deleted: 0, 'would-delete': 0, deferred: 1, spared: 2 };
  judged.sort(
    (a, b) =>
      order[a.verdict] - order[b.verdict] ||
      a.namespace.localeCompare(b.namespace) ||
      a.name.localeCompare(b.name),
  );
  return {
    dryRun: options.dryRun,
    records: options.store ? 'table' : 'pods',
    pods: judged,
    pass,
    failures,
    notes,
  };
}

/** Why the pass left a pod alone, checked in the order that protects most first. */
function spareReason(pod: Pod, malformed: Map<string, string>, policy: Policy, now: number): string {
  const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
  const problem = malformed.get(ref);
  if (problem !== undefined) return `malformed identity labels: ${problem} (reported, never deleted)`;
  const overrides = readOverrides(pod);
  if (overrides.overrides.protect)
    return overrides.problems.length > 0
      ? `protected: unreadable annotations count as protection (${overrides.problems.join('; ')})`
      : 'protected (podwarden.io/protect=true)';
  const created = Date.parse(pod.metadata.creationTimestamp ?? '');
  if (Number.isFinite(created) && now - created < policy.reaperMinAgeMs)
    return `too young: created ${formatDuration(now - created)} ago, the reaper waits ${formatDuration(policy.reaperMinAgeMs)}`;
  if (pod.metadata.deletionTimestamp) return 'already being deleted';
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed')
    return `phase ${phase}: a finished pod is left to its owner`;
  return 'no rule applies: the current try, main container not finished past its grace, task not ended';
}
