/**
 * The operator's commands as an operator runs them: the real `bin/podwarden` as a process, against
 * the local control plane (real scheduler, KWOK as kubelet) and DynamoDB Local.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import type { TaskRecord } from '../../lib/core/task.ts';
import { Poller } from '../../lib/local/poller.ts';
import { DynamoTaskStore } from '../../lib/store/dynamo-task-store.ts';
import { createTestTable, dynamodbEndpoint, type TestTable } from '../integration/support.ts';
import {
  createFakeNode,
  createTestNamespace,
  loadTestKubeConfig,
  priorityClasses,
  readPodOrUndefined,
  type TaskPodOptions,
  taskPod,
  waitFor,
} from './support.ts';

const CLI = new URL('../../bin/podwarden', import.meta.url).pathname;
const kc = loadTestKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const kubeconfig = inject('kubeconfigPath');
const RUN_ID = 'scheduled__2026-04-09T0900000000-2b8f1c3a4';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Only the variables the CLI needs: no AWS settings of the machine leak into a test. */
function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), ...extra };
}

function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, args, { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function kpoLabels(taskId: string, tryNumber = 1, dagId = 'etl'): Record<string, string> {
  return {
    kubernetes_pod_operator: 'True',
    dag_id: dagId,
    task_id: taskId,
    run_id: RUN_ID,
    try_number: String(tryNumber),
  };
}

function createPod(namespace: string, options: Omit<TaskPodOptions, 'namespace'>): Promise<V1Pod> {
  return core.createNamespacedPod({ namespace, body: taskPod({ ...options, namespace }) });
}

describe('podwarden status', () => {
  let namespace: string;
  let table: TestTable;
  let store: DynamoTaskStore;
  let poller: Poller;
  const tableArgs = () => ['--table', table.tableName, '--dynamodb-endpoint', dynamodbEndpoint()];
  const key = (taskId: string) => `etl/${taskId}/${RUN_ID}/-1`;

  beforeAll(async () => {
    namespace = await createTestNamespace(kc, 'cli-status');
    table = await createTestTable('podwarden-cli-status');
    store = new DynamoTaskStore({ client: table.client, tableName: table.tableName });
    const deps = {
      store,
      cluster: new KubeCluster(async () => kc),
      sink: { emit: async () => {} },
      policy: makePolicy({ sidecarGraceMs: 1_000, reaperMinAgeMs: 1_000, pullRecheckBaseMs: 1_000 }),
      clock: Date.now,
      actor: 'test:cli-status',
      log: { info() {}, warn() {}, error() {} },
    };
    poller = new Poller(deps, { cluster: 'local', namespace, profile: 'airflow-kpo', maxDeletes: 10 });

    // Seed 001 and 002 played out by the shared reconcile loop (the local polling transport).
    await createPod(namespace, {
      name: 'zombie-kpo-task-1',
      labels: kpoLabels('zombie'),
      behaviour: { kind: 'zombie-sidecar', code: 0 },
      sidecar: true,
      runForMs: 300,
      gracePeriodSeconds: 86_400,
    });
    await createPod(namespace, {
      name: 'pull-rate-limited',
      labels: kpoLabels('pull'),
      behaviour: { kind: 'pull-error', message: 'pull QPS exceeded.', clearAfterSeconds: 8 },
    });
    await createPod(namespace, {
      name: 'pull-missing-tag',
      labels: kpoLabels('missing'),
      behaviour: { kind: 'pull-error', message: 'manifest unknown: manifest tagged by "nope" is not found' },
    });
    const states = async () =>
      Object.fromEntries(
        await Promise.all(
          ['zombie', 'pull', 'missing'].map(async (id) => [
            id,
            (await store.get({ cluster: 'local', namespace, key: key(id) }))?.state,
          ]),
        ),
      );
    let seenWaiting = false;
    await waitFor('the seed tasks to settle', async () => {
      await poller.poll(true);
      const now = await states();
      if (now.pull === 'WaitingForImage') seenWaiting = true;
      const zombieGone = (await readPodOrUndefined(kc, namespace, 'zombie-kpo-task-1')) === undefined;
      return (
        now.zombie === 'Succeeded' &&
        zombieGone &&
        now.pull === 'Running' &&
        now.missing === 'Failed' &&
        seenWaiting
      );
    });
  });

  afterAll(async () => {
    await table?.drop();
  });

  it('lists every task of the namespace with its state, newest first, and counts them by state', async () => {
    const json = await runCli(['status', '-n', namespace, '--json', ...tableArgs()]);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const listing = JSON.parse(json.stdout) as {
      tasks: Array<{ key: string; state: string; cause?: string; tryNumber: number; firstSeenAt: string }>;
      counts: Record<string, number>;
      cut: boolean;
    };
    const byKey = Object.fromEntries(listing.tasks.map((t) => [t.key, t]));
    expect(byKey[key('zombie')]).toMatchObject({ state: 'Succeeded', tryNumber: 1 });
    expect(byKey[key('pull')]).toMatchObject({ state: 'Running' });
    expect(byKey[key('missing')]).toMatchObject({ state: 'Failed', cause: 'ImagePullPermanent' });
    expect(listing.counts).toEqual({ Running: 1, Succeeded: 1, Failed: 1 });
    expect(listing.cut).toBe(false);
    const seen = listing.tasks.map((t) => Date.parse(t.firstSeenAt));
    expect(seen).toEqual([...seen].sort((a, b) => b - a));

    const text = await runCli(['status', '--namespace', namespace, ...tableArgs()]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^CLUSTER +NAMESPACE +TASK +STATE +TRY +ATTEMPT +NEXT DUE +AGE +LAST EVIDENCE$/m,
    );
    expect(text.stdout).toMatch(new RegExp(`${key('missing')} +Failed \\(ImagePullPermanent\\) +1 +1 +-`));
    expect(text.stdout).toMatch(/^3 tasks: 1 Running, 1 Succeeded, 1 Failed$/m);
  });

  it('filters by state and since, and says when the output is cut', async () => {
    const failed = await runCli(['status', '-n', namespace, '--state', 'failed', '--json', ...tableArgs()]);
    expect((JSON.parse(failed.stdout) as { tasks: Array<{ key: string }> }).tasks.map((t) => t.key)).toEqual([
      key('missing'),
    ]);
    const none = await runCli(['status', '-n', namespace, '--since', '1s', '--json', ...tableArgs()]);
    expect(JSON.parse(none.stdout)).toMatchObject({ tasks: [], cut: false });
    const cut = await runCli(['status', '-n', namespace, '--limit', '2', ...tableArgs()]);
    expect(cut.code).toBe(0);
    expect(cut.stdout).toMatch(/^2 tasks: .* \(output cut at 2; more match\)$/m);
    expect(cut.stderr).toMatch(/^output cut at 2 tasks: narrow it with/);
  });

  it("shows one task's record, decision trail and the audit of its delete, by pod name", async () => {
    const text = await runCli(['status', 'zombie-kpo-task-1', ...tableArgs()]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(new RegExp(`^Task: +${key('zombie')}$`, 'm'));
    expect(text.stdout).toMatch(/^State: +Succeeded$/m);
    expect(text.stdout).toMatch(/^Decision trail:\n +TIME +FROM +TO +WHY\n.*Pending +Running/m);
    expect(text.stdout).toMatch(/Running +Succeeded +main container succeeded; sidecar never exited/);
    expect(text.stdout).toMatch(
      /^Audit:\n +TIME +WHAT .*\n.*reap:sidecar-zombie +zombie-kpo-task-1 +\S+ +deleted/m,
    );

    const json = await runCli([
      'status',
      key('pull'),
      '-c',
      'local',
      '-n',
      namespace,
      '--json',
      ...tableArgs(),
    ]);
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const shown = JSON.parse(json.stdout) as {
      task: TaskRecord & { capturedSpec: boolean };
      audit: unknown[];
    };
    expect(shown.task.state).toBe('Running');
    expect(shown.task.history.map((h) => h.to)).toContain('WaitingForImage');
    expect(shown.task.capturedSpec).toBe(true);
    expect(shown.task).not.toHaveProperty('captured');
  });

  it('exits 1 for a task it does not know and 2 for bad arguments, naming the problem', async () => {
    const missing = await runCli(['status', 'no-such-pod', ...tableArgs()]);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toBe('podwarden status: no task with key or pod name "no-such-pod"\n');
    const bad = await runCli(['status', '--since', 'yesterday', ...tableArgs()]);
    expect(bad).toEqual({
      code: 2,
      stdout: '',
      stderr: 'podwarden status: --since "yesterday" is not a duration like 90s, 15m or 2h\n',
    });
  });
});

describe('podwarden reap --dry-run', () => {
  let namespace: string;
  let foreign: string;
  const originals = new Map<string, string>();

  beforeAll(async () => {
    namespace = await createTestNamespace(kc, 'cli-reap');
    foreign = await createTestNamespace(kc, 'cli-reap-foreign');
    const pods: Array<[string, Omit<TaskPodOptions, 'namespace'>]> = [
      [
        namespace,
        {
          name: 'zombie-t1',
          labels: kpoLabels('zombie'),
          behaviour: { kind: 'zombie-sidecar', code: 0 },
          sidecar: true,
          runForMs: 200,
          gracePeriodSeconds: 86_400,
        },
      ],
      [namespace, { name: 'retry-t1', labels: kpoLabels('retry', 1), behaviour: { kind: 'run' } }],
      [namespace, { name: 'retry-t2', labels: kpoLabels('retry', 2), behaviour: { kind: 'run' } }],
      [
        namespace,
        {
          name: 'kept-t1',
          labels: kpoLabels('kept', 1),
          annotations: { 'podwarden.io/protect': 'true' },
          behaviour: { kind: 'run' },
        },
      ],
      [namespace, { name: 'kept-t2', labels: kpoLabels('kept', 2), behaviour: { kind: 'run' } }],
      [
        namespace,
        {
          name: 'no-identity',
          labels: { kubernetes_pod_operator: 'True', task_id: 'x', try_number: '1' },
          behaviour: { kind: 'run' },
        },
      ],
      [foreign, { name: 'other-t1', labels: kpoLabels('other', 1), behaviour: { kind: 'run' } }],
      [foreign, { name: 'other-t2', labels: kpoLabels('other', 2), behaviour: { kind: 'run' } }],
    ];
    for (const [ns, options] of pods) {
      const pod = await createPod(ns, options);
      originals.set(`${ns}/${options.name}`, pod.metadata?.uid ?? '');
    }
    // Old enough for --min-age 15s, and the zombie's main container has finished; the young pods
    // created next stay under 15 s for the few seconds the two runs below take.
    await waitFor('every first pod to be 16 s old, the zombie main container finished', async () => {
      const zombie = await readPodOrUndefined(kc, namespace, 'zombie-t1');
      const finished = zombie?.status?.containerStatuses?.some(
        (c) => c.name === 'base' && c.state?.terminated,
      );
      const ages = await Promise.all(
        pods.map(async ([ns, options]) => {
          const pod = await readPodOrUndefined(kc, ns, options.name);
          return Date.now() - Date.parse(String(pod?.metadata?.creationTimestamp ?? ''));
        }),
      );
      return finished && ages.every((age) => age >= 16_000);
    });
    for (const [name, tryNumber] of [
      ['young-t1', 1],
      ['young-t2', 2],
    ] as const) {
      const pod = await createPod(namespace, {
        name,
        labels: kpoLabels('young', tryNumber),
        behaviour: { kind: 'run' },
      });
      originals.set(`${namespace}/${name}`, pod.metadata?.uid ?? '');
    }
  });

  const reapArgs = () => [
    'reap',
    '--dry-run',
    '--kubeconfig',
    kubeconfig,
    '--namespaces',
    namespace,
    '--min-age',
    '15s',
    '--sidecar-grace',
    '1s',
  ];

  it('lists the zombie and the stale try, spares the protected, young, malformed and foreign pods, and deletes nothing', async () => {
    const [result, human] = await Promise.all([runCli([...reapArgs(), '--json']), runCli(reapArgs())]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const report = JSON.parse(result.stdout) as {
      dryRun: boolean;
      records: string;
      pods: Array<{
        namespace: string;
        name: string;
        verdict: string;
        rule?: string;
        evidence?: string;
        reason?: string;
      }>;
    };
    expect(report).toMatchObject({ dryRun: true, records: 'pods' });
    const of = (ns: string, name: string) => report.pods.find((p) => p.namespace === ns && p.name === name);
    expect(of(namespace, 'zombie-t1')).toMatchObject({
      verdict: 'would-delete',
      rule: 'sidecar-zombie',
      evidence: expect.stringMatching(/main container .*exited 0/),
    });
    expect(of(namespace, 'retry-t1'), JSON.stringify(report.pods, null, 1)).toMatchObject({
      verdict: 'would-delete',
      rule: 'stale-try',
      evidence: 'try 1 < highest try 2',
    });
    expect(of(namespace, 'kept-t1')).toMatchObject({
      verdict: 'spared',
      reason: 'protected (podwarden.io/protect=true)',
    });
    expect(of(namespace, 'young-t1')).toMatchObject({
      verdict: 'spared',
      reason: expect.stringMatching(/^too young/),
    });
    expect(of(namespace, 'no-identity')).toMatchObject({
      verdict: 'spared',
      reason: expect.stringMatching(/^malformed identity labels: .*dag_id/),
    });
    expect(of(foreign, 'other-t1')).toMatchObject({
      verdict: 'spared',
      reason: `outside the allowed namespaces (${namespace})`,
    });
    expect(of(namespace, 'young-t2')).toMatchObject({
      verdict: 'spared',
      reason: expect.stringMatching(/^too young/),
    });
    for (const name of ['retry-t2', 'kept-t2'])
      expect(of(namespace, name)).toMatchObject({
        verdict: 'spared',
        reason: expect.stringMatching(/^no rule applies/),
      });
    expect(
      report.pods
        .filter((p) => p.verdict !== 'spared')
        .map((p) => p.name)
        .sort(),
    ).toEqual(['retry-t1', 'zombie-t1']);

    // The same verdicts for humans.
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^would delete +\S+ +retry-t1 +stale-try +try 1 < highest try 2$/m);
    expect(human.stdout).toMatch(/^would delete +\S+ +zombie-t1 +sidecar-zombie +main container/m);
    expect(human.stdout).toMatch(/^spared +\S+ +kept-t1 +protected/m);
    expect(human.stdout).toMatch(/^spared +\S+ +young-t1 +too young/m);
    expect(human.stdout).toMatch(/would delete 2, deferred 0, spared \d+\.$/m);

    // Nothing was deleted: every pod is still there, the very same object.
    for (const [ref, uid] of originals) {
      const [ns, name] = ref.split('/') as [string, string];
      expect((await readPodOrUndefined(kc, ns, name))?.metadata?.uid, ref).toBe(uid);
    }
  });

  it('refuses to delete without --yes, and to delete without a table', async () => {
    const refused = await runCli(['reap', '--kubeconfig', kubeconfig, '--namespaces', namespace]);
    expect(refused).toMatchObject({ code: 2, stdout: '' });
    expect(refused.stderr).toMatch(/^podwarden reap: refusing to delete pods without --yes/);
    const noTable = await runCli(['reap', '--yes', '--kubeconfig', kubeconfig]);
    expect(noTable).toMatchObject({ code: 2 });
    expect(noTable.stderr).toMatch(/deleting needs --table/);
    expect((await readPodOrUndefined(kc, namespace, 'retry-t1'))?.metadata?.uid).toBe(
      originals.get(`${namespace}/retry-t1`),
    );
  });

  it('with --yes deletes as the Lambda reaper does: the zombie and the stale try, uid-checked and audited', async () => {
    const table = await createTestTable('podwarden-cli-reap');
    try {
      const result = await runCli([
        'reap',
        '--yes',
        '--kubeconfig',
        kubeconfig,
        '--namespaces',
        namespace,
        '--min-age',
        '15s',
        '--sidecar-grace',
        '1s',
        '--table',
        table.tableName,
        '--dynamodb-endpoint',
        dynamodbEndpoint(),
        '--json',
      ]);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      const report = JSON.parse(result.stdout) as {
        dryRun: boolean;
        records: string;
        pods: Array<{ name: string; verdict: string; outcome?: string }>;
      };
      expect(report).toMatchObject({ dryRun: false, records: 'table' });
      for (const name of ['retry-t1', 'zombie-t1']) {
        expect(report.pods.find((p) => p.name === name)).toMatchObject({
          verdict: 'deleted',
          outcome: 'deleted',
        });
        await waitFor(`${name} to be gone from the API server`, async () => {
          return (await readPodOrUndefined(kc, namespace, name)) === undefined;
        });
      }
      for (const [ns, name] of [
        [namespace, 'retry-t2'],
        [namespace, 'kept-t1'],
        [namespace, 'no-identity'],
        [foreign, 'other-t1'],
      ] as const) {
        expect((await readPodOrUndefined(kc, ns, name))?.metadata?.uid, name).toBe(
          originals.get(`${ns}/${name}`),
        );
      }
      const store = new DynamoTaskStore({ client: table.client, tableName: table.tableName });
      const audit = await store.listAudit({ cluster: 'local', namespace, key: `etl/retry/${RUN_ID}/-1` });
      expect(audit.find((a) => a.what === 'reap:stale-try')).toMatchObject({
        podName: 'retry-t1',
        podUid: originals.get(`${namespace}/retry-t1`),
        outcome: 'deleted',
        actor: 'cli:reap',
      });
    } finally {
      await table.drop();
    }
  });
});

describe('podwarden explain POD (live)', () => {
  it('reads the pod and its events from the cluster and gives the verdict a file would', async () => {
    const namespace = await createTestNamespace(kc, 'cli-explain');
    await createPod(namespace, {
      name: 'pull-limited',
      labels: kpoLabels('pull'),
      behaviour: { kind: 'pull-error', message: 'toomanyrequests: You have reached your pull rate limit.' },
    });
    const result = await waitFor('the pull error to show', async () => {
      const r = await runCli([
        'explain',
        'pull-limited',
        '-n',
        namespace,
        '--kubeconfig',
        kubeconfig,
        '--json',
      ]);
      const parsed = JSON.parse(r.stdout) as { verdict: { kind: string } };
      return parsed.verdict.kind === 'image-pull-transient' ? r : undefined;
    });
    expect(result.code).toBe(0);
    const live = JSON.parse(result.stdout) as { task: { key: string }; verdict: unknown; events: unknown[] };
    expect(live.task.key).toBe(`etl/pull/${RUN_ID}/-1`);
    const pod = await core.readNamespacedPod({ namespace, name: 'pull-limited' });
    const fromFile = await new Promise<CliResult>((resolve, reject) => {
      const child = spawn(CLI, ['explain', '-f', '-', '--json'], {
        env: cliEnv(),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr: '' }));
      child.stdin.end(JSON.stringify(pod));
    });
    expect((JSON.parse(fromFile.stdout) as { verdict: { kind: string } }).verdict.kind).toBe(
      'image-pull-transient',
    );

    const missing = await runCli(['explain', 'nope', '-n', namespace, '--kubeconfig', kubeconfig]);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toMatch(
      new RegExp(`^podwarden explain: pod ${namespace}/nope not found in context`),
    );
    const badContext = await runCli(['explain', 'x', '--kubeconfig', kubeconfig, '--context', 'nope']);
    expect(badContext).toMatchObject({ code: 2 });
    expect(badContext.stderr).toMatch(/--context "nope" is not in the kubeconfig \(contexts: /);
  });
});

/** Every process below `pid` now (children, their children, ...), from /proc. */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(entry), Number(fields[1]));
    } catch {
      // the process ended while we looked
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of parentOf) {
      if (ppid === parent) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('podwarden dev', () => {
  let dataDir: string;
  let child: ChildProcess | undefined;

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'podwarden-dev-test-'));
  });

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('re-creates a preempted pod under its name, and stops on SIGINT leaving no process behind', async () => {
    const namespace = await createTestNamespace(kc, 'cli-dev');
    const nodeName = `cli-dev-${namespace}`;
    const taint = { key: 'podwarden.test/dedicated', value: namespace, effect: 'NoSchedule' };
    await createFakeNode(kc, { name: nodeName, cpu: '1', memory: '1Gi', taints: [taint] });
    const placement = {
      nodeSelector: { 'kubernetes.io/hostname': nodeName },
      tolerations: [{ key: taint.key, operator: 'Equal' as const, value: taint.value, effect: taint.effect }],
    };

    let stdout = '';
    let stderr = '';
    const dev = spawn(
      CLI,
      [
        'dev',
        '--kubeconfig',
        kubeconfig,
        '--namespaces',
        namespace,
        '--data-dir',
        dataDir,
        '--timer-every',
        '2s',
      ],
      { env: cliEnv({ PODWARDEN_RECREATE_BACKOFF_BASE: '500ms' }), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = dev;
    dev.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    dev.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => dev.on('close', (code) => resolve(code)));
    const endpoint = await waitFor(
      'podwarden dev to start',
      async () => {
        if (dev.exitCode !== null) throw new Error(`podwarden dev exited ${dev.exitCode}: ${stderr}`);
        return /--dynamodb-endpoint (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
      },
      90_000,
    );

    const victim = await createPod(namespace, {
      name: 'load-vqfekgln',
      labels: kpoLabels('load', 1, 'dev'),
      behaviour: { kind: 'run' },
      priorityClassName: priorityClasses.taskLow.name,
      cpu: '700m',
      ...placement,
    });
    const statusArgs = [
      'status',
      'load-vqfekgln',
      '-c',
      'local',
      '-n',
      namespace,
      '--json',
      '--table',
      'podwarden-dev',
    ];
    const statusOf = async () => {
      const r = await runCli([...statusArgs, '--dynamodb-endpoint', endpoint]);
      return r.code === 0 ? (JSON.parse(r.stdout) as { task: TaskRecord }).task : undefined;
    };
    await waitFor('dev to supervise the task as Running with its spec', async () => {
      const task = await statusOf();
      return task?.state === 'Running';
    });

    await createPod(namespace, {
      name: 'calico-node-x',
      behaviour: { kind: 'run' },
      priorityClassName: priorityClasses.daemonHigh.name,
      cpu: '700m',
      ...placement,
    });
    const reborn = await waitFor(
      'the preempted pod to be re-created under its name as attempt 2',
      async () => {
        const pod = await readPodOrUndefined(kc, namespace, 'load-vqfekgln');
        return pod?.metadata?.labels?.['podwarden.io/attempt'] === '2' ? pod : undefined;
      },
      90_000,
    );
    expect(reborn.metadata?.uid).not.toBe(victim.metadata?.uid);
    expect(reborn.metadata?.annotations?.['podwarden.io/replaces-uid']).toBe(victim.metadata?.uid);
    const task = await waitFor('the record to show attempt 2', async () => {
      const t = await statusOf();
      return t?.attempt === 2 ? t : undefined;
    });
    expect(task.history.map((h) => h.to)).toContain('Recovering');
    expect(stdout).toMatch(/⇢ Task Recovered .*re-created pod load-vqfekgln as attempt 2/);
    expect(stdout.match(/⇢ Task Recovered/g)).toHaveLength(1);
    expect(stdout).toMatch(new RegExp(`leading \\(lease ${namespace}/podwarden-dev\\): watching and acting`));

    const tree = descendants(dev.pid!);
    expect(tree.length).toBeGreaterThan(0); // node itself under the wrapper, and DynamoDB Local's java
    dev.kill('SIGINT');
    const code = await Promise.race([
      exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000)),
    ]);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(
      /^stopped: watches closed, queue flushed, lease released, DynamoDB Local stopped\.$/m,
    );
    await waitFor(
      'every process of podwarden dev to be gone',
      async () => tree.every((pid) => !alive(pid)),
      20_000,
    );
    // The records outlive the process: they are in the data directory.
    expect(readdirSync(dataDir).some((name) => name.endsWith('.db'))).toBe(true);
  });
});
