/**
 * Stack props from CDK context (`cdk deploy -c key=value`, or `context` in cdk.json). Every problem
 * names its context key; they are all reported at once.
 */
import type * as logs from 'aws-cdk-lib/aws-logs';
import { BRIDGE_IMAGE_NAME } from '../lib/bridge/image.ts';
import { type ClusterConnection, parseClusterConnections } from '../lib/cluster/connections.ts';
import { ALL_NAMESPACES } from '../lib/config.ts';
import { parseProfileName } from '../lib/core/identity.ts';
import { isValidClusterName } from '../lib/core/inbound.ts';
import { makePolicy, type Policy, policyFieldProblem } from '../lib/core/policy.ts';
import type { BridgeIdentity, PodwardenStackProps } from './podwarden-stack.ts';
import { wiringProblems } from './wiring-checks.ts';

export const CONTEXT_KEYS = [
  'stackName',
  'clusters',
  'allowedNamespaces',
  'profiles',
  'eventBusName',
  'alarmEmail',
  'exporterSources',
  'orchestratorSources',
  'reaperMaxDeletes',
  'reaperDryRun',
  'timerBatchSize',
  'policy',
  'timerLagAlarmSeconds',
  'logRetentionDays',
  'orchestratorPrincipalArns',
  'exporterPrincipalArns',
  'bridge',
  'functionsGroup',
  'vpc',
  'reservedConcurrency',
  'imageRepository',
] as const;
export type ContextKey = (typeof CONTEXT_KEYS)[number];

export class ContextError extends Error {
  override name = 'ContextError';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(
      `invalid CDK context for Podwarden (set it with -c key=value or in cdk.json):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.problems = problems;
  }
}

// CloudWatch Logs accepts only these retention periods.
const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

export function stackPropsFromContext(get: (key: ContextKey) => unknown): {
  stackName: string;
  props: PodwardenStackProps;
} {
  const problems: string[] = [];
  const read = <T>(key: ContextKey, parse: (value: unknown) => T): T | undefined => {
    const value = get(key);
    if (value === undefined || value === null || value === '') return undefined;
    try {
      return parse(value);
    } catch (error) {
      problems.push(`${key}: ${(error as Error).message}`);
      return undefined;
    }
  };

  const stackName = read('stackName', (value) => {
    if (typeof value !== 'string' || !/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(value)) {
      throw new Error(`${JSON.stringify(value)} is not a stack name (a letter, then letters, digits and -)`);
    }
    return value;
  });
  const clusters = read('clusters', (value) => {
    const connections = parseClusterConnections(typeof value === 'string' ? value : JSON.stringify(value));
    return Object.fromEntries(connections) as Record<string, ClusterConnection>;
  });
  if (get('clusters') === undefined) {
    problems.push(
      'clusters: is not set; give a JSON object of cluster names to EKS connections, e.g. -c clusters=\'{"prod": {"kind": "eks", "clusterName": "prod", "endpoint": "https://....eks.amazonaws.com", "caData": "<base64 CA>", "region": "eu-west-1"}}\'',
    );
  }
  const allowedNamespaces = read('allowedNamespaces', (value): readonly string[] | typeof ALL_NAMESPACES => {
    if (value === ALL_NAMESPACES) return ALL_NAMESPACES;
    return stringList(value);
  });
  if (get('allowedNamespaces') === undefined) {
    problems.push(
      `allowedNamespaces: is not set; list the namespaces Podwarden may act in (a,b), or ${ALL_NAMESPACES} for all`,
    );
  }
  const profiles = read('profiles', (value) => stringList(value).map(parseProfileName));
  const eventBusName = read('eventBusName', (value) => {
    if (typeof value !== 'string') throw new Error('must be the name of an existing event bus');
    return value;
  });
  const alarmEmail = read('alarmEmail', (value) => {
    if (typeof value !== 'string' || !EMAIL.test(value))
      throw new Error(`${JSON.stringify(value)} is not an email address`);
    return value;
  });
  const exporterSources = read('exporterSources', (value) => {
    const parsed = typeof value === 'string' ? JSON.parse(value) : value;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error(
        'must be a JSON object of exporter sources to cluster names, e.g. {"k8s.prod": "prod"}',
      );
    }
    for (const [source, cluster] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof cluster !== 'string' || !isValidClusterName(cluster)) {
        throw new Error(
          `source ${JSON.stringify(source)} maps to ${JSON.stringify(cluster)}, not a cluster name`,
        );
      }
      if (clusters && !Object.hasOwn(clusters, cluster)) {
        throw new Error(
          `source ${JSON.stringify(source)} maps to cluster "${cluster}", which clusters does not configure`,
        );
      }
    }
    return parsed as Record<string, string>;
  });
  const orchestratorSources = read('orchestratorSources', stringList);
  const reaperMaxDeletes = read('reaperMaxDeletes', (value) => wholeNumber(value, 0, 1_000));
  const reaperDryRun = read('reaperDryRun', (value) => {
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    throw new Error(`${JSON.stringify(value)} is not true or false`);
  });
  const timerBatchSize = read('timerBatchSize', (value) => wholeNumber(value, 1, 1_000));
  const policy = read('policy', (value) => {
    const parsed = typeof value === 'string' ? JSON.parse(value) : value;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error(
        'must be a JSON object of policy fields, e.g. {"recreateBudget": 5, "pullDeadlineMs": 900000}',
      );
    }
    // Each field with its own name and range, here at the door, not as a function failing at start.
    const fieldProblems = Object.entries(parsed as Record<string, unknown>).flatMap(([field, value]) => {
      const problem = policyFieldProblem(field, value);
      return problem ? [problem] : [];
    });
    if (fieldProblems.length > 0) throw new Error(fieldProblems.join('; '));
    try {
      makePolicy(parsed as Partial<Policy>);
    } catch (error) {
      throw new Error((error as Error).message);
    }
    return parsed as Partial<Policy>;
  });
  const timerLagAlarmSeconds = read('timerLagAlarmSeconds', (value) => wholeNumber(value, 60, 86_400));
  const logRetention = read('logRetentionDays', (value) => {
    const days = wholeNumber(value);
    if (!RETENTION_DAYS.includes(days))
      throw new Error(`${days} is not a CloudWatch Logs retention (${RETENTION_DAYS.join(', ')})`);
    return days as logs.RetentionDays;
  });

  const orchestratorPrincipalArns = read('orchestratorPrincipalArns', stringList);
  const exporterPrincipalArns = read('exporterPrincipalArns', stringList);
  const bridge = read('bridge', (value) => {
    const parsed = jsonObject(
      value,
      'a JSON object of cluster names to bridge identities, e.g. {"prod": {"oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"}}',
    );
    for (const [cluster, identity] of Object.entries(parsed)) {
      if (typeof identity !== 'object' || identity === null || Array.isArray(identity))
        throw new Error(`"${cluster}" must map to an object (oidcProviderArn, namespace, serviceAccount)`);
      for (const [field, text] of Object.entries(identity)) {
        if (typeof text !== 'string') throw new Error(`${cluster}.${field} must be a string`);
      }
    }
    return parsed as Record<string, BridgeIdentity>;
  });
  const functionsGroup = read('functionsGroup', (value) => {
    if (typeof value !== 'string') throw new Error('must be a Kubernetes group name');
    return value;
  });
  const vpc = read('vpc', (value) => {
    const parsed = jsonObject(
      value,
      'a JSON object {"subnetIds": ["subnet-..."], "securityGroupIds": ["sg-..."]}',
    );
    for (const field of Object.keys(parsed)) {
      if (field !== 'subnetIds' && field !== 'securityGroupIds')
        throw new Error(`unknown field "${field}" (known: subnetIds, securityGroupIds)`);
    }
    return {
      subnetIds: parsed.subnetIds === undefined ? [] : stringList(parsed.subnetIds),
      securityGroupIds: parsed.securityGroupIds === undefined ? [] : stringList(parsed.securityGroupIds),
    };
  });
  const reservedConcurrency = read('reservedConcurrency', (value) => {
    const parsed = jsonObject(value, 'a JSON object of function names to whole numbers, e.g. {"check": 20}');
    return Object.fromEntries(
      Object.entries(parsed).map(([name, count]) => [
        name,
        typeof count === 'string' && /^\d+$/.test(count) ? Number(count) : count,
      ]),
    ) as PodwardenStackProps['reservedConcurrency'];
  });
  const imageRepository = read('imageRepository', (value) => {
    if (value === true || value === 'true') return BRIDGE_IMAGE_NAME;
    if (value === false || value === 'false') return undefined;
    if (typeof value !== 'string') throw new Error('must be true or an ECR repository name');
    return value;
  });
  problems.push(
    ...wiringProblems({
      ...(clusters ? { clusters } : {}),
      ...(orchestratorPrincipalArns ? { orchestratorPrincipalArns } : {}),
      ...(exporterPrincipalArns ? { exporterPrincipalArns } : {}),
      ...(bridge ? { bridge } : {}),
      ...(functionsGroup !== undefined ? { functionsGroup } : {}),
      ...(vpc ? { vpc } : {}),
      ...(reservedConcurrency ? { reservedConcurrency } : {}),
      ...(imageRepository ? { imageRepository } : {}),
    }),
  );

  if (problems.length > 0) throw new ContextError(problems);
  const reaper =
    reaperMaxDeletes !== undefined || reaperDryRun !== undefined
      ? {
          ...(reaperMaxDeletes !== undefined ? { maxDeletes: reaperMaxDeletes } : {}),
          ...(reaperDryRun !== undefined ? { dryRun: reaperDryRun } : {}),
        }
      : undefined;
  return {
    stackName: stackName ?? 'Podwarden',
    props: {
      clusters: clusters!,
      allowedNamespaces: allowedNamespaces!,
      ...(profiles ? { profiles } : {}),
      ...(eventBusName ? { eventBusName } : {}),
      ...(alarmEmail ? { alarmEmail } : {}),
      ...(exporterSources ? { exporterSources } : {}),
      ...(orchestratorSources ? { orchestratorSources } : {}),
      ...(reaper ? { reaper } : {}),
      ...(timerBatchSize !== undefined ? { timerBatchSize } : {}),
      ...(policy ? { policy } : {}),
      ...(timerLagAlarmSeconds !== undefined ? { timerLagAlarmSeconds } : {}),
      ...(logRetention !== undefined ? { logRetention } : {}),
      ...(orchestratorPrincipalArns ? { orchestratorPrincipalArns } : {}),
      ...(exporterPrincipalArns ? { exporterPrincipalArns } : {}),
      ...(bridge ? { bridge } : {}),
      ...(functionsGroup !== undefined ? { functionsGroup } : {}),
      ...(vpc ? { vpc } : {}),
      ...(reservedConcurrency ? { reservedConcurrency } : {}),
      ...(imageRepository ? { imageRepository } : {}),
    },
  };
}

/** A JSON object given as text (from -c) or as an object (from cdk.json). */
function jsonObject(value: unknown, what: string): Record<string, unknown> {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      throw new Error(`not valid JSON (${(error as Error).message}); give ${what}`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error(`must be ${what}`);
  return parsed as Record<string, unknown>;
}

/** `a,b` (from -c) or ["a", "b"] (from cdk.json). */
function stringList(value: unknown): string[] {
  const items = typeof value === 'string' ? value.split(',') : value;
  if (!Array.isArray(items) || items.some((item) => typeof item !== 'string')) {
    throw new Error(`${JSON.stringify(value)} is not a comma-separated list or an array of strings`);
  }
  const list = (items as string[]).map((item) => item.trim()).filter((item) => item !== '');
  if (list.length === 0) throw new Error('names nothing');
  return list;
}

function wholeNumber(value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const number = typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < min || number > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? '' : ` from ${min} to ${max}`;
    throw new Error(`${JSON.stringify(value)} is not a whole number${range}`);
  }
  return number;
}
