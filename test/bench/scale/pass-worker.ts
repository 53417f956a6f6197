/**
 * One timer or reaper pass in a process of its own, as one Lambda invocation runs it: a fresh heap,
 * so the peak RSS and heap it reports are the pass's own. The scale bench starts it with a JSON job
 * as its argument and reads the `RESULT` line it prints.
 */
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KubeConfig } from '@kubernetes/client-node';
import { AWS_CLIENT_OPTIONS } from '../../../functions/shared/aws-clients.ts';
import { KubeCluster } from '../../../lib/cluster/kube-cluster.ts';
import { makePolicy, type Policy } from '../../../lib/core/policy.ts';
import type { Cluster, TaskStore } from '../../../lib/core/ports.ts';
import { runReaperPass, runTimerPass } from '../../../lib/reconciler/passes.ts';
import type { ReconcilerDeps } from '../../../lib/reconciler/reconcile.ts';
import { DynamoTaskStore } from '../../../lib/store/dynamo-task-store.ts';
import { Counts, countDynamoRequests, countingPort } from './counting.ts';

export interface PassJob {
  pass: 'reaper' | 'timer';
  kubeconfigPath: string;
  dynamoEndpoint: string;
  tableName: string;
  cluster: string;
  namespace: string;
  policy: Partial<Policy>;
  /** Added to the wall clock, to make tasks due without waiting for them. */
  clockOffsetMs: number;
  maxDeletes: number;
  timerLimit: number;
}

export interface PassOutcome {
  ms: number;
  maxRssMb: number;
  peakHeapMb: number;
  /** What the RSS was made of when it peaked: V8's committed heap and the memory outside it. */
  atPeakRss: { heapCommittedMb: number; externalMb: number };
  /** Milliseconds from the pass's start to the end of its list, and to its last delete. */
  phases: { listEndMs: number; lastDeleteMs: number };
  /** CPU the pass's process used (user and system), what a Lambda function would be billed for. */
  cpuMs: number;
  /** CPU the local engines used meanwhile, by engine (filled in by the bench, not the worker). */
  engineCpuMs?: Record<string, number>;
  counts: Record<string, number>;
  result: unknown;
  logs: Record<string, number>;
}

const job = JSON.parse(process.argv[2] ?? '{}') as PassJob;
const counts = new Counts();
const logs = new Counts();
// Built as the functions build theirs (functions/shared/deps.ts).
const client = new DynamoDBClient({
  ...AWS_CLIENT_OPTIONS,
  region: 'local',
  endpoint: job.dynamoEndpoint,
  credentials: { accessKeyId: 'podwardenlocal', secretAccessKey: 'podwardenlocal' },
});
countDynamoRequests(client, counts);
const kc = new KubeConfig();
kc.loadFromFile(job.kubeconfigPath);
const store: TaskStore = countingPort(
  new DynamoTaskStore({ client, tableName: job.tableName }),
  counts,
  'store',
);
const kube = new KubeCluster(async () => kc);
// Where the pass's time goes: from its start to the end of the list (pages read and their tasks
// reconciled as they come), then to the last delete.
const phases = { listEndMs: 0, lastDeleteMs: 0 };
// Pages of a paged list, besides the call itself: the API server's view of what a list costs.
const paging: Cluster = {
  getPod: (...args) => kube.getPod(...args),
  createPod: (...args) => kube.createPod(...args),
  deletePod: async (...args) => {
    try {
      return await kube.deletePod(...args);
    } finally {
      phases.lastDeleteMs = performance.now() - started;
    }
  },
  listEvents: (...args) => kube.listEvents(...args),
  createEvent: (...args) => kube.createEvent(...args),
  listPods: (name, options) => {
    const onPage = options.onPage;
    return kube
      .listPods(
        name,
        onPage
          ? {
              ...options,
              onPage: async (pods) => {
                counts.add('cluster.list pages');
                await onPage(pods);
              },
            }
          : options,
      )
      .finally(() => {
        phases.listEndMs = Math.max(phases.listEndMs, performance.now() - started);
      });
  },
};
const cluster: Cluster = countingPort(paging, counts, 'cluster');
const deps: ReconcilerDeps = {
  store,
  cluster,
  sink: { emit: async () => {} },
  policy: makePolicy(job.policy),
  clock: () => Date.now() + job.clockOffsetMs,
  actor: `bench:${job.pass}`,
  log: {
    info: (message) => logs.add(message),
    warn: (message) => logs.add(message),
    error: (message, fields) => {
      logs.add(message);
      if (logs.get(message) <= 3) console.error(message, JSON.stringify(fields));
    },
  },
};

// Sampled, not process.resourceUsage().maxRSS: Linux carries the parent's high-water mark across
// exec, so that would report the bench's own RSS. Every 25 ms: at 10 ms the sampling took 1% of a pass.
let started = 0;
let peakHeap = 0;
let peakRss = 0;
let atPeakRss = { heapCommittedMb: 0, externalMb: 0 };
const sample = () => {
  const heap = getHeapStatistics();
  peakHeap = Math.max(peakHeap, heap.used_heap_size);
  const rss = process.memoryUsage.rss();
  if (rss <= peakRss) return;
  peakRss = rss;
  atPeakRss = {
    heapCommittedMb: heap.total_heap_size / 2 ** 20,
    externalMb: (heap.external_memory ?? 0) / 2 ** 20,
  };
};
const sampler = setInterval(sample, 25);
started = performance.now();
const cpuBefore = process.cpuUsage();
const result =
  job.pass === 'reaper'
    ? await runReaperPass(deps, {
        cluster: job.cluster,
        profiles: ['airflow-kpo'],
        namespaces: [job.namespace],
        maxDeletes: job.maxDeletes,
        // SCALE_PASS_CONCURRENCY: reconciles in flight, to try another width than the functions'.
        ...(process.env.SCALE_PASS_CONCURRENCY
          ? { concurrency: Number(process.env.SCALE_PASS_CONCURRENCY) }
          : {}),
      })
    : await runTimerPass(deps, job.timerLimit);
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
clearInterval(sampler);
sample();
const outcome: PassOutcome = {
  ms,
  maxRssMb: peakRss / 2 ** 20,
  peakHeapMb: peakHeap / 2 ** 20,
  atPeakRss,
  phases,
  cpuMs: (cpu.user + cpu.system) / 1000,
  counts: counts.toJSON(),
  result: { ...result, malformed: (result as { malformed?: unknown[] }).malformed?.length },
  logs: logs.toJSON(),
};
console.log(`RESULT ${JSON.stringify(outcome)}`);
client.destroy();
