/**
 * Issue 9: hostile inputs at every entry point (handler events, the CLI, PODWARDEN_* configuration,
 * CDK context, bridge flags). Each row gets the exact error it must, naming the field, and nothing
 * is written: handler rows run against tripwire ports that fail the row on any call (the point is
 * that no store, cluster or sink is reached at all), CLI rows print nothing on stdout.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { run as explain } from '../../bin/commands/explain.ts';
import { handleKubernetesEvent } from '../../functions/kubernetes-event.ts';
import { handleOrchestrator } from '../../functions/orchestrator.ts';
import { handlePodChanged } from '../../functions/pod-changed.ts';
import { handleReaper } from '../../functions/reaper.ts';
import type { ContainerDeps } from '../../functions/shared/deps.ts';
import type { RejectedEvent } from '../../functions/shared/rejected.ts';
import { handleTimer } from '../../functions/timer.ts';
import { type ContextKey, stackPropsFromContext } from '../../infra/context.ts';
import { parseBridgeConfig } from '../../lib/bridge/config.ts';
import { ConfigError, ENV, loadConfig } from '../../lib/config.ts';
import type { Cluster, EventSink, TaskStore } from '../../lib/core/ports.ts';
import { CA_DATA } from '../support/ca.ts';

const PROD = {
  kind: 'eks',
  clusterName: 'prod',
  endpoint: 'https://abc.gr7.eu-west-1.eks.amazonaws.com',
  caData: CA_DATA,
  region: 'eu-west-1',
};
const ENV_OK: Record<string, string> = {
  [ENV.tableName]: 'podwarden-tasks',
  [ENV.eventBusName]: 'podwarden',
  [ENV.clusters]: JSON.stringify({ prod: PROD }),
  [ENV.allowedNamespaces]: 'airflow',
};

// ---- handler events ----------------------------------------------------------------------------

/** A port that records any call: a rejected event must reach none. */
function tripwire<T extends object>(name: string, calls: string[]): T {
  return new Proxy({} as T, {
    get: (_target, method) => () => {
      calls.push(`${name}.${String(method)}`);
      throw new Error(`${name}.${String(method)} called for a rejected event`);
    },
  });
}

function handlerDeps() {
  const calls: string[] = [];
  const kept: RejectedEvent[] = [];
  const deps: ContainerDeps = {
    config: loadConfig({ ...ENV_OK, [ENV.exporterSources]: '{"k8s.prod": "prod"}' }),
    store: tripwire<TaskStore>('store', calls),
    cluster: tripwire<Cluster>('cluster', calls),
    sink: tripwire<EventSink>('sink', calls),
    clock: () => Date.parse('2026-12-02T10:00:00Z'),
    keepRejected: async (rejected) => void kept.push(rejected),
  };
  return { deps, calls, kept };
}

const POD = {
  metadata: {
    name: 'load-abc',
    namespace: 'airflow',
    uid: 'uid-1',
    labels: {
      kubernetes_pod_operator: 'True',
      dag_id: 'etl',
      task_id: 'load',
      run_id: 'r1',
      try_number: '1',
    },
  },
  spec: { containers: [{ name: 'base' }] },
};
const podChanged = (detail: Record<string, unknown>, envelope: Record<string, unknown> = {}) => ({
  id: 'e-1',
  source: 'podwarden.bridge',
  'detail-type': 'Pod Changed',
  detail: {
    version: 1,
    cluster: 'prod',
    change: 'modified',
    observedAt: '2026-12-02T10:00:00Z',
    pod: POD,
    ...detail,
  },
  ...envelope,
});
const KUBE_EVENT = {
  namespace: 'airflow',
  name: 'load-abc.1',
  reason: 'Preempted',
  message: 'Preempted by x',
  involvedObject: { kind: 'Pod', name: 'load-abc', namespace: 'airflow', uid: 'uid-1' },
  lastTimestamp: '2026-12-02T10:00:00Z',
};
const kubeEvent = (event: Record<string, unknown>, detail: Record<string, unknown> = {}) => ({
  id: 'e-2',
  source: 'podwarden.bridge',
  'detail-type': 'Kubernetes Event',
  detail: {
    version: 1,
    cluster: 'prod',
    observedAt: '2026-12-02T10:00:00Z',
    event: { ...KUBE_EVENT, ...event },
    ...detail,
  },
});
const TASK_INSTANCE = {
  dag_id: 'etl',
  task_id: 'load',
  run_id: 'r1',
  map_index: -1,
  try_number: 1,
  state: 'running',
  cluster: 'prod',
  namespace: 'airflow',
};
const orchestrator = (detail: Record<string, unknown>, envelope: Record<string, unknown> = {}) => ({
  id: 'e-3',
  source: 'airflow.listener',
  'detail-type': 'Task Instance Changed',
  detail: { ...TASK_INSTANCE, ...detail },
  ...envelope,
});

type Handler = (event: unknown, deps: ContainerDeps) => Promise<unknown>;
const HANDLER_ROWS: Array<[string, Handler, unknown, string]> = [
  ['pod-changed: not an object', handlePodChanged, 'hello', 'event is "hello", not an object'],
  ['pod-changed: null', handlePodChanged, null, 'event is null, not an object'],
  [
    'pod-changed: unknown source',
    handlePodChanged,
    podChanged({}, { source: 'evil.sender' }),
    'event.source "evil.sender" is not a known sender (expected one of "podwarden.bridge", "k8s.prod")',
  ],
  [
    'pod-changed: wrong detail-type',
    handlePodChanged,
    podChanged({}, { 'detail-type': 'Pod Exploded' }),
    'event.detail-type "Pod Exploded" is not one the bridge sends ("Pod Changed", "Kubernetes Event")',
  ],
  [
    'pod-changed: detail not JSON',
    handlePodChanged,
    { ...podChanged({}), detail: '{not json' },
    'event.detail is a string that is not valid JSON',
  ],
  [
    'pod-changed: version 2',
    handlePodChanged,
    podChanged({ version: 2 }),
    'detail.version is number 2; this receiver understands version 1',
  ],
  [
    'pod-changed: cluster unconfigured',
    handlePodChanged,
    podChanged({ cluster: 'elsewhere' }),
    'cluster "elsewhere" is not configured (PODWARDEN_CLUSTERS has: prod)',
  ],
  [
    'pod-changed: cluster bad name',
    handlePodChanged,
    podChanged({ cluster: '../etc' }),
    'detail.cluster "../etc" is not a valid cluster name',
  ],
  [
    'pod-changed: change unknown',
    handlePodChanged,
    podChanged({ change: 'exploded' }),
    'detail.change is "exploded"; expected one of added, modified, deleted',
  ],
  [
    'pod-changed: pod and reference',
    handlePodChanged,
    podChanged({ reference: { namespace: 'airflow', name: 'x', why: 'too-large' } }),
    'detail must carry exactly one of pod and reference',
  ],
  [
    'pod-changed: namespace path',
    handlePodChanged,
    podChanged({ pod: { ...POD, metadata: { ...POD.metadata, namespace: '../kube-system' } } }),
    'detail.pod.metadata.namespace "../kube-system" is not a valid namespace name',
  ],
  [
    'pod-changed: pod name too long',
    handlePodChanged,
    podChanged({ pod: { ...POD, metadata: { ...POD.metadata, name: 'a'.repeat(300) } } }),
    'detail.pod.metadata.name "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..." is not a valid pod name',
  ],
  [
    'pod-changed: label not a string',
    handlePodChanged,
    podChanged({ pod: { ...POD, metadata: { ...POD.metadata, labels: { try_number: 2 } } } }),
    'detail.pod.metadata.labels["try_number"] is number 2, not a string',
  ],
  [
    'pod-changed: observedAt garbage',
    handlePodChanged,
    podChanged({ observedAt: 'yesterday' }),
    'detail.observedAt is "yesterday", not an RFC 3339 time',
  ],
  [
    'pod-changed: pod kind Secret',
    handlePodChanged,
    podChanged({ pod: { ...POD, kind: 'Secret' } }),
    'detail.pod.kind is "Secret", not "Pod"',
  ],
  [
    'pod-changed: a kubernetes event misrouted',
    handlePodChanged,
    kubeEvent({}),
    'a kubernetes-event event reached the pod-changed function; check the rules',
  ],
  [
    'kubernetes-event: involvedObject a Node',
    handleKubernetesEvent,
    kubeEvent({ involvedObject: { kind: 'Node', name: 'n1' } }),
    'detail.event.involvedObject.kind is "Node", not "Pod"',
  ],
  [
    'kubernetes-event: no time',
    handleKubernetesEvent,
    kubeEvent({ lastTimestamp: undefined }),
    'detail.event has no time (lastTimestamp, eventTime, firstTimestamp or metadata.creationTimestamp)',
  ],
  [
    'kubernetes-event: reason missing',
    handleKubernetesEvent,
    kubeEvent({ reason: '' }),
    'detail.event.reason is "", not a non-empty string',
  ],
  [
    'kubernetes-event: garbage lastTimestamp',
    handleKubernetesEvent,
    kubeEvent({ lastTimestamp: 'soon' }),
    'detail.event.lastTimestamp is "soon", not an RFC 3339 time',
  ],
  [
    'kubernetes-event: message a number',
    handleKubernetesEvent,
    kubeEvent({ message: 42 }),
    'detail.event.message is number 42, not a string',
  ],
  [
    'kubernetes-event: exporter for an unconfigured source',
    handleKubernetesEvent,
    { ...kubeEvent({}), source: 'k8s.dev' },
    'event.source "k8s.dev" is not a known sender (expected one of "podwarden.bridge", "k8s.prod")',
  ],
  [
    'kubernetes-event: podLabels not strings',
    handleKubernetesEvent,
    kubeEvent({}, { podLabels: { a: 1 } }),
    'detail.podLabels["a"] is number 1, not a string',
  ],
  [
    'orchestrator: unknown state',
    handleOrchestrator,
    orchestrator({ state: 'exploded' }),
    'detail.state is "exploded"; expected one of none, scheduled, queued, running, success, restarting, failed, up_for_retry, up_for_reschedule, upstream_failed, skipped, deferred, removed',
  ],
  [
    'orchestrator: try_number 400 digits',
    handleOrchestrator,
    orchestrator({ try_number: Number('9'.repeat(400)) }),
    'detail.try_number is number Infinity, not a whole number >= 0',
  ],
  [
    'orchestrator: try_number negative',
    handleOrchestrator,
    orchestrator({ try_number: -1 }),
    'detail.try_number is number -1, not a whole number >= 0',
  ],
  [
    'orchestrator: try_number a string',
    handleOrchestrator,
    orchestrator({ try_number: '2' }),
    'detail.try_number is "2", not a whole number >= 0',
  ],
  [
    'orchestrator: try_number fractional',
    handleOrchestrator,
    orchestrator({ try_number: 1.5 }),
    'detail.try_number is number 1.5, not a whole number >= 0',
  ],
  [
    'orchestrator: map_index -2',
    handleOrchestrator,
    orchestrator({ map_index: -2 }),
    'detail.map_index is number -2, not a whole number >= -1',
  ],
  [
    'orchestrator: wrong source',
    handleOrchestrator,
    orchestrator({}, { source: 'airflow.evil' }),
    'event.source is "airflow.evil"; orchestrator sources are "airflow.listener"',
  ],
  [
    'orchestrator: namespace path',
    handleOrchestrator,
    orchestrator({ namespace: '../x' }),
    'detail.namespace "../x" is not a valid namespace name',
  ],
  [
    'orchestrator: cluster unconfigured',
    handleOrchestrator,
    orchestrator({ cluster: 'elsewhere' }),
    'cluster "elsewhere" is not configured (PODWARDEN_CLUSTERS has: prod)',
  ],
  [
    'orchestrator: unknown profile',
    handleOrchestrator,
    orchestrator({ profile: 'celery' }),
    'detail.profile is "celery"; configured profiles: airflow-kpo',
  ],
  [
    'orchestrator: dag_id empty',
    handleOrchestrator,
    orchestrator({ dag_id: '' }),
    'detail.dag_id is "", not a non-empty string',
  ],
  [
    'timer: a forged schedule event',
    handleTimer,
    { source: 'podwarden.bridge', 'detail-type': 'Timer Pass' },
    'expected a "Timer Pass" event from podwarden.schedule, got source "podwarden.bridge" and detail-type "Timer Pass"',
  ],
  [
    'reaper: a forged schedule event',
    handleReaper,
    { source: 'evil', 'detail-type': 'Reaper Pass' },
    'expected a "Reaper Pass" event from podwarden.schedule, got source "evil" and detail-type "Reaper Pass"',
  ],
];

describe('hostile handler events: rejected with the field named, kept replayable, nothing touched', () => {
  it.each(HANDLER_ROWS)('%s', async (_name, handler, event, problem) => {
    const { deps, calls, kept } = handlerDeps();
    const result = await handler(event, deps);
    expect(result).toEqual({ outcome: 'rejected', problem });
    expect(calls).toEqual([]);
    expect(kept).toEqual([expect.objectContaining({ problem, event })]);
  });
});

// ---- the CLI -----------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'podwarden-hostile-'));
interface PodJson {
  metadata: { labels: Record<string, string>; creationTimestamp?: string; [field: string]: unknown };
  spec: { containers: Array<Record<string, unknown>>; initContainers?: Array<Record<string, unknown>> };
  status?: unknown;
}
function podFile(name: string, change: (pod: PodJson) => void): string {
  const pod: PodJson = structuredClone({
    ...POD,
    metadata: { ...POD.metadata, creationTimestamp: '2026-12-02T09:00:00Z' },
  });
  change(pod);
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(pod));
  return path;
}

async function runExplain(argv: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (chunk) => (stdout += chunk));
  err.on('data', (chunk) => (stderr += chunk));
  const code = await explain(argv, { stdin: new PassThrough(), stdout: out, stderr: err });
  return { code, stdout, stderr };
}

const CLI_ROWS: Array<[string, string[], string]> = [
  [
    'duplicated container names',
    ['--file', podFile('dup', (p) => p.spec.containers.push({ name: 'base' }))],
    '{file} is not a Pod: spec.containers[1].name "base" is used by another container of the pod',
  ],
  [
    'a native sidecar named like main',
    [
      '--file',
      podFile('dup-init', (p) => (p.spec.initContainers = [{ name: 'base', restartPolicy: 'Always' }])),
    ],
    '{file} is not a Pod: spec.initContainers[0].name "base" is used by another container of the pod',
  ],
  [
    'garbage creationTimestamp',
    ['--file', podFile('created', (p) => (p.metadata.creationTimestamp = 'last tuesday'))],
    '{file} is not a Pod: metadata.creationTimestamp "last tuesday" is not an RFC 3339 time (e.g. 2026-04-09T09:00:00Z)',
  ],
  [
    'creationTimestamp a bare number',
    ['--file', podFile('created-num', (p) => (p.metadata.creationTimestamp = '1'))],
    '{file} is not a Pod: metadata.creationTimestamp "1" is not an RFC 3339 time (e.g. 2026-04-09T09:00:00Z)',
  ],
  [
    'garbage finishedAt',
    [
      '--file',
      podFile(
        'finished',
        (p) =>
          (p.status = {
            containerStatuses: [
              { name: 'base', state: { terminated: { exitCode: 0, finishedAt: 'never' } } },
            ],
          }),
      ),
    ],
    '{file} is not a Pod: status.containerStatuses[0].state.terminated.finishedAt "never" is not an RFC 3339 time (e.g. 2026-04-09T09:00:00Z)',
  ],
  [
    'exitCode Infinity-like',
    [
      '--file',
      podFile(
        'exit',
        (p) =>
          (p.status = {
            containerStatuses: [{ name: 'base', state: { terminated: { exitCode: Number('1e400') } } }],
          }),
      ),
    ],
    '{file} is not a Pod: status.containerStatuses[0].state.terminated.exitCode must be a number',
  ],
  [
    '400-digit try_number',
    ['--file', podFile('try', (p) => (p.metadata.labels.try_number = '9'.repeat(400)))],
    '{file} is not a Pod Podwarden can read: metadata.labels["try_number"] "99999999999999999999... (400 digits)" is not a whole number up to 9007199254740991',
  ],
  [
    '400-digit attempt',
    ['--file', podFile('attempt', (p) => (p.metadata.labels['podwarden.io/attempt'] = '7'.repeat(400)))],
    '{file} is not a Pod Podwarden can read: metadata.labels["podwarden.io/attempt"] "77777777777777777777... (400 digits)" is not a whole number up to 9007199254740991',
  ],
  [
    'condition time garbage',
    [
      '--file',
      podFile(
        'cond',
        (p) =>
          (p.status = {
            conditions: [{ type: 'DisruptionTarget', status: 'True', lastTransitionTime: 'now' }],
          }),
      ),
    ],
    '{file} is not a Pod: status.conditions[0].lastTransitionTime "now" is not an RFC 3339 time (e.g. 2026-04-09T09:00:00Z)',
  ],
  [
    '--sidecar-grace -5m',
    ['--file', podFile('ok1', () => {}), '--sidecar-grace', '-5m'],
    '--sidecar-grace "-5m" is not a duration from 1s to 30 days like 90s, 5m or 1h',
  ],
  [
    '--sidecar-grace 0',
    ['--file', podFile('ok2', () => {}), '--sidecar-grace', '0'],
    '--sidecar-grace "0" is not a duration from 1s to 30 days like 90s, 5m or 1h',
  ],
  [
    '--sidecar-grace 10^21 hours',
    ['--file', podFile('ok3', () => {}), '--sidecar-grace', `1${'0'.repeat(21)}h`],
    '--sidecar-grace "1000000000000000000000h" is not a duration from 1s to 30 days like 90s, 5m or 1h',
  ],
  [
    '--now not a time',
    ['--file', podFile('ok4', () => {}), '--now', 'tomorrow'],
    '--now "tomorrow" is not an RFC 3339 time',
  ],
];

describe('hostile CLI input: exit 2, the field named, nothing on stdout', () => {
  it.each(CLI_ROWS)('%s', async (_name, argv, message) => {
    const result = await runExplain(argv);
    const file = argv[argv.indexOf('--file') + 1] ?? '';
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr: `podwarden explain: ${message.replace('{file}', file)}\n`,
    });
  });
});

// ---- PODWARDEN_* configuration -----------------------------------------------------------------

function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...ENV_OK, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

const eksWith = (change: Record<string, unknown>) => JSON.stringify({ prod: { ...PROD, ...change } });
const JUNK_PEM = Buffer.from(
  '-----BEGIN CERTIFICATE-----\nMIIBjunkjunk\n-----END CERTIFICATE-----\n',
).toString('base64');
const ENV_ROWS: Array<[string, Record<string, string>, string]> = [
  [
    '10^21-hour pull deadline',
    { PODWARDEN_PULL_DEADLINE: `1${'0'.repeat(21)}h` },
    'PODWARDEN_PULL_DEADLINE: "1000000000000000000000h" is not a duration like 90, 90s, 15m, 2h or 500ms, up to 366 days',
  ],
  [
    '400 nines of sidecar grace',
    { PODWARDEN_SIDECAR_GRACE: '9'.repeat(400) },
    'PODWARDEN_SIDECAR_GRACE: "9999999999999999999999999999999999999999..." is not a duration like 90, 90s, 15m, 2h or 500ms, up to 366 days',
  ],
  [
    'Infinity resync',
    { PODWARDEN_RESYNC_INTERVAL: 'Infinity' },
    'PODWARDEN_RESYNC_INTERVAL: "Infinity" is not a duration like 90, 90s, 15m, 2h or 500ms, up to 366 days',
  ],
  [
    'NaN budget',
    { PODWARDEN_RECREATE_BUDGET: 'NaN' },
    'PODWARDEN_RECREATE_BUDGET: "NaN" is not a whole number from 0 to 100',
  ],
  [
    'negative gone grace',
    { PODWARDEN_GONE_GRACE: '-5s' },
    'PODWARDEN_GONE_GRACE: "-5s" is not a duration like 90, 90s, 15m, 2h or 500ms, up to 366 days',
  ],
  [
    'reaper min age 0',
    { PODWARDEN_REAPER_MIN_AGE: '0' },
    'PODWARDEN_REAPER_MIN_AGE: must be a whole number from 1s to 30d, got 0',
  ],
  [
    'finished grace 0',
    { PODWARDEN_FINISHED_GRACE: '0s' },
    'PODWARDEN_FINISHED_GRACE: must be a whole number from 1s to 30d, got 0',
  ],
  [
    'retention of 2 years',
    { PODWARDEN_RETENTION: '17520h' },
    'PODWARDEN_RETENTION: "17520h" is not a duration like 90, 90s, 15m, 2h or 500ms, up to 366 days',
  ],
  [
    'caData with a junk body',
    { [ENV.clusters]: eksWith({ caData: JUNK_PEM }) },
    'PODWARDEN_CLUSTERS: cluster "prod": field "caData" must be the base64 of a PEM certificate (the cluster\'s certificateAuthority.data): certificate 1 does not parse (error:0680009B:asn1 encoding routines::too long)',
  ],
  [
    'endpoint on the metadata address',
    { [ENV.clusters]: eksWith({ endpoint: 'https://169.254.169.254' }) },
    'PODWARDEN_CLUSTERS: cluster "prod": field "endpoint" "https://169.254.169.254" is a link-local address (169.254.0.0/16, the instance metadata range)',
  ],
  [
    'endpoint on a link-local address',
    { [ENV.clusters]: eksWith({ endpoint: 'https://169.254.10.1:443' }) },
    'PODWARDEN_CLUSTERS: cluster "prod": field "endpoint" "https://169.254.10.1:443" is a link-local address (169.254.0.0/16, the instance metadata range)',
  ],
  [
    'endpoint on the IPv6 metadata address',
    { [ENV.clusters]: eksWith({ endpoint: 'https://[fd00:ec2::254]' }) },
    'PODWARDEN_CLUSTERS: cluster "prod": field "endpoint" "https://[fd00:ec2::254]" is the EC2 instance metadata address (fd00:ec2::254)',
  ],
  [
    'endpoint on IPv6 link-local',
    { [ENV.clusters]: eksWith({ endpoint: 'https://[fe80::1]' }) },
    'PODWARDEN_CLUSTERS: cluster "prod": field "endpoint" "https://[fe80::1]" is a link-local address (fe80::/10)',
  ],
  [
    'endpoint as a decimal IPv4 of the metadata address',
    { [ENV.clusters]: eksWith({ endpoint: 'https://2852039166' }) },
    'PODWARDEN_CLUSTERS: cluster "prod": field "endpoint" "https://2852039166" is a link-local address (169.254.0.0/16, the instance metadata range)',
  ],
];

describe('hostile PODWARDEN_* configuration: one problem, named by its variable and range', () => {
  it.each(ENV_ROWS)('%s', (_name, env, problem) => {
    expect(configProblems(env)).toEqual([problem]);
  });
});

// ---- CDK context -------------------------------------------------------------------------------

function contextProblems(context: Partial<Record<ContextKey, unknown>>): string[] {
  const full: Partial<Record<ContextKey, unknown>> = {
    clusters: { prod: PROD },
    allowedNamespaces: 'airflow',
    ...context,
  };
  try {
    stackPropsFromContext((key) => full[key]);
  } catch (error) {
    return (error as { problems?: string[] }).problems ?? [String(error)];
  }
  return [];
}

const CONTEXT_ROWS: Array<[string, Partial<Record<ContextKey, unknown>>, string]> = [
  [
    'policy field negative',
    { policy: { goneGraceMs: -1 } },
    'policy: policy.goneGraceMs must be a whole number from 1000 to 86400000 (milliseconds), got -1',
  ],
  [
    'policy reaperMinAgeMs 0',
    { policy: { reaperMinAgeMs: 0 } },
    'policy: policy.reaperMinAgeMs must be a whole number from 1000 to 2592000000 (milliseconds), got 0',
  ],
  [
    'policy NaN (as JSON text)',
    { policy: '{"recreateBudget": "NaN"}' },
    'policy: policy.recreateBudget must be a whole number from 0 to 100, got "NaN"',
  ],
  [
    'policy 10^21 ms',
    { policy: { pullDeadlineMs: 1e21 } },
    'policy: policy.pullDeadlineMs must be a whole number from 1000 to 2592000000 (milliseconds), got 1e+21',
  ],
  [
    'policy unknown field',
    { policy: { reaperMinAge: 1 } },
    'policy: unknown policy field "reaperMinAge" (known: recreateBudget, recreateBackoffBaseMs, goneGraceMs, pullRecheckBaseMs, pullRecheckCapMs, pullDeadlineMs, startupDeadlineMs, sidecarGraceMs, finishedGraceMs, resyncMs, reaperMinAgeMs, reaperMaxDeletesPercent, retentionMs)',
  ],
  [
    'policy cap below base',
    { policy: { pullRecheckBaseMs: 60_000, pullRecheckCapMs: 10_000 } },
    'policy: policy.pullRecheckCapMs must be >= policy.pullRecheckBaseMs',
  ],
  [
    'caData with a junk body',
    { clusters: { prod: { ...PROD, caData: JUNK_PEM } } },
    'clusters: cluster "prod": field "caData" must be the base64 of a PEM certificate (the cluster\'s certificateAuthority.data): certificate 1 does not parse (error:0680009B:asn1 encoding routines::too long)',
  ],
  [
    'endpoint on the metadata address',
    { clusters: { prod: { ...PROD, endpoint: 'https://169.254.169.254/' } } },
    'clusters: cluster "prod": field "endpoint" "https://169.254.169.254/" is a link-local address (169.254.0.0/16, the instance metadata range)',
  ],
  [
    'reaperMaxDeletes beyond what the functions accept',
    { reaperMaxDeletes: 5000 },
    'reaperMaxDeletes: 5000 is not a whole number from 0 to 1000',
  ],
  ['timerBatchSize 0', { timerBatchSize: 0 }, 'timerBatchSize: 0 is not a whole number from 1 to 1000'],
  [
    'exporter source mapped to an unknown cluster',
    { exporterSources: { 'k8s.dev': 'dev' } },
    'exporterSources: source "k8s.dev" maps to cluster "dev", which clusters does not configure',
  ],
];

describe('hostile CDK context: one problem, named by its key and range', () => {
  it.each(CONTEXT_ROWS)('%s', (_name, context, problem) => {
    expect(contextProblems(context)).toEqual([problem]);
  });
});

// ---- bridge flags ------------------------------------------------------------------------------

function bridgeProblems(argv: string[]): string[] {
  try {
    parseBridgeConfig(['--cluster', 'prod', '--bus', 'podwarden', '--region', 'eu-west-1', ...argv], {});
  } catch (error) {
    return (error as { problems?: string[] }).problems ?? [String(error)];
  }
  return [];
}

const BRIDGE_ROWS: Array<[string, string[], string]> = [
  [
    'lease duration of 10^21 hours',
    ['--lease-duration', `1${'0'.repeat(21)}h`],
    '--lease-duration (or PODWARDEN_LEASE_DURATION) "1000000000000000000000h" is not a positive duration up to 366 days (e.g. 500ms, 15s, 2m)',
  ],
  [
    'flush timeout of 400 nines',
    ['--flush-timeout', '9'.repeat(400)],
    '--flush-timeout (or PODWARDEN_FLUSH_TIMEOUT) "9999999999999999999999999999999999999999..." is not a positive duration up to 366 days (e.g. 500ms, 15s, 2m)',
  ],
  [
    'negative event max age',
    ['--event-max-age', '-10m'],
    '--event-max-age (or PODWARDEN_EVENT_MAX_AGE) "-10m" is not a positive duration up to 366 days (e.g. 500ms, 15s, 2m)',
  ],
  [
    'EventBridge endpoint on the metadata address',
    ['--eventbridge-endpoint', 'http://169.254.169.254/latest'],
    '--eventbridge-endpoint (or PODWARDEN_EVENTBRIDGE_ENDPOINT) "http://169.254.169.254/latest" is a link-local address (169.254.0.0/16, the instance metadata range)',
  ],
  [
    'EventBridge endpoint on fd00:ec2::254',
    ['--eventbridge-endpoint', 'http://[fd00:ec2::254]/'],
    '--eventbridge-endpoint (or PODWARDEN_EVENTBRIDGE_ENDPOINT) "http://[fd00:ec2::254]/" is the EC2 instance metadata address (fd00:ec2::254)',
  ],
  [
    'lease name with a slash',
    ['--lease-name', 'podwarden/bridge'],
    '--lease-name (or PODWARDEN_LEASE_NAME) "podwarden/bridge" is not a valid object name',
  ],
  [
    'metrics port out of range',
    ['--metrics-port', '70000'],
    '--metrics-port (or PODWARDEN_METRICS_PORT) "70000" is not a port number (0-65535)',
  ],
];

describe('hostile bridge flags: one problem, named by its flag', () => {
  it.each(BRIDGE_ROWS)('%s', (_name, argv, problem) => {
    expect(bridgeProblems(argv)).toEqual([problem]);
  });
});

it('has at least 60 rows across the entry points', () => {
  const rows =
    HANDLER_ROWS.length + CLI_ROWS.length + ENV_ROWS.length + CONTEXT_ROWS.length + BRIDGE_ROWS.length;
  expect(rows).toBeGreaterThanOrEqual(60);
});
