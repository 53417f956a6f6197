/** `Pod Changed` from the bridge: reconcile the task of that pod (the pod itself is re-read). */
import { type ContainerDeps, containerDeps } from './shared/deps.ts';
import { podChangedIntake } from './shared/intake.ts';
import { instrument } from './shared/observability.ts';
import { type EventOutcome, runIntake } from './shared/run.ts';

export function handlePodChanged(event: unknown, deps: ContainerDeps): Promise<EventOutcome> {
  return runIntake('pod-changed', deps, podChangedIntake(event, deps.config), event);
}

export const handler = instrument('pod-changed', (event) => handlePodChanged(event, containerDeps()));
