/**
 * The one Logger and the one Metrics of every function (Powertools: structured JSON logs, and
 * CloudWatch embedded-metric-format lines), and the middy chain each handler is wrapped in.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { Logger as ReconcilerLogger } from '../../lib/reconciler/reconcile.ts';
import type { FunctionName } from '../../lib/routes.ts';
import { METRIC, METRICS_NAMESPACE, type MetricName, SERVICE_NAME } from './metric-names.ts';
import { EVENT_REJECTED, type KeepRejected, rejectedEvent } from './rejected.ts';

export const logger = new Logger({ serviceName: SERVICE_NAME });
export const metrics = new Metrics({
  namespace: METRICS_NAMESPACE,
  serviceName: SERVICE_NAME,
  // Powertools' own notices, as structured log lines; an invocation that counted nothing (most
  // skipped events) is normal here, not worth a warning each time.
  logger: {
    debug: (...content: unknown[]) => logger.debug(String(content[0])),
    info: (...content: unknown[]) => logger.info(String(content[0])),
    warn: (...content: unknown[]) => {
      const message = String(content[0]);
      if (message.startsWith('No application metrics to publish')) logger.debug(message);
      else logger.warn(message);
    },
    error: (...content: unknown[]) => logger.error(String(content[0])),
  },
});

/** The reconciler's logging port on the Powertools logger. */
export const reconcilerLog: ReconcilerLogger = {
  info: (message, fields) => logger.info(message, fields ?? {}),
  warn: (message, fields) => logger.warn(message, fields ?? {}),
  error: (message, fields) => logger.error(message, fields ?? {}),
};

/**
 * Adds a count. Metrics with dimensions of their own (a failure cause, a reap rule) go out at once
 * as single metrics, so that each keeps its dimension; the rest go out when the invocation ends.
 */
export function count(name: MetricName, value = 1, dimensions: Record<string, string> = {}): void {
  if (Object.keys(dimensions).length === 0) {
    metrics.addMetric(name, MetricUnit.Count, value);
    return;
  }
  const single = metrics.singleMetric();
  for (const [dimension, dimensionValue] of Object.entries(dimensions))
    single.addDimension(dimension, dimensionValue);
  single.addMetric(name, MetricUnit.Count, value);
}

export function seconds(name: MetricName, value: number): void {
  metrics.addMetric(name, MetricUnit.Seconds, value);
}

export interface Rejected {
  outcome: 'rejected';
  problem: string;
}

/**
 * A malformed event is answered, never thrown: a retry would fail the same way. It is logged with
 * the problem and counted (MalformedEvents, which has an alarm), and kept replayable: `keep` puts it,
 * with the problem, on the bus for the rejected-events queue. If that fails too, the log line holds
 * the event itself (up to 16 KB), so nothing is rejected without a trace to replay it from.
 */
export async function rejectMalformed(
  problem: string,
  event: unknown,
  keep?: { handler: string; keep: KeepRejected; now: number },
): Promise<Rejected> {
  const envelope = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
  const fields = {
    problem,
    eventId: envelope.id,
    source: envelope.source,
    detailType: envelope['detail-type'],
  };
  count(METRIC.malformedEvents);
  let kept = false;
  if (keep) {
    try {
      await keep.keep(rejectedEvent(problem, keep.handler, event, keep.now));
      kept = true;
    } catch (error) {
      logger.error('rejected event not kept on the bus', { ...fields, error: error as Error });
    }
  }
  logger.error('malformed event rejected', {
    ...fields,
    keptAs: kept ? EVENT_REJECTED : 'log only',
    ...(kept ? {} : { event: (JSON.stringify(event) ?? 'undefined').slice(0, 16 * 1024) }),
  });
  return { outcome: 'rejected', problem };
}

/** Wraps a handler core in the middy chain: Lambda context in every log line, metrics flushed. */
export function instrument<TResult>(
  name: FunctionName,
  core: (event: unknown, context: Context) => Promise<TResult>,
) {
  return middy(async (event: unknown, context: Context): Promise<TResult> => {
    logger.appendKeys({ handler: name });
    return core(event, context);
  })
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }));
}
