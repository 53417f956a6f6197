/**
 * The CheckScheduler port on Amazon SQS: each due time becomes one message whose per-message
 * `DelaySeconds` holds it back until then, consumed by the `check` function. It is the fast path
 * only: the task record's `dueAt` and the one-minute timer sweep stay the truth, so a message that
 * is lost, duplicated or early costs nothing but a harmless re-read.
 *
 * SQS delays whole seconds up to 15 minutes. The delay is rounded down, so a message is never late
 * by the rounding; the check handler waits out the sub-second remainder (see lib/reconciler/check.ts).
 * Due times further away than the longest delay are left to the sweep.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { TaskId } from '../core/task.ts';
import type { CheckScheduler } from '../reconciler/reconcile.ts';
import { checkMessageBody } from './check-message.ts';

/** SQS's own ceiling for DelaySeconds. */
export const MAX_DELAY_SECONDS = 900;

export interface SqsCheckSchedulerOptions {
  client: Pick<SQSClient, 'send'>;
  queueUrl: string;
  clock?: () => number;
  /** Due times further away than this are left to the timer sweep (default and maximum 900). */
  maxDelaySeconds?: number;
}

export type ScheduleOutcome = { sent: true; delaySeconds: number } | { sent: false; reason: string };

export class SqsCheckScheduler implements CheckScheduler {
  readonly #client: Pick<SQSClient, 'send'>;
  readonly #queueUrl: string;
  readonly #clock: () => number;
  readonly #maxDelaySeconds: number;

  constructor(options: SqsCheckSchedulerOptions) {
    const maxDelaySeconds = options.maxDelaySeconds ?? MAX_DELAY_SECONDS;
    if (!Number.isInteger(maxDelaySeconds) || maxDelaySeconds < 0 || maxDelaySeconds > MAX_DELAY_SECONDS) {
      throw new RangeError(`maxDelaySeconds must be a whole number from 0 to ${MAX_DELAY_SECONDS}`);
    }
    this.#client = options.client;
    this.#queueUrl = options.queueUrl;
    this.#clock = options.clock ?? Date.now;
    this.#maxDelaySeconds = maxDelaySeconds;
  }

  async schedule(id: TaskId, at: number): Promise<void> {
    await this.send(id, at);
  }

  /** Like `schedule`, and says whether a message went out and with which delay. */
  async send(id: TaskId, at: number): Promise<ScheduleOutcome> {
    const delayMs = at - this.#clock();
    if (delayMs > this.#maxDelaySeconds * 1000) {
      return { sent: false, reason: `due in ${Math.round(delayMs / 1000)} s: left to the timer sweep` };
    }
    const delaySeconds = Math.max(0, Math.floor(delayMs / 1000));
    await this.#client.send(
      new SendMessageCommand({
        QueueUrl: this.#queueUrl,
        MessageBody: checkMessageBody(id, at),
        DelaySeconds: delaySeconds,
      }),
    );
    return { sent: true, delaySeconds };
  }
}
