/** `Task Instance Changed` from the orchestrator (e.g. an Airflow listener): its view of a task's try. */
import { type ContainerDeps, containerDeps } from './shared/deps.ts';
import { orchestratorIntake } from './shared/intake.ts';
import { instrument } from './shared/observability.ts';
import { type EventOutcome, runIntake } from './shared/run.ts';

export function handleOrchestrator(event: unknown, deps: ContainerDeps): Promise<EventOutcome> {
  return runIntake('orchestrator', deps, orchestratorIntake(event, deps.config), event);
}

export const handler = instrument('orchestrator', (event) => handleOrchestrator(event, containerDeps()));
