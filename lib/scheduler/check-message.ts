/**
 * The body of a due-check message: which task to look at, and when it was due. It carries no state
 * and no instruction: the check handler re-reads the task record and the pod, so a forged, lost,
 * early or duplicated message costs at most one harmless reconcile.
 */
import { describe, isValidClusterName } from '../core/inbound.ts';
import type { TaskId } from '../core/task.ts';

export const CHECK_MESSAGE_VERSION = 1;

export interface CheckMessage {
  v: typeof CHECK_MESSAGE_VERSION;
  task: TaskId;
  /** Epoch ms the task's timer is due. */
  at: number;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// Task keys are built from label values (≤ 63 characters each) joined by `/`; this bounds them.
const MAX_KEY_LENGTH = 1024;

export function checkMessageBody(task: TaskId, at: number): string {
  const message: CheckMessage = {
    v: CHECK_MESSAGE_VERSION,
    task: { cluster: task.cluster, namespace: task.namespace, key: task.key },
    at,
  };
  return JSON.stringify(message);
}

export type ParsedCheck = { ok: true; check: CheckMessage } | { ok: false; problem: string };

/** Validates a message body; the problem names the field. */
export function parseCheckMessage(body: string): ParsedCheck {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    return { ok: false, problem: `body is not JSON (${(error as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: `body is ${describe(value)}, not an object` };
  }
  const message = value as Record<string, unknown>;
  if (message.v !== CHECK_MESSAGE_VERSION) {
    return { ok: false, problem: `body.v is ${describe(message.v)}, not ${CHECK_MESSAGE_VERSION}` };
  }
  const at = message.at;
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) {
    return { ok: false, problem: `body.at is ${describe(at)}, not epoch milliseconds` };
  }
  const task = message.task;
  if (typeof task !== 'object' || task === null || Array.isArray(task)) {
    return { ok: false, problem: `body.task is ${describe(task)}, not an object` };
  }
  const { cluster, namespace, key } = task as Record<string, unknown>;
  if (typeof cluster !== 'string' || !isValidClusterName(cluster)) {
    return { ok: false, problem: `body.task.cluster is ${describe(cluster)}, not a cluster name` };
  }
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace)) {
    return { ok: false, problem: `body.task.namespace is ${describe(namespace)}, not a namespace name` };
  }
  if (typeof key !== 'string' || key === '' || key.length > MAX_KEY_LENGTH) {
    return {
      ok: false,
      problem: `body.task.key is ${describe(key)}, not a task key (1-${MAX_KEY_LENGTH} characters)`,
    };
  }
  return { ok: true, check: { v: CHECK_MESSAGE_VERSION, task: { cluster, namespace, key }, at } };
}
