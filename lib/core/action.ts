import type { Pod } from './pod.ts';
import type { Evidence, TaskId } from './task.ts';

export type ReapRule = 'sidecar-zombie' | 'stale-try' | 'finished-task';

export type OutboundEventType =
  | 'Task Recovered'
  | 'Task Succeeded'
  | 'Task Failed'
  | 'Image Pull Waiting'
  | 'Pod Reaped';

export interface OutboundEvent {
  /** Deterministic, so a consumer can drop the duplicates an at-least-once delivery may bring. */
  id: string;
  type: OutboundEventType;
  at: number;
  task: TaskId;
  tryNumber: number;
  attempt: number;
  podName: string;
  message: string;
  evidence: Evidence[];
  rule?: ReapRule;
}

/** Actions are data; an executor performs them against the ports, each safe to repeat. */
export type Action =
  | {
      kind: 'create-pod';
      namespace: string;
      podName: string;
      attempt: number;
      replacesUid?: string;
      pod: Pod;
    }
  | {
      kind: 'delete-pod';
      namespace: string;
      podName: string;
      /** Delete only if the pod still has this uid (a precondition): never a successor by mistake. */
      uid: string;
      gracePeriodSeconds: 0;
      why: string;
      rule?: ReapRule;
      /** Emitted only if the cluster answers that it deleted the pod (not for a uid-precondition refusal). */
      announce?: OutboundEvent;
    }
  | { kind: 'schedule-check'; at: number }
  | { kind: 'emit'; event: OutboundEvent }
  | { kind: 'audit'; at: number; what: string; podName: string; podUid?: string; evidence: Evidence[] };

export type ActionKind = Action['kind'];
