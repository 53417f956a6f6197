/**
 * Stack props from CDK context (`cdk deploy -c key=value`, or `context` in cdk.json), read with one
 * schema (`context`). Every problem names its context key; they are all reported at once.
 */
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as z from 'zod/mini';
import { BRIDGE_IMAGE_NAME } from '../lib/bridge/image.ts';
import { type ClusterConnection, parseClusterConnections } from '../lib/cluster/connections.ts';
import { ALL_NAMESPACES, exporterSourceClusters } from '../lib/config.ts';
import { parseProfileName } from '../lib/core/identity.ts';
import { makePolicy, type Policy, policyFieldProblem } from '../lib/core/policy.ts';
import { says } from '../lib/core/schemas/problems.ts';
import { ofTheValid, parsedBy, SettingsError, settingsProblems, whenValid } from '../lib/settings.ts';
import type { BridgeIdentity, PodwardenStackProps } from './podwarden-stack.ts';
import { wiringProblems } from './wiring-checks.ts';

/** The keys infra/wiring-checks.ts checks together. */
const WIRING_KEYS = [
  'orchestratorPrincipalArns',
  'exporterPrincipalArns',
  'bridge',
  'functionsGroup',
  'vpc',
  'reservedConcurrency',
  'imageRepository',
] as const;

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
  ...WIRING_KEYS,
] as const;
export type ContextKey = (typeof CONTEXT_KEYS)[number];

export class ContextError extends SettingsError {
  override name = 'ContextError';
  constructor(problems: string[]) {
    super('invalid CDK context for Podwarden (set it with -c key=value or in cdk.json)', problems);
  }
}

// CloudWatch Logs accepts only these retention periods.
const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const STACK_NAME = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;

// ---- the pieces: a context value is text from -c, or any JSON value from cdk.json ----------------

/** null and '' count as not given, as an unset key does. */
const given = z.transform((value: unknown): unknown => (value === null || value === '' ? undefined : value));
const optionalKey = <S extends z.ZodMiniType>(schema: S) => z.pipe(given, z.optional(schema));
const requiredKey = <S extends z.ZodMiniType>(whenMissing: string, schema: S) =>
  z.pipe(given, z.pipe(z.unknown().check(z.refine((value) => value !== undefined, whenMissing)), schema));

const text = (problem: (value: unknown) => string) => z.string(says(problem));

/** `a,b` (from -c) or ["a", "b"] (from cdk.json), its items trimmed, none empty. */
const stringList = z
  .pipe(
    parsedBy((value: unknown) => {
      const items = typeof value === 'string' ? value.split(',') : value;
      if (!Array.isArray(items) || items.some((item) => typeof item !== 'string')) {
        throw new Error(`${JSON.stringify(value)} is not a comma-separated list or an array of strings`);
      }
      return (items as string[]).map((item) => item.trim()).filter((item) => item !== '');
    }),
    z.array(z.string()),
  )
  .check(z.minLength(1, 'names nothing'));

/** A whole number, or its digits as text (from -c). */
function wholeNumber(min = 0, max = Number.MAX_SAFE_INTEGER) {
  const range = max === Number.MAX_SAFE_INTEGER ? '' : ` from ${min} to ${max}`;
  const problem = says((value) => `${JSON.stringify(value)} is not a whole number${range}`);
  return z.pipe(
    z.transform((value: unknown) =>
      typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value,
    ),
    z.int(problem).check(z.gte(min, problem), z.lte(max, problem)),
  );
}

/** A JSON object given as text (from -c) or as an object (from cdk.json). */
function jsonObject(what: string) {
  return z.pipe(
    parsedBy((value: unknown) => {
      if (typeof value !== 'string') return value;
      try {
        return JSON.parse(value) as unknown;
      } catch (error) {
        throw new Error(`not valid JSON (${(error as Error).message}); give ${what}`);
      }
    }),
    z.record(
      z.string(),
      z.unknown(),
      says(() => `must be ${what}`),
    ),
  );
}

// ---- the one schema ------------------------------------------------------------------------------

const context = z
  .object({
    stackName: optionalKey(
      z.string().check(
        z.refine(
          (name) => STACK_NAME.test(name),
          says(
            (value) => `${JSON.stringify(value)} is not a stack name (a letter, then letters, digits and -)`,
          ),
        ),
      ),
    ),
    clusters: requiredKey(
      'is not set; give a JSON object of cluster names to EKS connections, e.g. -c clusters=\'{"prod": {"kind": "eks", "clusterName": "prod", "endpoint": "https://....eks.amazonaws.com", "caData": "<base64 CA>", "region": "eu-west-1"}}\'',
      parsedBy(
        (value: unknown) =>
          Object.fromEntries(
            parseClusterConnections(typeof value === 'string' ? value : JSON.stringify(value)),
          ) as Record<string, ClusterConnection>,
      ),
    ),
    allowedNamespaces: requiredKey(
      `is not set; list the namespaces Podwarden may act in (a,b), or ${ALL_NAMESPACES} for all`,
      z.union([z.literal(ALL_NAMESPACES), stringList]),
    ),
    profiles: optionalKey(z.pipe(stringList, z.array(parsedBy(parseProfileName)))),
    eventBusName: optionalKey(text(() => 'must be the name of an existing event bus')),
    alarmEmail: optionalKey(
      z.string().check(
        z.refine(
          (address) => EMAIL.test(address),
          says((value) => `${JSON.stringify(value)} is not an email address`),
        ),
      ),
    ),
    exporterSources: optionalKey(
      z.pipe(
        jsonObject('a JSON object of exporter sources to cluster names, e.g. {"k8s.prod": "prod"}'),
        exporterSourceClusters,
      ),
    ),
    orchestratorSources: optionalKey(stringList),
    reaperMaxDeletes: optionalKey(wholeNumber(0, 1_000)),
    reaperDryRun: optionalKey(
      z.pipe(
        z.unknown().check(
          z.refine(
            (value) => value === true || value === false || value === 'true' || value === 'false',
            says((value) => `${JSON.stringify(value)} is not true or false`),
          ),
        ),
        z.transform((value) => value === true || value === 'true'),
      ),
    ),
    timerBatchSize: optionalKey(wholeNumber(1, 1_000)),
    policy: optionalKey(
      z.pipe(
        jsonObject('a JSON object of policy fields, e.g. {"recreateBudget": 5, "pullDeadlineMs": 900000}'),
        // Each field with its own name and range, here at the door, not as a function failing at start.
        parsedBy((fields: Record<string, unknown>) => {
          const problems = Object.entries(fields).flatMap(([field, value]) => {
            const problem = policyFieldProblem(field, value);
            return problem ? [problem] : [];
          });
          if (problems.length > 0) throw new Error(problems.join('; '));
          makePolicy(fields as Partial<Policy>);
          return fields as Partial<Policy>;
        }),
      ),
    ),
    timerLagAlarmSeconds: optionalKey(wholeNumber(60, 86_400)),
    logRetentionDays: optionalKey(
      z.pipe(
        wholeNumber(),
        z.number().check(
          z.refine(
            (days) => RETENTION_DAYS.includes(days),
            says(
              (days) => `${String(days)} is not a CloudWatch Logs retention (${RETENTION_DAYS.join(', ')})`,
            ),
          ),
        ),
      ),
    ),
    orchestratorPrincipalArns: optionalKey(stringList),
    exporterPrincipalArns: optionalKey(stringList),
    bridge: optionalKey(
      z.pipe(
        jsonObject(
          'a JSON object of cluster names to bridge identities, e.g. {"prod": {"oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"}}',
        ),
        parsedBy((identities: Record<string, unknown>) => {
          for (const [cluster, identity] of Object.entries(identities)) {
            if (typeof identity !== 'object' || identity === null || Array.isArray(identity))
              throw new Error(
                `"${cluster}" must map to an object (oidcProviderArn, namespace, serviceAccount)`,
              );
            for (const [field, value] of Object.entries(identity)) {
              if (typeof value !== 'string') throw new Error(`${cluster}.${field} must be a string`);
            }
          }
          return identities as Record<string, BridgeIdentity>;
        }),
      ),
    ),
    functionsGroup: optionalKey(text(() => 'must be a Kubernetes group name')),
    vpc: optionalKey(
      z.pipe(
        jsonObject('a JSON object {"subnetIds": ["subnet-..."], "securityGroupIds": ["sg-..."]}').check(
          z.refine(
            (fields) =>
              Object.keys(fields).every((field) => field === 'subnetIds' || field === 'securityGroupIds'),
            says((fields) => {
              const unknown = Object.keys(fields as object).find(
                (field) => field !== 'subnetIds' && field !== 'securityGroupIds',
              );
              return `unknown field "${unknown}" (known: subnetIds, securityGroupIds)`;
            }),
          ),
        ),
        z.object({
          subnetIds: z._default(stringList, []),
          securityGroupIds: z._default(stringList, []),
        }),
      ),
    ),
    reservedConcurrency: optionalKey(
      z.pipe(
        jsonObject('a JSON object of function names to whole numbers, e.g. {"check": 20}'),
        // Counts are checked with the other wiring (infra/wiring-checks.ts); -c gives them as text.
        z.transform(
          (counts) =>
            Object.fromEntries(
              Object.entries(counts).map(([name, count]) => [
                name,
                typeof count === 'string' && /^\d+$/.test(count) ? Number(count) : count,
              ]),
            ) as PodwardenStackProps['reservedConcurrency'],
        ),
      ),
    ),
    // true: a repository named as the image; a name is checked with the other wiring.
    imageRepository: optionalKey(
      parsedBy((value: unknown): string | undefined => {
        if (value === true || value === 'true') return BRIDGE_IMAGE_NAME;
        if (value === false || value === 'false') return undefined;
        if (typeof value !== 'string') throw new Error('must be true or an ECR repository name');
        return value;
      }),
    ),
  })
  .check(
    whenValid(['clusters', 'exporterSources'], (read, payload) => {
      for (const [source, cluster] of Object.entries(read.exporterSources ?? {})) {
        if (read.clusters && !Object.hasOwn(read.clusters, cluster)) {
          payload.issues.push({
            code: 'custom',
            path: ['exporterSources'],
            input: read.exporterSources,
            message: `source ${JSON.stringify(source)} maps to cluster "${cluster}", which clusters does not configure`,
          });
          return;
        }
      }
    }),
    ofTheValid((valid, payload) => {
      const wiring = Object.fromEntries(
        (['clusters', ...WIRING_KEYS] as const).flatMap((key) =>
          valid[key] === undefined ? [] : [[key, valid[key]]],
        ),
      );
      for (const message of wiringProblems(wiring))
        payload.issues.push({ code: 'custom', input: wiring, message });
    }),
  );

export function stackPropsFromContext(get: (key: ContextKey) => unknown): {
  stackName: string;
  props: PodwardenStackProps;
} {
  const parsed = context.safeParse(Object.fromEntries(CONTEXT_KEYS.map((key) => [key, get(key)])));
  if (!parsed.success) throw new ContextError(settingsProblems(parsed.error, (key) => `${key}: `));
  const read = parsed.data;
  const reaper =
    read.reaperMaxDeletes !== undefined || read.reaperDryRun !== undefined
      ? {
          ...(read.reaperMaxDeletes !== undefined ? { maxDeletes: read.reaperMaxDeletes } : {}),
          ...(read.reaperDryRun !== undefined ? { dryRun: read.reaperDryRun } : {}),
        }
      : undefined;
  const defined = <K extends string, V>(key: K, value: V | undefined) =>
    (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
  return {
    stackName: read.stackName ?? 'Podwarden',
    props: {
      clusters: read.clusters,
      allowedNamespaces: read.allowedNamespaces,
      ...defined('profiles', read.profiles),
      ...defined('eventBusName', read.eventBusName),
      ...defined('alarmEmail', read.alarmEmail),
      ...defined('exporterSources', read.exporterSources),
      ...defined('orchestratorSources', read.orchestratorSources),
      ...defined('reaper', reaper),
      ...defined('timerBatchSize', read.timerBatchSize),
      ...defined('policy', read.policy),
      ...defined('timerLagAlarmSeconds', read.timerLagAlarmSeconds),
      ...defined('logRetention', read.logRetentionDays as logs.RetentionDays | undefined),
      ...defined('orchestratorPrincipalArns', read.orchestratorPrincipalArns),
      ...defined('exporterPrincipalArns', read.exporterPrincipalArns),
      ...defined('bridge', read.bridge),
      ...defined('functionsGroup', read.functionsGroup),
      ...defined('vpc', read.vpc),
      ...defined('reservedConcurrency', read.reservedConcurrency),
      ...defined('imageRepository', read.imageRepository),
    },
  };
}
