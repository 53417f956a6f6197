/**
 * SQS for tests: clients and queues on the ElasticMQ that test/setup/elasticmq.ts started (a real
 * SQS-compatible engine on loopback), and `QueueConsumer`, which plays Lambda's SQS event source
 * mapping for a handler. The mapping itself is AWS's poller with no local engine, so this is a
 * stand-in at that boundary, doing what AWS documents for it: long-poll up to 10 messages, invoke
 * the function with them as `Records`, delete the ones not listed in `batchItemFailures` (all of
 * them if the invocation threw nothing and listed nothing), and leave the rest to reappear after
 * the visibility timeout, until the queue's redrive policy moves them to its DLQ.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { ELASTICMQ_REGION } from '../../lib/devcluster/elasticmq.ts';

/** A client for a local engine (test/support/sqs-endpoint.ts has the tests' ElasticMQ). */
export function localSqsClient(endpoint: string): SQSClient {
  if (new URL(endpoint).hostname !== '127.0.0.1')
    throw new Error(`tests talk to loopback only, got ${endpoint}`);
  return new SQSClient({
    endpoint,
    region: ELASTICMQ_REGION,
    credentials: { accessKeyId: 'podwardenlocal', secretAccessKey: 'podwardenlocal' },
  });
}

export interface TestQueue {
  url: string;
  arn: string;
  dlqUrl: string;
  drop(): Promise<void>;
}

/** A queue with a DLQ, laid out as the stack's check queue (redrive after `maxReceiveCount`). */
export async function createTestQueue(
  client: SQSClient,
  options: { prefix?: string; visibilityTimeoutSeconds?: number; maxReceiveCount?: number } = {},
): Promise<TestQueue> {
  const name = `${options.prefix ?? 'podwarden-checks'}-${randomUUID().slice(0, 8)}`;
  const dlq = await client.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqArn = await queueArn(client, dlq.QueueUrl!);
  const queue = await client.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: dlqArn,
          maxReceiveCount: options.maxReceiveCount ?? 5,
        }),
      },
    }),
  );
  const url = queue.QueueUrl!;
  return {
    url,
    arn: await queueArn(client, url),
    dlqUrl: dlq.QueueUrl!,
    drop: async () => {
      await client.send(new DeleteQueueCommand({ QueueUrl: url }));
      await client.send(new DeleteQueueCommand({ QueueUrl: dlq.QueueUrl! }));
    },
  };
}

async function queueArn(client: SQSClient, url: string): Promise<string> {
  const answer = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  const arn = answer.Attributes?.QueueArn;
  if (!arn) throw new Error(`queue ${url} has no QueueArn`);
  return arn;
}

export async function messageCounts(
  client: SQSClient,
  url: string,
): Promise<{ visible: number; delayed: number; inFlight: number }> {
  const answer = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesDelayed',
        'ApproximateNumberOfMessagesNotVisible',
      ],
    }),
  );
  const attribute = (name: keyof NonNullable<typeof answer.Attributes>) =>
    Number(answer.Attributes?.[name] ?? 0);
  return {
    visible: attribute('ApproximateNumberOfMessages'),
    delayed: attribute('ApproximateNumberOfMessagesDelayed'),
    inFlight: attribute('ApproximateNumberOfMessagesNotVisible'),
  };
}

export type BatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

export interface ConsumedBatch {
  at: number;
  records: SQSRecord[];
  failures: string[];
}

/** Lambda's SQS event source mapping for one handler (see the file comment); stop() ends it. */
export class QueueConsumer {
  readonly batches: ConsumedBatch[] = [];
  readonly #client: SQSClient;
  readonly #queue: TestQueue;
  readonly #handler: BatchHandler;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(client: SQSClient, queue: TestQueue, handler: BatchHandler) {
    this.#client = client;
    this.#queue = queue;
    this.#handler = handler;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const answer = await this.#client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.#queue.url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const messages = answer.Messages ?? [];
      if (messages.length === 0) continue;
      const records: SQSRecord[] = messages.map((message) => ({
        messageId: message.MessageId!,
        receiptHandle: message.ReceiptHandle!,
        body: message.Body ?? '',
        attributes: {
          ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1',
          SentTimestamp: message.Attributes?.SentTimestamp ?? '0',
          SenderId: message.Attributes?.SenderId ?? 'local',
          ApproximateFirstReceiveTimestamp: message.Attributes?.ApproximateFirstReceiveTimestamp ?? '0',
        },
        messageAttributes: {},
        md5OfBody: message.MD5OfBody ?? '',
        eventSource: 'aws:sqs',
        eventSourceARN: this.#queue.arn,
        awsRegion: ELASTICMQ_REGION,
      }));
      let failures: string[];
      try {
        const response = await this.#handler({ Records: records });
        failures = response.batchItemFailures.map((failure) => failure.itemIdentifier);
      } catch {
        failures = records.map((record) => record.messageId); // a thrown invocation fails the batch
      }
      this.batches.push({ at: Date.now(), records, failures });
      const done = records.filter((record) => !failures.includes(record.messageId));
      if (done.length > 0) {
        await this.#client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: this.#queue.url,
            Entries: done.map((record, index) => ({
              Id: String(index),
              ReceiptHandle: record.receiptHandle,
            })),
          }),
        );
      }
    }
  }
}
