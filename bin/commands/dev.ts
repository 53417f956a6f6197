/**
 * `podwarden dev`: Podwarden on this machine against the current kube context (lib/local/runtime.ts),
 * with DynamoDB Local as its store, printing each decision as it happens; stops cleanly on Ctrl-C.
 */
import { mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseProfileName } from '../../lib/core/identity.ts';
import type { ProfileName } from '../../lib/core/task.ts';
import type { RuntimeReport } from '../../lib/local/runtime.ts';
import {
  checkCluster,
  KUBE_HELP,
  KUBE_OPTIONS,
  loadKubeConfig,
  parseCommandArgs,
  parseDurationFlag,
  parseNamespaces,
  quietFunctions,
  runCommand,
} from '../cli-support.ts';
import { type CommandIO, EXIT, UsageError, writeLine } from '../command.ts';

const HELP = `usage: podwarden dev [--namespaces a,b] [--kubeconfig F] [--context C] [--data-dir D] [--json]

Runs Podwarden on this machine against the cluster of the kube context: the bridge's watchers feed
the Lambda functions' own handlers in this process (an in-process bus routed by the same route
table instead of EventBridge), the timer and the reaper run on their schedules, and DynamoDB Local
(Java 17) is the store, started and stopped with the command. Each decision is printed as it
happens. Ctrl-C (SIGINT) or SIGTERM stops it cleanly.

It acts for real: it re-creates disrupted pods and its reaper deletes zombie pods (set
PODWARDEN_REAPER_DRY_RUN=true to only report). It takes the Lease podwarden-dev in the first
namespace (or default), so a second \`podwarden dev\` on the same cluster stands by.

      --namespaces <a,b>    namespaces to supervise (default: every namespace)
      --cluster <name>      the cluster's name in the records (default: local)
      --profiles <p,q>      task identity profiles (default: airflow-kpo)
      --data-dir <dir>      DynamoDB Local keeps the records here across runs
                            (default: $XDG_STATE_HOME/podwarden/dev, else ~/.local/state/podwarden/dev)
      --in-memory           keep no records after the command ends
      --timer-every <d>     timer sweep period (default 1m; due times sooner wake it anyway)
      --reaper-every <d>    reaper period (default 5m)
      --json                each decision as one JSON line
  -v, --verbose             also print skipped events, and the bridge's and functions' info logs
${KUBE_HELP}
  -h, --help                show this help

Policy and limits come from the functions' variables (PODWARDEN_RECREATE_BUDGET,
PODWARDEN_REAPER_MIN_AGE, PODWARDEN_REAPER_MAX_DELETES, ...; see the README).

Exit codes: 0 stopped cleanly, 1 could not start (cluster, Java) or did not stop cleanly, 2 bad
arguments or configuration.`;

const OPTIONS = {
  namespaces: { type: 'string' },
  cluster: { type: 'string' },
  profiles: { type: 'string' },
  'data-dir': { type: 'string' },
  'in-memory': { type: 'boolean', default: false },
  'timer-every': { type: 'string' },
  'reaper-every': { type: 'string' },
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', short: 'v', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  ...KUBE_OPTIONS,
} as const;

function defaultDataDir(env: NodeJS.ProcessEnv): string {
  const state = env.XDG_STATE_HOME || join(env.HOME ?? homedir(), '.local', 'state');
  return join(state, 'podwarden', 'dev');
}

function prepareDataDir(dir: string): string {
  const absolute = resolve(dir);
  try {
    mkdirSync(absolute, { recursive: true });
    if (!statSync(absolute).isDirectory()) throw new Error('not a directory');
  } catch (error) {
    throw new UsageError(`--data-dir ${absolute}: ${(error as Error).message}`);
  }
  return absolute;
}

export function run(argv: string[], io: CommandIO): Promise<number> {
  return runCommand('dev', io, async () => {
    const { values, positionals } = parseCommandArgs('dev', argv, OPTIONS);
    if (values.help) {
      writeLine(io.stdout, HELP);
      return EXIT.ok;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    if (values['in-memory'] && values['data-dir'] !== undefined)
      throw new UsageError('--in-memory and --data-dir contradict each other; give one');
    const namespaces = parseNamespaces('--namespaces', values.namespaces);
    const cluster = checkCluster('--cluster', values.cluster ?? 'local');
    const profiles: ProfileName[] = (values.profiles ?? 'airflow-kpo').split(',').map((name) => {
      try {
        return parseProfileName(name.trim());
      } catch (error) {
        throw new UsageError(`--profiles: ${(error as Error).message}`);
      }
    });
    const timerEvery = values['timer-every']
      ? parseDurationFlag('--timer-every', values['timer-every'])
      : undefined;
    const reaperEvery = values['reaper-every']
      ? parseDurationFlag('--reaper-every', values['reaper-every'])
      : undefined;
    const kc = loadKubeConfig(values);
    const dataDir = values['in-memory']
      ? undefined
      : prepareDataDir(values['data-dir'] ?? defaultDataDir(process.env));

    quietFunctions(values.verbose);
    const { LocalRuntime } = await import('../../lib/local/runtime.ts');

    const printer = new DecisionPrinter(io, values.json, values.verbose);
    const runtime = new LocalRuntime({
      kubeConfig: kc,
      cluster,
      namespaces,
      profiles,
      env: process.env,
      ...(dataDir !== undefined ? { dataDir } : {}),
      scheduleEveryMs: {
        ...(timerEvery !== undefined ? { timer: timerEvery } : {}),
        ...(reaperEvery !== undefined ? { reaper: reaperEvery } : {}),
      },
      logLevel: values.verbose ? 'info' : 'warn',
      logSink: io.stderr,
      report: (report) => printer.print(report),
    });
    let stopRequested: (signal: string) => void = () => {};
    const stopped = new Promise<string>((resolveStop) => {
      stopRequested = resolveStop;
    });
    const onSignal = (signal: NodeJS.Signals) => {
      if (printer.stopping) {
        writeLine(io.stderr, `podwarden dev: ${signal} again while stopping; still waiting for a clean stop`);
        return;
      }
      printer.stopping = true;
      stopRequested(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      try {
        await runtime.start();
      } catch (error) {
        if ((error as Error).name === 'ConfigError') throw new UsageError((error as Error).message);
        throw error;
      }
      const signal = await stopped;
      if (!values.json) writeLine(io.stdout, `${signal}: stopping (flushing what is in flight) ...`);
      await runtime.stop();
      return EXIT.ok;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}

function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 19);
}

/** One line per decision; a task's repeated "nothing changed" is not repeated. */
class DecisionPrinter {
  readonly #io: CommandIO;
  readonly #json: boolean;
  readonly #verbose: boolean;
  readonly #lastState = new Map<string, string>();
  /** Delivery is at least once (two handlers may flush the same outbox); each event shows once. */
  readonly #shownEvents = new Set<string>();
  stopping = false;

  constructor(io: CommandIO, json: boolean, verbose: boolean) {
    this.#io = io;
    this.#json = json;
    this.#verbose = verbose;
  }

  print(report: RuntimeReport): void {
    if (this.#json) {
      writeLine(this.#io.stdout, JSON.stringify(report));
      return;
    }
    const out = (line: string) => writeLine(this.#io.stdout, line);
    switch (report.kind) {
      case 'started':
        out(
          `Podwarden dev on context ${report.context} (cluster "${report.cluster}"); store: DynamoDB Local at ${report.endpoint}, table ${report.tableName}${report.dataDir ? `, data in ${report.dataDir}` : ', in memory'}.`,
        );
        out(`  tasks: podwarden status --table ${report.tableName} --dynamodb-endpoint ${report.endpoint}`);
        out('  Ctrl-C stops.');
        return;
      case 'leading':
        out(
          report.leader
            ? `${clock(Date.now())} leading (lease ${report.lease}): watching and acting`
            : `${clock(Date.now())} standing by: another podwarden dev holds the lease ${report.lease}`,
        );
        return;
      case 'event':
        if (this.#shownEvents.has(report.event.id)) return;
        if (this.#shownEvents.size > 10_000) this.#shownEvents.clear();
        this.#shownEvents.add(report.event.id);
        out(
          `${clock(report.at)} ⇢ ${report.event.type} ${report.event.task.namespace}/${report.event.task.key}: ${report.event.message}`,
        );
        return;
      case 'failed':
        writeLine(
          this.#io.stderr,
          `${clock(report.at)} ${report.handler} ${report.about}: failed (attempt ${report.attempt}${report.final ? ', giving up; the timer and reaper re-converge it' : ', retrying'}): ${report.error}`,
        );
        return;
      case 'stopped':
        out('stopped: watches closed, queue flushed, lease released, DynamoDB Local stopped.');
        return;
      case 'handled':
        this.#handled(report, out);
    }
  }

  #handled(report: Extract<RuntimeReport, { kind: 'handled' }>, out: (line: string) => void): void {
    const o = report.outcome;
    const head = `${clock(report.at)} ${report.handler.padEnd(16)}`;
    switch (o.outcome) {
      case 'reconciled': {
        const actions = (o.actions as string[]).filter((a) => a !== 'schedule-check');
        // `cluster/namespace/key try=… attempt=… state=…`: printed again only when one of them changed.
        const task = String(o.task);
        const key = task.split(' ')[0] ?? task;
        if (actions.length === 0 && this.#lastState.get(key) === task && !this.#verbose) return;
        if (this.#lastState.size > 10_000) this.#lastState.clear();
        this.#lastState.set(key, task);
        out(`${head} ${report.about} → ${task}${actions.length > 0 ? `; did: ${actions.join(', ')}` : ''}`);
        return;
      }
      case 'skipped':
        if (this.#verbose) out(`${head} ${report.about} → skipped: ${String(o.reason)}`);
        return;
      case 'rejected':
        out(`${head} ${report.about} → rejected: ${String(o.problem)}`);
        return;
      case 'timer-pass':
        if ((o.due as number) > 0 || this.#verbose)
          out(`${head} ${o.due} due, ${o.reconciled} reconciled, ${o.failed} failed`);
        return;
      case 'reaper-pass': {
        const clusters = Object.entries(o.clusters as Record<string, Record<string, unknown>>);
        for (const [name, r] of clusters) {
          const malformed = (r.malformed as unknown[]).length;
          out(
            `${head} ${name}: ${r.podsListed} pods in ${r.tasks} tasks, ${o.dryRun ? 'would delete' : 'deleted'} ${r.deleted}, deferred ${r.deferred}, malformed ${malformed}, failed ${r.failed}`,
          );
        }
        return;
      }
      default:
        out(`${head} ${report.about} → ${JSON.stringify(o)}`);
    }
  }
}
