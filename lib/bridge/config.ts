import { hostname } from 'node:os';
import * as z from 'zod/mini';
import {
  CLUSTERS_ENV,
  type ClusterConnection,
  parseClusterConnections,
  unsafeEndpointProblem,
} from '../cluster/connections.ts';
import { PROFILE_NAMES, PROFILES } from '../core/identity.ts';
import { DNS_LABEL, DNS_SUBDOMAIN, isValidClusterName } from '../core/schemas/common.ts';
import { says } from '../core/schemas/problems.ts';
import type { ProfileName } from '../core/task.ts';
import {
  commaList,
  durationText,
  parsedBy,
  SettingsError,
  settingsProblems,
  textThat,
  unique,
  whenValid,
} from '../settings.ts';
import { LOG_LEVELS, type LogLevel } from './logger.ts';

/** Event reasons that tell the engine about disruptions, failed starts and image pulls. */
export const DEFAULT_EVENT_REASONS: readonly string[] = Object.freeze([
  'Preempted',
  'Evicted',
  'TaintManagerEviction',
  'Killing',
  'Failed',
  'BackOff',
  'ErrImageNeverPull',
  'InspectFailed',
  'FailedCreatePodSandBox',
]);

export interface LeaseConfig {
  namespace: string;
  name: string;
  durationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface BridgeConfig {
  cluster: string;
  /** Event bus name or ARN. */
  bus: string;
  region: string;
  eventBridgeEndpoint?: string;
  /** Empty: every namespace. */
  namespaces: string[];
  profiles: ProfileName[];
  eventReasons: string[];
  lease: LeaseConfig;
  identity: string;
  metricsHost: string;
  metricsPort: number;
  kubeconfig?: string;
  kubeContext?: string;
  logLevel: LogLevel;
  /** On SIGTERM, how long queued entries may take to go out before the rest is given up on. */
  flushTimeoutMs: number;
  /** On becoming leader, events older than this are not forwarded from the first list. */
  eventMaxAgeMs: number;
}

/** Every problem found in the flags and environment, so one run names them all. */
export class BridgeConfigError extends SettingsError {
  override name = 'BridgeConfigError';
  constructor(problems: string[]) {
    super('invalid bridge configuration', problems);
  }
}

interface Setting {
  flag: string;
  env: string[];
  help: string;
  default?: string;
}

/** Flags win over environment variables; the first environment variable set wins over later ones. */
export const BRIDGE_SETTINGS = {
  cluster: {
    flag: 'cluster',
    env: ['PODWARDEN_CLUSTER'],
    help: 'cluster name put in every entry (required)',
  },
  bus: { flag: 'bus', env: ['PODWARDEN_BUS'], help: 'EventBridge bus name or ARN (required)' },
  region: {
    flag: 'region',
    env: ['AWS_REGION', 'AWS_DEFAULT_REGION'],
    help: 'AWS region of the bus (required)',
  },
  eventBridgeEndpoint: {
    flag: 'eventbridge-endpoint',
    env: ['PODWARDEN_EVENTBRIDGE_ENDPOINT'],
    help: 'EventBridge endpoint URL (default: the region\u2019s own)',
  },
  namespaces: {
    flag: 'namespaces',
    env: ['PODWARDEN_NAMESPACES'],
    help: 'comma-separated namespaces to watch, or * for all',
    default: '*',
  },
  profiles: {
    flag: 'profiles',
    env: ['PODWARDEN_PROFILES'],
    help: `comma-separated profiles whose pods are managed (${PROFILE_NAMES.join(', ')})`,
    default: 'airflow-kpo',
  },
  eventReasons: {
    flag: 'event-reasons',
    env: ['PODWARDEN_EVENT_REASONS'],
    help: 'comma-separated Kubernetes event reasons to forward',
    default: DEFAULT_EVENT_REASONS.join(','),
  },
  leaseNamespace: {
    flag: 'lease-namespace',
    env: ['PODWARDEN_LEASE_NAMESPACE', 'POD_NAMESPACE'],
    help: 'namespace of the leader-election Lease',
    default: 'podwarden',
  },
  leaseName: {
    flag: 'lease-name',
    env: ['PODWARDEN_LEASE_NAME'],
    help: 'name of the Lease',
    default: 'podwarden-bridge',
  },
  leaseDuration: {
    flag: 'lease-duration',
    env: ['PODWARDEN_LEASE_DURATION'],
    help: 'how long a standby waits on a silent leader (e.g. 15s)',
    default: '15s',
  },
  leaseRenewDeadline: {
    flag: 'lease-renew-deadline',
    env: ['PODWARDEN_LEASE_RENEW_DEADLINE'],
    help: 'the leader steps down if it cannot renew for this long (default: 2/3 of the lease)',
  },
  leaseRetryPeriod: {
    flag: 'lease-retry-period',
    env: ['PODWARDEN_LEASE_RETRY_PERIOD'],
    help: 'pause between lease attempts and renewals (default: 2/15 of the lease)',
  },
  identity: {
    flag: 'identity',
    env: ['PODWARDEN_IDENTITY', 'POD_NAME'],
    help: 'this replica\u2019s name in the Lease (default: the host name)',
  },
  metricsHost: {
    flag: 'metrics-host',
    env: ['PODWARDEN_METRICS_HOST'],
    help: 'address of the /healthz, /readyz, /metrics server',
    default: '0.0.0.0',
  },
  metricsPort: {
    flag: 'metrics-port',
    env: ['PODWARDEN_METRICS_PORT'],
    help: 'port of that server (0: any)',
    default: '8080',
  },
  kubeconfig: {
    flag: 'kubeconfig',
    env: ['PODWARDEN_KUBECONFIG'],
    help: 'kubeconfig file (default: the PODWARDEN_CLUSTERS entry, in a pod its service account, else KUBECONFIG or ~/.kube/config)',
  },
  context: {
    flag: 'context',
    env: ['PODWARDEN_KUBE_CONTEXT'],
    help: 'kubeconfig context (default: its current one)',
  },
  logLevel: {
    flag: 'log-level',
    env: ['PODWARDEN_LOG_LEVEL'],
    help: LOG_LEVELS.join(' | '),
    default: 'info',
  },
  flushTimeout: {
    flag: 'flush-timeout',
    env: ['PODWARDEN_FLUSH_TIMEOUT'],
    help: 'on SIGTERM, time to deliver what is queued',
    default: '10s',
  },
  eventMaxAge: {
    flag: 'event-max-age',
    env: ['PODWARDEN_EVENT_MAX_AGE'],
    help: 'on becoming leader, forward listed events younger than this',
    default: '10m',
  },
} as const satisfies Record<string, Setting>;

type SettingName = keyof typeof BRIDGE_SETTINGS;

export function bridgeUsage(): string {
  const lines = Object.values(BRIDGE_SETTINGS as Record<string, Setting>).map((setting) => {
    const left = `  --${setting.flag} <value>`.padEnd(34);
    const env = setting.env.length > 0 ? ` [env ${setting.env.join(', ')}]` : '';
    const fallback = setting.default === undefined ? '' : ` (default ${setting.default})`;
    return `${left}${setting.help}${fallback}${env}`;
  });
  return [
    'Usage: podwarden bridge [options]',
    '',
    'Options:',
    ...lines,
    `${'  --help'.padEnd(34)}this text`,
  ].join('\n');
}

/** Splits `--name value` and `--name=value` flags; names every unknown flag, missing value and stray word. */
export function parseFlags(
  argv: readonly string[],
  known: readonly string[],
): { values: Map<string, string>; problems: string[] } {
  const values = new Map<string, string>();
  const problems: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    if (!arg.startsWith('--')) {
      problems.push(`unexpected argument "${arg}" (options are --name value)`);
      continue;
    }
    const equals = arg.indexOf('=');
    const name = equals === -1 ? arg.slice(2) : arg.slice(2, equals);
    if (!known.includes(name)) {
      problems.push(`unknown option --${name}`);
      if (equals === -1 && argv[index + 1] !== undefined && !argv[index + 1]!.startsWith('--')) index += 1;
      continue;
    }
    let value: string | undefined;
    if (equals !== -1) value = arg.slice(equals + 1);
    else {
      value = argv[index + 1];
      if (value === undefined || value.startsWith('--')) {
        problems.push(`option --${name} needs a value`);
        continue;
      }
      index += 1;
    }
    if (values.has(name)) problems.push(`option --${name} is given twice`);
    values.set(name, value);
  }
  return { values, problems };
}

/** Written for every namespace; alone, never with names. */
const ALL = '*';
const BUS_NAME = /^[A-Za-z0-9._\-/]{1,256}$/;
const BUS_ARN = /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[A-Za-z0-9._\-/]+$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const EVENT_REASON = /^[A-Za-z][A-Za-z0-9]*$/;

const requiredText = z.string(says(() => 'is required')).check(z.minLength(1, 'is required'));
const duration = durationText(
  (text) => `"${text}" is not a positive duration up to 366 days (e.g. 500ms, 15s, 2m)`,
  (ms) => ms > 0,
);
/** A comma-separated list, each item as `item` says; `whenEmpty` when it names nothing. */
const listOf = (item: z.ZodMiniType<string, string>, whenEmpty: string) =>
  z.pipe(commaList(item), z.transform(unique)).check(z.minLength(1, whenEmpty));

/**
 * The settings once flags, environment and defaults are resolved (`resolve`), one schema for all:
 * every problem is named by its flag (and variable), all at once.
 */
const bridgeSettings = z
  .object({
    cluster: requiredText.check(
      z.refine(
        isValidClusterName,
        says(
          (text) =>
            `"${String(text)}" must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit`,
        ),
      ),
    ),
    bus: requiredText.check(
      z.refine(
        (text) => BUS_NAME.test(text) || BUS_ARN.test(text),
        says((text) => `"${String(text)}" is neither an event bus name nor an event bus ARN`),
      ),
    ),
    region: requiredText.check(
      z.refine(
        (text) => REGION.test(text),
        says((text) => `"${String(text)}" is not an AWS region name (e.g. eu-west-1)`),
      ),
    ),
    eventBridgeEndpoint: z.optional(
      parsedBy((text: string) => {
        const url = URL.canParse(text) ? new URL(text) : undefined;
        if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
          throw new Error(`"${text}" is not an http(s) URL`);
        }
        const unsafe = unsafeEndpointProblem(url);
        if (unsafe) throw new Error(`"${text}" ${unsafe}`);
        return text;
      }),
    ),
    namespaces: z.pipe(
      listOf(
        textThat(
          (name) => name === ALL || (name.length <= 63 && DNS_LABEL.test(name)),
          (name) => `"${name}" is not a valid namespace name`,
        ),
        'is empty (use * for every namespace)',
      ).check(
        z.refine((names) => !names.includes(ALL) || names.length === 1, 'mixes * with named namespaces'),
      ),
      // No names: every namespace.
      z.transform((names: string[]) => (names.includes(ALL) ? [] : names)),
    ),
    profiles: listOf(
      textThat(
        (name) => Object.hasOwn(PROFILES, name),
        (name) => `"${name}" is not a known profile (known: ${PROFILE_NAMES.join(', ')})`,
      ),
      'names no profile',
    ) as z.ZodMiniType<ProfileName[], string>,
    eventReasons: listOf(
      textThat(
        (reason) => EVENT_REASON.test(reason),
        (reason) => `"${reason}" is not a CamelCase reason such as Preempted`,
      ),
      'names no reason',
    ),
    leaseNamespace: textThat(
      (name) => name.length <= 63 && DNS_LABEL.test(name),
      (name) => `"${name}" is not a valid namespace name`,
    ),
    leaseName: textThat(
      (name) => name.length <= 253 && DNS_SUBDOMAIN.test(name),
      (name) => `"${name}" is not a valid object name`,
    ),
    leaseDuration: duration,
    leaseRenewDeadline: z.optional(duration),
    leaseRetryPeriod: z.optional(duration),
    identity: textThat(
      (identity) => identity !== '' && identity.length <= 253,
      () => 'must be 1-253 characters',
    ),
    metricsHost: z.string(),
    metricsPort: z.pipe(
      textThat(
        (text) => /^\d+$/.test(text) && Number(text) <= 65_535,
        (text) => `"${text}" is not a port number (0-65535)`,
      ),
      z.transform(Number),
    ),
    logLevel: textThat(
      (level) => (LOG_LEVELS as readonly string[]).includes(level),
      (level) => `"${level}" is not one of ${LOG_LEVELS.join(', ')}`,
    ) as z.ZodMiniType<LogLevel, string>,
    flushTimeout: duration,
    eventMaxAge: duration,
    kubeconfig: z.optional(z.string()),
    context: z.optional(z.string()),
  })
  .check(
    whenValid(['leaseDuration', 'leaseRenewDeadline', 'leaseRetryPeriod'], (settings, payload) => {
      const lease = leaseTimings(settings);
      const problem = (message: string, path: string[] = []) =>
        payload.issues.push({ code: 'custom', input: settings, path, message });
      if (lease.durationMs < 1000) problem('must be at least 1s', ['leaseDuration']);
      if (lease.renewDeadlineMs >= lease.durationMs)
        problem('the lease renew deadline must be shorter than the lease duration');
      if (lease.retryPeriodMs >= lease.renewDeadlineMs)
        problem('the lease retry period must be shorter than the renew deadline');
    }),
  );

/** Unless given, the renew deadline is 2/3 of the lease and the retry period 2/15 of it. */
function leaseTimings(settings: {
  leaseDuration: number;
  leaseRenewDeadline?: number | undefined;
  leaseRetryPeriod?: number | undefined;
}) {
  const durationMs = settings.leaseDuration;
  return {
    durationMs,
    renewDeadlineMs: settings.leaseRenewDeadline ?? Math.round((durationMs * 2) / 3),
    retryPeriodMs: settings.leaseRetryPeriod ?? Math.round((durationMs * 2) / 15),
  };
}

export function parseBridgeConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): BridgeConfig {
  const settings = BRIDGE_SETTINGS as Record<SettingName, Setting>;
  const { values, problems } = parseFlags(
    argv,
    Object.values(settings).map((setting) => setting.flag),
  );
  /** Flags win over environment variables; the first environment variable set wins over later ones. */
  const resolve = (name: SettingName): string | undefined => {
    const setting = settings[name];
    const fromFlag = values.get(setting.flag);
    if (fromFlag !== undefined) return fromFlag.trim();
    for (const variable of setting.env) {
      const fromEnv = env[variable];
      if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv.trim();
    }
    return setting.default;
  };
  const resolved: Partial<Record<SettingName, string>> = {};
  for (const name of Object.keys(settings) as SettingName[]) {
    const value = resolve(name);
    if (value !== undefined) resolved[name] = value;
  }
  resolved.identity ??= hostname();

  const where = (name: string) => {
    const setting = settings[name as SettingName];
    return `--${setting.flag}${setting.env.length > 0 ? ` (or ${setting.env.join(', ')})` : ''} `;
  };
  const parsed = bridgeSettings.safeParse(resolved);
  if (!parsed.success) problems.push(...settingsProblems(parsed.error, where));
  if (problems.length > 0 || !parsed.success) throw new BridgeConfigError(problems);
  const read = parsed.data;
  return {
    cluster: read.cluster,
    bus: read.bus,
    region: read.region,
    ...(read.eventBridgeEndpoint ? { eventBridgeEndpoint: read.eventBridgeEndpoint } : {}),
    namespaces: read.namespaces,
    profiles: read.profiles,
    eventReasons: read.eventReasons,
    lease: { namespace: read.leaseNamespace, name: read.leaseName, ...leaseTimings(read) },
    identity: read.identity,
    metricsHost: read.metricsHost,
    metricsPort: read.metricsPort,
    ...(read.kubeconfig ? { kubeconfig: read.kubeconfig } : {}),
    ...(read.context ? { kubeContext: read.context } : {}),
    logLevel: read.logLevel,
    flushTimeoutMs: read.flushTimeout,
    eventMaxAgeMs: read.eventMaxAge,
  };
}

/**
 * How the bridge reaches its cluster: an explicit kubeconfig or context first, then the cluster's
 * entry in PODWARDEN_CLUSTERS, then the pod's service account, then the default kubeconfig.
 */
export function bridgeConnection(
  config: BridgeConfig,
  env: Readonly<Record<string, string | undefined>>,
): ClusterConnection {
  if (config.kubeconfig || config.kubeContext) {
    return {
      kind: 'kubeconfig',
      ...(config.kubeconfig ? { path: config.kubeconfig } : {}),
      ...(config.kubeContext ? { context: config.kubeContext } : {}),
    };
  }
  const fromMap = env[CLUSTERS_ENV]
    ? parseClusterConnections(env[CLUSTERS_ENV]).get(config.cluster)
    : undefined;
  if (fromMap) return fromMap;
  if (env.KUBERNETES_SERVICE_HOST) return { kind: 'in-cluster' };
  return { kind: 'kubeconfig' };
}

/** Equality selectors only (`a=b,c==d`), the form the profiles use. */
export function matchesSelector(
  labels: Readonly<Record<string, string>> | undefined,
  selector: string,
): boolean {
  return selector
    .split(',')
    .map((term) => term.trim())
    .filter((term) => term !== '')
    .every((term) => {
      const match = /^([^=!]+)==?(.*)$/.exec(term);
      if (!match) return false;
      return labels?.[match[1]!.trim()] === match[2]!.trim();
    });
}
