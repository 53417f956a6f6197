import { randomUUID } from 'node:crypto';
import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { tableDefinition, timeToLiveDefinition } from '../../lib/store/schema.ts';

const TABLE_READY_SECONDS = 60;

/** The endpoint of the DynamoDB Local started by test/setup/dynamodb.ts; never an AWS endpoint. */
export function dynamodbEndpoint(): string {
  const endpoint = inject('dynamodbEndpoint');
  const { hostname } = new URL(endpoint);
  if (hostname !== '127.0.0.1') throw new Error(`integration tests talk to loopback only, got ${endpoint}`);
  return endpoint;
}

/**
 * A client for DynamoDB Local. The credentials and region are dummies (letters and digits only, as DynamoDB Local demands; it keeps one
 * database per access key and region, so every client here must use the same pair).
 */
export function localDynamoDBClient(config: Partial<DynamoDBClientConfig> = {}): DynamoDBClient {
  return new DynamoDBClient({
    region: 'local',
    credentials: { accessKeyId: 'podwardenlocal', secretAccessKey: 'podwardenlocal' },
    ...config,
    endpoint: dynamodbEndpoint(),
  });
}

export interface TestTable {
  client: DynamoDBClient;
  tableName: string;
  /** Deletes the table and closes the client. */
  drop(): Promise<void>;
}

/** A fresh table laid out exactly as production's (tableDefinition), TTL enabled, for one test file. */
export async function createTestTable(prefix = 'podwarden-test'): Promise<TestTable> {
  const client = localDynamoDBClient();
  const tableName = `${prefix}-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateTableCommand(tableDefinition(tableName)));
  await waitUntilTableExists({ client, maxWaitTime: TABLE_READY_SECONDS }, { TableName: tableName });
  await client.send(new UpdateTimeToLiveCommand(timeToLiveDefinition(tableName)));
  return {
    client,
    tableName,
    async drop() {
      try {
        await client.send(new DeleteTableCommand({ TableName: tableName }));
      } finally {
        client.destroy();
      }
    },
  };
}
