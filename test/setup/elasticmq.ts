import type { TestProject } from 'vitest/node';
import { startElasticMq } from '../../lib/devcluster/elasticmq.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** http://127.0.0.1:<port> of the ElasticMQ (SQS-compatible) server the globalSetup started. */
    sqsEndpoint: string;
  }
}

/** Starts ElasticMQ (lib/devcluster/elasticmq.ts) and provides its URL as `sqsEndpoint`. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const elasticMq = await startElasticMq();
  project.provide('sqsEndpoint', elasticMq.endpoint);
  return () => elasticMq.stop();
}
