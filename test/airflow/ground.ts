/**
 * The ground the Airflow tests (integrations/airflow/tests) run real KubernetesPodOperator tasks
 * on: the local control plane (kube-apiserver, kube-scheduler, KWOK), DynamoDB Local, and
 * Podwarden's local loop (lib/local/poller.ts driving the shared reconcile code) polling tightly.
 *
 * It also answers EventBridge's PutEvents on loopback. Airflow's listener sends `Task Instance
 * Changed` there; each entry is wrapped as EventBridge would deliver it and dispatched through the
 * route table and the orchestrator intake the Lambda function uses. This receiver is a FAKE of
 * EventBridge (no local engine exists); it matches routes with lib/routes.ts, as the stack's
 * rules do. `GET /podwarden/audit?key=<task key>` returns a task's record and audit trail.
 *
 *   node test/airflow/ground.ts <state.json>
 *
 * writes {kubeconfig, namespace, cluster, eventsEndpoint, ...} to state.json once ready, and runs
 * until SIGTERM or SIGINT (or its stdin closes), then stops everything it started.
 * PODWARDEN_GROUND_POLICY (JSON) overrides policy fields.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { orchestratorIntake } from '../../functions/shared/intake.ts';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import type { OutboundEvent } from '../../lib/core/action.ts';
import { makePolicy, type Policy } from '../../lib/core/policy.ts';
import { startDynamoDbLocal } from '../../lib/devcluster/dynamodb-local.ts';
import { startControlPlane } from '../../lib/devcluster/index.ts';
import { Poller } from '../../lib/local/poller.ts';
import { type ReconcilerDeps, reconcile } from '../../lib/reconciler/reconcile.ts';
import { dispatch, routeTable } from '../../lib/routes.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { tableDefinition } from '../../lib/store/schema.ts';

const CLUSTER = 'local';
const NAMESPACE = 'airflow';
const TABLE = 'podwarden-airflow';
const ORCHESTRATOR_SOURCE = 'airflow.listener';
const POLL_PAUSE_MS = 150;

const statePath = process.argv[2];
if (!statePath) {
  process.stderr.write('usage: node test/airflow/ground.ts <state.json>\n');
  process.exit(2);
}

function log(line: string): void {
  process.stderr.write(`[ground ${new Date().toISOString()}] ${line}\n`);
}

function policyOverrides(): Partial<Policy> {
  const raw = process.env.PODWARDEN_GROUND_POLICY;
  if (!raw) return {};
  const parsed: unknown = JSON.parse(raw);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('PODWARDEN_GROUND_POLICY must be a JSON object of policy fields');
  }
  return parsed as Partial<Policy>;
}

const controlPlane = await startControlPlane({ nodes: 2, log });
const dynamo = await startDynamoDbLocal().catch(async (error: unknown) => {
  await controlPlane.stop();
  throw error;
});

const kc = new KubeConfig();
kc.loadFromFile(controlPlane.kubeconfigPath);
await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NAMESPACE } } });
const dynamoClient = new DynamoDBClient({
  region: 'local',
  endpoint: dynamo.endpoint,
  credentials: { accessKeyId: 'podwardenlocal', secretAccessKey: 'podwardenlocal' },
});
await dynamoClient.send(new CreateTableCommand(tableDefinition(TABLE)));
await waitUntilTableExists({ client: dynamoClient, maxWaitTime: 60 }, { TableName: TABLE });

const store = new DynamoTaskStore({ client: dynamoClient, tableName: TABLE });
const outbound: OutboundEvent[] = [];
const deps: ReconcilerDeps = {
  store,
  cluster: new KubeCluster(async () => kc),
  sink: { emit: async (events) => void outbound.push(...events) },
  // The design's re-create back-off (2 s, 4 s, 8 s) and budget as they are; the durations that
  // would make a scenario take minutes are shortened (and can be overridden per run).
  policy: makePolicy({
    goneGraceMs: 5_000,
    sidecarGraceMs: 3_000,
    finishedGraceMs: 2_000,
    reaperMinAgeMs: 1_000,
    pullRecheckBaseMs: 1_000,
    pullRecheckCapMs: 2_000,
    ...policyOverrides(),
  }),
  clock: Date.now,
  actor: 'local',
  log: {
    info() {},
    warn: (message: string) => log(`warn: ${message}`),
    error: (message: string) => log(`error: ${message}`),
  },
};
const poller = new Poller(deps, {
  cluster: CLUSTER,
  namespace: NAMESPACE,
  profile: 'airflow-kpo',
  maxDeletes: 10,
});

const intakeConfig = {
  clusters: new Map([[CLUSTER, { kind: 'kubeconfig' as const, path: controlPlane.kubeconfigPath }]]),
  profiles: ['airflow-kpo' as const],
  allowedNamespaces: [NAMESPACE],
  exporterSources: {},
  orchestratorSources: [ORCHESTRATOR_SOURCE],
};
const routes = routeTable({ orchestratorSources: [ORCHESTRATOR_SOURCE] });
const received: Array<{ detailType: string; detail: unknown; outcome: string }> = [];

interface PutEventsEntry {
  Source?: string;
  DetailType?: string;
  Detail?: string;
  EventBusName?: string;
  Time?: number;
}

/** One entry as EventBridge delivers it to a rule's target, through the Lambda's own intake. */
async function deliver(entry: PutEventsEntry): Promise<string> {
  const event = {
    version: '0',
    id: randomUUID(),
    'detail-type': entry.DetailType ?? '',
    source: entry.Source ?? '',
    account: '000000000000',
    time: new Date((entry.Time ?? Date.now() / 1000) * 1000).toISOString(),
    region: 'local',
    resources: [],
    detail: JSON.parse(entry.Detail ?? '{}') as unknown,
  };
  const route = dispatch(event, routes);
  if (route?.handler !== 'orchestrator') return `no route (${route?.handler ?? 'none'})`;
  const intake = orchestratorIntake(event, intakeConfig);
  if (intake.kind !== 'reconcile')
    return `${intake.kind}: ${'problem' in intake ? intake.problem : intake.reason}`;
  const result = await reconcile(deps, intake.target, intake.hints);
  return `reconciled (${JSON.stringify(result).slice(0, 120)})`;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function json(res: ServerResponse, status: number, value: unknown, type = 'application/json'): void {
  res
    .writeHead(status, { 'Content-Type': type, 'x-amzn-RequestId': randomUUID() })
    .end(JSON.stringify(value));
}

const server = createServer((req, res) => {
  void (async () => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/podwarden/audit') {
      const key = url.searchParams.get('key') ?? '';
      const id = { cluster: CLUSTER, namespace: NAMESPACE, key };
      json(res, 200, {
        task: (await store.get(id)) ?? null,
        audit: await store.listAudit(id),
        outbound: outbound.filter((event) => event.task.key === key),
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/podwarden/received') {
      json(res, 200, received);
      return;
    }
    if (req.method !== 'POST' || req.headers['x-amz-target'] !== 'AWSEvents.PutEvents') {
      json(
        res,
        400,
        { __type: 'UnknownOperationException', message: 'only AWSEvents.PutEvents' },
        'application/x-amz-json-1.1',
      );
      return;
    }
    const entries = (JSON.parse(await body(req)) as { Entries?: PutEventsEntry[] }).Entries ?? [];
    const results: Array<{ EventId: string }> = [];
    for (const entry of entries) {
      const outcome = await deliver(entry).catch((error: unknown) => `error: ${String(error)}`);
      received.push({
        detailType: entry.DetailType ?? '',
        detail: JSON.parse(entry.Detail ?? '{}'),
        outcome,
      });
      log(`PutEvents ${entry.DetailType} ${entry.Detail}: ${outcome}`);
      results.push({ EventId: randomUUID() });
    }
    json(res, 200, { FailedEntryCount: 0, Entries: results }, 'application/x-amz-json-1.1');
  })().catch((error: unknown) => json(res, 500, { __type: 'InternalException', message: String(error) }));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const eventsEndpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

let stopping = false;
const loop = (async () => {
  for (let pass = 0; !stopping; pass++) {
    try {
      await poller.poll(pass % 4 === 0);
    } catch (error) {
      log(`poll failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_PAUSE_MS));
  }
})();

await writeFile(
  statePath,
  JSON.stringify({
    kubeconfig: controlPlane.kubeconfigPath,
    server: controlPlane.server,
    namespace: NAMESPACE,
    cluster: CLUSTER,
    nodes: controlPlane.nodeNames,
    eventsEndpoint,
    orchestratorSource: ORCHESTRATOR_SOURCE,
    policy: deps.policy,
  }),
);
log(`ready: ${controlPlane.server}, PutEvents on ${eventsEndpoint}, namespace ${NAMESPACE}`);

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  await loop;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  dynamoClient.destroy();
  await dynamo.stop();
  await controlPlane.stop();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
// The pytest fixture holds our stdin: if it dies without a signal, stdin closes and we stop.
process.stdin.on('end', () => void shutdown('stdin closed'));
process.stdin.resume();
