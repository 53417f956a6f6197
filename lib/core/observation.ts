import type { Pod } from './pod.ts';

/**
 * What a handler saw. Observations are hints, never commands: the engine re-derives everything from
 * the task record and the freshest pod, so a duplicated, lost or reordered observation costs latency,
 * never correctness.
 */
export type Observation =
  /** The pod as the API server has it now (re-read by the handler, or listed by the reaper). */
  | { type: 'pod-seen'; pod: Pod }
  /** The API server answered 404 for this name, or a watch reported the pod deleted. */
  | { type: 'pod-gone'; podName: string; podUid?: string }
  /**
   * A `Preempted` (or other disruption) Kubernetes event naming the pod. Only `confirmed` events (read
   * back from the API server for that pod's uid) count as disruption evidence; any other is a reason
   * to re-read soon.
   */
  | {
      type: 'preempted-event';
      podName: string;
      podUid?: string;
      reason: string;
      message: string;
      at: number;
      confirmed?: boolean;
    }
  /** A `Failed`/`BackOff` Kubernetes event about pulling the pod's image. */
  | {
      type: 'image-pull-event';
      podName: string;
      podUid?: string;
      reason: string;
      message: string;
      at: number;
    }
  /** A scheduled check came due. */
  | { type: 'timer-fired' }
  /** The orchestrator reported the task instance (e.g. Airflow's listener). */
  | { type: 'orchestrator-task-changed'; tryNumber: number; state: string }
  /** The reaper listed every managed pod of this task (any try). */
  | { type: 'reaper-scan'; pods: Pod[] };

export type ObservationType = Observation['type'];
