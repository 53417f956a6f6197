/**
 * Podwarden in one process, against any cluster a kubeconfig reaches: the local runtime behind
 * `podwarden dev` (and embeddable by tests and the demo).
 *
 * Only the transport is local. The bridge (lib/bridge/bridge.ts: its watchers, entries, batching
 * and leader election) runs as in the cluster, but its PutEvents port hands each entry to an
 * in-process bus instead of EventBridge; the bus picks the handler with the one route table
 * (lib/routes.ts) and invokes the very handler functions the Lambdas run (functions/*), with the
 * functions' own configuration (lib/config.ts, from the same PODWARDEN_* variables). The timer and
 * the reaper are the route table's schedules; a due time sooner than the next timer sweep wakes
 * the timer at that time, as the delayed-message queue does in AWS. The store is DynamoDB, usually
 * DynamoDB Local (lib/devcluster/dynamodb-local.ts) started here with its data in a directory.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import type { KubeConfig } from '@kubernetes/client-node';
import { handleKubernetesEvent } from '../../functions/kubernetes-event.ts';
import { handleOrchestrator } from '../../functions/orchestrator.ts';
import { handlePodChanged } from '../../functions/pod-changed.ts';
import { handleReaper } from '../../functions/reaper.ts';
import type { ContainerDeps } from '../../functions/shared/deps.ts';
import { handleTimer } from '../../functions/timer.ts';
import { Bridge } from '../bridge/bridge.ts';
import { type BridgeConfig, DEFAULT_EVENT_REASONS } from '../bridge/config.ts';
import type { BusEntry } from '../bridge/entries.ts';
import type { EntryOutcome, PutEventsPort } from '../bridge/forwarder.ts';
import { createLogger, type LogLevel } from '../bridge/logger.ts';
import { KubeCluster } from '../cluster/kube-cluster.ts';
import { ALL_NAMESPACES, ENV, loadConfig, type PodwardenConfig } from '../config.ts';
import type { OutboundEvent } from '../core/action.ts';
import type { AuditEntry, DueOptions, TaskStore } from '../core/ports.ts';
import type { ProfileName, TaskId, TaskRecord } from '../core/task.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../devcluster/dynamodb-local.ts';
import {
  dispatch,
  type HandlerName,
  type Route,
  routeTable,
  type ScheduleRoute,
  scheduleEvent,
} from '../routes.ts';
import { DynamoTaskStore } from '../store/dynamo-task-store.ts';
import { tableDefinition, timeToLiveDefinition } from '../store/schema.ts';

export const DEFAULT_DEV_TABLE = 'podwarden-dev';
const LOCAL_CREDENTIALS = { accessKeyId: 'podwardenlocal', secretAccessKey: 'podwardenlocal' };
/** Lambda retries a failed asynchronous invocation twice; so does the local bus (sooner). */
const HANDLER_RETRIES = 2;
const HANDLER_RETRY_DELAY_MS = 1_000;

/** What happened, as the runtime reports it: one line of `podwarden dev`'s output each. */
export type RuntimeReport =
  | {
      kind: 'started';
      cluster: string;
      context: string;
      endpoint: string;
      tableName: string;
      dataDir?: string;
    }
  /** The runtime holds the lease (forwarding), or another holder has it (standing by). */
  | { kind: 'leading'; leader: boolean; lease: string }
  | { kind: 'handled'; at: number; handler: HandlerName; about: string; outcome: Record<string, unknown> }
  | {
      kind: 'failed';
      at: number;
      handler: HandlerName;
      about: string;
      error: string;
      attempt: number;
      final: boolean;
    }
  | { kind: 'event'; at: number; event: OutboundEvent }
  | { kind: 'stopped' };

export interface LocalRuntimeOptions {
  kubeConfig: KubeConfig;
  /** The cluster's name in the records and events (default `local`). */
  cluster?: string;
  /** Namespaces Podwarden may act in; empty: every namespace. */
  namespaces?: string[];
  profiles?: ProfileName[];
  /**
   * The functions' PODWARDEN_* variables (policy, reaper limits, ...); the runtime sets the table,
   * the bus, the clusters, the profiles and the namespaces itself.
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** An existing DynamoDB (e.g. a test's DynamoDB Local); by default DynamoDB Local is started here. */
  dynamodb?: { client: DynamoDBClient; endpoint: string };
  /** DynamoDB Local keeps its data here (an existing directory); in memory when absent. */
  dataDir?: string;
  tableName?: string;
  /** Overrides the schedules' period (tests); by default each schedule route's own minutes. */
  scheduleEveryMs?: Partial<Record<'timer' | 'reaper', number>>;
  /** Lease taken in this namespace so that two runtimes on one cluster never both act. */
  leaseNamespace?: string;
  /** Level of the bridge's own JSON log lines on `logSink` (default warn). */
  logLevel?: LogLevel;
  logSink?: { write(line: string): unknown };
  report: (report: RuntimeReport) => void;
}

type Handler = (event: unknown, deps: ContainerDeps) => Promise<unknown>;

const HANDLERS: Record<HandlerName, Handler> = {
  'pod-changed': handlePodChanged,
  'kubernetes-event': handleKubernetesEvent,
  orchestrator: handleOrchestrator,
  timer: handleTimer,
  reaper: handleReaper,
};

/**
 * The store the handlers use, telling the runtime about every due time it writes: the local
 * counterpart of the delayed-message queue that delivers due times sooner than the timer sweep.
 */
class DueTimeTap implements TaskStore {
  readonly #inner: TaskStore;
  readonly #onDue: (at: number) => void;
  constructor(inner: TaskStore, onDue: (at: number) => void) {
    this.#inner = inner;
    this.#onDue = onDue;
  }
  get(id: TaskId) {
    return this.#inner.get(id);
  }
  getMany(ids: TaskId[]) {
    return this.#inner.getMany(ids);
  }
  async put(record: TaskRecord, now: number, previous?: TaskRecord) {
    const stored = await this.#inner.put(record, now, previous);
    if (stored.dueAt !== undefined) this.#onDue(stored.dueAt);
    return stored;
  }
  due(now: number, limit: number, options?: DueOptions) {
    return this.#inner.due(now, limit, options);
  }
  findByPod(cluster: string, namespace: string, podName: string) {
    return this.#inner.findByPod(cluster, namespace, podName);
  }
  async resyncEntries(cluster: string) {
    return (await this.#inner.resyncEntries?.(cluster)) ?? [];
  }
  async noteResyncPass(cluster: string, startedAt: number) {
    await this.#inner.noteResyncPass?.(cluster, startedAt);
  }
  async resyncPasses() {
    return (await this.#inner.resyncPasses?.()) ?? new Map<string, number>();
  }
  appendAudit(id: TaskId, entries: AuditEntry[]) {
    return this.#inner.appendAudit(id, entries);
  }
  listAudit(id: TaskId, limit?: number) {
    return this.#inner.listAudit(id, limit);
  }
  markSeen(eventId: string, now: number, ttlMs: number) {
    return this.#inner.markSeen(eventId, now, ttlMs);
  }
}

export class LocalRuntime {
  readonly options: LocalRuntimeOptions;
  readonly cluster: string;
  readonly tableName: string;
  #dynamo: DynamoDbLocal | undefined;
  #client: DynamoDBClient | undefined;
  #ownsClient = false;
  #endpoint = '';
  #deps: ContainerDeps | undefined;
  #routes: readonly Route[] = [];
  #bridge: Bridge | undefined;
  #timers: NodeJS.Timeout[] = [];
  #wakeup: { at: number; timer: NodeJS.Timeout } | undefined;
  #running = new Map<'timer' | 'reaper', Promise<void>>();
  #again = new Set<'timer' | 'reaper'>();
  #inFlight = new Set<Promise<unknown>>();
  #stopping = false;
  #started = false;

  constructor(options: LocalRuntimeOptions) {
    this.options = options;
    this.cluster = options.cluster ?? 'local';
    this.tableName = options.tableName ?? DEFAULT_DEV_TABLE;
  }

  /** The store's endpoint (for `podwarden status --dynamodb-endpoint`). */
  get endpoint(): string {
    return this.#endpoint;
  }

  get config(): PodwardenConfig {
    if (!this.#deps) throw new Error('the local runtime is not started');
    return this.#deps.config;
  }

  get store(): TaskStore {
    if (!this.#deps) throw new Error('the local runtime is not started');
    return this.#deps.store;
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('the local runtime was started already');
    this.#started = true;
    const o = this.options;
    const namespaces = o.namespaces ?? [];
    // The functions' configuration, validated as the Lambdas validate it: a bad PODWARDEN_* value
    // fails here with the variable's name.
    const config = loadConfig({
      ...o.env,
      [ENV.tableName]: this.tableName,
      [ENV.eventBusName]: 'local',
      [ENV.clusters]: JSON.stringify({ [this.cluster]: { kind: 'kubeconfig' } }),
      [ENV.profiles]: (o.profiles ?? ['airflow-kpo']).join(','),
      [ENV.allowedNamespaces]: namespaces.length > 0 ? namespaces.join(',') : ALL_NAMESPACES,
    });
    this.#routes = routeTable({
      orchestratorSources: config.orchestratorSources,
      exporterSources: Object.keys(config.exporterSources),
    });
    try {
      await this.#openStore(config);
      const kc = o.kubeConfig;
      const store = new DueTimeTap(
        new DynamoTaskStore({
          client: this.#client!,
          tableName: this.tableName,
          retentionMs: config.policy.retentionMs,
        }),
        (at) => this.#wakeTimerAt(at),
      );
      this.#deps = {
        config,
        store,
        cluster: new KubeCluster(async () => kc),
        sink: {
          emit: async (events) => {
            for (const event of events) o.report({ kind: 'event', at: Date.now(), event });
          },
        },
        clock: Date.now,
      };
      o.report({
        kind: 'started',
        cluster: this.cluster,
        context: kc.getCurrentContext(),
        endpoint: this.#endpoint,
        tableName: this.tableName,
        ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
      });
      this.#startSchedules();
      this.#bridge = new Bridge(this.#bridgeConfig(namespaces, config.profiles), {
        kubeConfig: kc,
        log: createLogger({
          sink: o.logSink ?? process.stderr,
          level: o.logLevel ?? 'warn',
          fields: { part: 'bridge' },
        }),
        putEvents: this.#busPort(),
      });
      await this.#bridge.start();
      this.#watchLeadership();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** Puts one event on the local bus, as PutEvents would (e.g. an orchestrator's Task Instance Changed). */
  async publish(event: Record<string, unknown>): Promise<void> {
    await this.#deliver({ version: '0', id: randomUUID(), time: new Date().toISOString(), ...event });
  }

  /** Runs a schedule's pass now (the timer or the reaper), as its rule would. */
  runPass(which: 'timer' | 'reaper'): Promise<void> {
    const existing = this.#running.get(which);
    if (existing) {
      // A pass is running: one more right after it covers whatever asked for this one.
      this.#again.add(which);
      return existing;
    }
    const route = this.#routes.find(
      (candidate): candidate is ScheduleRoute =>
        candidate.trigger === 'schedule' && candidate.handler === which,
    );
    if (!route || this.#stopping) return Promise.resolve();
    const pass = this.#deliver(scheduleEvent(route, { id: randomUUID(), time: new Date().toISOString() }))
      .catch(() => undefined)
      .finally(() => {
        this.#running.delete(which);
        if (this.#again.delete(which) && !this.#stopping) void this.runPass(which);
      });
    this.#running.set(which, pass);
    return pass;
  }

  /** Stops watching, lets what is in flight finish, stops the schedules and the store. Safe to repeat. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    if (this.#wakeup) clearTimeout(this.#wakeup.timer);
    this.#wakeup = undefined;
    const failures: unknown[] = [];
    await this.#bridge?.shutdown().catch((error: unknown) => failures.push(error));
    await Promise.allSettled([...this.#running.values(), ...this.#inFlight]);
    if (this.#ownsClient) this.#client?.destroy();
    await this.#dynamo?.stop().catch((error: unknown) => failures.push(error));
    this.options.report({ kind: 'stopped' });
    if (failures.length > 0) throw new AggregateError(failures, 'the local runtime did not stop cleanly');
  }

  async #openStore(config: PodwardenConfig): Promise<void> {
    if (this.options.dynamodb) {
      this.#client = this.options.dynamodb.client;
      this.#endpoint = this.options.dynamodb.endpoint;
    } else {
      this.#dynamo = await startDynamoDbLocal(
        this.options.dataDir !== undefined ? { dataDir: this.options.dataDir } : {},
      );
      this.#endpoint = this.#dynamo.endpoint;
      this.#client = new DynamoDBClient({
        region: 'local',
        endpoint: this.#endpoint,
        credentials: LOCAL_CREDENTIALS,
      });
      this.#ownsClient = true;
    }
    const client = this.#client;
    try {
      await client.send(new DescribeTableCommand({ TableName: this.tableName }));
      return; // kept from an earlier run in the data directory
    } catch (error) {
      if ((error as { name?: string }).name !== 'ResourceNotFoundException') throw error;
    }
    await client.send(new CreateTableCommand(tableDefinition(config.tableName)));
    await waitUntilTableExists({ client, maxWaitTime: 60 }, { TableName: this.tableName });
    await client.send(new UpdateTimeToLiveCommand(timeToLiveDefinition(this.tableName)));
  }

  get #bridgeLease() {
    return {
      namespace: this.options.leaseNamespace ?? this.options.namespaces?.[0] ?? 'default',
      name: 'podwarden-dev',
    };
  }

  #bridgeConfig(namespaces: string[], profiles: ProfileName[]): BridgeConfig {
    return {
      cluster: this.cluster,
      bus: 'local',
      region: 'local',
      namespaces,
      profiles,
      eventReasons: [...DEFAULT_EVENT_REASONS],
      lease: {
        ...this.#bridgeLease,
        durationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      },
      identity: `${hostname()}-${process.pid}`,
      metricsHost: '127.0.0.1',
      metricsPort: 0,
      logLevel: this.options.logLevel ?? 'warn',
      flushTimeoutMs: 10_000,
      eventMaxAgeMs: 10 * 60_000,
    };
  }

  /** The bridge's PutEvents port: each entry becomes the event EventBridge would deliver. */
  #busPort(): PutEventsPort {
    return {
      putEvents: async (entries: BusEntry[]): Promise<EntryOutcome[]> => {
        for (const entry of entries) {
          let detail: unknown;
          try {
            detail = JSON.parse(entry.Detail);
          } catch {
            detail = entry.Detail;
          }
          await this.#deliver({
            version: '0',
            id: randomUUID(),
            'detail-type': entry.DetailType,
            source: entry.Source,
            account: 'local',
            time: entry.Time.toISOString(),
            region: 'local',
            resources: [],
            detail,
          });
        }
        return entries.map(() => ({ ok: true }));
      },
    };
  }

  /** Dispatches by the route table and invokes the handler, retrying a failure as Lambda would. */
  async #deliver(event: Record<string, unknown>): Promise<void> {
    const deps = this.#deps;
    if (!deps) throw new Error('the local runtime is not started');
    const route = dispatch(event, this.#routes);
    if (!route) return; // EventBridge delivers an event no rule matches to nobody
    const about = describeEvent(event);
    const run = (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          const outcome = (await HANDLERS[route.handler](event, deps)) as Record<string, unknown>;
          this.options.report({ kind: 'handled', at: Date.now(), handler: route.handler, about, outcome });
          return;
        } catch (error) {
          const final = attempt > HANDLER_RETRIES || this.#stopping;
          this.options.report({
            kind: 'failed',
            at: Date.now(),
            handler: route.handler,
            about,
            error: error instanceof Error ? error.message : String(error),
            attempt,
            final,
          });
          if (final) return;
          await new Promise((resolve) => setTimeout(resolve, HANDLER_RETRY_DELAY_MS * attempt));
        }
      }
    })();
    this.#inFlight.add(run);
    try {
      await run;
    } finally {
      this.#inFlight.delete(run);
    }
  }

  #startSchedules(): void {
    for (const route of this.#routes) {
      if (route.trigger !== 'schedule' || (route.handler !== 'timer' && route.handler !== 'reaper')) continue;
      const which = route.handler;
      const every = this.options.scheduleEveryMs?.[which] ?? route.everyMinutes * 60_000;
      const timer = setInterval(() => void this.runPass(which), every);
      this.#timers.push(timer);
    }
  }

  /** Says when this runtime starts or stops leading, so a standby never looks like a hang. */
  #watchLeadership(): void {
    let leading: boolean | undefined;
    const lease = `${this.#bridgeLease.namespace}/${this.#bridgeLease.name}`;
    const since = Date.now();
    const check = () => {
      const now = this.#bridge?.isLeader ?? false;
      if (now === leading) return;
      // An uncontested lease is taken within a retry period or two: not yet leading is no standby.
      if (!now && leading === undefined && Date.now() - since < 5_000) return;
      leading = now;
      this.options.report({ kind: 'leading', leader: now, lease });
    };
    this.#timers.push(setInterval(check, 1_000));
  }

  /** A due time: wake the timer then, unless an earlier wake-up is already set. */
  #wakeTimerAt(at: number): void {
    if (this.#stopping) return;
    if (this.#wakeup && this.#wakeup.at <= at) return;
    if (this.#wakeup) clearTimeout(this.#wakeup.timer);
    const delay = Math.max(0, at - Date.now());
    // Past the sweep period the sweep itself comes first; no need to hold a timer that long.
    const sweep = this.options.scheduleEveryMs?.timer ?? 60_000;
    if (delay > sweep) {
      this.#wakeup = undefined;
      return;
    }
    const timer = setTimeout(() => {
      this.#wakeup = undefined;
      // setTimeout may fire a millisecond before `at` as Date.now() reads it; a pass then finds
      // nothing due and the task would wait for the sweep (the fault runDueCheck had).
      if (Date.now() < at) return this.#wakeTimerAt(at);
      void this.runPass('timer');
    }, delay);
    this.#wakeup = { at, timer };
  }
}

/** `Pod Changed airflow/load-x (modified)`, `Kubernetes Event airflow/load-x Preempted`, `Timer Pass`. */
function describeEvent(event: Record<string, unknown>): string {
  const detail = (typeof event.detail === 'object' && event.detail !== null ? event.detail : {}) as {
    change?: string;
    pod?: { metadata?: { name?: string; namespace?: string } };
    reference?: { name?: string; namespace?: string };
    event?: { reason?: string; namespace?: string; involvedObject?: { name?: string; namespace?: string } };
  };
  const what = String(event['detail-type'] ?? '');
  const pod = detail.pod?.metadata ?? detail.reference;
  if (pod?.name)
    return `${what} ${pod.namespace ?? ''}/${pod.name}${detail.change ? ` (${detail.change})` : ''}`;
  const involved = detail.event?.involvedObject;
  if (involved?.name)
    return `${what} ${involved.namespace ?? detail.event?.namespace ?? ''}/${involved.name} ${detail.event?.reason ?? ''}`.trimEnd();
  return what;
}
