/**
 * The SQS CheckScheduler against ElasticMQ (a real SQS-compatible engine on loopback): a due check
 * stays hidden for its delay and then arrives with a body the check handler parses; due times past
 * SQS's 15-minute ceiling are left to the timer sweep.
 */
import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCheckMessage } from '../../lib/scheduler/check-message.ts';
import { SqsCheckScheduler } from '../../lib/scheduler/sqs-check-scheduler.ts';
import { createTestQueue, localSqsClient, messageCounts, type TestQueue } from '../support/sqs.ts';
import { sqsEndpoint } from '../support/sqs-endpoint.ts';

const TASK = { cluster: 'prod', namespace: 'airflow', key: 'etl/load/scheduled__2026-04-09/-1' };

let client: SQSClient;
let queue: TestQueue;

beforeAll(async () => {
  client = localSqsClient(sqsEndpoint());
  queue = await createTestQueue(client, { prefix: 'podwarden-scheduler' });
});

afterAll(async () => {
  await queue?.drop();
  client?.destroy();
});

async function receive(waitSeconds: number) {
  const answer = await client.send(
    new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds }),
  );
  return answer.Messages ?? [];
}

describe('SqsCheckScheduler', () => {
  it('holds a check back for its delay, rounded down to whole seconds, then delivers it', async () => {
    const scheduler = new SqsCheckScheduler({ client, queueUrl: queue.url });
    const sentAt = Date.now();
    const at = sentAt + 2_600;
    expect(await scheduler.send(TASK, at)).toEqual({ sent: true, delaySeconds: 2 });

    expect(await messageCounts(client, queue.url)).toMatchObject({ delayed: 1, visible: 0 });
    expect(await receive(0)).toEqual([]);
    const deadline = Date.now() + 10_000;
    let messages = await receive(1);
    while (messages.length === 0 && Date.now() < deadline) messages = await receive(1);
    const arrivedAt = Date.now();
    expect(messages).toHaveLength(1);
    // Never before its whole-second delay; the check handler waits out the remaining 600 ms.
    expect(arrivedAt - sentAt).toBeGreaterThanOrEqual(2_000);
    expect(parseCheckMessage(messages[0]!.Body!)).toEqual({ ok: true, check: { v: 1, task: TASK, at } });
  });

  it('sends a check that is already due without delay', async () => {
    const scheduler = new SqsCheckScheduler({ client, queueUrl: queue.url });
    expect(await scheduler.send(TASK, Date.now() - 5_000)).toEqual({ sent: true, delaySeconds: 0 });
    const [message] = await receive(1);
    expect(message && parseCheckMessage(message.Body!)).toMatchObject({ ok: true });
  });

  it('leaves a due time beyond the 15-minute ceiling to the timer sweep', async () => {
    const now = 1_800_000_000_000;
    const scheduler = new SqsCheckScheduler({ client, queueUrl: queue.url, clock: () => now });
    expect(await scheduler.send(TASK, now + 900_000)).toEqual({ sent: true, delaySeconds: 900 });
    expect(await scheduler.send(TASK, now + 900_001)).toEqual({
      sent: false,
      reason: 'due in 900 s: left to the timer sweep',
    });
    expect(await messageCounts(client, queue.url)).toMatchObject({ delayed: 1 });
  });

  it('fails loudly on a queue that does not exist (the functions log it and rely on the sweep)', async () => {
    const scheduler = new SqsCheckScheduler({ client, queueUrl: `${queue.url}-missing` });
    await expect(scheduler.schedule(TASK, Date.now())).rejects.toThrow();
  });
});
