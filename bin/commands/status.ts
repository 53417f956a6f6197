/**
 * `podwarden status`: what Podwarden is doing with the tasks, from the table. A listing reads the
 * task-listing index (lib/store/schema.ts) newest first and never scans; one task's view adds its
 * decision trail and audit entries.
 */
import { formatDuration } from '../../lib/core/explain.ts';
import type { AuditEntry } from '../../lib/core/ports.ts';
import { type Evidence, type TaskRecord, type TaskState, TERMINAL_STATES } from '../../lib/core/task.ts';
import type { DynamoTaskStore, ListTasksQuery } from '../../lib/store/dynamo-task-store.ts';
import {
  checkCluster,
  checkNamespace,
  formatTable,
  isoTime,
  openTable,
  parseCommandArgs,
  parseCountFlag,
  parseDurationFlag,
  runCommand,
  TABLE_HELP,
  TABLE_OPTIONS,
} from '../cli-support.ts';
import { type CommandIO, EXIT, UsageError, writeLine } from '../command.ts';

const HELP = `usage: podwarden status [TASK] [--cluster C] [-n NAMESPACE] [--state S[,S]] [--since 1h] [--json]

Without TASK: the tasks in the table, newest first (by when Podwarden first saw them), with state,
try, attempt, next due time and the last evidence, and a line counting them by state.
With TASK (a task key such as dag/task/run/-1, or a pod name): that task's whole record, its
decision trail and the audit entries of its deletes and re-creates.

  -c, --cluster <name>      only tasks of this cluster
  -n, --namespace <name>    only tasks in this namespace
      --state <states>      only tasks in these states: ${['Pending', 'Running', 'Recovering', 'WaitingForImage', ...TERMINAL_STATES].join(', ')}
      --since <duration>    only tasks first seen this recently, e.g. 30m, 1h, 2d is 48h
      --limit <n>           at most n tasks (default 50); the output says when it is cut
      --json                one JSON object instead of text
${TABLE_HELP}
  -h, --help                show this help

Exit codes: 0 shown, 1 task not found or the table could not be read, 2 bad arguments.`;

const STATES: readonly TaskState[] = [
  'Pending',
  'Running',
  'Recovering',
  'WaitingForImage',
  'Succeeded',
  'Failed',
  'Deleted',
];

const OPTIONS = {
  cluster: { type: 'string', short: 'c' },
  namespace: { type: 'string', short: 'n' },
  state: { type: 'string' },
  since: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  ...TABLE_OPTIONS,
} as const;

export function run(argv: string[], io: CommandIO, now: () => number = Date.now): Promise<number> {
  return runCommand('status', io, async () => {
    const { values, positionals } = parseCommandArgs('status', argv, OPTIONS);
    if (values.help) {
      writeLine(io.stdout, HELP);
      return EXIT.ok;
    }
    if (positionals.length > 1)
      throw new UsageError(`expected at most one TASK, got ${positionals.length}: ${positionals.join(' ')}`);
    const cluster = values.cluster === undefined ? undefined : checkCluster('--cluster', values.cluster);
    const namespace =
      values.namespace === undefined ? undefined : checkNamespace('--namespace', values.namespace);
    const states = values.state === undefined ? undefined : parseStates(values.state);
    const since = values.since === undefined ? undefined : now() - parseDurationFlag('--since', values.since);
    const limit = values.limit === undefined ? undefined : parseCountFlag('--limit', values.limit, 10_000);
    const table = openTable(values);
    if (!table) throw new UsageError('no table: give --table <name> or set PODWARDEN_TABLE_NAME');
    try {
      const task = positionals[0];
      if (task !== undefined) {
        return await showTask(io, table.store, task, { cluster, namespace }, values.json, now());
      }
      const query: ListTasksQuery = {
        ...(cluster !== undefined ? { cluster } : {}),
        ...(namespace !== undefined ? { namespace } : {}),
        ...(states ? { states } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(limit !== undefined ? { limit } : {}),
      };
      const listing = await table.store.listTasks(query);
      const shownLimit = limit ?? listing.tasks.length;
      if (values.json) {
        writeLine(
          io.stdout,
          JSON.stringify({
            tasks: listing.tasks.map((t) => summary(t)),
            counts: countByState(listing.tasks),
            cut: listing.cut,
          }),
        );
      } else {
        writeLine(io.stdout, formatListing(listing.tasks, cluster === undefined, now()));
        writeLine(io.stdout, summaryLine(listing.tasks, listing.cut, shownLimit));
      }
      if (listing.cut)
        writeLine(
          io.stderr,
          `output cut at ${shownLimit} tasks: narrow it with --cluster, --namespace, --state or --since, or raise --limit`,
        );
      return EXIT.ok;
    } finally {
      table.close();
    }
  });
}

function parseStates(value: string): TaskState[] {
  const states: TaskState[] = [];
  for (const raw of value.split(',')) {
    const name = raw.trim();
    const state = STATES.find((candidate) => candidate.toLowerCase() === name.toLowerCase());
    if (!state)
      throw new UsageError(`--state ${JSON.stringify(name)} is not a state; states: ${STATES.join(', ')}`);
    states.push(state);
  }
  return states;
}

/** The newest piece of evidence Podwarden holds for the task, else the reason of its last change. */
export function lastEvidence(task: TaskRecord): string {
  const evidence: Evidence | undefined = task.disruption?.evidence.at(-1) ?? task.imagePull?.evidence;
  if (evidence) return evidenceText(evidence);
  return task.message ?? task.history.at(-1)?.why ?? '';
}

function evidenceText(e: Evidence): string {
  return `${e.source}${e.reason && !e.source.endsWith(e.reason) ? ` ${e.reason}` : ''}${e.message ? `: ${e.message}` : ''}`;
}

function relativeDue(dueAt: number | undefined, now: number): string {
  if (dueAt === undefined) return '-';
  return dueAt >= now ? `in ${formatDuration(dueAt - now)}` : `${formatDuration(now - dueAt)} overdue`;
}

function summary(task: TaskRecord) {
  return {
    cluster: task.id.cluster,
    namespace: task.id.namespace,
    key: task.id.key,
    profile: task.profile,
    state: task.state,
    ...(task.cause ? { cause: task.cause } : {}),
    tryNumber: task.tryNumber,
    attempt: task.attempt,
    podName: task.podName,
    ...(task.dueAt !== undefined ? { dueAt: new Date(task.dueAt).toISOString() } : {}),
    firstSeenAt: new Date(task.firstSeenAt).toISOString(),
    lastEvidence: lastEvidence(task),
  };
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

function formatListing(tasks: TaskRecord[], withCluster: boolean, now: number): string {
  if (tasks.length === 0) return 'No tasks found.';
  const header = [
    ...(withCluster ? ['CLUSTER'] : []),
    'NAMESPACE',
    'TASK',
    'STATE',
    'TRY',
    'ATTEMPT',
    'NEXT DUE',
    'AGE',
    'LAST EVIDENCE',
  ];
  const rows = tasks.map((t) => [
    ...(withCluster ? [t.id.cluster] : []),
    t.id.namespace,
    t.id.key,
    t.cause ? `${t.state} (${t.cause})` : t.state,
    String(t.tryNumber),
    String(t.attempt),
    relativeDue(t.dueAt, now),
    formatDuration(now - t.firstSeenAt),
    truncate(lastEvidence(t), 80),
  ]);
  return formatTable(header, rows);
}

function countByState(tasks: TaskRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const state of STATES) {
    const n = tasks.filter((t) => t.state === state).length;
    if (n > 0) counts[state] = n;
  }
  return counts;
}

function summaryLine(tasks: TaskRecord[], cut: boolean, limit: number): string {
  const counts = Object.entries(countByState(tasks)).map(([state, n]) => `${n} ${state}`);
  const total = `${tasks.length} task${tasks.length === 1 ? '' : 's'}`;
  return `${total}${counts.length > 0 ? `: ${counts.join(', ')}` : ''}${cut ? ` (output cut at ${limit}; more match)` : ''}`;
}

async function showTask(
  io: CommandIO,
  store: DynamoTaskStore,
  wanted: string,
  scope: { cluster: string | undefined; namespace: string | undefined },
  json: boolean,
  now: number,
): Promise<number> {
  let task: TaskRecord | undefined;
  if (scope.cluster !== undefined && scope.namespace !== undefined) {
    // Both known: the record's own key, else the pod index (the task that holds the pod name now).
    task =
      (await store.get({ cluster: scope.cluster, namespace: scope.namespace, key: wanted })) ??
      (await store.findByPod(scope.cluster, scope.namespace, wanted));
  } else {
    const listing = await store.listTasks({
      keyOrPod: wanted,
      ...(scope.cluster !== undefined ? { cluster: scope.cluster } : {}),
      ...(scope.namespace !== undefined ? { namespace: scope.namespace } : {}),
      limit: 10,
    });
    if (listing.tasks.length > 1) {
      writeLine(
        io.stderr,
        `podwarden status: ${JSON.stringify(wanted)} matches ${listing.tasks.length}${listing.cut ? '+' : ''} tasks; say which with --cluster and --namespace:`,
      );
      for (const t of listing.tasks)
        writeLine(io.stderr, `  --cluster ${t.id.cluster} -n ${t.id.namespace}  ${t.id.key}`);
      return EXIT.usage;
    }
    task = listing.tasks[0];
  }
  if (!task) {
    writeLine(
      io.stderr,
      `podwarden status: no task with key or pod name ${JSON.stringify(wanted)}${scope.cluster ? ` in cluster ${scope.cluster}` : ''}${scope.namespace ? ` in namespace ${scope.namespace}` : ''}`,
    );
    return EXIT.failure;
  }
  const audit = await store.listAudit(task.id);
  if (json) {
    const { captured, ...record } = task;
    writeLine(
      io.stdout,
      JSON.stringify({ task: { ...record, capturedSpec: captured !== undefined }, audit }),
    );
  } else {
    writeLine(io.stdout, describeTask(task, audit, now));
  }
  return EXIT.ok;
}

/** kubectl-describe style: fields, then the decision trail, then the audit entries (oldest first). */
export function describeTask(t: TaskRecord, audit: AuditEntry[], now: number): string {
  const ago = (ms: number | undefined) =>
    ms === undefined
      ? '-'
      : `${isoTime(ms)} (${ms <= now ? `${formatDuration(now - ms)} ago` : `in ${formatDuration(ms - now)}`})`;
  const fields: Array<[string, string]> = [
    ['Task', t.id.key],
    ['Cluster', t.id.cluster],
    ['Namespace', t.id.namespace],
    ['Profile', t.profile],
    ['State', t.cause ? `${t.state} (${t.cause})` : t.state],
    ['Message', t.message ?? '-'],
    ['Try', `${t.tryNumber} (highest seen ${t.highestTry})`],
    ['Attempt', `${t.attempt} (re-creates spent on this try: ${t.recreates})`],
    ['Pod', `${t.podName || '-'}${t.podUid ? ` (uid ${t.podUid})` : ''}`],
    ['Retired uids', t.retiredUids?.join(', ') || '-'],
    [
      'Main container',
      t.mainExitCode !== undefined ? `exited ${t.mainExitCode}` : t.mainStarted ? 'started' : 'not started',
    ],
    ['First seen', ago(t.firstSeenAt)],
    ['Attempt since', ago(t.attemptSince)],
    ['Ended', ago(t.endedAt)],
    ['Next due', ago(t.dueAt)],
    ['Orchestrator', t.orchestratorState ?? '-'],
    [
      'Overrides',
      `recreate=${t.overrides.recreate} protect=${t.overrides.protect}${t.overrides.pullDeadlineMs !== undefined ? ` pull-deadline=${formatDuration(t.overrides.pullDeadlineMs)}` : ''}`,
    ],
    ['Captured spec', t.captured ? 'yes' : 'no'],
    ['Outbox', t.outbox?.length ? `${t.outbox.length} event(s) not yet delivered` : 'empty'],
    ['Version', String(t.version)],
  ];
  const d = t.disruption;
  if (d) {
    fields.push(
      ['Disruption', `of uid ${d.podUid ?? '?'}; next attempt ${d.nextAttempt}`],
      ['  old pod gone', ago(d.goneAt)],
      ['  re-create at', ago(d.recreateAt)],
      ['  re-create issued', ago(d.recreateIssuedAt)],
      ...d.evidence.map((e): [string, string] => ['  evidence', `${evidenceText(e)} (${isoTime(e.at)})`]),
    );
  }
  const pull = t.imagePull;
  if (pull) {
    fields.push([
      'Image pull wait',
      `since ${isoTime(pull.since)}, ${pull.checks} re-checks, next ${ago(pull.nextCheckAt)}, deadline ${ago(pull.deadline)}`,
    ]);
    fields.push(['  evidence', evidenceText(pull.evidence)]);
  }
  const width = Math.max(...fields.map(([name]) => name.length)) + 2;
  const lines = fields.map(([name, value]) => `${`${name}:`.padEnd(width)}${value}`);
  lines.push('', 'Decision trail:');
  if (t.history.length === 0) lines.push('  (none yet)');
  else
    lines.push(
      indent(
        formatTable(
          ['TIME', 'FROM', 'TO', 'WHY'],
          t.history.map((h) => [isoTime(h.at), h.from, h.to, h.why]),
        ),
      ),
    );
  lines.push('', 'Audit:');
  if (audit.length === 0) lines.push('  (no deletes or re-creates)');
  else
    lines.push(
      indent(
        formatTable(
          ['TIME', 'WHAT', 'POD', 'UID', 'OUTCOME', 'BY', 'EVIDENCE'],
          [...audit]
            .sort((a, b) => a.at - b.at)
            .map((a) => [
              isoTime(a.at),
              a.what,
              a.podName,
              a.podUid ?? '-',
              a.outcome ?? '-',
              a.actor,
              a.evidence.map(evidenceText).join('; '),
            ]),
        ),
      ),
    );
  return lines.join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
