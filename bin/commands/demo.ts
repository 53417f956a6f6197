/**
 * `podwarden demo`: the three seed failures on a local control plane (etcd, kube-apiserver,
 * kube-scheduler, KWOK), with Podwarden running as `podwarden dev` runs it (lib/local/runtime.ts:
 * the bridge feeding the functions' handlers in-process, the timer and the reaper on schedules,
 * DynamoDB Local as the store) and a script that makes the failures happen and narrates them.
 * Everything runs on loopback and is stopped at the end.
 */
import { parseArgs } from 'node:util';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { TaskRecord } from '../../lib/core/task.ts';
import { priorityClasses, startControlPlane, taskPodManifest } from '../../lib/devcluster/index.ts';
import type { LocalRuntime, RuntimeReport } from '../../lib/local/runtime.ts';
import { quietFunctions } from '../cli-support.ts';
import { type CommandIO, EXIT } from '../command.ts';

const USAGE = `usage: podwarden demo [--keep]

Starts a local Kubernetes control plane and, against it, Podwarden as \`podwarden dev\` runs it
(DynamoDB Local as its store), then shows Podwarden fixing:
  1. a task pod preempted by a daemon (re-created under the same name),
  2. a task pod whose sidecar never exits (ended by the main exit code, then deleted),
  3. a registry rate limit on the image pull (waited out, then followed to Running).
Needs Go (first run builds the control plane into ~/.cache/podwarden), Java 17 and openssl.
  --keep   leave the control plane's work directory (kubeconfig, logs) on disk`;

const NAMESPACE = 'airflow';
const CLUSTER = 'local';
const RUN_ID = 'manual__2026-11-23T0900000000-7c1e2d9a0';

/** The design's durations, shortened so the demo takes a minute; the logic is the same. */
const DEMO_POLICY_ENV = {
  PODWARDEN_RECREATE_BACKOFF_BASE: '1s',
  PODWARDEN_SIDECAR_GRACE: '3s',
  PODWARDEN_FINISHED_GRACE: '3s',
  PODWARDEN_REAPER_MIN_AGE: '0s',
  PODWARDEN_PULL_RECHECK_BASE: '2s',
  PODWARDEN_PULL_RECHECK_CAP: '4s',
};

export async function run(argv: string[], io: CommandIO): Promise<number> {
  let keep = false;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      io.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
    }
    keep = values.keep ?? false;
  } catch (error) {
    io.stderr.write(`podwarden demo: ${(error as Error).message}\n${USAGE}\n`);
    return EXIT.usage;
  }
  const say = (line: string) => io.stdout.write(`${line}\n`);
  say('Starting the local control plane (etcd, kube-apiserver, kube-scheduler, KWOK) ...');
  const controlPlane = await startControlPlane({
    nodes: 1,
    ...(keep ? { workDir: `${process.cwd()}/.podwarden/demo` } : {}),
  });
  let runtime: LocalRuntime | undefined;
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(controlPlane.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    // The namespace first: the runtime takes its lease there.
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    quietFunctions(false);
    const { LocalRuntime } = await import('../../lib/local/runtime.ts');
    say('Starting Podwarden on it, as `podwarden dev` does, with DynamoDB Local as the store ...');
    const seen = new Set<string>();
    runtime = new LocalRuntime({
      kubeConfig: kc,
      cluster: CLUSTER,
      namespaces: [NAMESPACE],
      env: { ...process.env, ...DEMO_POLICY_ENV },
      scheduleEveryMs: { timer: 5_000, reaper: 3_000 },
      logSink: io.stderr,
      report: (report: RuntimeReport) => {
        if (report.kind !== 'event' || seen.has(report.event.id)) return;
        seen.add(report.event.id);
        say(`    ⇢ event "${report.event.type}": ${report.event.message}`);
      },
    });
    await runtime.start();
    await new Demo(core, runtime, say).run();
    say(
      "\nAll three failures were handled, each step decided by the functions' own handlers, run in this process as `podwarden dev` runs them.",
    );
    return EXIT.ok;
  } finally {
    await runtime?.stop();
    await controlPlane.stop();
    if (keep) say(`Control plane files kept in ${controlPlane.workDir}`);
  }
}

class Demo {
  readonly core: CoreV1Api;
  readonly runtime: LocalRuntime;
  readonly say: (line: string) => void;

  constructor(core: CoreV1Api, runtime: LocalRuntime, say: (line: string) => void) {
    this.core = core;
    this.runtime = runtime;
    this.say = say;
  }

  async run(): Promise<void> {
    await this.preemption();
    await this.zombie();
    await this.imagePull();
  }

  labels(taskId: string): Record<string, string> {
    return {
      kubernetes_pod_operator: 'True',
      dag_id: 'demo',
      task_id: taskId,
      run_id: RUN_ID,
      try_number: '1',
    };
  }

  async create(pod: V1Pod): Promise<V1Pod> {
    return this.core.createNamespacedPod({ namespace: NAMESPACE, body: pod });
  }

  /** Watches the task's record (Podwarden acts on its own) until it satisfies `ready`. */
  async until(
    taskId: string,
    what: string,
    ready: (task: TaskRecord) => boolean,
    timeoutMs = 90_000,
  ): Promise<TaskRecord> {
    const deadline = Date.now() + timeoutMs;
    let lastState = '';
    for (;;) {
      const task = await this.runtime.store.get({
        cluster: CLUSTER,
        namespace: NAMESPACE,
        key: `demo/${taskId}/${RUN_ID}/-1`,
      });
      if (task && task.state !== lastState) {
        this.say(`    task ${taskId}: ${task.state}${task.message ? ` — ${task.message}` : ''}`);
        lastState = task.state;
      }
      if (task && ready(task)) return task;
      if (Date.now() > deadline)
        throw new Error(`the demo timed out waiting for task ${taskId} to be ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async preemption(): Promise<void> {
    this.say('\n1. Preemption (apache/airflow#59626)');
    this.say(
      '   A low-priority task pod runs on a full node; a daemonset pod with a higher priority arrives.',
    );
    const victim = await this.create(
      taskPodManifest({
        name: 'load-vqfekgln',
        namespace: NAMESPACE,
        labels: this.labels('load'),
        behaviour: { kind: 'run' },
        priorityClassName: priorityClasses.taskLow.name,
        cpu: '1500m',
      }),
    );
    await this.until('load', 'running', (t) => t.state === 'Running');
    const daemon = await this.create(
      taskPodManifest({
        name: 'calico-node-demo',
        namespace: NAMESPACE,
        behaviour: { kind: 'run' },
        priorityClassName: priorityClasses.daemonHigh.name,
        cpu: '1500m',
      }),
    );
    this.say(
      '   The scheduler preempts the task pod; without Podwarden the operator would read 404 and fail.',
    );
    const task = await this.until('load', 're-created', (t) => t.attempt === 2 && t.state !== 'Recovering');
    this.say(
      `   Re-created ${task.podName} (uid ${victim.metadata?.uid} → ${task.podUid}) with its labels and podwarden.io/attempt=2.`,
    );
    await this.core.deleteNamespacedPod({
      namespace: NAMESPACE,
      name: daemon.metadata?.name ?? '',
      gracePeriodSeconds: 0,
    });
    this.say('   (In this one-node demo the daemon is removed so the re-created pod can be scheduled.)');
    await this.until('load', 'running again', (t) => t.state === 'Running');
  }

  async zombie(): Promise<void> {
    this.say('\n2. A sidecar that never exits (apache/airflow#58968)');
    await this.create(
      taskPodManifest({
        name: 'zombie-kpo-task-1',
        namespace: NAMESPACE,
        labels: this.labels('zombie'),
        behaviour: { kind: 'zombie-sidecar', code: 0 },
        sidecar: true,
        runForMs: 500,
        gracePeriodSeconds: 86_400,
      }),
    );
    this.say('   The main container exits 0; the xcom sidecar keeps the pod Running forever.');
    await this.until('zombie', 'ended', (t) => t.state === 'Succeeded');
    const audit = await this.runtime.store.listAudit({
      cluster: CLUSTER,
      namespace: NAMESPACE,
      key: `demo/zombie/${RUN_ID}/-1`,
    });
    for (const entry of audit)
      this.say(
        `   audit: ${entry.what} ${entry.podName} → ${entry.outcome ?? ''} (${entry.evidence[0]?.message ?? ''})`,
      );
  }

  async imagePull(): Promise<void> {
    this.say('\n3. A registry rate limit on the image pull (apache/airflow#61775)');
    await this.create(
      taskPodManifest({
        name: 'pull-rate-limited',
        namespace: NAMESPACE,
        labels: this.labels('pull'),
        behaviour: { kind: 'pull-error', message: 'pull QPS exceeded.', clearAfterSeconds: 6 },
      }),
    );
    this.say(
      '   ErrImagePull "pull QPS exceeded." — transient: Podwarden re-checks instead of failing the task.',
    );
    await this.until('pull', 'running', (t) => t.state === 'Running');
  }
}
