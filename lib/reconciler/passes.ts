/**
 * The two scheduled passes: the timer sweep (tasks whose `dueAt` has come) and the reaper (every
 * managed pod, grouped by task, judged by the zombie rules). Both re-converge whatever an event missed.
 */
import { identifyPod, PROFILES } from '../core/identity.ts';
import type { Observation } from '../core/observation.ts';
import type { Pod } from '../core/pod.ts';
import type { ProfileName, TaskRecord } from '../core/task.ts';
import { type ReconcileResult, type ReconcilerDeps, reconcile } from './reconcile.ts';

export interface TimerPassResult {
  due: number;
  reconciled: number;
  failed: number;
}

/** Runs every due task once; one task's failure is logged and counted, never stops the pass. */
export async function runTimerPass(deps: ReconcilerDeps, limit = 100): Promise<TimerPassResult> {
  const tasks = await deps.store.due(deps.clock(), limit);
  let reconciled = 0;
  let failed = 0;
  for (const task of tasks) {
    try {
      await reconcile(deps, targetOf(task), await timerHints(deps, task));
      reconciled++;
    } catch (error) {
      failed++;
      deps.log.error('timer reconcile failed', { task: task.id, error: String(error) });
    }
  }
  return { due: tasks.length, reconciled, failed };
}

/** A vanished pod's late `Preempted` event may never have reached us: ask the API server for it. */
export async function timerHints(deps: ReconcilerDeps, task: TaskRecord): Promise<Observation[]> {
  const hints: Observation[] = [];
  if (task.goneUnexplainedAt !== undefined && task.podName) {
    const events = await deps.cluster.listEvents(
      task.id.cluster,
      task.id.namespace,
      `involvedObject.name=${task.podName},reason=Preempted`,
    );
    for (const event of events) {
      const at =
        Date.parse(event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? '') || deps.clock();
      hints.push({
        type: 'preempted-event',
        podName: task.podName,
        ...(event.involvedObject.uid ? { podUid: event.involvedObject.uid } : {}),
        reason: event.reason,
        message: event.message,
        at,
      });
    }
  }
  hints.push({ type: 'timer-fired' });
  return hints;
}

function targetOf(task: TaskRecord) {
  return { cluster: task.id.cluster, namespace: task.id.namespace, profile: task.profile, taskId: task.id };
}

export interface ReaperOptions {
  cluster: string;
  profiles: ProfileName[];
  /** Namespaces the reaper may act in; empty means every namespace. */
  namespaces: string[];
  /** At most this many deletes per pass; the rest wait for the next pass. */
  maxDeletes: number;
}

export interface ReaperPassResult {
  podsListed: number;
  tasks: number;
  deleted: number;
  /** Deletes decided but left for the next pass because `maxDeletes` was reached. */
  deferred: number;
  /** Managed-looking pods with missing or malformed identity labels: reported, never deleted. */
  malformed: Array<{ pod: string; problem: string }>;
  failed: number;
}

export async function runReaperPass(deps: ReconcilerDeps, options: ReaperOptions): Promise<ReaperPassResult> {
  const result: ReaperPassResult = {
    podsListed: 0,
    tasks: 0,
    deleted: 0,
    deferred: 0,
    malformed: [],
    failed: 0,
  };
  let deletesLeft = options.maxDeletes;
  for (const profile of options.profiles) {
    const groups = new Map<
      string,
      { namespace: string; pods: Pod[]; newest: { name: string; tryNumber: number } }
    >();
    for (const namespace of options.namespaces.length > 0 ? options.namespaces : [undefined]) {
      const pods = await deps.cluster.listPods(options.cluster, {
        ...(namespace ? { namespace } : {}),
        labelSelector: PROFILES[profile].labelSelector,
      });
      result.podsListed += pods.length;
      for (const pod of pods) {
        const identified = identifyPod(pod, profile);
        const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
        if (identified.kind === 'malformed') {
          result.malformed.push({ pod: ref, problem: identified.problem });
          deps.log.warn('managed pod with malformed identity; not touched', {
            pod: ref,
            problem: identified.problem,
          });
          continue;
        }
        if (identified.kind !== 'managed' || !pod.metadata.namespace) continue;
        const groupKey = `${pod.metadata.namespace}\u0000${identified.identity.key}`;
        const { tryNumber } = identified.identity;
        const name = pod.metadata.name ?? '';
        const group = groups.get(groupKey) ?? {
          namespace: pod.metadata.namespace,
          pods: [],
          newest: { name, tryNumber },
        };
        group.pods.push(pod);
        if (tryNumber > group.newest.tryNumber) group.newest = { name, tryNumber };
        groups.set(groupKey, group);
      }
    }
    for (const [groupKey, group] of groups) {
      result.tasks++;
      const key = groupKey.split('\u0000')[1] ?? '';
      const limited = { ...deps, dryRun: deps.dryRun || deletesLeft <= 0 };
      try {
        const outcome: ReconcileResult = await reconcile(
          limited,
          {
            cluster: options.cluster,
            namespace: group.namespace,
            profile,
            taskId: { cluster: options.cluster, namespace: group.namespace, key },
            podName: group.newest.name,
          },
          [{ type: 'reaper-scan', pods: group.pods }],
        );
        const deletes = outcome.actions.filter((a) => a.kind === 'delete-pod').length;
        if (limited.dryRun && !deps.dryRun) result.deferred += deletes;
        else {
          // Counted as the cluster answered (a uid-precondition refusal deleted nothing); the per-pass
          // limit counts every delete attempted.
          result.deleted += outcome.deleted;
          deletesLeft -= deletes;
        }
      } catch (error) {
        result.failed++;
        deps.log.error('reaper reconcile failed', { namespace: group.namespace, key, error: String(error) });
      }
    }
  }
  return result;
}
