import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal } from '../../lib/devcluster/dynamodb-local.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** http://127.0.0.1:<port> of the DynamoDB Local that the integration tier's globalSetup started. */
    dynamodbEndpoint: string;
  }
}

/** Starts DynamoDB Local (lib/devcluster/dynamodb-local.ts) and provides its URL as `dynamodbEndpoint`. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dynamo = await startDynamoDbLocal();
  project.provide('dynamodbEndpoint', dynamo.endpoint);
  return () => dynamo.stop();
}
