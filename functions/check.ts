/**
 * Due checks from the delayed check queue (SQS, per-message DelaySeconds): the timer's work for one
 * task, on its second instead of at the next one-minute sweep. Records are processed with
 * Powertools' BatchProcessor: a record whose reconcile fails is reported in `batchItemFailures` and
 * comes back after the visibility timeout (then the queue's DLQ); the others are done and deleted.
 * A malformed record is logged, counted and dropped, since a retry would fail the same way.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { type CheckResult, runDueCheck } from '../lib/reconciler/check.ts';
import { parseCheckMessage } from '../lib/scheduler/check-message.ts';
import { type ContainerDeps, containerDeps, reconcilerDeps } from './shared/deps.ts';
import { METRIC } from './shared/metric-names.ts';
import { count, instrument, logger, rejectMalformed, seconds } from './shared/observability.ts';
import { failureKind } from './shared/run.ts';

export type CheckRecordOutcome = CheckResult | { outcome: 'rejected'; problem: string };

/** One record: parse, run the check, report. Throws (so the record is retried) only when the reconcile fails. */
export async function handleCheckRecord(record: SQSRecord, deps: ContainerDeps): Promise<CheckRecordOutcome> {
  const parsed = parseCheckMessage(record.body);
  if (!parsed.ok) {
    return rejectMalformed(parsed.problem, { id: record.messageId, source: record.eventSourceARN });
  }
  const { task, at } = parsed.check;
  const { reconciler } = reconcilerDeps(deps, 'check');
  try {
    const result = await runDueCheck(reconciler, task);
    if (result.outcome === 'skipped') {
      logger.info('due check skipped', { task, reason: result.reason });
      return result;
    }
    const lagSeconds = Math.max(0, (deps.clock() - at) / 1000);
    seconds(METRIC.checkLagSeconds, lagSeconds);
    logger.info('due check reconciled', {
      task,
      state: result.result.task?.state,
      actions: result.result.actions.map((action) => action.kind),
      waitedMs: result.waitedMs,
      lagSeconds,
    });
    return result;
  } catch (error) {
    count(METRIC.reconcileErrors);
    logger.error('due check failed; the message will be retried', {
      task,
      messageId: record.messageId,
      error: error as Error,
      failure: failureKind(error),
    });
    throw error;
  }
}

export async function handleCheck(event: unknown, deps: ContainerDeps): Promise<SQSBatchResponse> {
  const records = (event as { Records?: unknown } | null)?.Records;
  if (!Array.isArray(records)) {
    rejectMalformed('event has no Records array: not an SQS batch', event);
    return { batchItemFailures: [] };
  }
  // A processor per batch: it keeps the batch's successes and failures while it runs.
  const processor = new BatchProcessor(EventType.SQS);
  return processPartialResponse(
    { Records: records },
    (record: SQSRecord) => handleCheckRecord(record, deps),
    processor,
    // Failures are reported per record, never by failing the whole invocation.
    { throwOnFullBatchFailure: false },
  );
}

export const handler = instrument('check', (event) => handleCheck(event, containerDeps()));
