import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  configEnvironment,
  DEFAULT_REAPER_MAX_DELETES,
  ENV,
  loadConfig,
  namespaceAllowed,
  POLICY_ENV,
  routeOptions,
} from '../../lib/config.ts';
import { DEFAULT_POLICY } from '../../lib/core/policy.ts';
import { CA_DATA } from '../support/ca.ts';
import { refusedWith } from '../support/refused.ts';

// Only the PEM armour matters: the CA is parsed when a TLS connection is made, never here.
const PROD = {
  kind: 'eks' as const,
  clusterName: 'prod-eu',
  endpoint: 'https://ABC123.gr7.eu-west-1.eks.amazonaws.com',
  caData: CA_DATA,
  region: 'eu-west-1',
};

const MINIMAL = {
  [ENV.tableName]: 'podwarden-tasks',
  [ENV.eventBusName]: 'podwarden',
  [ENV.clusters]: JSON.stringify({ prod: PROD }),
  [ENV.allowedNamespaces]: 'airflow,batch',
};

function problemsOf(env: Record<string, string | undefined>): string[] {
  return refusedWith(ConfigError, () => loadConfig(env));
}

describe('loadConfig', () => {
  it('reads the required variables and applies defaults to the rest', () => {
    const config = loadConfig(MINIMAL);
    expect(config).toMatchObject({
      tableName: 'podwarden-tasks',
      eventBusName: 'podwarden',
      profiles: ['airflow-kpo'],
      allowedNamespaces: ['airflow', 'batch'],
      reaper: { maxDeletes: DEFAULT_REAPER_MAX_DELETES, dryRun: false },
      timerBatchSize: 1_000,
      exporterSources: {},
      orchestratorSources: ['airflow.listener'],
    });
    expect(config.policy).toEqual(DEFAULT_POLICY);
    expect(config.clusters.get('prod')).toEqual(PROD);
  });

  it('reports every missing required variable by name, all at once', () => {
    const problems = problemsOf({});
    expect(problems).toHaveLength(4);
    for (const variable of [ENV.tableName, ENV.eventBusName, ENV.clusters, ENV.allowedNamespaces]) {
      expect(problems.some((problem) => problem.startsWith(`${variable}: is not set`))).toBe(true);
    }
  });

  it('names the variable of each bad value', () => {
    const problems = problemsOf({
      ...MINIMAL,
      [ENV.tableName]: 'x',
      [ENV.eventBusName]: 'bus with spaces',
      [ENV.clusters]: '{"prod": {"kind": "eks"}}',
      [ENV.profiles]: 'airflow-kpo,celery',
      [ENV.allowedNamespaces]: 'airflow,Batch_1',
      [ENV.reaperMaxDeletes]: '-1',
      [ENV.reaperDryRun]: 'yes',
      [ENV.timerBatchSize]: '0',
      [ENV.exporterSources]: '["k8s"]',
      PODWARDEN_RECREATE_BUDGET: 'three',
      PODWARDEN_PULL_DEADLINE: '10 minutes',
    });
    const expected: Array<[string, RegExp]> = [
      [ENV.tableName, /tableName must be 3-255 characters/],
      [ENV.eventBusName, /"bus with spaces" is not an event bus name/],
      [ENV.clusters, /cluster "prod": field "clusterName" is required for kind "eks"/],
      [ENV.profiles, /unknown profile "celery"/],
      [ENV.allowedNamespaces, /"Batch_1" is not a valid namespace name/],
      [ENV.reaperMaxDeletes, /"-1" is not a whole number from 0 to 1000/],
      [ENV.reaperDryRun, /"yes" is not true or false/],
      [ENV.timerBatchSize, /"0" is not a whole number from 1 to 10000/],
      [ENV.exporterSources, /expected a JSON object mapping each exporter source/],
      ['PODWARDEN_RECREATE_BUDGET', /"three" is not a whole number/],
      ['PODWARDEN_PULL_DEADLINE', /"10 minutes" is not a duration/],
    ];
    expect(problems).toHaveLength(expected.length);
    for (const [variable, message] of expected) {
      const problem = problems.find((candidate) => candidate.startsWith(`${variable}: `));
      expect(problem, variable).toMatch(message);
    }
  });

  it('checks settings against each other even while other variables are bad', () => {
    const problems = problemsOf({
      ...MINIMAL,
      [ENV.tableName]: 'x',
      [ENV.exporterSources]: '{"k8s.dev": "dev"}',
      PODWARDEN_PULL_RECHECK_BASE: '60s',
      PODWARDEN_PULL_RECHECK_CAP: '10s',
    });
    expect(problems).toEqual([
      expect.stringMatching(/^PODWARDEN_TABLE_NAME: tableName must be 3-255 characters/),
      expect.stringMatching(/^PODWARDEN_EXPORTER_SOURCES: source "k8s.dev" maps to cluster "dev"/),
      expect.stringMatching(/^PODWARDEN_PULL_RECHECK_BASE \/ PODWARDEN_PULL_RECHECK_CAP: /),
    ]);
  });

  it('allows every namespace only when asked for with *', () => {
    const all = loadConfig({ ...MINIMAL, [ENV.allowedNamespaces]: '*' });
    expect(all.allowedNamespaces).toEqual([]);
    expect(namespaceAllowed(all, 'anything')).toBe(true);
    const some = loadConfig(MINIMAL);
    expect(namespaceAllowed(some, 'airflow')).toBe(true);
    expect(namespaceAllowed(some, 'kube-system')).toBe(false);
    expect(problemsOf({ ...MINIMAL, [ENV.allowedNamespaces]: ' ' })[0]).toMatch(
      /^PODWARDEN_ALLOWED_NAMESPACES: is not set/,
    );
    expect(problemsOf({ ...MINIMAL, [ENV.allowedNamespaces]: 'airflow,*' })[0]).toMatch(/cannot be combined/);
  });

  it('reads policy overrides, counts and durations, and names the variables of an inconsistent pair', () => {
    const config = loadConfig({
      ...MINIMAL,
      PODWARDEN_RECREATE_BUDGET: '5',
      PODWARDEN_RECREATE_BACKOFF_BASE: '500ms',
      PODWARDEN_PULL_DEADLINE: '15m',
      PODWARDEN_SIDECAR_GRACE: '90',
      PODWARDEN_RETENTION: '2h',
    });
    expect(config.policy).toMatchObject({
      recreateBudget: 5,
      recreateBackoffBaseMs: 500,
      pullDeadlineMs: 900_000,
      sidecarGraceMs: 90_000,
      retentionMs: 7_200_000,
      goneGraceMs: DEFAULT_POLICY.goneGraceMs,
    });
    const [problem] = problemsOf({
      ...MINIMAL,
      PODWARDEN_PULL_RECHECK_BASE: '60s',
      PODWARDEN_PULL_RECHECK_CAP: '10s',
    });
    expect(problem).toMatch(/^PODWARDEN_PULL_RECHECK_BASE \/ PODWARDEN_PULL_RECHECK_CAP: /);
    expect(problem).toMatch(/PODWARDEN_PULL_RECHECK_CAP must be >= PODWARDEN_PULL_RECHECK_BASE/);
  });

  it('maps exporter sources to configured clusters only, and keeps sources from colliding', () => {
    const config = loadConfig({ ...MINIMAL, [ENV.exporterSources]: '{"k8s.prod": "prod"}' });
    expect(config.exporterSources).toEqual({ 'k8s.prod': 'prod' });
    expect(routeOptions(config)).toEqual({
      exporterSources: ['k8s.prod'],
      orchestratorSources: ['airflow.listener'],
    });
    expect(problemsOf({ ...MINIMAL, [ENV.exporterSources]: '{"k8s.dev": "dev"}' })[0]).toMatch(
      /^PODWARDEN_EXPORTER_SOURCES: source "k8s.dev" maps to cluster "dev", which PODWARDEN_CLUSTERS does not configure/,
    );
    expect(
      problemsOf({
        ...MINIMAL,
        [ENV.exporterSources]: '{"airflow.listener": "prod"}',
      })[0],
    ).toMatch(/PODWARDEN_EXPORTER_SOURCES \/ PODWARDEN_ORCHESTRATOR_SOURCES: .*listed both/);
  });
});

describe('configEnvironment', () => {
  it('writes variables that loadConfig reads back as the same settings', () => {
    const env = configEnvironment({
      tableName: 'podwarden-tasks',
      eventBusName: 'arn:aws:events:eu-west-1:123456789012:event-bus/podwarden',
      clusters: { prod: PROD },
      profiles: ['airflow-kpo', 'generic'],
      allowedNamespaces: ['airflow'],
      reaper: { maxDeletes: 3, dryRun: true },
      timerBatchSize: 50,
      policy: { recreateBudget: 2, pullDeadlineMs: 120_000 },
      exporterSources: { 'k8s.prod': 'prod' },
      orchestratorSources: ['airflow.listener', 'airflow.staging'],
    });
    const config = loadConfig(env);
    expect(config).toMatchObject({
      tableName: 'podwarden-tasks',
      eventBusName: 'arn:aws:events:eu-west-1:123456789012:event-bus/podwarden',
      profiles: ['airflow-kpo', 'generic'],
      allowedNamespaces: ['airflow'],
      reaper: { maxDeletes: 3, dryRun: true },
      timerBatchSize: 50,
      exporterSources: { 'k8s.prod': 'prod' },
      orchestratorSources: ['airflow.listener', 'airflow.staging'],
    });
    expect(config.policy).toEqual({ ...DEFAULT_POLICY, recreateBudget: 2, pullDeadlineMs: 120_000 });
    expect([...config.clusters]).toEqual([['prod', PROD]]);
  });

  it('writes * for every namespace and leaves unset what has a default', () => {
    const env = configEnvironment({
      tableName: 't-1',
      eventBusName: 'b',
      clusters: { prod: PROD },
      allowedNamespaces: '*',
    });
    expect(Object.keys(env).sort()).toEqual(
      [ENV.tableName, ENV.eventBusName, ENV.clusters, ENV.allowedNamespaces].sort(),
    );
    expect(env[ENV.allowedNamespaces]).toBe('*');
  });

  it('has one distinct variable per policy field', () => {
    expect(Object.keys(POLICY_ENV).sort()).toEqual(Object.keys(DEFAULT_POLICY).sort());
    const variables = Object.values(POLICY_ENV).map((entry) => entry.variable);
    expect(new Set(variables).size).toBe(variables.length);
    expect(POLICY_ENV.recreateBudget.variable).toBe('PODWARDEN_RECREATE_BUDGET');
  });
});
