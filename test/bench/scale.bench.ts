/**
 * Scale: `npm run bench -- scale [--pods 10000] [--from-source] [--reaper-only] [--steady N]`
 * (default 1,000 pods).
 *
 * Creates that many KubernetesPodOperator-like pods (airflow-kpo labels) on the local control plane,
 * on KWOK fake nodes, with DynamoDB Local as the store: 5% of the pods are sidecar zombies, 5% are
 * pods of a stale try (their task has a newer try's pod too). Then it runs, each in a fresh Node
 * process as one Lambda invocation would (scale/pass-worker.ts), a first reaper pass (no records yet),
 * a second one (records exist, zombies past their grace), a timer pass while that reaper pass's
 * resync note is fresh, and a timer pass with every task due and no fresh note, and
 * prints time, peak RSS and heap, calls by kind through the Cluster and TaskStore ports, and the
 * DynamoDB requests behind them. Last, on a table of its own, it counts the items written over one
 * ordinary lifecycle (Pending -> Running -> Succeeded) and over a real preemption and re-create.
 *
 * The passes' clock runs ahead of the wall clock (a few minutes per step) so that the pods are past
 * the reaper's minimum age and the zombies past their grace without the bench waiting for them.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { build } from 'esbuild';
import { Agent } from 'undici';
import { LAMBDA_BUNDLING, PASS_FUNCTION_NODE_OPTIONS } from '../../infra/bundling/options.ts';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import { DEFAULT_TIMER_BATCH_SIZE } from '../../lib/config.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import type { TaskRecord } from '../../lib/core/task.ts';
import { startDynamoDbLocal } from '../../lib/devcluster/dynamodb-local.ts';
import {
  fakeNodeManifest,
  priorityClasses,
  resolveControlPlaneBinaries,
  startControlPlane,
  taskPodManifest,
} from '../../lib/devcluster/index.ts';
import { Poller } from '../../lib/local/poller.ts';
import type { ReconcilerDeps } from '../../lib/reconciler/reconcile.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { tableDefinition } from '../../lib/store/schema.ts';
import type { Report } from './run.ts';
import { Counts, countDynamoRequests } from './scale/counting.ts';
import type { PassJob, PassOutcome } from './scale/pass-worker.ts';

const CLUSTER = 'bench';
const NAMESPACE = 'scale';
const LIFECYCLE_NAMESPACE = 'lifecycle';
const MINUTE = 60_000;
const CREATE_WIDTH = 32;
const PODS_PER_NODE = 2_500;
const WORKER_SOURCE = fileURLToPath(new URL('./scale/pass-worker.ts', import.meta.url));
const REFERENCE_WORK = fileURLToPath(new URL('./scale/reference-work.ts', import.meta.url));

/**
 * The pass worker bundled as the Lambda functions are (infra/podwarden-stack.ts's bundling options),
 * so the memory it reports is what a function's would be, not that of Node compiling TypeScript.
 */
async function bundleWorker(dir: string): Promise<string> {
  const outfile = join(dir, 'pass-worker.mjs');
  await build({
    entryPoints: [WORKER_SOURCE],
    outfile,
    bundle: true,
    platform: 'node',
    ...LAMBDA_BUNDLING,
    // SCALE_WORKER_MINIFY=false keeps the names readable in a profile (the figures are then not
    // the functions' own).
    minify: process.env.SCALE_WORKER_MINIFY !== 'false',
    mainFields: [...LAMBDA_BUNDLING.mainFields],
    banner: { js: LAMBDA_BUNDLING.banner },
    logLevel: 'error',
  });
  return outfile;
}
const credentials = { accessKeyId: 'podwardenlocal', secretAccessKey: 'podwardenlocal' };

function labels(task: number, tryNumber: number, dag = 'scale'): Record<string, string> {
  return {
    kubernetes_pod_operator: 'True',
    dag_id: dag,
    task_id: `t${task}`,
    run_id: 'scheduled__2026-12-01T0000000000-0a1b2c3d4',
    try_number: String(tryNumber),
  };
}

/** The pod mix: 5% of the pods are a stale try beside their task's newer pod, 5% are zombies. */
function podMix(pods: number): { stale: number; zombies: number } {
  return { stale: Math.round(pods * 0.05), zombies: Math.round(pods * 0.05) };
}

function podManifests(pods: number, nodes: string[]): V1Pod[] {
  const { stale, zombies } = podMix(pods);
  const tasks = pods - stale;
  const manifests: V1Pod[] = [];
  for (let task = 0; task < tasks; task++) {
    const newest = task < stale ? 2 : 1;
    const zombie = task >= stale && task < stale + zombies;
    for (let tryNumber = 1; tryNumber <= newest; tryNumber++) {
      manifests.push(
        taskPodManifest({
          name: `t${task}-try${tryNumber}`,
          namespace: NAMESPACE,
          labels: labels(task, tryNumber),
          behaviour: zombie ? { kind: 'zombie-sidecar', code: 0 } : { kind: 'run' },
          ...(zombie ? { sidecar: true, runForMs: 200 } : {}),
          // Placed directly: the scheduler is not what this bench measures, and 10,000 bindings
          // would only slow the set-up.
          nodeName: nodes[manifests.length % nodes.length]!,
        }),
      );
    }
  }
  // Zombies last: created within seconds of the end of the set-up, so that the first pass, two and
  // a half minutes after it, finds them short of their sidecar grace however long the set-up took.
  const isZombie = (pod: V1Pod) => pod.metadata?.labels?.['podwarden.test/behaviour'] === 'zombie-sidecar';
  return [...manifests.filter((pod) => !isZombie(pod)), ...manifests.filter(isZombie)];
}

async function inParallel<T>(items: T[], width: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

let WORKER = WORKER_SOURCE;

/** The local engines the passes call, by process name (Linux /proc), and what to print them as. */
const ENGINES: Record<string, string> = {
  java: 'DynamoDB Local',
  'kube-apiserver': 'kube-apiserver',
  etcd: 'etcd',
  kwok: 'kwok',
  'kube-scheduler': 'kube-scheduler',
};

/** CPU milliseconds each engine has used so far; empty where /proc cannot be read. */
async function engineCpuMs(): Promise<Map<string, number>> {
  const used = new Map<string, number>();
  const ticksPerMs = 100 / 1000; // USER_HZ, 100 on Linux
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  } catch {
    return used;
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (!(name in ENGINES)) continue;
    // After the name: state is field 3 of stat, utime and stime fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    used.set(name, (used.get(name) ?? 0) + ticks / ticksPerMs);
  }
  return used;
}

/** The machine's CPU ticks so far (all cores): in total, and stolen by the hypervisor. */
async function machineTicks(): Promise<{ total: number; steal: number } | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
    // cpu user nice system idle iowait irq softirq steal ...
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
    return { total: fields.reduce((sum, n) => sum + n, 0), steal: fields[7]! };
  } catch {
    return undefined;
  }
}

/** The API server's request counters (its /metrics), by verb, resource and answer. */
async function apiserverRequests(kc: KubeConfig): Promise<Map<string, number>> {
  const options: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  await kc.applyToHTTPSOptions(options as never);
  const agent = new Agent({ connect: { ca: options.ca, cert: options.cert, key: options.key } });
  try {
    const response = await agent.request({
      origin: kc.getCurrentCluster()!.server,
      path: '/metrics',
      method: 'GET',
    });
    const text = await response.body.text();
    const counts = new Map<string, number>();
    for (const match of text.matchAll(/^apiserver_request_total\{([^}]*)\} (\d+)$/gm)) {
      const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
      if (!labels.resource) continue;
      const resource = labels.subresource ? `${labels.resource}/${labels.subresource}` : labels.resource;
      const key = `${labels.verb} ${resource} ${labels.code}`;
      counts.set(key, (counts.get(key) ?? 0) + Number(match[2]));
    }
    return counts;
  } finally {
    await agent.close();
  }
}

interface MeasuredPass extends PassOutcome {
  /** Share of the machine's CPU time the hypervisor took for others during the pass. */
  stealShare?: number;
  /** Requests the API server answered during the pass, from every client, by kind. */
  apiserverRequests?: Record<string, number>;
}

async function runPass(job: PassJob, kc: KubeConfig): Promise<MeasuredPass> {
  const requestsBefore = await apiserverRequests(kc);
  const before = await engineCpuMs();
  const ticksBefore = await machineTicks();
  const outcome: MeasuredPass = await runPassProcess(job);
  const ticksAfter = await machineTicks();
  const after = await engineCpuMs();
  const requestsAfter = await apiserverRequests(kc);
  outcome.apiserverRequests = Object.fromEntries(
    [...requestsAfter]
      .map(([key, n]) => [key, n - (requestsBefore.get(key) ?? 0)] as const)
      .filter(([, n]) => n > 0),
  );
  outcome.engineCpuMs = Object.fromEntries(
    [...after].map(([name, ms]) => [ENGINES[name] ?? name, ms - (before.get(name) ?? 0)]),
  );
  if (ticksBefore && ticksAfter && ticksAfter.total > ticksBefore.total)
    outcome.stealShare = (ticksAfter.steal - ticksBefore.steal) / (ticksAfter.total - ticksBefore.total);
  return outcome;
}

/** The reference work's best time in a fresh process (scale/reference-work.ts). */
function timeReferenceWork(): Promise<{ wallMs: number; cpuMs: number }> {
  return runForLine('reference work', [REFERENCE_WORK], 'REFERENCE');
}

async function reportMachineSpeed(report: Report, when: string): Promise<void> {
  const { wallMs, cpuMs } = await timeReferenceWork();
  report(
    `machine speed ${when}`,
    `reference work ${wallMs.toFixed(0)} ms (${cpuMs.toFixed(0)} ms of CPU; lower is faster; a spot check: compare runs by the passes' CPU in all too)`,
  );
}

function runPassProcess(job: PassJob): Promise<PassOutcome> {
  // The pass functions' own V8 options (their heap as in a 512 MB function), then any given, e.g.
  // SCALE_WORKER_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the passes.
  const nodeOptions = [PASS_FUNCTION_NODE_OPTIONS, process.env.SCALE_WORKER_NODE_OPTIONS ?? '']
    .join(' ')
    .split(' ')
    .filter(Boolean);
  return runForLine('pass worker', [...nodeOptions, WORKER, JSON.stringify(job)], 'RESULT');
}

/** Runs a Node script in a fresh process and returns the JSON of its `<prefix> <json>` line. */
function runForLine<T>(what: string, args: string[], prefix: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = new RegExp(`^${prefix} (.*)$`, 'm').exec(stdout)?.[1];
      if (code !== 0 || !line) reject(new Error(`${what} exited ${code}:\n${stderr.slice(-4000)}`));
      else resolve(JSON.parse(line) as T);
    });
  });
}

function reportPass(report: Report, name: string, outcome: MeasuredPass): void {
  report(`${name}: time`, `${(outcome.ms / 1000).toFixed(2)} s`);
  report(
    `${name}: peak RSS / heap`,
    `${outcome.maxRssMb.toFixed(0)} MB / ${outcome.peakHeapMb.toFixed(0)} MB (at the RSS peak: heap committed ${outcome.atPeakRss.heapCommittedMb.toFixed(0)} MB, external ${outcome.atPeakRss.externalMb.toFixed(0)} MB)`,
  );
  if (outcome.phases.listEndMs > 0)
    report(
      `${name}: phases`,
      `list and its reconciles done at ${(outcome.phases.listEndMs / 1000).toFixed(2)} s, last delete at ${(outcome.phases.lastDeleteMs / 1000).toFixed(2)} s`,
    );
  const engines = Object.entries(outcome.engineCpuMs ?? {})
    .sort((a, b) => b[1] - a[1])
    .map(([engine, ms]) => `${engine} ${(ms / 1000).toFixed(1)} s`);
  report(
    `${name}: CPU`,
    [`the pass's own process ${(outcome.cpuMs / 1000).toFixed(1)} s`, ...engines].join(', ') +
      ` (the machine has ${availableParallelism()} cores)`,
  );
  const allCpuMs = outcome.cpuMs + Object.values(outcome.engineCpuMs ?? {}).reduce((sum, ms) => sum + ms, 0);
  report(
    `${name}: machine`,
    `${(allCpuMs / 1000).toFixed(1)} s of CPU in all, ${(outcome.ms / allCpuMs).toFixed(2)} s of the pass per CPU-second` +
      (outcome.stealShare === undefined
        ? ''
        : `, ${(outcome.stealShare * 100).toFixed(1)}% stolen by the hypervisor`),
  );
  report(`${name}: result`, JSON.stringify(outcome.result));
  const byKind = (prefix: string) =>
    Object.entries(outcome.counts)
      .filter(([kind]) => kind.startsWith(prefix))
      .sort((a, b) => b[1] - a[1])
      .map(([kind, value]) => `${kind.slice(prefix.length)} ${value}`)
      .join(', ');
  report(`${name}: Cluster calls`, byKind('cluster.'));
  report(`${name}: TaskStore calls`, byKind('store.'));
  report(`${name}: DynamoDB requests`, byKind('dynamodb.'));
  report(`${name}: items written`, byKind('written.') || 'none');
  report(
    `${name}: API server requests`,
    Object.entries(outcome.apiserverRequests ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', ') || 'none',
  );
}

export default async function scaleBench(report: Report, flags: string[]): Promise<void> {
  const { values } = parseArgs({
    args: flags,
    options: {
      pods: { type: 'string' },
      'from-source': { type: 'boolean' },
      // Only the two reaper passes: a quicker loop while working on the pass.
      'reaper-only': { type: 'boolean' },
      // Reaper passes after the second, with nothing left to delete: the pass a cluster runs every
      // five minutes once it is clean (also a steadier figure to compare changes by).
      steady: { type: 'string' },
    },
    strict: false,
  });
  const pods = Number(values.pods ?? 1_000);
  if (!Number.isInteger(pods) || pods < 20)
    throw new Error(`--pods must be a whole number >= 20, got ${values.pods}`);
  const steady = Number(values.steady ?? 0);
  if (!Number.isInteger(steady) || steady < 0)
    throw new Error(`--steady must be a whole number >= 0, got ${values.steady}`);
  try {
    resolveControlPlaneBinaries();
  } catch {
    report('scale', 'skipped (binaries not built: npm run controlplane:build)');
    return;
  }
  const workDir = await mkdtemp(join(tmpdir(), 'podwarden-scale-'));
  WORKER = values['from-source'] ? WORKER_SOURCE : await bundleWorker(workDir);
  report(
    'passes run from',
    values['from-source'] ? 'TypeScript sources' : "a bundle built like the functions'",
  );
  const controlPlane = await startControlPlane({ nodes: 0, startTimeoutMs: 300_000 });
  const dynamo = await startDynamoDbLocal();
  const client = new DynamoDBClient({ region: 'local', endpoint: dynamo.endpoint, credentials });
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(controlPlane.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    for (const table of ['scale', 'lifecycle']) {
      await client.send(new CreateTableCommand(tableDefinition(table)));
      await waitUntilTableExists({ client, maxWaitTime: 60 }, { TableName: table });
    }
    const nodes = Array.from({ length: Math.ceil(pods / PODS_PER_NODE) }, (_, n) => `scale-${n}`);
    for (const name of nodes)
      await core.createNode({
        body: fakeNodeManifest({ name, cpu: '1000', memory: '4000Gi', pods: String(PODS_PER_NODE + 100) }),
      });
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });

    const manifests = podManifests(pods, nodes);
    let started = performance.now();
    await inParallel(manifests, CREATE_WIDTH, (body) =>
      core.createNamespacedPod({ namespace: NAMESPACE, body }),
    );
    // The passes' clock, from the end of the creates: every pod past the reaper's minimum age (2 min)
    // at the first pass, the zombies short of their sidecar grace (5 min) then and past it at the
    // second, every running task's resync (10 min) due at the timer passes.
    const createdAt = Date.now();
    const at = (minutes: number) => createdAt + minutes * MINUTE - Date.now();
    report(`set-up: ${pods} pods created`, `${((performance.now() - started) / 1000).toFixed(1)} s`);
    started = performance.now();
    const cluster = new KubeCluster(async () => kc);
    await until(
      'every pod running (zombies: main container terminated)',
      async () => {
        const listed = await cluster.listPods(CLUSTER, { namespace: NAMESPACE });
        const ready = listed.filter(
          (pod) =>
            pod.status?.phase === 'Running' &&
            (pod.metadata.labels?.['podwarden.test/behaviour'] !== 'zombie-sidecar' ||
              pod.status.containerStatuses?.some((c) => c.name === 'base' && c.state?.terminated)),
        ).length;
        return ready === pods ? ready : undefined;
      },
      30 * MINUTE,
    );
    report('set-up: KWOK ran every pod', `${((performance.now() - started) / 1000).toFixed(1)} s`);

    await reportMachineSpeed(report, 'before the passes');
    const job: PassJob = {
      pass: 'reaper',
      kubeconfigPath: controlPlane.kubeconfigPath,
      dynamoEndpoint: dynamo.endpoint,
      tableName: 'scale',
      cluster: CLUSTER,
      namespace: NAMESPACE,
      policy: {},
      clockOffsetMs: at(2.5),
      maxDeletes: 10,
      timerLimit: DEFAULT_TIMER_BATCH_SIZE,
    };
    // The passes' clock is minutes apart, the wall clock's only seconds: before the next pass, the
    // pods a pass deleted are waited for until they are gone, as they would be minutes later.
    const deletedPodsGone = () =>
      until(
        'the pods the pass deleted to be gone',
        async () => {
          const listed = await cluster.listPods(CLUSTER, { namespace: NAMESPACE });
          return listed.every((pod) => !pod.metadata.deletionTimestamp) ? true : undefined;
        },
        5 * MINUTE,
      );
    reportPass(report, `reaper pass 1 (${pods} pods, no records yet)`, await runPass(job, kc));
    await deletedPodsGone();
    // Past the zombies' sidecar grace (5 min after the first pass saw their main container end).
    reportPass(
      report,
      `reaper pass 2 (${pods} pods, records exist)`,
      await runPass({ ...job, clockOffsetMs: at(8.5) }, kc),
    );
    await deletedPodsGone();
    // Pass 1 deleted the stale tries, pass 2 the zombies.
    const { stale, zombies } = podMix(pods);
    for (let pass = 1; pass <= steady; pass++)
      reportPass(
        report,
        `reaper pass ${pass + 2} (${pods - stale - zombies} pods, nothing left to delete)`,
        await runPass({ ...job, clockOffsetMs: at(8.5 + pass * 0.25) }, kc),
      );
    await reportMachineSpeed(report, 'after the reaper passes');
    if (values['reaper-only']) return;
    // Past every running task's resync (10 min after the first pass), while the second pass's
    // resync note is fresh: the timer passes over those resyncs by their index keys.
    const covered = await runPass({ ...job, pass: 'timer', clockOffsetMs: at(13.5) }, kc);
    reportPass(report, 'timer pass (resyncs due, reaper pass noted 5 min ago)', covered);
    // The note is older than the resync interval (no reaper pass since): every resync is the timer's.
    const timer = await runPass({ ...job, pass: 'timer', clockOffsetMs: at(25) }, kc);
    reportPass(
      report,
      `timer pass (every task due, no fresh note, batch ${DEFAULT_TIMER_BATCH_SIZE})`,
      timer,
    );
    const handled = (timer.result as { reconciled?: number }).reconciled ?? 0;
    report(
      'timer: due tasks reconciled per minute of one invocation',
      `${Math.round(Math.min(handled, (handled * MINUTE) / timer.ms)).toLocaleString('en')} (${handled} in ${(timer.ms / 1000).toFixed(1)} s)`,
    );

    await lifecycleFigures(report, kc, client, dynamo.endpoint);
  } finally {
    client.destroy();
    await dynamo.stop();
    await controlPlane.stop();
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Items written over whole task lifecycles, driven by the local runtime's poller on a table of its own. */
async function lifecycleFigures(
  report: Report,
  kc: KubeConfig,
  _client: DynamoDBClient,
  endpoint: string,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: LIFECYCLE_NAMESPACE } } });
  const counts = new Counts();
  const counted = new DynamoDBClient({ region: 'local', endpoint, credentials });
  countDynamoRequests(counted, counts);
  const store = new DynamoTaskStore({ client: counted, tableName: 'lifecycle' });
  const deps: ReconcilerDeps = {
    store,
    cluster: new KubeCluster(async () => kc),
    sink: { emit: async () => {} },
    policy: makePolicy({}),
    clock: Date.now,
    actor: 'bench:lifecycle',
    log: { info() {}, warn() {}, error() {} },
  };
  const poller = new Poller(deps, {
    cluster: CLUSTER,
    namespace: LIFECYCLE_NAMESPACE,
    profile: 'airflow-kpo',
    maxDeletes: 10,
  });
  const readTask = (task: number) =>
    store.get({
      cluster: CLUSTER,
      namespace: LIFECYCLE_NAMESPACE,
      key: `life/t${task}/scheduled__2026-12-01T0000000000-0a1b2c3d4/-1`,
    });
  const drive = (
    what: string,
    task: number,
    done: (t: TaskRecord) => boolean,
    onPoll?: () => Promise<void>,
  ) =>
    until(
      what,
      async () => {
        await poller.poll();
        await onPoll?.();
        const record = await readTask(task);
        return record && done(record) ? record : undefined;
      },
      5 * MINUTE,
    );
  const written = () => counts.entries('written.').filter(([kind]) => kind !== 'written.seen');
  const describeWrites = (before: Array<[string, number]>) => {
    const base = new Map(before);
    const delta = written().map(
      ([kind, value]) => [kind.slice('written.'.length), value - (base.get(kind) ?? 0)] as const,
    );
    const items = delta
      .filter(([kind]) => kind === 'task' || kind === 'old-pod')
      .reduce((sum, [, n]) => sum + n, 0);
    return `${items} (${delta.map(([kind, n]) => `${kind} ${n}`).join(', ')})`;
  };

  // Ordinary: Pending -> Running -> Succeeded. The pod waits 3 s before it starts, so that Pending
  // is seen, as it is when a node pulls the image.
  let before = written();
  await core.createNamespacedPod({
    namespace: LIFECYCLE_NAMESPACE,
    body: taskPodManifest({
      name: 'ordinary-1',
      namespace: LIFECYCLE_NAMESPACE,
      labels: labels(1, 1, 'life'),
      behaviour: { kind: 'exit', code: 0 },
      runForMs: 3_000,
      priorityClassName: priorityClasses.taskLow.name,
    }),
  });
  const ordinary = await drive('the ordinary task to succeed', 1, (t) => t.state === 'Succeeded');
  report(
    'items written, ordinary lifecycle',
    `${describeWrites(before)}; states ${['Pending', ...ordinary.history.map((h) => h.to)].join(' -> ')}`,
  );

  // Preemption: the scheduler preempts the task pod for a daemon; Podwarden re-creates it once the
  // old pod is gone, the daemon is removed so the new pod can run, and the task succeeds.
  const node = 'lifecycle-node';
  const taint = { key: 'podwarden.bench/dedicated', value: 'lifecycle', effect: 'NoSchedule' };
  await core.createNode({ body: fakeNodeManifest({ name: node, cpu: '1', memory: '1Gi', taints: [taint] }) });
  const placement = {
    nodeSelector: { 'kubernetes.io/hostname': node },
    tolerations: [{ key: taint.key, operator: 'Equal', value: taint.value, effect: taint.effect }],
  };
  before = written();
  const victim = await core.createNamespacedPod({
    namespace: LIFECYCLE_NAMESPACE,
    body: taskPodManifest({
      name: 'preempted-2',
      namespace: LIFECYCLE_NAMESPACE,
      labels: labels(2, 1, 'life'),
      behaviour: { kind: 'exit', code: 0 },
      runForMs: 8_000,
      priorityClassName: priorityClasses.taskLow.name,
      cpu: '700m',
      ...placement,
    }),
  });
  await drive('the preemption victim to run', 2, (t) => t.state === 'Running');
  await core.createNamespacedPod({
    namespace: LIFECYCLE_NAMESPACE,
    body: taskPodManifest({
      name: 'daemon',
      namespace: LIFECYCLE_NAMESPACE,
      behaviour: { kind: 'run' },
      priorityClassName: priorityClasses.daemonHigh.name,
      cpu: '700m',
      ...placement,
    }),
  });
  let daemonRemoved = false;
  const recovered = await drive(
    'the re-created task to succeed',
    2,
    (t) => t.state === 'Succeeded',
    async () => {
      if (daemonRemoved) return;
      const record = await readTask(2);
      if (record && record.attempt >= 2) {
        await core.deleteNamespacedPod({
          namespace: LIFECYCLE_NAMESPACE,
          name: 'daemon',
          gracePeriodSeconds: 0,
        });
        daemonRemoved = true;
      }
    },
  );
  report(
    'items written, preemption and re-create',
    `${describeWrites(before)}; attempt ${recovered.attempt}, uid ${victim.metadata?.uid?.slice(0, 8)} -> ${recovered.podUid?.slice(0, 8)}`,
  );
  counted.destroy();
}
