// Bundles every function the way `cdk deploy` does (NodejsFunction with the installed esbuild), then
// runs each bundle on its own, outside the repository, in the Node 24 the Lambda runtime matches:
// the bundle must carry all its dependencies and answer an invocation through middy and Powertools.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRIC, METRICS_NAMESPACE } from '../../functions/shared/metric-names.ts';
import { PodwardenStack } from '../../infra/podwarden-stack.ts';
import { FUNCTION_NAMES, type FunctionName, HANDLER_NAMES } from '../../lib/routes.ts';
import { CA_DATA } from '../support/ca.ts';

const NODE_24 = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const CLUSTERS = {
  prod: {
    kind: 'eks' as const,
    clusterName: 'prod',
    endpoint: 'https://abc.eks.amazonaws.com',
    caData: CA_DATA,
    region: 'eu-west-1',
  },
};

let outdir: string;
const bundleDirs = new Map<FunctionName, string>();

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'podwarden-cdk-'));
  const app = new App({ outdir });
  const stack = new PodwardenStack(app, 'PodwardenBundle', {
    clusters: CLUSTERS,
    allowedNamespaces: ['airflow'],
  });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as {
    Resources: Record<string, { Properties: { Code?: { S3Key?: string } } }>;
  };
  for (const handler of FUNCTION_NAMES) {
    const id = stack.getLogicalId(stack.functions[handler].function.node.defaultChild as never);
    const key = template.Resources[id]?.Properties.Code?.S3Key;
    if (!key) throw new Error(`no code asset for ${handler}`);
    bundleDirs.set(handler, join(outdir, `asset.${key.replace(/\.zip$/, '')}`));
  }
});

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

/** Invokes the bundled handler in a fresh Node process, as the Lambda runtime would load it. */
function invokeBundle(
  handler: FunctionName,
  event: unknown,
): { result: unknown; lines: Array<Record<string, unknown>> } {
  const script = `
    const { handler } = await import('./index.mjs');
    const context = {
      functionName: 'podwarden-${handler}', functionVersion: '$LATEST', awsRequestId: 'request-1',
      invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:podwarden-${handler}',
      memoryLimitInMB: '512', logGroupName: '/aws/lambda/podwarden', logStreamName: 'stream',
      callbackWaitsForEmptyEventLoop: true, getRemainingTimeInMillis: () => 60000,
    };
    const result = await handler(JSON.parse(process.argv[1]), context);
    console.log('RESULT ' + JSON.stringify(result));
  `;
  const run = spawnSync(NODE_24, ['--input-type=module', '-e', script, JSON.stringify(event)], {
    cwd: bundleDirs.get(handler),
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      PATH: process.env.PATH,
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'unused',
      AWS_SECRET_ACCESS_KEY: 'unused',
      PODWARDEN_TABLE_NAME: 'podwarden-tasks',
      PODWARDEN_EVENT_BUS_NAME: 'podwarden',
      PODWARDEN_CLUSTERS: JSON.stringify(CLUSTERS),
      PODWARDEN_ALLOWED_NAMESPACES: 'airflow',
    },
  });
  expect(run.status, run.stderr).toBe(0);
  const resultLine = run.stdout.split('\n').find((line) => line.startsWith('RESULT '));
  // Powertools writes metrics to stdout and error-level log lines to stderr, as in Lambda.
  const lines = `${run.stdout}\n${run.stderr}`
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { result: resultLine ? JSON.parse(resultLine.slice('RESULT '.length)) : undefined, lines };
}

describe('function bundles', () => {
  it.each(HANDLER_NAMES)('%s loads on its own and rejects a malformed event with a metric', (handler) => {
    const { result, lines } = invokeBundle(handler, {
      source: 'nobody',
      'detail-type': 'Nothing',
      detail: {},
    });
    expect(result).toMatchObject({ outcome: 'rejected', problem: expect.stringContaining('nobody') });
    const log = lines.find((line) => line.message === 'malformed event rejected');
    expect(log).toMatchObject({ level: 'ERROR', handler, function_request_id: 'request-1' });
    const emf = lines.find((line) => METRIC.malformedEvents in line);
    expect(emf).toMatchObject({ [METRIC.malformedEvents]: 1, service: 'podwarden' });
    expect(JSON.stringify(emf?._aws)).toContain(METRICS_NAMESPACE);
  });

  it('check loads on its own, drops a malformed record with a metric, and fails no record for it', () => {
    const { result, lines } = invokeBundle('check', {
      Records: [
        {
          messageId: 'message-1',
          receiptHandle: 'receipt-1',
          body: '{"v": 1, "task": "nope"}',
          attributes: {},
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:Podwarden-CheckQueue',
          awsRegion: 'eu-west-1',
        },
      ],
    });
    expect(result).toEqual({ batchItemFailures: [] });
    const log = lines.find((line) => line.message === 'malformed event rejected');
    expect(log).toMatchObject({
      level: 'ERROR',
      handler: 'check',
      problem: expect.stringContaining('body.'),
    });
    expect(lines.find((line) => METRIC.malformedEvents in line)).toMatchObject({
      [METRIC.malformedEvents]: 1,
    });
  });
});
