/**
 * What the operator's commands share: option parsing that turns every mistake into a UsageError
 * (exit 2), kubeconfig and context resolved the way kubectl resolves them, and the task table.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KubeConfig } from '@kubernetes/client-node';
import { isValidClusterName } from '../lib/core/inbound.ts';
import { parseDuration } from '../lib/core/policy.ts';
import { DynamoTaskStore } from '../lib/store/dynamo-task-store.ts';
import { assertTableName } from '../lib/store/schema.ts';
import { type CommandIO, EXIT, UsageError, writeLine } from './command.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util's parseArgs, with its ERR_PARSE_ARGS_* errors as UsageErrors that point to --help. */
export function parseCommandArgs<T extends Options>(command: string, argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, strict: true, allowPositionals: true, options });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      const first = (error as Error).message.split('\n')[0] ?? String(error);
      throw new UsageError(`${first} (see podwarden ${command} --help)`);
    }
    throw error;
  }
}

/**
 * Runs a command body with the shared exit codes: 0 ok, 1 failure (the cluster or the table
 * refused, a bug), 2 bad usage or input. A failure prints its message, not a stack.
 */
export async function runCommand(
  command: string,
  io: CommandIO,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      writeLine(io.stderr, `podwarden ${command}: ${error.message}`);
      return EXIT.usage;
    }
    writeLine(io.stderr, `podwarden ${command}: ${describeFailure(error)}`);
    return EXIT.failure;
  }
}

function describeFailure(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0)
    return error.errors.map(describeFailure).join('; ');
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message || error.name}${cause}`;
}

export const KUBE_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
} as const;

export const KUBE_HELP = `      --kubeconfig <file>   kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config)
      --context <name>      kubeconfig context to use (default: its current context)`;

/**
 * The kubeconfig as kubectl finds it: `--kubeconfig`, else every file of `KUBECONFIG` merged (the
 * first file's current context wins), else `~/.kube/config`; then `--context` if given.
 */
export function loadKubeConfig(
  options: { kubeconfig?: string | undefined; context?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): KubeConfig {
  const kc = new KubeConfig();
  const files = options.kubeconfig
    ? [options.kubeconfig]
    : env.KUBECONFIG
      ? env.KUBECONFIG.split(delimiter).filter((file) => file !== '')
      : [join(env.HOME ?? homedir(), '.kube', 'config')];
  const where = options.kubeconfig
    ? '--kubeconfig'
    : env.KUBECONFIG
      ? 'KUBECONFIG'
      : 'the default kubeconfig';
  const present = files.filter((file) => existsSync(file));
  if (present.length === 0)
    throw new UsageError(`${where}: no kubeconfig at ${files.join(', ')} (give --kubeconfig <file>)`);
  try {
    if (present.length === 1) kc.loadFromFile(present[0]!);
    else {
      // As kubectl merges KUBECONFIG: the first file that sets a name (or the current context) wins.
      kc.loadFromFile(present[0]!);
      for (const file of present.slice(1)) {
        const next = new KubeConfig();
        next.loadFromFile(file);
        for (const cluster of next.getClusters()) if (!kc.getCluster(cluster.name)) kc.addCluster(cluster);
        for (const user of next.getUsers()) if (!kc.getUser(user.name)) kc.addUser(user);
        for (const context of next.getContexts())
          if (!kc.getContextObject(context.name)) kc.addContext(context);
        if (!kc.getCurrentContext() && next.getCurrentContext())
          kc.setCurrentContext(next.getCurrentContext());
      }
    }
  } catch (error) {
    throw new UsageError(`${where}: cannot read ${present.join(', ')}: ${(error as Error).message}`);
  }
  if (options.context !== undefined) {
    const names = kc.getContexts().map((context) => context.name);
    if (!names.includes(options.context)) {
      throw new UsageError(
        `--context ${JSON.stringify(options.context)} is not in the kubeconfig (contexts: ${names.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new UsageError(
      `the kubeconfig's context ${JSON.stringify(kc.getCurrentContext())} names no cluster (give --context)`,
    );
  }
  return kc;
}

/** `-n` as kubectl takes it: the flag, else the context's namespace, else `default`. */
export function namespaceOf(kc: KubeConfig, flag: string | undefined): string {
  if (flag !== undefined) return checkNamespace('--namespace', flag);
  const context = kc.getContextObject(kc.getCurrentContext());
  return context?.namespace || 'default';
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function checkNamespace(flag: string, value: string): string {
  if (!NAMESPACE.test(value))
    throw new UsageError(`${flag} ${JSON.stringify(value)} is not a namespace name`);
  return value;
}

/** `a,b` into namespace names; empty means every namespace. */
export function parseNamespaces(flag: string, value: string | undefined): string[] {
  if (value === undefined || value.trim() === '' || value.trim() === '*') return [];
  return value.split(',').map((name) => checkNamespace(flag, name.trim()));
}

export function checkCluster(flag: string, value: string): string {
  if (!isValidClusterName(value))
    throw new UsageError(`${flag} ${JSON.stringify(value)} is not a valid cluster name`);
  return value;
}

export function parseDurationFlag(flag: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined)
    throw new UsageError(`${flag} ${JSON.stringify(value)} is not a duration like 90s, 15m or 2h`);
  return ms;
}

export function parseCountFlag(flag: string, value: string, max: number): number {
  const count = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(count) || count < 1 || count > max)
    throw new UsageError(`${flag} ${JSON.stringify(value)} is not a whole number from 1 to ${max}`);
  return count;
}

export const TABLE_OPTIONS = {
  table: { type: 'string' },
  'dynamodb-endpoint': { type: 'string' },
} as const;

export const TABLE_HELP = `      --table <name>        the Podwarden table (default: $PODWARDEN_TABLE_NAME)
      --dynamodb-endpoint <url>  a DynamoDB other than AWS's, e.g. DynamoDB Local
                            (default: $AWS_ENDPOINT_URL_DYNAMODB); region and credentials as the
                            AWS CLI finds them (AWS_REGION, AWS_PROFILE, ...)`;

export interface TableAccess {
  store: DynamoTaskStore;
  tableName: string;
  close(): void;
}

/** The task table named by `--table` or PODWARDEN_TABLE_NAME; undefined when neither is set. */
export function openTable(
  options: { table?: string | undefined; 'dynamodb-endpoint'?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): TableAccess | undefined {
  const tableName = options.table ?? env.PODWARDEN_TABLE_NAME;
  if (tableName === undefined || tableName === '') return undefined;
  const flag = options.table !== undefined ? '--table' : 'PODWARDEN_TABLE_NAME';
  try {
    assertTableName(tableName);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
  const endpoint = options['dynamodb-endpoint'];
  if (endpoint !== undefined && !/^https?:\/\/[^/\s]+/.test(endpoint))
    throw new UsageError(`--dynamodb-endpoint ${JSON.stringify(endpoint)} is not an http(s) URL`);
  const local = endpoint !== undefined || env.AWS_ENDPOINT_URL_DYNAMODB !== undefined;
  const client = new DynamoDBClient({
    ...(endpoint !== undefined ? { endpoint } : {}),
    // A local engine needs some region and credentials, never real ones.
    ...(local && !env.AWS_REGION && !env.AWS_DEFAULT_REGION ? { region: 'local' } : {}),
    ...(local && !env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE ? { credentials: LOCAL_CREDENTIALS } : {}),
  });
  return {
    store: new DynamoTaskStore({ client, tableName }),
    tableName,
    close: () => client.destroy(),
  };
}

/** DynamoDB Local wants letters and digits; it keeps one database per key unless shared. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'podwardenlocal', secretAccessKey: 'podwardenlocal' };

/** A table of text, columns padded as kubectl pads them. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function isoTime(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The functions log with Powertools and count with its metrics, both read from the environment
 * when their modules load; run in this process (dev, demo), the metrics have no CloudWatch to go
 * to and info lines would drown the decisions. Call before importing lib/local/runtime.ts.
 */
export function quietFunctions(verbose: boolean): void {
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= verbose ? 'INFO' : 'WARN';
}
