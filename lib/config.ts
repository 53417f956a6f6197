/**
 * The Lambda functions' configuration, from environment variables, read with one schema
 * (`environment`): every option is validated, every problem names its variable, and all problems
 * are reported at once. The CDK stack writes the
 * same variables with `configEnvironment`, so what it deploys is what `loadConfig` reads.
 */
import * as z from 'zod/mini';
import { CLUSTERS_ENV, type ClusterConnection, parseClusterConnections } from './cluster/connections.ts';
import { DEFAULT_PROFILE, PROFILE_NAMES, parseProfileName } from './core/identity.ts';
import { makePolicy, type Policy } from './core/policy.ts';
import { DNS_LABEL, isValidClusterName } from './core/schemas/common.ts';
import { says } from './core/schemas/problems.ts';
import type { ProfileName } from './core/task.ts';
import { DEFAULT_ORCHESTRATOR_SOURCES, type RouteOptions, routeTable } from './routes.ts';
import {
  booleanText,
  commaList,
  durationText,
  jsonObjectText,
  mayBeUnset,
  parsedBy,
  required,
  SettingsError,
  settingsProblems,
  textThat,
  unique,
  whenValid,
  wholeNumberText,
  withDefault,
} from './settings.ts';
import { assertTableName } from './store/schema.ts';

export const ENV = {
  tableName: 'PODWARDEN_TABLE_NAME',
  eventBusName: 'PODWARDEN_EVENT_BUS_NAME',
  clusters: CLUSTERS_ENV,
  profiles: 'PODWARDEN_PROFILES',
  allowedNamespaces: 'PODWARDEN_ALLOWED_NAMESPACES',
  reaperMaxDeletes: 'PODWARDEN_REAPER_MAX_DELETES',
  reaperDryRun: 'PODWARDEN_REAPER_DRY_RUN',
  timerBatchSize: 'PODWARDEN_TIMER_BATCH_SIZE',
  exporterSources: 'PODWARDEN_EXPORTER_SOURCES',
  orchestratorSources: 'PODWARDEN_ORCHESTRATOR_SOURCES',
  checkQueueUrl: 'PODWARDEN_CHECK_QUEUE_URL',
} as const;

/** One variable per policy knob; durations take `90`, `90s`, `15m`, `2h` or `500ms`. */
export const POLICY_ENV: Readonly<Record<keyof Policy, { variable: string; unit: 'count' | 'duration' }>> =
  Object.freeze({
    recreateBudget: { variable: 'PODWARDEN_RECREATE_BUDGET', unit: 'count' },
    recreateBackoffBaseMs: { variable: 'PODWARDEN_RECREATE_BACKOFF_BASE', unit: 'duration' },
    goneGraceMs: { variable: 'PODWARDEN_GONE_GRACE', unit: 'duration' },
    pullRecheckBaseMs: { variable: 'PODWARDEN_PULL_RECHECK_BASE', unit: 'duration' },
    pullRecheckCapMs: { variable: 'PODWARDEN_PULL_RECHECK_CAP', unit: 'duration' },
    pullDeadlineMs: { variable: 'PODWARDEN_PULL_DEADLINE', unit: 'duration' },
    startupDeadlineMs: { variable: 'PODWARDEN_STARTUP_DEADLINE', unit: 'duration' },
    sidecarGraceMs: { variable: 'PODWARDEN_SIDECAR_GRACE', unit: 'duration' },
    finishedGraceMs: { variable: 'PODWARDEN_FINISHED_GRACE', unit: 'duration' },
    resyncMs: { variable: 'PODWARDEN_RESYNC_INTERVAL', unit: 'duration' },
    reaperMinAgeMs: { variable: 'PODWARDEN_REAPER_MIN_AGE', unit: 'duration' },
    reaperMaxDeletesPercent: { variable: 'PODWARDEN_REAPER_MAX_DELETES_PERCENT', unit: 'count' },
    retentionMs: { variable: 'PODWARDEN_RETENTION', unit: 'duration' },
  });

export const DEFAULT_REAPER_MAX_DELETES = 10;
export const DEFAULT_TIMER_BATCH_SIZE = 1_000;
const MAX_REAPER_DELETES = 1_000;
const MAX_TIMER_BATCH_SIZE = 10_000;
/** Written to PODWARDEN_ALLOWED_NAMESPACES to allow every namespace; leaving it unset is an error. */
export const ALL_NAMESPACES = '*';

export interface PodwardenConfig {
  tableName: string;
  /** Name or ARN of the bus outbound events go to. */
  eventBusName: string;
  clusters: Map<string, ClusterConnection>;
  profiles: ProfileName[];
  /** Namespaces Podwarden may act in; empty means every namespace (PODWARDEN_ALLOWED_NAMESPACES=*). */
  allowedNamespaces: string[];
  reaper: { maxDeletes: number; dryRun: boolean };
  timerBatchSize: number;
  policy: Policy;
  /** kubernetes-event-exporter `source` -> the cluster it reports for. */
  exporterSources: Record<string, string>;
  orchestratorSources: string[];
  /** SQS queue of delayed due checks (the `check` function consumes it); unset: the timer sweep alone. */
  checkQueueUrl?: string;
}

/** What the CDK stack (or a test) knows, to be written as environment variables. */
export interface ConfigSettings {
  tableName: string;
  eventBusName: string;
  clusters: Record<string, ClusterConnection>;
  profiles?: ProfileName[];
  /** `*` for every namespace. */
  allowedNamespaces: readonly string[] | typeof ALL_NAMESPACES;
  reaper?: { maxDeletes?: number; dryRun?: boolean };
  timerBatchSize?: number;
  policy?: Partial<Policy>;
  exporterSources?: Record<string, string>;
  orchestratorSources?: readonly string[];
  checkQueueUrl?: string;
}

export class ConfigError extends SettingsError {
  override name = 'ConfigError';
  constructor(problems: string[]) {
    super('invalid Podwarden configuration', problems);
  }
}

// An event bus name (1-256 of A-Z a-z 0-9 . _ - /) or its ARN.
const BUS_NAME = /^[A-Za-z0-9._\-/]{1,256}$/;
// https://sqs.<region>.amazonaws.com/<account>/<name>, or a local engine's http://127.0.0.1:<port>/<account>/<name>.
const QUEUE_URL = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?\/[\w-]+\/[\w-]{1,80}$/;
const BUS_ARN = /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[A-Za-z0-9._\-/]{1,256}$/;

type Env = Readonly<Record<string, string | undefined>>;

/** Namespace names, or `*` alone for every namespace (as no names: namespaceAllowed allows all). */
const allowedNamespaceList = z.pipe(
  z
    .pipe(
      commaList(
        textThat(
          (name) => name === ALL_NAMESPACES || (DNS_LABEL.test(name) && name.length <= 63),
          (name) => `${JSON.stringify(name)} is not a valid namespace name`,
        ),
      ),
      z.transform(unique),
    )
    .check(
      z.refine((names) => names.length > 0, `names no namespace; use ${ALL_NAMESPACES} for all`),
      z.refine(
        (names) => !names.includes(ALL_NAMESPACES) || names.length === 1,
        `${ALL_NAMESPACES} cannot be combined with namespace names`,
      ),
    ),
  z.transform((names: string[]) => (names.includes(ALL_NAMESPACES) ? [] : names)),
);

/** kubernetes-event-exporter sources, each mapped to the cluster it reports for (also the CDK context's). */
export const exporterSourceClusters = parsedBy((sources: Record<string, unknown>) => {
  for (const [source, cluster] of Object.entries(sources)) {
    if (typeof cluster !== 'string' || !isValidClusterName(cluster)) {
      throw new Error(
        `source ${JSON.stringify(source)} maps to ${JSON.stringify(cluster)}, not a cluster name`,
      );
    }
  }
  return sources as Record<string, string>;
});

const exporterSourceMap = z.pipe(
  jsonObjectText(
    'expected a JSON object mapping each exporter source to the cluster it reports for, e.g. {"k8s.prod": "prod"}',
  ),
  exporterSourceClusters,
);

const policyVariables = Object.fromEntries(
  Object.values(POLICY_ENV).map(({ variable, unit }) => [
    variable,
    mayBeUnset(
      unit === 'count'
        ? wholeNumberText(0, 100)
        : durationText(
            (text) =>
              `${JSON.stringify(text)} is not a duration like 90, 90s, 15m, 2h or 500ms, up to 366 days`,
          ),
    ),
  ]),
);

/** The variables `loadConfig` reads: one schema, each variable's problem named by the variable. */
const environment = z
  .object({
    [ENV.tableName]: required(
      'is not set; give the DynamoDB table name',
      parsedBy((text: string) => {
        assertTableName(text);
        return text;
      }),
    ),
    [ENV.eventBusName]: required(
      'is not set; give the event bus name or ARN',
      textThat(
        (text) => BUS_NAME.test(text) || BUS_ARN.test(text),
        (text) => `${JSON.stringify(text)} is not an event bus name (A-Z a-z 0-9 . _ - /) or ARN`,
      ),
    ),
    [ENV.clusters]: required(
      'is not set; give a JSON object of cluster names to connections, e.g. {"prod": {"kind": "eks", "clusterName": "...", "endpoint": "https://...", "caData": "...", "region": "..."}}',
      parsedBy((text: string) => parseClusterConnections(text)),
    ),
    [ENV.profiles]: withDefault(
      z.pipe(
        commaList(parsedBy(parseProfileName)).check(
          z.minLength(
            1,
            says(() => `names no profile; use one or more of ${PROFILE_NAMES.join(', ')}`),
          ),
        ),
        z.transform(unique),
      ),
      [DEFAULT_PROFILE],
    ),
    // Safe by default: acting in every namespace must be asked for, never the result of a typo'd name.
    [ENV.allowedNamespaces]: required(
      `is not set; list the namespaces Podwarden may act in (comma-separated), or ${ALL_NAMESPACES} for all`,
      allowedNamespaceList,
    ),
    [ENV.reaperMaxDeletes]: withDefault(wholeNumberText(0, MAX_REAPER_DELETES), DEFAULT_REAPER_MAX_DELETES),
    [ENV.reaperDryRun]: withDefault(booleanText, false),
    [ENV.timerBatchSize]: withDefault(wholeNumberText(1, MAX_TIMER_BATCH_SIZE), DEFAULT_TIMER_BATCH_SIZE),
    [ENV.orchestratorSources]: withDefault(z.pipe(commaList(z.string()), z.transform(unique)), [
      ...DEFAULT_ORCHESTRATOR_SOURCES,
    ]),
    [ENV.exporterSources]: withDefault(exporterSourceMap, {}),
    [ENV.checkQueueUrl]: mayBeUnset(
      textThat(
        (text) => QUEUE_URL.test(text),
        (text) =>
          `${JSON.stringify(text)} is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>)`,
      ),
    ),
    ...policyVariables,
  })
  .check(
    whenValid([ENV.exporterSources, ENV.clusters], (env, payload) => {
      const clusters = env[ENV.clusters];
      for (const [source, cluster] of Object.entries(env[ENV.exporterSources])) {
        if (!clusters.has(cluster)) {
          payload.issues.push({
            code: 'custom',
            path: [ENV.exporterSources],
            input: cluster,
            message: `source ${JSON.stringify(source)} maps to cluster "${cluster}", which ${CLUSTERS_ENV} does not configure (it has: ${[...clusters.keys()].join(', ')})`,
          });
          return;
        }
      }
    }),
    whenValid(Object.keys(policyVariables), (env, payload) => {
      try {
        makePolicy(policyOverrides(env));
      } catch (error) {
        payload.issues.push({ code: 'custom', input: env, message: policyProblem((error as Error).message) });
      }
    }),
    whenValid([ENV.exporterSources, ENV.orchestratorSources], (env, payload) => {
      try {
        // The same check the stack's rules go through: sources must not collide with each other.
        routeTable(
          routeOptions({
            exporterSources: env[ENV.exporterSources],
            orchestratorSources: env[ENV.orchestratorSources],
          }),
        );
      } catch (error) {
        payload.issues.push({
          code: 'custom',
          input: env,
          message: `${ENV.exporterSources} / ${ENV.orchestratorSources}: ${(error as Error).message}`,
        });
      }
    }),
  );

function policyOverrides(env: Record<string, unknown>): Partial<Policy> {
  const overrides: Partial<Policy> = {};
  for (const [field, { variable }] of Object.entries(POLICY_ENV) as Array<
    [keyof Policy, (typeof POLICY_ENV)[keyof Policy]]
  >) {
    const value = env[variable];
    if (typeof value === 'number') overrides[field] = value;
  }
  return overrides;
}

export function loadConfig(env: Env = process.env): PodwardenConfig {
  const parsed = environment.safeParse(env);
  if (!parsed.success) throw new ConfigError(settingsProblems(parsed.error, (variable) => `${variable}: `));
  const read = parsed.data;
  const checkQueueUrl = read[ENV.checkQueueUrl];
  return {
    tableName: read[ENV.tableName],
    eventBusName: read[ENV.eventBusName],
    clusters: read[ENV.clusters],
    profiles: read[ENV.profiles],
    allowedNamespaces: read[ENV.allowedNamespaces],
    reaper: { maxDeletes: read[ENV.reaperMaxDeletes], dryRun: read[ENV.reaperDryRun] },
    timerBatchSize: read[ENV.timerBatchSize],
    policy: makePolicy(policyOverrides(read)),
    exporterSources: read[ENV.exporterSources],
    orchestratorSources: read[ENV.orchestratorSources],
    ...(checkQueueUrl ? { checkQueueUrl } : {}),
  };
}

/** The route options a configuration implies (the stack and the dispatcher build the table from them). */
export function routeOptions(
  config: Pick<PodwardenConfig, 'exporterSources' | 'orchestratorSources'>,
): RouteOptions {
  return {
    exporterSources: Object.keys(config.exporterSources),
    orchestratorSources: config.orchestratorSources,
  };
}

/** Whether Podwarden may act in `namespace` under this configuration. */
export function namespaceAllowed(
  config: Pick<PodwardenConfig, 'allowedNamespaces'>,
  namespace: string,
): boolean {
  return config.allowedNamespaces.length === 0 || config.allowedNamespaces.includes(namespace);
}

/**
 * The environment variables that make `loadConfig` return these settings. Values are written, not
 * validated: the stack passes tokens (e.g. the table name) that only resolve at deploy time.
 */
export function configEnvironment(settings: ConfigSettings): Record<string, string> {
  const env: Record<string, string> = {
    [ENV.tableName]: settings.tableName,
    [ENV.eventBusName]: settings.eventBusName,
    [ENV.clusters]: JSON.stringify(settings.clusters),
    [ENV.allowedNamespaces]:
      settings.allowedNamespaces === ALL_NAMESPACES ? ALL_NAMESPACES : settings.allowedNamespaces.join(','),
  };
  if (settings.profiles !== undefined) env[ENV.profiles] = settings.profiles.join(',');
  if (settings.reaper?.maxDeletes !== undefined)
    env[ENV.reaperMaxDeletes] = String(settings.reaper.maxDeletes);
  if (settings.reaper?.dryRun !== undefined) env[ENV.reaperDryRun] = String(settings.reaper.dryRun);
  if (settings.timerBatchSize !== undefined) env[ENV.timerBatchSize] = String(settings.timerBatchSize);
  if (settings.exporterSources !== undefined && Object.keys(settings.exporterSources).length > 0) {
    env[ENV.exporterSources] = JSON.stringify(settings.exporterSources);
  }
  if (settings.orchestratorSources !== undefined) {
    env[ENV.orchestratorSources] = settings.orchestratorSources.join(',');
  }
  if (settings.checkQueueUrl !== undefined) env[ENV.checkQueueUrl] = settings.checkQueueUrl;
  for (const [field, value] of Object.entries(settings.policy ?? {}) as Array<[keyof Policy, number]>) {
    if (value === undefined) continue;
    const { variable, unit } = POLICY_ENV[field];
    env[variable] = unit === 'count' ? String(value) : `${value}ms`;
  }
  return env;
}

/** makePolicy names fields (`policy.pullRecheckCapMs`); say which variables they come from. */
function policyProblem(message: string): string {
  let named = message;
  const variables: string[] = [];
  for (const [field, { variable }] of Object.entries(POLICY_ENV)) {
    if (message.includes(`policy.${field}`)) {
      named = named.replaceAll(`policy.${field}`, variable);
      variables.push(variable);
    }
  }
  // A duration variable takes `90s`, `15m` ...: say the range that way, not in milliseconds.
  named = named.replace(
    /from (\d+) to (\d+) \(milliseconds\)/,
    (_all, min: string, max: string) => `from ${formatMs(Number(min))} to ${formatMs(Number(max))}`,
  );
  return `${variables.join(' / ') || 'policy'}: ${named.replace(new RegExp(`^${variables[0] ?? ''} `), '')}`;
}

function formatMs(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
