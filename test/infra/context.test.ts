import { describe, expect, it } from 'vitest';
import { ContextError, type ContextKey, stackPropsFromContext } from '../../infra/context.ts';
import { CA_DATA } from '../support/ca.ts';
import { refusedWith } from '../support/refused.ts';

const PROD = {
  kind: 'eks',
  clusterName: 'prod',
  endpoint: 'https://abc.eks.amazonaws.com',
  caData: CA_DATA,
  region: 'eu-west-1',
};

function fromContext(context: Partial<Record<ContextKey, unknown>>) {
  return stackPropsFromContext((key) => context[key]);
}

function problemsOf(context: Partial<Record<ContextKey, unknown>>): string[] {
  return refusedWith(ContextError, () => fromContext(context));
}

describe('stackPropsFromContext', () => {
  it('reads -c strings: JSON clusters, comma lists, numbers and booleans', () => {
    const { stackName, props } = fromContext({
      clusters: JSON.stringify({ prod: PROD }),
      allowedNamespaces: 'airflow, batch',
      profiles: 'airflow-kpo,generic',
      alarmEmail: 'oncall@example.com',
      exporterSources: '{"k8s.prod": "prod"}',
      reaperMaxDeletes: '5',
      reaperDryRun: 'true',
      policy: '{"recreateBudget": 4}',
      logRetentionDays: '90',
    });
    expect(stackName).toBe('Podwarden');
    expect(props).toEqual({
      clusters: { prod: { ...PROD, endpoint: 'https://abc.eks.amazonaws.com' } },
      allowedNamespaces: ['airflow', 'batch'],
      profiles: ['airflow-kpo', 'generic'],
      alarmEmail: 'oncall@example.com',
      exporterSources: { 'k8s.prod': 'prod' },
      reaper: { maxDeletes: 5, dryRun: true },
      policy: { recreateBudget: 4 },
      logRetention: 90,
    });
  });

  it('reads cdk.json values: objects, arrays and *', () => {
    const { stackName, props } = fromContext({
      stackName: 'PodwardenStaging',
      clusters: { prod: PROD },
      allowedNamespaces: '*',
      orchestratorSources: ['airflow.listener', 'airflow.staging'],
      eventBusName: 'shared',
    });
    expect(stackName).toBe('PodwardenStaging');
    expect(props).toMatchObject({
      allowedNamespaces: '*',
      orchestratorSources: ['airflow.listener', 'airflow.staging'],
      eventBusName: 'shared',
    });
  });

  it('names each missing or bad key, all at once', () => {
    expect(problemsOf({})).toEqual([
      expect.stringMatching(/^clusters: is not set/),
      expect.stringMatching(/^allowedNamespaces: is not set/),
    ]);
    const problems = problemsOf({
      clusters: '{"prod": {"kind": "eks"}}',
      allowedNamespaces: [],
      alarmEmail: 'not-an-address',
      reaperDryRun: 'maybe',
      policy: '{"recreateBudgetX": 1}',
      logRetentionDays: '10',
      stackName: '1bad',
    });
    expect(problems).toHaveLength(7);
    for (const [key, message] of [
      ['stackName', /not a stack name/],
      ['clusters', /field "clusterName" is required/],
      ['allowedNamespaces', /names nothing/],
      ['alarmEmail', /not an email address/],
      ['reaperDryRun', /not true or false/],
      ['policy', /unknown policy field "recreateBudgetX"/],
      ['logRetentionDays', /10 is not a CloudWatch Logs retention/],
    ] as const) {
      expect(
        problems.find((problem) => problem.startsWith(`${key}: `)),
        key,
      ).toMatch(message);
    }
  });

  it('reads the wiring keys from -c strings and cdk.json objects alike', () => {
    const wiring = {
      orchestratorPrincipalArns: 'arn:aws:iam::123456789012:role/airflow-workers',
      bridge:
        '{"prod": {"oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"}}',
      functionsGroup: 'podwarden-supervisors',
      vpc: '{"subnetIds": ["subnet-0a1b2c3d"], "securityGroupIds": "sg-0123abcd"}',
      reservedConcurrency: '{"check": "20", "timer": 2}',
    };
    const expected = {
      orchestratorPrincipalArns: ['arn:aws:iam::123456789012:role/airflow-workers'],
      bridge: {
        prod: {
          oidcProviderArn: 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC',
        },
      },
      functionsGroup: 'podwarden-supervisors',
      vpc: { subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0123abcd'] },
      reservedConcurrency: { check: 20, timer: 2 },
    };
    const base = { clusters: { prod: PROD }, allowedNamespaces: 'airflow' };
    expect(fromContext({ ...base, ...wiring }).props).toMatchObject(expected);
    const asObjects = Object.fromEntries(
      Object.entries(wiring).map(([key, value]) => [key, value.startsWith('{') ? JSON.parse(value) : value]),
    );
    expect(fromContext({ ...base, ...asObjects }).props).toMatchObject(expected);
  });

  it('names each bad wiring key', () => {
    const problems = problemsOf({
      clusters: { prod: PROD },
      allowedNamespaces: 'airflow',
      orchestratorPrincipalArns: 'airflow-workers',
      bridge: '{"prod": {"oidcProviderArn": 7}}',
      vpc: '{"subnets": []}',
      reservedConcurrency: '{"check": -1}',
      exporterPrincipalArns: '[not json',
    });
    for (const [key, message] of [
      ['orchestratorPrincipalArns', /"airflow-workers" is not an IAM role, user or root ARN/],
      ['bridge', /prod.oidcProviderArn must be a string/],
      ['vpc', /unknown field "subnets"/],
      ['reservedConcurrency.check', /-1 is not a whole number from 1 to 1000/],
      ['exporterPrincipalArns', /"\[not json" is not an IAM role, user or root ARN/],
    ] as const) {
      expect(
        problems.find((problem) => problem.startsWith(`${key}: `)),
        key,
      ).toMatch(message);
    }
  });

  it('reads imageRepository as true (the name podwarden), false, or a repository name', () => {
    const base = { clusters: { prod: PROD }, allowedNamespaces: 'airflow' };
    expect(fromContext({ ...base, imageRepository: 'true' }).props.imageRepository).toBe('podwarden');
    expect(fromContext({ ...base, imageRepository: true }).props.imageRepository).toBe('podwarden');
    expect(fromContext({ ...base, imageRepository: 'false' }).props.imageRepository).toBeUndefined();
    expect(fromContext(base).props.imageRepository).toBeUndefined();
    expect(fromContext({ ...base, imageRepository: 'platform/podwarden' }).props.imageRepository).toBe(
      'platform/podwarden',
    );
    expect(problemsOf({ ...base, imageRepository: 'Platform/Podwarden' })).toEqual([
      expect.stringMatching(/^imageRepository: "Platform\/Podwarden" is not an ECR repository name/),
    ]);
    expect(problemsOf({ ...base, imageRepository: 7 })).toEqual([
      'imageRepository: must be true or an ECR repository name',
    ]);
  });
});
