import { ClusterError } from '../../lib/core/ports.ts';
import { describeTask } from '../../lib/core/task.ts';
import { reconcile } from '../../lib/reconciler/reconcile.ts';
import type { HandlerName } from '../../lib/routes.ts';
import { type ContainerDeps, reconcilerDeps } from './deps.ts';
import type { Intake } from './intake.ts';
import { METRIC } from './metric-names.ts';
import { count, logger, type Rejected, rejectMalformed } from './observability.ts';
import type { KeepRejected } from './rejected.ts';

export type EventOutcome =
  | Rejected
  | { outcome: 'skipped'; reason: string }
  | { outcome: 'reconciled'; task: string; state: string; actions: string[] };

/**
 * Reports or reconciles what an intake decided. A reconcile failure is counted and logged, then
 * thrown: Lambda retries the asynchronous invocation, and after the retries the event lands in the
 * function's DLQ. Every failure is treated so, since a retry is harmless (the reconciler re-reads
 * everything) and an event in the DLQ can be replayed once the cause is fixed.
 */
export async function runIntake(
  handler: HandlerName,
  deps: ContainerDeps,
  intake: Intake,
  event: unknown,
): Promise<EventOutcome> {
  if (intake.kind === 'malformed') return rejectMalformed(intake.problem, event, keeper(handler, deps));
  if (intake.kind === 'skip') {
    logger.info('event skipped', { reason: intake.reason });
    return { outcome: 'skipped', reason: intake.reason };
  }
  const { reconciler } = reconcilerDeps(deps, handler);
  try {
    const result = await reconcile(reconciler, intake.target, intake.hints);
    if (!result.task) {
      const reason = result.skipped ?? 'nothing to reconcile';
      logger.info('event skipped', { reason, target: intake.target });
      return { outcome: 'skipped', reason };
    }
    const actions = result.actions.map((action) => action.kind);
    logger.info('reconciled', { task: describeTask(result.task), actions });
    return { outcome: 'reconciled', task: describeTask(result.task), state: result.task.state, actions };
  } catch (error) {
    count(METRIC.reconcileErrors);
    logger.error('reconcile failed; the invocation will be retried', {
      error: error as Error,
      failure: failureKind(error),
      target: intake.target,
    });
    throw error;
  }
}

/** What failed, for the log line: a cluster error by its kind, anything else by its name. */
export function failureKind(error: unknown): string {
  if (error instanceof ClusterError) return `cluster ${error.kind}`;
  return error instanceof Error ? error.name : typeof error;
}

/** How a rejected event is kept replayable, when the container has a place for it. */
export function keeper(
  handler: HandlerName,
  deps: ContainerDeps,
): { handler: string; keep: KeepRejected; now: number } | undefined {
  return deps.keepRejected ? { handler, keep: deps.keepRejected, now: deps.clock() } : undefined;
}
