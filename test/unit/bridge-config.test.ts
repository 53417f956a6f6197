import { describe, expect, it } from 'vitest';
import {
  BridgeConfigError,
  bridgeConnection,
  bridgeUsage,
  DEFAULT_EVENT_REASONS,
  matchesSelector,
  parseBridgeConfig,
} from '../../lib/bridge/config.ts';
import { refusedWith } from '../support/refused.ts';

const minimal = ['--cluster', 'prod-eu', '--bus', 'podwarden', '--region', 'eu-west-1'];

function problems(argv: string[], env: Record<string, string> = {}): string[] {
  return refusedWith(BridgeConfigError, () => parseBridgeConfig(argv, env));
}

describe('parseBridgeConfig', () => {
  it('fills sensible defaults around the three required settings', () => {
    const config = parseBridgeConfig(minimal, {
      POD_NAME: 'podwarden-bridge-7d9f-abcde',
      POD_NAMESPACE: 'ops',
    });
    expect(config).toEqual({
      cluster: 'prod-eu',
      bus: 'podwarden',
      region: 'eu-west-1',
      namespaces: [],
      profiles: ['airflow-kpo'],
      eventReasons: [...DEFAULT_EVENT_REASONS],
      lease: {
        namespace: 'ops',
        name: 'podwarden-bridge',
        durationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      },
      identity: 'podwarden-bridge-7d9f-abcde',
      metricsHost: '0.0.0.0',
      metricsPort: 8080,
      logLevel: 'info',
      flushTimeoutMs: 10_000,
      eventMaxAgeMs: 600_000,
    });
  });

  it('reads every setting from flags (both --name value and --name=value) over the environment', () => {
    const config = parseBridgeConfig(
      [
        ...minimal,
        '--namespaces=airflow, batch',
        '--profiles',
        'generic,airflow-kpo',
        '--lease-namespace',
        'kube-system',
        '--lease-name=pw-lease',
        '--lease-duration',
        '3s',
        '--identity',
        'replica-a',
        '--metrics-port',
        '0',
        '--metrics-host',
        '127.0.0.1',
        '--eventbridge-endpoint',
        'http://127.0.0.1:4010',
        '--event-reasons',
        'Preempted,Failed',
        '--log-level',
        'debug',
      ],
      { PODWARDEN_CLUSTER: 'ignored', PODWARDEN_NAMESPACES: 'ignored' },
    );
    expect(config).toMatchObject({
      cluster: 'prod-eu',
      namespaces: ['airflow', 'batch'],
      profiles: ['generic', 'airflow-kpo'],
      lease: {
        namespace: 'kube-system',
        name: 'pw-lease',
        durationMs: 3_000,
        renewDeadlineMs: 2_000,
        retryPeriodMs: 400,
      },
      identity: 'replica-a',
      metricsPort: 0,
      metricsHost: '127.0.0.1',
      eventBridgeEndpoint: 'http://127.0.0.1:4010',
      eventReasons: ['Preempted', 'Failed'],
      logLevel: 'debug',
    });
  });

  it('takes settings from the environment, as the Deployment sets them', () => {
    const config = parseBridgeConfig([], {
      PODWARDEN_CLUSTER: 'c1',
      PODWARDEN_BUS: 'arn:aws:events:eu-west-1:123456789012:event-bus/podwarden',
      AWS_REGION: 'eu-west-1',
      PODWARDEN_NAMESPACES: '*',
      PODWARDEN_METRICS_PORT: '9100',
    });
    expect(config).toMatchObject({
      cluster: 'c1',
      bus: 'arn:aws:events:eu-west-1:123456789012:event-bus/podwarden',
      metricsPort: 9100,
    });
  });

  it('names every problem at once', () => {
    expect(
      problems([
        '--bus',
        'has spaces',
        '--region',
        'Europe',
        '--namespaces',
        'Bad_NS',
        '--profiles',
        'cronjob',
        '--metrics-port',
        '99999',
        '--lease-duration',
        'soon',
        '--eventbridge-endpoint',
        'ftp://x',
        '--log-level',
        'loud',
        '--frobnicate',
        'yes',
        'stray',
      ]),
    ).toEqual([
      'unknown option --frobnicate',
      'unexpected argument "stray" (options are --name value)',
      '--cluster (or PODWARDEN_CLUSTER) is required',
      '--bus (or PODWARDEN_BUS) "has spaces" is neither an event bus name nor an event bus ARN',
      '--region (or AWS_REGION, AWS_DEFAULT_REGION) "Europe" is not an AWS region name (e.g. eu-west-1)',
      '--eventbridge-endpoint (or PODWARDEN_EVENTBRIDGE_ENDPOINT) "ftp://x" is not an http(s) URL',
      '--namespaces (or PODWARDEN_NAMESPACES) "Bad_NS" is not a valid namespace name',
      '--profiles (or PODWARDEN_PROFILES) "cronjob" is not a known profile (known: airflow-kpo, generic)',
      '--lease-duration (or PODWARDEN_LEASE_DURATION) "soon" is not a positive duration up to 366 days (e.g. 500ms, 15s, 2m)',
      '--metrics-port (or PODWARDEN_METRICS_PORT) "99999" is not a port number (0-65535)',
      '--log-level (or PODWARDEN_LOG_LEVEL) "loud" is not one of debug, info, warn, error',
    ]);
  });

  it('refuses lease timings that would let two replicas lead at once', () => {
    expect(problems([...minimal, '--lease-duration', '10s', '--lease-renew-deadline', '12s'])).toContain(
      'the lease renew deadline must be shorter than the lease duration',
    );
    expect(problems([...minimal, '--lease-duration', '10s', '--lease-retry-period', '8s'])).toContain(
      'the lease retry period must be shorter than the renew deadline',
    );
  });

  it('says when a flag lacks its value or is repeated', () => {
    expect(problems([...minimal, '--namespaces'])).toEqual(['option --namespaces needs a value']);
    expect(problems([...minimal, '--cluster', 'other'])).toEqual(['option --cluster is given twice']);
  });

  it('has a usage text that lists every flag with its environment variable', () => {
    const usage = bridgeUsage();
    for (const flag of [
      '--cluster',
      '--bus',
      '--namespaces',
      '--profiles',
      '--lease-namespace',
      '--lease-name',
      '--identity',
      '--metrics-port',
      '--eventbridge-endpoint',
    ]) {
      expect(usage).toContain(flag);
    }
    expect(usage).toContain('[env PODWARDEN_BUS]');
  });
});

describe('bridgeConnection', () => {
  const config = parseBridgeConfig(minimal, {});
  it('prefers an explicit kubeconfig, then PODWARDEN_CLUSTERS, then the pod\u2019s service account', () => {
    expect(bridgeConnection({ ...config, kubeconfig: '/k', kubeContext: 'ctx' }, {})).toEqual({
      kind: 'kubeconfig',
      path: '/k',
      context: 'ctx',
    });
    expect(bridgeConnection(config, { PODWARDEN_CLUSTERS: '{"prod-eu":{"kind":"in-cluster"}}' })).toEqual({
      kind: 'in-cluster',
    });
    expect(bridgeConnection(config, { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toEqual({ kind: 'in-cluster' });
    expect(bridgeConnection(config, {})).toEqual({ kind: 'kubeconfig' });
  });
});

describe('matchesSelector', () => {
  it('matches the profiles\u2019 equality selectors', () => {
    expect(
      matchesSelector({ kubernetes_pod_operator: 'True', dag_id: 'x' }, 'kubernetes_pod_operator=True'),
    ).toBe(true);
    expect(matchesSelector({ kubernetes_pod_operator: 'true' }, 'kubernetes_pod_operator=True')).toBe(false);
    expect(matchesSelector({ a: '1', b: '2' }, 'a==1,b=2')).toBe(true);
    expect(matchesSelector(undefined, 'a=1')).toBe(false);
  });
});
