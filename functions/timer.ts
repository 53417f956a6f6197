/** The timer pass (every minute): reconciles every task whose `dueAt` has come. */
import { runTimerPass, type TimerPassResult } from '../lib/reconciler/passes.ts';
import { TIMER_PASS } from '../lib/routes.ts';
import { type ContainerDeps, containerDeps, reconcilerDeps } from './shared/deps.ts';
import { scheduleIntake } from './shared/intake.ts';
import { METRIC } from './shared/metric-names.ts';
import {
  count,
  instrument,
  logger,
  type Rejected,
  rejectMalformed,
  seconds,
} from './shared/observability.ts';
import { keeper } from './shared/run.ts';

export type TimerOutcome = Rejected | ({ outcome: 'timer-pass'; lagSeconds: number } & TimerPassResult);

export async function handleTimer(event: unknown, deps: ContainerDeps): Promise<TimerOutcome> {
  const intake = scheduleIntake(event, TIMER_PASS);
  if (!intake.ok) return rejectMalformed(intake.problem, event, keeper('timer', deps));
  const { reconciler, store } = reconcilerDeps(deps, 'timer');
  let result: TimerPassResult;
  try {
    result = await runTimerPass(reconciler, deps.config.timerBatchSize);
  } catch (error) {
    count(METRIC.reconcileErrors);
    logger.error('timer pass failed; the invocation will be retried', { error: error as Error });
    throw error;
  }
  // How late the most overdue task was picked up: grows when passes fall behind or stop running.
  const lagSeconds = Math.max(0, (store.maxLatenessMs ?? 0) / 1000);
  seconds(METRIC.timerLagSeconds, lagSeconds);
  if (result.failed > 0) count(METRIC.reconcileErrors, result.failed);
  logger.info('timer pass', { ...result, lagSeconds });
  return { outcome: 'timer-pass', lagSeconds, ...result };
}

export const handler = instrument('timer', (event) => handleTimer(event, containerDeps()));
