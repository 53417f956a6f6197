import { isImagePullEvent } from './image-pull.ts';
import type { Observation } from './observation.ts';
import type { KubeEvent } from './ports.ts';

/** Event reasons the bridge forwards that the engine turns into observations. */
const DISRUPTION_EVENT_REASONS = new Set(['Preempted', 'Evicted', 'TaintManagerEviction']);

/** The observation a Kubernetes event stands for, or undefined for events that do not matter. */
export function eventHint(event: KubeEvent, now: number): Observation | undefined {
  const podName = event.involvedObject.name;
  if (!podName) return undefined;
  const at = Date.parse(event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? '') || now;
  const uid = event.involvedObject.uid ? { podUid: event.involvedObject.uid } : {};
  if (DISRUPTION_EVENT_REASONS.has(event.reason)) {
    return { type: 'preempted-event', podName, ...uid, reason: event.reason, message: event.message, at };
  }
  if (isImagePullEvent(event.reason, event.message)) {
    return { type: 'image-pull-event', podName, ...uid, reason: event.reason, message: event.message, at };
  }
  return undefined;
}
