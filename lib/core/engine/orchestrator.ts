/**
 * The orchestrator's own view of a try (Airflow's `Task Instance Changed`): a newer try, or an end.
 * Its facts must be plausible against what the pods show before they count: a try more than one
 * above the highest try any pod showed waits for a pod of that try, and an unknown state is ignored.
 */
import { isTerminal } from '../task.ts';
import type { Run } from './run.ts';

/** Airflow's TaskInstanceState values (and `none`), the only states intake accepts. */
export const ORCHESTRATOR_STATES: readonly string[] = Object.freeze([
  'none',
  'scheduled',
  'queued',
  'running',
  'success',
  'restarting',
  'failed',
  'up_for_retry',
  'up_for_reschedule',
  'upstream_failed',
  'skipped',
  'deferred',
  'removed',
]);

/** Orchestrator (Airflow) task-instance states after which no pod of that try should run. */
const ORCHESTRATOR_FINISHED = new Set(['success', 'failed', 'skipped', 'upstream_failed', 'removed']);

/** The orchestrator starts tries one at a time: a report further ahead than this waits for a pod. */
export const MAX_TRY_LEAD = 1;

export function isOrchestratorState(state: string): boolean {
  return ORCHESTRATOR_STATES.includes(state);
}

export function isOrchestratorFinished(state: string | undefined): boolean {
  return state !== undefined && ORCHESTRATOR_FINISHED.has(state);
}

export function onOrchestrator(run: Run, tryNumber: number, state: string): void {
  const t = run.t;
  if (!isOrchestratorState(state) || !Number.isSafeInteger(tryNumber)) {
    run.note(`orchestrator report ignored: state ${JSON.stringify(state)}, try ${tryNumber}`);
    return;
  }
  if (tryNumber < t.tryNumber) return;
  if (tryNumber > t.tryNumber) {
    if (tryNumber > t.highestTry + MAX_TRY_LEAD) {
      t.orchestratorClaim = { tryNumber, state, at: run.now };
      run.note(
        `the orchestrator reports try ${tryNumber} but no pod shows a try above ${t.highestTry}; waiting for a pod of that try`,
      );
      return;
    }
    // The orchestrator moved on: whatever this try still wanted (a re-create) is moot.
    if (!isTerminal(t.state)) {
      run.finish('Failed', 'EndedByOrchestrator', `the orchestrator started try ${tryNumber}`, []);
      t.endedByOrchestrator = true;
    }
    return;
  }
  t.orchestratorState = state;
  if (isOrchestratorFinished(state) && !isTerminal(t.state)) {
    const ended = state === 'success' ? 'Succeeded' : 'Failed';
    run.finish(
      ended,
      ended === 'Failed' ? 'EndedByOrchestrator' : undefined,
      `the orchestrator reports try ${tryNumber} ${state}`,
      [],
    );
    t.endedByOrchestrator = true;
  }
}
