/** The orchestrator's own view of a try (Airflow's `Task Instance Changed`): a newer try, or an end. */
import { isTerminal } from '../task.ts';
import type { Run } from './run.ts';

/** Orchestrator (Airflow) task-instance states after which no pod of that try should run. */
const ORCHESTRATOR_FINISHED = new Set(['success', 'failed', 'skipped', 'upstream_failed', 'removed']);

export function isOrchestratorFinished(state: string | undefined): boolean {
  return state !== undefined && ORCHESTRATOR_FINISHED.has(state);
}

export function onOrchestrator(run: Run, tryNumber: number, state: string): void {
  const t = run.t;
  t.highestTry = Math.max(t.highestTry, tryNumber);
  if (tryNumber < t.tryNumber) return;
  if (tryNumber > t.tryNumber) {
    // The orchestrator moved on: whatever this try still wanted (a re-create) is moot.
    if (!isTerminal(t.state))
      run.finish('Failed', 'EndedByOrchestrator', `the orchestrator started try ${tryNumber}`, []);
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
  }
}
