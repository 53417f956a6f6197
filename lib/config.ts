/**
 * The Lambda functions' configuration, from environment variables. Every option is validated, and
 * every problem names its variable; all problems are reported at once. The CDK stack writes the
 * same variables with `configEnvironment`, so what it deploys is what `loadConfig` reads.
 */
import { CLUSTERS_ENV, type ClusterConnection, parseClusterConnections } from './cluster/connections.ts';
import { DEFAULT_PROFILE, PROFILE_NAMES, parseProfileName } from './core/identity.ts';
import { isValidClusterName } from './core/inbound.ts';
import { DEFAULT_POLICY, makePolicy, type Policy, parseDuration } from './core/policy.ts';
import type { ProfileName } from './core/task.ts';
import { DEFAULT_ORCHESTRATOR_SOURCES, type RouteOptions, routeTable } from './routes.ts';
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

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid Podwarden configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.problems = problems;
  }
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// An event bus name (1-256 of A-Z a-z 0-9 . _ - /) or its ARN.
const BUS_NAME = /^[A-Za-z0-9._\-/]{1,256}$/;
// https://sqs.<region>.amazonaws.com/<account>/<name>, or a local engine's http://127.0.0.1:<port>/<account>/<name>.
const QUEUE_URL = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?\/[\w-]+\/[\w-]{1,80}$/;
const BUS_ARN = /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[A-Za-z0-9._\-/]{1,256}$/;

type Env = Readonly<Record<string, string | undefined>>;

export function loadConfig(env: Env = process.env): PodwardenConfig {
  const problems: string[] = [];
  /** Runs one option's parser; a thrown message becomes a problem that names the variable. */
  const read = <T>(variable: string, parse: (text: string | undefined) => T, fallback: T): T => {
    const raw = env[variable];
    try {
      return parse(raw === undefined || raw.trim() === '' ? undefined : raw.trim());
    } catch (error) {
      problems.push(`${variable}: ${(error as Error).message}`);
      return fallback;
    }
  };

  const tableName = read(
    ENV.tableName,
    (text) => {
      if (text === undefined) throw new Error('is not set; give the DynamoDB table name');
      assertTableName(text);
      return text;
    },
    '',
  );
  const eventBusName = read(
    ENV.eventBusName,
    (text) => {
      if (text === undefined) throw new Error('is not set; give the event bus name or ARN');
      if (!BUS_NAME.test(text) && !BUS_ARN.test(text)) {
        throw new Error(`${JSON.stringify(text)} is not an event bus name (A-Z a-z 0-9 . _ - /) or ARN`);
      }
      return text;
    },
    '',
  );
  const clusters = read(
    ENV.clusters,
    (text) => {
      if (text === undefined) {
        throw new Error(
          'is not set; give a JSON object of cluster names to connections, e.g. {"prod": {"kind": "eks", "clusterName": "...", "endpoint": "https://...", "caData": "...", "region": "..."}}',
        );
      }
      return parseClusterConnections(text);
    },
    new Map<string, ClusterConnection>(),
  );
  const profiles = read(
    ENV.profiles,
    (text) => {
      const names = text === undefined ? [DEFAULT_PROFILE] : list(text).map(parseProfileName);
      if (names.length === 0)
        throw new Error(`names no profile; use one or more of ${PROFILE_NAMES.join(', ')}`);
      return unique(names);
    },
    [DEFAULT_PROFILE],
  );
  const allowedNamespaces = read(
    ENV.allowedNamespaces,
    (text) => {
      // Safe by default: acting in every namespace must be asked for, never the result of a typo'd name.
      if (text === undefined) {
        throw new Error(
          `is not set; list the namespaces Podwarden may act in (comma-separated), or ${ALL_NAMESPACES} for all`,
        );
      }
      if (text === ALL_NAMESPACES) return [];
      const names = list(text);
      for (const name of names) {
        if (name === ALL_NAMESPACES)
          throw new Error(`${ALL_NAMESPACES} cannot be combined with namespace names`);
        if (!NAMESPACE.test(name)) throw new Error(`${JSON.stringify(name)} is not a valid namespace name`);
      }
      if (names.length === 0) throw new Error(`names no namespace; use ${ALL_NAMESPACES} for all`);
      return unique(names);
    },
    [],
  );
  const maxDeletes = read(
    ENV.reaperMaxDeletes,
    (text) => (text === undefined ? DEFAULT_REAPER_MAX_DELETES : wholeNumber(text, 0, MAX_REAPER_DELETES)),
    DEFAULT_REAPER_MAX_DELETES,
  );
  const dryRun = read(ENV.reaperDryRun, (text) => (text === undefined ? false : boolean(text)), false);
  const timerBatchSize = read(
    ENV.timerBatchSize,
    (text) => (text === undefined ? DEFAULT_TIMER_BATCH_SIZE : wholeNumber(text, 1, MAX_TIMER_BATCH_SIZE)),
    DEFAULT_TIMER_BATCH_SIZE,
  );
  const orchestratorSources = read(
    ENV.orchestratorSources,
    (text) => (text === undefined ? [...DEFAULT_ORCHESTRATOR_SOURCES] : unique(list(text))),
    [...DEFAULT_ORCHESTRATOR_SOURCES],
  );
  const exporterSources = read(
    ENV.exporterSources,
    (text) => (text === undefined ? {} : parseExporterSources(text, clusters)),
    {},
  );
  const checkQueueUrl = read(
    ENV.checkQueueUrl,
    (text) => {
      if (text === undefined) return undefined;
      if (!QUEUE_URL.test(text)) {
        throw new Error(
          `${JSON.stringify(text)} is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>)`,
        );
      }
      return text;
    },
    undefined,
  );

  const overrides: Partial<Policy> = {};
  for (const [field, { variable, unit }] of Object.entries(POLICY_ENV) as Array<
    [keyof Policy, (typeof POLICY_ENV)[keyof Policy]]
  >) {
    const value = read(
      variable,
      (text) =>
        text === undefined ? undefined : unit === 'count' ? wholeNumber(text, 0, 100) : duration(text),
      undefined,
    );
    if (value !== undefined) overrides[field] = value;
  }
  let policy: Policy = { ...DEFAULT_POLICY };
  try {
    policy = makePolicy(overrides);
  } catch (error) {
    problems.push(policyProblem((error as Error).message));
  }

  if (problems.length === 0) {
    try {
      // The same check the stack's rules go through: sources must not collide with each other.
      routeTable(routeOptions({ exporterSources, orchestratorSources }));
    } catch (error) {
      problems.push(`${ENV.exporterSources} / ${ENV.orchestratorSources}: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    tableName,
    eventBusName,
    clusters,
    profiles,
    allowedNamespaces,
    reaper: { maxDeletes, dryRun },
    timerBatchSize,
    policy,
    exporterSources,
    orchestratorSources,
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

function parseExporterSources(
  text: string,
  clusters: Map<string, ClusterConnection>,
): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`not valid JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(
      'expected a JSON object mapping each exporter source to the cluster it reports for, e.g. {"k8s.prod": "prod"}',
    );
  }
  const sources: Record<string, string> = {};
  for (const [source, cluster] of Object.entries(value)) {
    if (typeof cluster !== 'string' || !isValidClusterName(cluster)) {
      throw new Error(
        `source ${JSON.stringify(source)} maps to ${JSON.stringify(cluster)}, not a cluster name`,
      );
    }
    if (clusters.size > 0 && !clusters.has(cluster)) {
      throw new Error(
        `source ${JSON.stringify(source)} maps to cluster "${cluster}", which ${CLUSTERS_ENV} does not configure (it has: ${[...clusters.keys()].join(', ')})`,
      );
    }
    sources[source] = cluster;
  }
  return sources;
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

function list(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

function wholeNumber(text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new Error(`${JSON.stringify(text)} is not a whole number from ${min} to ${max}`);
  }
  return Number(text);
}

function duration(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new Error(
      `${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text)} is not a duration like 90, 90s, 15m, 2h or 500ms, up to 366 days`,
    );
  return ms;
}

function boolean(text: string): boolean {
  const lower = text.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw new Error(`${JSON.stringify(text)} is not true or false`);
}
