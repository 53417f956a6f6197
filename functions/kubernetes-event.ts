/**
 * A Kubernetes Event about a pod (the bridge's, or kubernetes-event-exporter's): disruptions and
 * image-pull errors become hints for the pod's task; other reasons are skipped.
 */
import { type ContainerDeps, containerDeps } from './shared/deps.ts';
import { kubernetesEventIntake } from './shared/intake.ts';
import { instrument } from './shared/observability.ts';
import { type EventOutcome, runIntake } from './shared/run.ts';

export function handleKubernetesEvent(event: unknown, deps: ContainerDeps): Promise<EventOutcome> {
  return runIntake('kubernetes-event', deps, kubernetesEventIntake(event, deps.config), event);
}

export const handler = instrument('kubernetes-event', (event) =>
  handleKubernetesEvent(event, containerDeps()),
);
