import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import { explainPod, formatDuration, formatExplanation } from '../../lib/core/explain.ts';
import { DEFAULT_PROFILE, LABELS, PROFILES, parseProfileName } from '../../lib/core/identity.ts';
import type { Pod } from '../../lib/core/pod.ts';
import { POLICY_RANGES, parseDuration } from '../../lib/core/policy.ts';
import type { KubeEvent } from '../../lib/core/ports.ts';
import { podShapeProblem } from '../../lib/core/read-pod.ts';
import {
  formatTable,
  KUBE_HELP,
  KUBE_OPTIONS,
  loadKubeConfig,
  namespaceOf,
  runCommand,
} from '../cli-support.ts';
import { type CommandIO, EXIT, UsageError, writeLine } from '../command.ts';

const HELP = `usage: podwarden explain --file <pod.json | -> [--profile airflow-kpo|generic] [--json]
       podwarden explain POD [-n NAMESPACE] [--kubeconfig F] [--context C] [--json]

Says which task a pod belongs to and what Podwarden makes of it: running, pending, succeeded,
failed, disrupted, zombie-sidecar, image-pull-transient, image-pull-permanent or unmanaged.
Given a POD name, reads the live pod and its events from the cluster of the kube context; the
verdict is the same as for that pod as a file.

  -f, --file <path>         the pod as JSON (e.g. kubectl get pod NAME -o json); - reads stdin
  -n, --namespace <name>    the pod's namespace (default: the context's, else default)
${KUBE_HELP}
  -p, --profile <name>      task identity profile: airflow-kpo (default) or generic
      --json                print one JSON object {"task": {...} | null, "verdict": {"kind", "reason"}}
      --now <time>          judge "how long ago" at this RFC 3339 time instead of the clock
      --sidecar-grace <d>   sidecar grace before the reaper acts on a zombie (default 5m)
  -h, --help                show this help

Exit codes: 0 explained, 1 the pod is not in the cluster or the cluster failed, 2 bad arguments
or input.`;

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function readPodText(file: string, stdin: Readable): Promise<string> {
  if (file === '-') return readAll(stdin);
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (error as Error).message;
    throw new UsageError(`cannot read pod file ${file}: ${why}`);
  }
}

function parsePod(text: string, source: string): Pod {
  if (text.trim() === '') throw new UsageError(`${source} is empty: expected a Pod as JSON`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  const problem = podShapeProblem(value);
  if (problem) throw new UsageError(`${source} is not a Pod: ${problem}`);
  return value as Pod;
}

/** Options that take a value: `--sidecar-grace -5m` is that option's (bad) value, not a flag. */
const VALUE_OPTIONS = new Set(['--file', '-f', '--profile', '-p', '--now', '--sidecar-grace']);

const SHORT_FLAGS = new Set(['-f', '-p', '-h']);

/** Joins `--name value` into `--name=value` when the value starts with `-`, so it is judged as a value. */
function joinDashValues(argv: string[]): string[] {
  const joined: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    const next = argv[index + 1];
    if (VALUE_OPTIONS.has(arg) && next !== undefined && /^-[^-]/.test(next) && !SHORT_FLAGS.has(next)) {
      joined.push(arg.startsWith('--') ? `${arg}=${next}` : `${arg}${next}`);
      index++;
    } else joined.push(arg);
  }
  return joined;
}

/** The profile's try and attempt labels must be numbers Podwarden can hold exactly. */
function identityNumberProblem(pod: Pod, profile: ReturnType<typeof parseProfileName>): string | undefined {
  for (const label of [PROFILES[profile].tryLabel, LABELS.attempt]) {
    const value = pod.metadata.labels?.[label];
    if (value !== undefined && /^\d+$/.test(value) && !Number.isSafeInteger(Number(value))) {
      const shown = value.length > 20 ? `${value.slice(0, 20)}... (${value.length} digits)` : value;
      return `metadata.labels["${label}"] ${JSON.stringify(shown)} is not a whole number up to ${Number.MAX_SAFE_INTEGER}`;
    }
  }
  return undefined;
}

function parseOptions(argv: string[]) {
  try {
    return parseArgs({
      args: joinDashValues(argv),
      strict: true,
      allowPositionals: true,
      options: {
        file: { type: 'string', short: 'f' },
        namespace: { type: 'string', short: 'n' },
        ...KUBE_OPTIONS,
        profile: { type: 'string', short: 'p', default: DEFAULT_PROFILE },
        json: { type: 'boolean', default: false },
        now: { type: 'string' },
        'sidecar-grace': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    // node:util's parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes and readable messages.
    if ((error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      const first = (error as Error).message.split('\n')[0] ?? String(error);
      throw new UsageError(`${first} (see podwarden explain --help)`);
    }
    throw error;
  }
}

export function run(argv: string[], io: CommandIO): Promise<number> {
  return runCommand('explain', io, async () => {
    const { values: options, positionals } = parseOptions(argv);
    if (options.help) {
      writeLine(io.stdout, HELP);
      return EXIT.ok;
    }
    if (positionals.length > 1)
      throw new UsageError(`expected one POD, got ${positionals.length}: ${positionals.join(' ')}`);
    const podName = positionals[0];
    if (podName !== undefined && options.file !== undefined)
      throw new UsageError('give a POD name or --file, not both');
    if (podName === undefined && options.file === undefined)
      throw new UsageError('missing POD or --file <pod.json> (use --file - to read stdin)');
    if (podName === undefined && (options.namespace ?? options.kubeconfig ?? options.context) !== undefined)
      throw new UsageError('--namespace, --kubeconfig and --context read a live pod: give its POD name');
    let profile: ReturnType<typeof parseProfileName>;
    try {
      profile = parseProfileName(options.profile);
    } catch (error) {
      throw new UsageError(`--profile: ${(error as Error).message}`);
    }
    let now: number | undefined;
    if (options.now !== undefined) {
      now = Date.parse(options.now);
      if (Number.isNaN(now))
        throw new UsageError(`--now ${JSON.stringify(options.now)} is not an RFC 3339 time`);
    }
    let sidecarGraceMs: number | undefined;
    if (options['sidecar-grace'] !== undefined) {
      sidecarGraceMs = parseDuration(options['sidecar-grace']);
      const { min, max } = POLICY_RANGES.sidecarGraceMs;
      if (sidecarGraceMs === undefined || sidecarGraceMs < min || sidecarGraceMs > max) {
        throw new UsageError(
          `--sidecar-grace ${JSON.stringify(options['sidecar-grace'])} is not a duration from 1s to 30 days like 90s, 5m or 1h`,
        );
      }
    }

    let pod: Pod;
    let events: KubeEvent[] | undefined;
    if (podName !== undefined) {
      const kc = loadKubeConfig(options);
      const namespace = namespaceOf(kc, options.namespace);
      const cluster = new KubeCluster(async () => kc);
      const live = await cluster.getPod('current', namespace, podName);
      if (!live) {
        writeLine(
          io.stderr,
          `podwarden explain: pod ${namespace}/${podName} not found in context ${kc.getCurrentContext()}`,
        );
        return EXIT.failure;
      }
      pod = live;
      const uid = live.metadata.uid;
      events = (await cluster.listEvents('current', namespace, `involvedObject.name=${podName}`))
        .filter((event) => !uid || !event.involvedObject.uid || event.involvedObject.uid === uid)
        .sort((a, b) => eventTime(a) - eventTime(b));
    } else {
      const file = options.file!;
      const source = file === '-' ? 'stdin' : file;
      pod = parsePod(await readPodText(file, io.stdin), source);
      const numberProblem = identityNumberProblem(pod, profile);
      if (numberProblem) throw new UsageError(`${source} is not a Pod Podwarden can read: ${numberProblem}`);
    }
    const explanation = explainPod(pod, profile, {
      ...(now !== undefined && { now }),
      ...(sidecarGraceMs !== undefined && { sidecarGraceMs }),
    });
    if (options.json) {
      writeLine(
        io.stdout,
        JSON.stringify({
          task: explanation.task,
          verdict: explanation.verdict,
          ...(events ? { events: events.map(eventSummary) } : {}),
          ...(explanation.warnings ? { warnings: explanation.warnings } : {}),
        }),
      );
    } else {
      writeLine(io.stdout, formatExplanation(explanation));
      if (events) writeLine(io.stdout, formatEvents(events, now ?? Date.now()));
    }
    return EXIT.ok;
  });
}

function eventTime(event: KubeEvent): number {
  return Date.parse(event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? '') || 0;
}

function eventSummary(event: KubeEvent) {
  return {
    type: event.type ?? 'Normal',
    reason: event.reason,
    message: event.message,
    count: event.count ?? 1,
    ...(eventTime(event) ? { at: new Date(eventTime(event)).toISOString() } : {}),
  };
}

/** The pod's events as `kubectl describe` lists them, oldest first. */
function formatEvents(events: KubeEvent[], now: number): string {
  if (events.length === 0) return '\nEvents: <none>';
  const rows = events.map((event) => {
    const at = eventTime(event);
    return [
      event.type ?? 'Normal',
      event.reason,
      at ? `${formatDuration(now - at)} ago` : '-',
      `${event.message}${(event.count ?? 1) > 1 ? ` (x${event.count})` : ''}`,
    ];
  });
  return `\nEvents:\n${formatTable(['TYPE', 'REASON', 'AGE', 'MESSAGE'], rows)
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n')}`;
}
