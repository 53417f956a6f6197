/**
 * `podwarden reap`: the Lambda reaper's pass, run from here against a live cluster
 * (lib/local/reap.ts). `--dry-run` changes nothing anywhere; without it, `--yes` is required and
 * deletes go exactly as the Lambda's do: uid precondition, grace 0, an audit entry in the table.
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KubeCluster } from '../../lib/cluster/kube-cluster.ts';
import { formatDuration } from '../../lib/core/explain.ts';
import { PROFILE_NAMES, parseProfileName } from '../../lib/core/identity.ts';
import { DEFAULT_POLICY, makePolicy } from '../../lib/core/policy.ts';
import type { EventSink } from '../../lib/core/ports.ts';
import type { ProfileName } from '../../lib/core/task.ts';
import { type ReapReport, runReap } from '../../lib/local/reap.ts';
import { EventBridgeSink } from '../../lib/sink/eventbridge-sink.ts';
import {
  checkCluster,
  formatTable,
  KUBE_HELP,
  KUBE_OPTIONS,
  loadKubeConfig,
  openTable,
  parseCommandArgs,
  parseCountFlag,
  parseDurationFlag,
  parseNamespaces,
  runCommand,
  TABLE_HELP,
  TABLE_OPTIONS,
} from '../cli-support.ts';
import { type CommandIO, EXIT, UsageError, writeLine } from '../command.ts';

const HELP = `usage: podwarden reap --dry-run [--namespaces a,b] [--kubeconfig F] [--context C] [--json]
       podwarden reap --yes --table T --cluster C [...]

Runs the reaper's rules (sidecar zombie, stale try, finished task) against the cluster of the kube
context, as the Lambda reaper does, and lists each managed pod it would delete with the rule and
the evidence, and each it spares with the reason (protected, too young, outside the namespaces,
malformed labels, no rule applies).

Task records come from the table (--table) or, without one, from what the pods themselves say
(then the finished-task rule, which needs a record, cannot apply).

      --dry-run             change nothing: no delete, no record, no audit line, no event
      --yes                 really delete (without --dry-run this is required); needs --table,
                            where each delete writes its audit entry
      --namespaces <a,b>    namespaces the reaper may act in (default: every namespace)
      --cluster <name>      the cluster's name in the table (default: local)
      --profiles <p,q>      task identity profiles: ${PROFILE_NAMES.join(', ')} (default: airflow-kpo)
      --max-deletes <n>     deletes per pass (default 10); the rest are listed as deferred
      --min-age <d>         never touch younger pods (default ${formatDuration(DEFAULT_POLICY.reaperMinAgeMs)})
      --sidecar-grace <d>   main container finished this long ago (default ${formatDuration(DEFAULT_POLICY.sidecarGraceMs)})
      --finished-grace <d>  task ended this long ago (default ${formatDuration(DEFAULT_POLICY.finishedGraceMs)})
      --event-bus <name>    deliver Pod Reaped events here (default: $PODWARDEN_EVENT_BUS_NAME);
                            without one they stay in the task's outbox for the next Lambda pass
      --json                one JSON object instead of text
${KUBE_HELP}
${TABLE_HELP}
  -h, --help                show this help

Exit codes: 0 done, 1 the cluster or the table failed (or some tasks could not be judged),
2 bad arguments or a refused delete (no --yes).`;

const OPTIONS = {
  'dry-run': { type: 'boolean', default: false },
  yes: { type: 'boolean', default: false },
  namespaces: { type: 'string' },
  cluster: { type: 'string' },
  profiles: { type: 'string' },
  'max-deletes': { type: 'string' },
  'min-age': { type: 'string' },
  'sidecar-grace': { type: 'string' },
  'finished-grace': { type: 'string' },
  'event-bus': { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  ...KUBE_OPTIONS,
  ...TABLE_OPTIONS,
} as const;

export function run(argv: string[], io: CommandIO): Promise<number> {
  return runCommand('reap', io, async () => {
    const { values, positionals } = parseCommandArgs('reap', argv, OPTIONS);
    if (values.help) {
      writeLine(io.stdout, HELP);
      return EXIT.ok;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const dryRun = values['dry-run'];
    if (dryRun && values.yes) throw new UsageError('--dry-run and --yes contradict each other; give one');
    if (!dryRun && !values.yes)
      throw new UsageError(
        'refusing to delete pods without --yes; run with --dry-run first to see what would go',
      );
    const profiles: ProfileName[] = (values.profiles ?? 'airflow-kpo').split(',').map((name) => {
      try {
        return parseProfileName(name.trim());
      } catch (error) {
        throw new UsageError(`--profiles: ${(error as Error).message}`);
      }
    });
    const namespaces = parseNamespaces('--namespaces', values.namespaces);
    const clusterName = checkCluster('--cluster', values.cluster ?? 'local');
    const maxDeletes =
      values['max-deletes'] === undefined
        ? 10
        : parseCountFlag('--max-deletes', values['max-deletes'], 1_000);
    const policy = makePolicy({
      ...(values['min-age'] !== undefined
        ? { reaperMinAgeMs: parseDurationFlag('--min-age', values['min-age']) }
        : {}),
      ...(values['sidecar-grace'] !== undefined
        ? { sidecarGraceMs: parseDurationFlag('--sidecar-grace', values['sidecar-grace']) }
        : {}),
      ...(values['finished-grace'] !== undefined
        ? { finishedGraceMs: parseDurationFlag('--finished-grace', values['finished-grace']) }
        : {}),
    });
    const table = openTable(values);
    if (!dryRun && !table)
      throw new UsageError(
        'deleting needs --table (or PODWARDEN_TABLE_NAME): each delete writes its audit entry there',
      );
    const kc = loadKubeConfig(values);
    const busName = values['event-bus'] ?? process.env.PODWARDEN_EVENT_BUS_NAME;
    const bus = !dryRun && busName ? new EventBridgeClient({}) : undefined;
    const sink: EventSink = bus
      ? new EventBridgeSink({ client: bus, eventBusName: busName! })
      : {
          // Throwing keeps the events in the task's outbox, where the next Lambda pass delivers them.
          emit: async () => {
            throw new Error('no event bus here; the outbox keeps the events');
          },
        };
    const progress = (event: { listed: number } | { judged: number }) => {
      if ('listed' in event) {
        if (event.listed >= 100)
          writeLine(io.stderr, `reap: ${event.listed} managed pods listed; judging their tasks ...`);
      } else writeLine(io.stderr, `reap: ${event.judged} tasks judged so far ...`);
    };
    try {
      const report = await runReap({
        cluster: new KubeCluster(async () => kc),
        clusterName,
        ...(table ? { store: table.store } : {}),
        sink,
        policy,
        profiles,
        namespaces,
        maxDeletes,
        dryRun,
        actor: 'cli:reap',
        progress,
      });
      if (values.json) writeLine(io.stdout, JSON.stringify(report));
      else writeLine(io.stdout, formatReport(report, kc.getCurrentContext()));
      return report.failures.length > 0 ? EXIT.failure : EXIT.ok;
    } finally {
      table?.close();
      bus?.destroy();
    }
  });
}

export function formatReport(report: ReapReport, context: string): string {
  const lines: string[] = [];
  const acting = report.pods.filter((p) => p.verdict !== 'spared');
  const spared = report.pods.filter((p) => p.verdict === 'spared');
  const verb = report.dryRun ? 'would delete' : 'deleted';
  lines.push(
    `${report.dryRun ? 'Dry run' : 'Reaper pass'} on context ${context}; records from ${report.records === 'table' ? 'the table' : 'the pods themselves (no table)'}.`,
  );
  if (acting.length > 0) {
    lines.push(
      '',
      formatTable(
        ['ACTION', 'NAMESPACE', 'POD', 'RULE', 'EVIDENCE'],
        acting.map((p) => [
          p.verdict === 'deferred'
            ? 'deferred'
            : report.dryRun
              ? 'would delete'
              : `deleted (${p.outcome ?? '?'})`,
          p.namespace,
          p.name,
          p.rule ?? '-',
          p.evidence ?? '',
        ]),
      ),
    );
  }
  if (spared.length > 0) {
    lines.push(
      '',
      formatTable(
        ['SPARED', 'NAMESPACE', 'POD', 'REASON'],
        spared.map((p) => ['spared', p.namespace, p.name, p.reason ?? '']),
      ),
    );
  }
  for (const failure of report.failures) lines.push(`failed to judge task ${failure.task}: ${failure.error}`);
  for (const note of report.notes) lines.push(`note: ${note}`);
  const count = acting.filter((p) => p.verdict !== 'deferred').length;
  lines.push(
    '',
    `${report.pass.podsListed} managed pods in ${report.pass.tasks} tasks: ${verb} ${count}, deferred ${acting.length - count}, spared ${spared.length}.`,
  );
  return lines.join('\n');
}
