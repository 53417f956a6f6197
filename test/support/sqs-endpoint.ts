import { inject } from 'vitest';

/** The endpoint of the ElasticMQ started by test/setup/elasticmq.ts; never an AWS endpoint. */
export function sqsEndpoint(): string {
  const endpoint = inject('sqsEndpoint');
  if (new URL(endpoint).hostname !== '127.0.0.1')
    throw new Error(`tests talk to loopback only, got ${endpoint}`);
  return endpoint;
}
