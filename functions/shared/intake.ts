/**
 * Parse and validate: turns an incoming EventBridge event into what the reconciler takes (a target
 * and the event's observations as hints), or says why it is skipped or malformed. Pure: no I/O, so
 * every handler stays a thin parse / call / report.
 *
 * Nothing from an event is trusted as a pod: the reconciler re-reads the pod from the API server, and
 * re-creates pods only from specs it captured there.
 */

import { namespaceAllowed, type PodwardenConfig } from '../../lib/config.ts';
import { identifyPod } from '../../lib/core/identity.ts';
import {
  describe,
  type InboundEvent,
  parseInboundEvent,
  parseTaskInstanceChanged,
} from '../../lib/core/inbound.ts';
import { eventHint } from '../../lib/core/kube-event.ts';
import type { Observation } from '../../lib/core/observation.ts';
import type { Pod } from '../../lib/core/pod.ts';
import type { ProfileName } from '../../lib/core/task.ts';
import type { Target } from '../../lib/reconciler/reconcile.ts';
import { SCHEDULE_SOURCE } from '../../lib/routes.ts';

export type Intake =
  | { kind: 'reconcile'; target: Target; hints: Observation[] }
  | { kind: 'skip'; reason: string }
  | { kind: 'malformed'; problem: string };

type IntakeConfig = Pick<
  PodwardenConfig,
  'clusters' | 'profiles' | 'allowedNamespaces' | 'exporterSources' | 'orchestratorSources'
>;

export function podChangedIntake(event: unknown, config: IntakeConfig): Intake {
  const parsed = parseInboundEvent(event, { exporterSources: config.exporterSources });
  if (!parsed.ok) return { kind: 'malformed', problem: parsed.problem };
  if (parsed.kind !== 'pod-changed') return misrouted(parsed, 'pod-changed');
  // A deletion is the one change a re-read cannot see after the fact; everything else is re-read.
  const hints: Observation[] =
    parsed.change === 'deleted'
      ? [{ type: 'pod-gone', podName: parsed.podName, ...(parsed.podUid ? { podUid: parsed.podUid } : {}) }]
      : [];
  return podTarget(parsed, config, hints);
}

export function kubernetesEventIntake(event: unknown, config: IntakeConfig): Intake {
  const parsed = parseInboundEvent(event, { exporterSources: config.exporterSources });
  if (!parsed.ok) return { kind: 'malformed', problem: parsed.problem };
  if (parsed.kind !== 'kubernetes-event') return misrouted(parsed, 'kubernetes-event');
  // The same event-to-hint mapping the local runtime uses, so both transports decide alike.
  const hint = eventHint(
    {
      namespace: parsed.namespace,
      name: '',
      reason: parsed.reason,
      message: parsed.message,
      involvedObject: {
        kind: 'Pod',
        name: parsed.podName,
        namespace: parsed.namespace,
        ...(parsed.podUid ? { uid: parsed.podUid } : {}),
      },
      lastTimestamp: new Date(parsed.at).toISOString(),
    },
    parsed.at,
  );
  if (!hint) return { kind: 'skip', reason: `event reason ${parsed.reason} is not one Podwarden acts on` };
  return podTarget(parsed, config, [hint]);
}

/** `Task Instance Changed` from an orchestrator listener (lib/core/inbound.ts reads it). */
export function orchestratorIntake(event: unknown, config: IntakeConfig): Intake {
  const parsed = parseTaskInstanceChanged(event, config);
  if (!parsed.ok) return { kind: 'malformed', problem: parsed.problem };
  const { cluster, namespace, profile, key, tryNumber, state } = parsed;
  const refused = outOfScope(cluster, namespace, config);
  if (refused) return refused;
  return {
    kind: 'reconcile',
    target: { cluster, namespace, profile, taskId: { cluster, namespace, key } },
    hints: [{ type: 'orchestrator-task-changed', tryNumber, state }],
  };
}

/** Schedule events carry nothing but their kind; anything else reaching a pass is refused. */
export function scheduleIntake(
  event: unknown,
  detailType: string,
): { ok: true } | { ok: false; problem: string } {
  const envelope = record(event);
  if (envelope?.source === SCHEDULE_SOURCE && envelope['detail-type'] === detailType) return { ok: true };
  return {
    ok: false,
    problem: `expected a "${detailType}" event from ${SCHEDULE_SOURCE}, got source ${describe(envelope?.source)} and detail-type ${describe(envelope?.['detail-type'])}`,
  };
}

/** Why an event about this cluster and namespace must not be acted on, if it must not. */
function outOfScope(cluster: string, namespace: string, config: IntakeConfig): Intake | undefined {
  if (!config.clusters.has(cluster)) {
    return {
      kind: 'malformed',
      problem: `cluster "${cluster}" is not configured (PODWARDEN_CLUSTERS has: ${[...config.clusters.keys()].join(', ')})`,
    };
  }
  if (!namespaceAllowed(config, namespace)) {
    return { kind: 'skip', reason: `namespace ${namespace} is not an allowed namespace` };
  }
  return undefined;
}

/** A reconcile of the pod an inbound event is about, under the profile its labels match. */
function podTarget(event: InboundEvent, config: IntakeConfig, hints: Observation[]): Intake {
  const refused = outOfScope(event.cluster, event.namespace, config);
  if (refused) return refused;
  const profile = profileFor(event.labels, config.profiles);
  if (!profile) {
    return {
      kind: 'skip',
      reason: `pod ${event.namespace}/${event.podName} is not managed under profile ${config.profiles.join(' or ')}`,
    };
  }
  return {
    kind: 'reconcile',
    target: { cluster: event.cluster, namespace: event.namespace, profile, podName: event.podName },
    hints,
  };
}

/**
 * The profile whose selector the pod's labels match. Without labels (an event the sender could not
 * label) the first profile is assumed: the reconciler finds an existing task by pod name anyway, and
 * starts a new one only for a pod it re-read and identified itself.
 */
function profileFor(
  labels: Record<string, string> | undefined,
  profiles: ProfileName[],
): ProfileName | undefined {
  if (labels === undefined) return profiles[0];
  const pod: Pod = { metadata: { labels } };
  return profiles.find((profile) => identifyPod(pod, profile).kind !== 'unmanaged');
}

function misrouted(parsed: InboundEvent, handler: string): Intake {
  return {
    kind: 'malformed',
    problem: `a ${parsed.kind} event reached the ${handler} function; check the rules`,
  };
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
