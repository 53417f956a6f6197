/**
 * One due check (a message of the delayed check queue): the timer sweep's work for a single task,
 * on time instead of up to a minute late. The message only says which task and when; the record
 * decides whether anything is due, and the reconciler re-reads the pod as always.
 */
import type { TaskId } from '../core/task.ts';
import { timerHints } from './passes.ts';
import { type ReconcileResult, type ReconcilerDeps, reconcile } from './reconcile.ts';

/**
 * A check may arrive this much before the record's `dueAt` and still be the one that runs it: SQS
 * delays are whole seconds (rounded down by the scheduler), and clocks of two machines differ a
 * little. Earlier than that, the record's timer was moved by a later decision that scheduled a
 * check of its own, so this one is stale.
 */
export const EARLY_TOLERANCE_MS = 2_000;

export type CheckResult =
  | { outcome: 'skipped'; reason: string }
  | { outcome: 'reconciled'; waitedMs: number; result: ReconcileResult };

export interface CheckOptions {
  /** Waits out a check that came up to EARLY_TOLERANCE_MS early (tests pass a recording one). */
  sleep?: (ms: number) => Promise<void>;
}

export async function runDueCheck(
  deps: ReconcilerDeps,
  id: TaskId,
  options: CheckOptions = {},
): Promise<CheckResult> {
  const task = await deps.store.get(id);
  if (!task) return { outcome: 'skipped', reason: 'no task record (expired or never started)' };
  if (task.dueAt === undefined) return { outcome: 'skipped', reason: `task ended (${task.state})` };
  const early = task.dueAt - deps.clock();
  if (early > EARLY_TOLERANCE_MS) {
    return {
      outcome: 'skipped',
      reason: `not due for ${Math.round(early / 1000)} s: a later decision moved the timer (and scheduled its own check)`,
    };
  }
  // Until the clock the decision reads has reached dueAt, not merely for `early` ms: a timer may
  // wake a millisecond before its time by Date.now(), and a reconcile at dueAt - 1 finds nothing due,
  // schedules nothing (the due time did not change), and this message, the only one for that due
  // time, is consumed: the task then waits for a later check or the sweep (a re-create ~28 s late).
  let waitedMs = 0;
  for (let left = early; left > 0; left = task.dueAt - deps.clock()) {
    await (options.sleep ?? defaultSleep)(left);
    waitedMs += left;
  }
  const target = { cluster: id.cluster, namespace: id.namespace, profile: task.profile, taskId: task.id };
  const result = await reconcile(deps, target, await timerHints(deps, task));
  return { outcome: 'reconciled', waitedMs, result };
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
