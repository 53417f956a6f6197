/**
 * The two scheduled passes: the timer sweep (tasks whose `dueAt` has come) and the reaper (every
 * managed pod, grouped by task, judged by the zombie rules). Both re-converge whatever an event missed.
 */
import { nextDeadline } from '../core/engine.ts';
import { identifyPod, PROFILES } from '../core/identity.ts';
import type { Observation } from '../core/observation.ts';
import type { Pod } from '../core/pod.ts';
import type { DueEntry } from '../core/ports.ts';
import type { ProfileName, TaskId, TaskRecord } from '../core/task.ts';
import { type ReconcileResult, type ReconcilerDeps, reconcile, taskLabelSelector } from './reconcile.ts';

export interface TimerPassResult {
  due: number;
  reconciled: number;
  failed: number;
}

/** Reconciles in flight at once in a pass: enough to hide API and DynamoDB latency, few enough to be polite. */
export const DEFAULT_PASS_CONCURRENCY = 16;

/** A timer pass keeps taking rounds of due tasks for at most this long (its function has 60 s). */
export const DEFAULT_TIMER_BUDGET_MS = 40_000;

export interface TimerPassOptions {
  /** Tasks per round (the `due` query's limit). */
  limit?: number;
  /** Reconciles in flight at once. */
  concurrency?: number;
  /** No new round starts after this long. */
  budgetMs?: number;
}

/**
 * How much earlier than a task's last write a reaper pass must have begun for the timer to count
 * on it: room for the due-timer index's lag and for clocks of two invocations that differ a little.
 */
export const RESYNC_NOTE_MARGIN_MS = 60_000;

/**
 * Whether a reaper pass noted at `passStartedAt` has done this resync: it began within the last
 * `resyncMs` and after the task was last written (a resync due time is set `resyncMs` after the
 * write), so it re-read the task, from its list or from the due-timer index, and nothing since
 * made it due again.
 */
export function resyncDoneByPass(
  passStartedAt: number | undefined,
  entry: Pick<DueEntry, 'dueAt'>,
  now: number,
  resyncMs: number,
): boolean {
  if (passStartedAt === undefined || passStartedAt < now - resyncMs) return false;
  return entry.dueAt - resyncMs <= passStartedAt - RESYNC_NOTE_MARGIN_MS;
}

/**
 * Runs every due task once, `concurrency` at a time; one task's failure is logged and counted, never
 * stops the pass. Within a round, tasks waiting for a deadline (a re-create's back-off, a pull
 * re-check, a grace) go before tasks only due for their periodic resync: a resync can wait a
 * little, a re-create cannot. A full round is followed by another while the budget lasts, so a
 * backlog drains within the invocation instead of one batch a minute. Resyncs that a fresh reaper
 * pass has done (it notes each complete pass per cluster) are passed over by their index keys alone,
 * without reading their records; without such a note, the timer does every resync itself.
 */
export async function runTimerPass(
  deps: ReconcilerDeps,
  options: TimerPassOptions | number = {},
): Promise<TimerPassResult> {
  const {
    limit = 1_000,
    concurrency = DEFAULT_PASS_CONCURRENCY,
    budgetMs = DEFAULT_TIMER_BUDGET_MS,
  } = typeof options === 'number' ? { limit: options } : options;
  const startedAt = deps.clock();
  const result: TimerPassResult = { due: 0, reconciled: 0, failed: 0 };
  // A task still due after its reconcile (its deadline could not be met yet) waits for the next pass.
  const done = new Set<string>();
  const passes = (await deps.store.resyncPasses?.()) ?? new Map<string, number>();
  for (;;) {
    const now = deps.clock();
    const skip = (entry: DueEntry) =>
      entry.resync && resyncDoneByPass(passes.get(entry.cluster), entry, now, deps.policy.resyncMs);
    const answered = await deps.store.due(now, limit, passes.size > 0 ? { skip } : {});
    const tasks = answered.filter((task) => !done.has(taskRef(task)));
    for (const task of tasks) done.add(taskRef(task));
    result.due += tasks.length;
    const hasDeadline = (task: TaskRecord) => nextDeadline(task, deps.policy, now) !== undefined;
    const ordered = [...tasks.filter(hasDeadline), ...tasks.filter((task) => !hasDeadline(task))];
    let failedThisRound = 0;
    await eachLimited(ordered, concurrency, async (task) => {
      try {
        // due() has just read the record consistently: it is the reconcile's reading too.
        await reconcile(deps, { ...targetOf(task), preRead: { record: task } }, await timerHints(deps, task));
        result.reconciled++;
      } catch (error) {
        failedThisRound++;
        deps.log.error('timer reconcile failed', { task: task.id, error: String(error) });
      }
    });
    result.failed += failedThisRound;
    // A task that keeps failing stays due: do not spin on it within one invocation.
    if (answered.length < limit || tasks.length === 0 || failedThisRound > 0) return result;
    if (deps.clock() - startedAt >= budgetMs) return result;
  }
}

function taskRef(task: TaskRecord): string {
  return `${task.id.cluster}\u0000${task.id.namespace}\u0000${task.id.key}`;
}

/** Runs `work` on every item, at most `width` at a time, in order of start. */
async function eachLimited<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(width, items.length)) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
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
  /**
   * Deletes per pass at the least. The cap of a pass is the larger of this and
   * `policy.reaperMaxDeletesPercent` of the managed pods it listed; the rest wait for the next pass.
   */
  maxDeletes: number;
  /** Reconciles in flight at once (default DEFAULT_PASS_CONCURRENCY). */
  concurrency?: number;
}

export interface ReaperPassResult {
  podsListed: number;
  tasks: number;
  deleted: number;
  /** Deletes decided but left for the next pass because the pass's cap was reached. */
  deferred: number;
  /** The most deletes this pass allowed (see ReaperOptions.maxDeletes). */
  deleteCap: number;
  /** Managed-looking pods with missing or malformed identity labels: reported, never deleted. */
  malformed: Array<{ pod: string; problem: string }>;
  failed: number;
  /** Unfinished tasks without a listed pod, re-read from the due-timer index as their resync. */
  resynced: number;
  /** Those re-reads that failed, or 1 when the index could not be read (then none was tried). */
  resyncFailed: number;
  /**
   * The pass re-read every unfinished task of the cluster (nothing failed or was held back, not a
   * dry run) and noted it, so the timer passes over their resyncs until the note grows old.
   */
  resyncNoted: boolean;
}

/** Tasks without a listed pod whose records the pass's resync reads at once. */
const RECORD_CHUNK = 1_000;

interface TaskGroup {
  profile: ProfileName;
  namespace: string;
  key: string;
  pods: Pod[];
  newest: { name: string; tryNumber: number };
  record?: TaskRecord;
  heldDeletes: number;
  /** Listed again whole after a pod of it came late: its record was read with the pods. */
  late?: boolean;
  /** Its record has been read (it may be undefined: none is stored). */
  recordRead?: boolean;
}

function newGroup(profile: ProfileName, namespace: string, key: string): TaskGroup {
  return { profile, namespace, key, pods: [], newest: { name: '', tryNumber: 0 }, heldDeletes: 0 };
}

/** The most deletes a pass may make: a safety valve that still lets a large cleanup finish in a few passes. */
export function reaperDeleteCap(podsListed: number, maxDeletes: number, percent: number): number {
  return Math.max(maxDeletes, Math.floor((podsListed * percent) / 100));
}

/**
 * One reaper pass: lists every managed pod (the list is the API server's word, so each listed pod is
 * its task's fresh reading: no GET per pod), reads the tasks' records in batches, and reconciles
 * every task, `concurrency` at a time. That also re-reads every task that has a pod, so the list
 * is the resync of all of them. A task's deletes are first decided with deletes held back, and
 * counted; they are then made beside the list (`concurrency` tasks' deletes at once) while they fit
 * within the cap of the pods listed so far (in list order), else after the list, up to the pass's
 * cap. Each delete carries the listed pod's uid and resourceVersion as preconditions, so the API
 * server deletes only a pod that has not changed since the list (a changed one is decided again on
 * a fresh read). Deletes held back past the cap cost nothing but a counter and one log line.
 *
 * The pass is also the periodic resync of every unfinished task of the cluster: the tasks with a
 * listed pod are re-read from the list, and the others (their pod gone without an event, or in a
 * namespace or profile the pass does not list) from the due-timer index, one GET each. Such a
 * reconcile does not write a decision that only moves the resync due time, and a pass that
 * re-read them all notes so; the timer then leaves those resyncs alone. A pass that failed
 * anywhere, held deletes back or ran dry notes nothing, and the timer does the resyncs itself.
 */
export async function runReaperPass(deps: ReconcilerDeps, options: ReaperOptions): Promise<ReaperPassResult> {
  const result: ReaperPassResult = {
    podsListed: 0,
    tasks: 0,
    deleted: 0,
    deferred: 0,
    deleteCap: 0,
    malformed: [],
    failed: 0,
    resynced: 0,
    resyncFailed: 0,
    resyncNoted: false,
  };
  // Before the list: every task written before this moment is re-read by this pass.
  const startedAt = deps.clock();
  // Every unfinished task's index entry, read while the list goes on (thousands of keys, seconds at
  // the end of a large pass): those the list does not show are re-read after it. Reading them now
  // misses only tasks first written after `startedAt`, which the pass's note does not cover anyway.
  const canNote = !deps.dryRun && !!deps.store.resyncEntries && !!deps.store.noteResyncPass;
  const unfinished = canNote ? deps.store.resyncEntries!(options.cluster) : undefined;
  unfinished?.catch(() => {}); // awaited after the list; not an unhandled rejection meanwhile
  const passDeps: ReconcilerDeps = { ...deps, resyncPass: true };
  const concurrency = options.concurrency ?? DEFAULT_PASS_CONCURRENCY;
  // Keys of the tasks reconciled in this pass, by profile and by namespace and task (the resync).
  const processed = new Set<string>();
  const listedTasks = new Set<string>();
  const seenPods = new Set<string>();
  // Tasks with deletes held back in round 1, in list order: only they keep pods and record.
  const held: TaskGroup[] = [];
  const idOf = (group: TaskGroup) => ({
    cluster: options.cluster,
    namespace: group.namespace,
    key: group.key,
  });

  // One task's failure is counted and logged; the pass goes on with the others.
  const groupFailed = (group: TaskGroup, error: unknown): void => {
    result.failed++;
    deps.log.error('reaper reconcile failed', {
      namespace: group.namespace,
      key: group.key,
      error: String(error),
    });
  };

  const reconcileGroup = async (
    group: TaskGroup,
    passDeps: ReconcilerDeps,
  ): Promise<ReconcileResult | undefined> => {
    try {
      return await reconcile(
        passDeps,
        {
          cluster: options.cluster,
          namespace: group.namespace,
          profile: group.profile,
          taskId: idOf(group),
          podName: group.newest.name,
          listedPods: group.pods,
          ...(group.recordRead ? { preRead: { record: group.record } } : {}),
        },
        [{ type: 'reaper-scan', pods: group.pods }],
      );
    } catch (error) {
      groupFailed(group, error);
      return undefined;
    }
  };
  // A task's reconcile for real, its deletes counted as the cluster answered them (a precondition
  // refusal deleted nothing).
  const reap = async (group: TaskGroup): Promise<void> => {
    // Awaited before the sum: `result.deleted += await ...` would read the count before the wait
    // and lose the deletes of the reconciles that finish meanwhile.
    const deleted = (await reconcileGroup(group, passDeps))?.deleted ?? 0;
    result.deleted += deleted;
  };

  // Tasks whose deletes are being made beside the list (at most `concurrency` at once): a page's
  // settling does not wait for them, so the next page's reconciles, the API server's deletes and
  // the store's writes overlap instead of each page ending with a few slow delete chains alone.
  const reaping = new Set<Promise<void>>();
  const forget = (group: TaskGroup) => {
    delete group.record;
    group.pods = [];
  };
  const reapAside = async (group: TaskGroup): Promise<void> => {
    while (reaping.size >= concurrency) await Promise.race(reaping);
    const reaped: Promise<void> = reap(group).finally(() => {
      reaping.delete(reaped);
      forget(group);
    });
    reaping.add(reaped);
  };
  const reapsDone = async (): Promise<void> => {
    while (reaping.size > 0) await Promise.all(reaping);
  };

  // Round 1: every task, deletes held back (a task with deletes changes nothing yet), page by page
  // as the list arrives: a task is reconciled once a page without any of its pods has followed
  // (the list is in name order, and the pods of a task share its name's stem), with its record
  // read in the page's batch; then its pods and record are dropped unless it holds deletes. A pass
  // over tens of thousands of pods never holds more than a page or two of them.
  const holding = { ...passDeps, holdDeletes: true };
  // Deletes are made as their tasks are reconciled, in list order, while they stay within the cap
  // of the pods listed so far, which is never above the pass's cap (the same rule over the whole
  // list); from the first task that does not fit, they wait for the end of the list, as round 2.
  let deletesSpent = 0;
  const capSoFar = () =>
    reaperDeleteCap(result.podsListed, options.maxDeletes, deps.policy.reaperMaxDeletesPercent);
  // Tasks whose supervised pod the list has not shown yet: judged once the list is complete, never
  // on part of their pods (a reaper scan without the supervised pod reads as that pod being gone).
  const deferred = new Map<string, TaskGroup>();
  const settle = async (ready: TaskGroup[], listComplete: boolean): Promise<void> => {
    if (ready.length === 0) return;
    const unread = ready.filter((group) => !group.recordRead);
    const records = new Map(
      (unread.length > 0 ? await deps.store.getMany(unread.map(idOf)) : []).map((record) => [
        `${record.id.namespace}\u0000${record.id.key}`,
        record,
      ]),
    );
    for (const group of unread) {
      group.record = records.get(`${group.namespace}\u0000${group.key}`);
      group.recordRead = true;
    }
    if (!listComplete) {
      ready = ready.filter((group) => {
        const current = group.record?.podName;
        const waiting =
          !!current &&
          !group.pods.some((pod) => pod.metadata.name === current) &&
          !seenPods.has(`${group.namespace}/${current}`);
        if (waiting) deferred.set(`${group.profile}\u0000${group.namespace}\u0000${group.key}`, group);
        return !waiting;
      });
    }
    await eachLimited(ready, concurrency, async (group) => {
      group.heldDeletes = (await reconcileGroup(group, holding))?.heldDeletes ?? 0;
      if (group.heldDeletes > 0 && held.length === 0 && deletesSpent < capSoFar()) {
        // Within the cap of what has been listed so far: deleted now, while the list goes on.
        deletesSpent += group.heldDeletes;
        await reapAside(group);
        return;
      }
      if (group.heldDeletes > 0) {
        held.push(group);
        return;
      }
      forget(group);
    });
  };

  const late = new Map<string, TaskGroup>();
  try {
    for (const profile of options.profiles) {
      for (const namespace of options.namespaces.length > 0 ? options.namespaces : [undefined]) {
        const open = new Map<string, TaskGroup & { lastPage: number }>();
        let pageIndex = 0;
        await deps.cluster.listPods(options.cluster, {
          ...(namespace ? { namespace } : {}),
          labelSelector: PROFILES[profile].labelSelector,
          onPage: async (pods) => {
            pageIndex++;
            result.podsListed += pods.length;
            for (const pod of pods) {
              const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
              if (seenPods.has(ref)) continue; // a list that restarted hands over pods again
              seenPods.add(ref);
              const identified = identifyPod(pod, profile);
              if (identified.kind === 'malformed') {
                result.malformed.push({ pod: ref, problem: identified.problem });
                deps.log.warn('managed pod with malformed identity; not touched', {
                  pod: ref,
                  problem: identified.problem,
                });
                continue;
              }
              if (identified.kind !== 'managed' || !pod.metadata.namespace) continue;
              const groupKey = `${profile}\u0000${pod.metadata.namespace}\u0000${identified.identity.key}`;
              const waiting = deferred.get(groupKey);
              if (waiting) {
                waiting.pods.push(pod);
                if (identified.identity.tryNumber > waiting.newest.tryNumber)
                  waiting.newest = {
                    name: pod.metadata.name ?? '',
                    tryNumber: identified.identity.tryNumber,
                  };
                continue;
              }
              if (processed.has(groupKey)) {
                // Its task was reconciled without this pod: it is read again whole, below.
                if (!late.has(groupKey))
                  late.set(groupKey, {
                    ...newGroup(profile, pod.metadata.namespace, identified.identity.key),
                    late: true,
                  });
                continue;
              }
              const { tryNumber } = identified.identity;
              const name = pod.metadata.name ?? '';
              let group = open.get(groupKey);
              if (!group) {
                group = {
                  ...newGroup(profile, pod.metadata.namespace, identified.identity.key),
                  newest: { name, tryNumber },
                  lastPage: pageIndex,
                };
                open.set(groupKey, group);
              }
              group.pods.push(pod);
              group.lastPage = pageIndex;
              if (tryNumber > group.newest.tryNumber) group.newest = { name, tryNumber };
            }
            const ready: TaskGroup[] = [];
            for (const [groupKey, group] of open) {
              if (group.lastPage >= pageIndex) continue;
              open.delete(groupKey);
              processed.add(groupKey);
              listedTasks.add(`${group.namespace}\u0000${group.key}`);
              ready.push(group);
            }
            await settle(ready, false);
          },
        });
        for (const groupKey of open.keys()) processed.add(groupKey);
        for (const group of open.values()) listedTasks.add(`${group.namespace}\u0000${group.key}`);
        const rest = [...open.values(), ...deferred.values()];
        deferred.clear();
        await settle(rest, true);
      }
    }
  } finally {
    // A task listed again below may be one whose deletes are still being made: they end first, so
    // that no task has two reconciles at once. A list that failed waits for them too: the pass
    // does not end with deletes still under way.
    await reapsDone();
  }
  // Pods that came after their task was reconciled: the task's pods are listed again, all of them
  // (its record names them), so that no reconcile judges a task on part of its pods.
  for (const group of late.values()) {
    try {
      const record = await deps.store.get(idOf(group));
      const selector = record ? taskLabelSelector(record) : undefined;
      if (!record || !selector) continue; // a new task split over pages: the next pass has it whole
      group.pods = await deps.cluster.listPods(options.cluster, {
        namespace: group.namespace,
        labelSelector: selector,
      });
      for (const pod of group.pods) {
        const identified = identifyPod(pod, group.profile);
        if (identified.kind !== 'managed') continue;
        if (group.newest.name === '' || identified.identity.tryNumber > group.newest.tryNumber)
          group.newest = { name: pod.metadata.name ?? '', tryNumber: identified.identity.tryNumber };
      }
      group.record = record;
      group.recordRead = true;
    } catch (error) {
      groupFailed(group, error);
      continue;
    }
    await settle([group], true);
  }
  await reapsDone();
  result.tasks = listedTasks.size;

  // Round 2: the tasks with deletes that round 1 left, in list order, up to the cap.
  result.deleteCap = capSoFar();
  const candidates = held;
  const allowed: TaskGroup[] = [];
  let budget = result.deleteCap - deletesSpent;
  for (const group of candidates) {
    if (budget <= 0) result.deferred += group.heldDeletes;
    else {
      allowed.push(group);
      budget -= group.heldDeletes;
    }
  }
  // The unfinished tasks the list did not show, as the timer would re-read them. A failure here
  // costs only the note: the timer then does these resyncs, as it would without the pass. They are
  // other tasks than round 2's, so they are re-read while round 2's deletes go on.
  const resyncUnlisted = async (): Promise<boolean> => {
    try {
      const unlisted: TaskId[] = (await unfinished!)
        .filter((entry) => !listedTasks.has(`${entry.id.namespace}\u0000${entry.id.key}`))
        .map((entry) => entry.id);
      for (let start = 0; start < unlisted.length; start += RECORD_CHUNK) {
        const records = await deps.store.getMany(unlisted.slice(start, start + RECORD_CHUNK));
        await eachLimited(records, concurrency, async (record) => {
          try {
            await reconcile(
              passDeps,
              { ...targetOf(record), preRead: { record } },
              await timerHints(passDeps, record),
            );
            result.resynced++;
          } catch (error) {
            result.resyncFailed++;
            deps.log.error('reaper resync failed', { task: record.id, error: String(error) });
          }
        });
      }
      return true;
    } catch (error) {
      result.resyncFailed++;
      deps.log.error('reaper resync of unlisted tasks failed', {
        cluster: options.cluster,
        error: String(error),
      });
      return false;
    }
  };
  const [, unlistedDone] = await Promise.all([
    eachLimited(allowed, concurrency, reap),
    canNote ? resyncUnlisted() : false,
  ]);
  if (result.deferred > 0)
    deps.log.info('reaper deletes held back past the per-pass cap', {
      cluster: options.cluster,
      deferred: result.deferred,
      deleteCap: result.deleteCap,
    });
  if (!canNote || !unlistedDone) return result;
  if (result.failed === 0 && result.resyncFailed === 0 && result.deferred === 0) {
    try {
      await deps.store.noteResyncPass!(options.cluster, startedAt);
      result.resyncNoted = true;
    } catch (error) {
      deps.log.warn('reaper pass not noted; the timer does the resyncs', {
        cluster: options.cluster,
        error: String(error),
      });
    }
  }
  return result;
}
