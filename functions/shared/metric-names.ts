/**
 * Names of the metrics the functions emit (CloudWatch embedded metric format, through Powertools).
 * Kept free of any runtime import so that the CDK stack's alarms and dashboard use the very same
 * names and dimensions the functions write.
 */
export const METRICS_NAMESPACE = 'Podwarden';
/** Powertools writes it as the `service` dimension of every metric. */
export const SERVICE_NAME = 'podwarden';
export const SERVICE_DIMENSION = 'service';

export const METRIC = {
  tasksRecovered: 'TasksRecovered',
  /** With a `cause` dimension (a FailureCause). */
  tasksFailed: 'TasksFailed',
  /** With a `rule` dimension (a ReapRule). */
  podsReaped: 'PodsReaped',
  imagePullWaits: 'ImagePullWaits',
  malformedEvents: 'MalformedEvents',
  reconcileErrors: 'ReconcileErrors',
  /** Seconds between the oldest due timer and the timer pass that found it. */
  timerLagSeconds: 'TimerLagSeconds',
  /** Seconds between a due check's time and its reconcile (the check queue's lateness). */
  checkLagSeconds: 'CheckLagSeconds',
  /** Due checks the scheduler could not queue (the timer sweep runs them instead). */
  checksNotQueued: 'ChecksNotQueued',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

export const CAUSE_DIMENSION = 'cause';
export const RULE_DIMENSION = 'rule';
