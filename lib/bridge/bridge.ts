import type { KubeConfig } from '@kubernetes/client-node';
import { PROFILES } from '../core/identity.ts';
import type { Pod } from '../core/pod.ts';
import type { KubeEvent } from '../core/ports.ts';
import type { BackoffPolicy } from './batching.ts';
import { type BridgeConfig, matchesSelector } from './config.ts';
import { kubeEventItem, kubeEventTime, podChangedItem, podKey, toKubeEvent, trimPod } from './entries.ts';
import { eventBridgePort } from './eventbridge.ts';
import { Forwarder, type ForwarderOptions, type PutEventsPort } from './forwarder.ts';
import { type KubeApi, KubeApiError, kubeApi } from './kube.ts';
import { LeaderElector } from './leader.ts';
import type { Logger } from './logger.ts';
import { BridgeMetrics, totalOf } from './metrics.ts';
import type { ChangeKind } from './relist.ts';
import { type ProbeServer, startProbeServer } from './server.ts';
import { ResourceWatcher, type Via, type WatchTarget } from './watcher.ts';

/** Only pods' own events matter; the API server filters the rest out. */
const POD_EVENTS = 'involvedObject.kind=Pod';
/** How long a deleted pod's labels are remembered for events that arrive after the deletion. */
const DELETED_POD_MEMORY_MS = 15 * 60_000;
const UNMANAGED_MEMORY_LIMIT = 10_000;

export interface BridgeDependencies {
  kubeConfig: KubeConfig;
  log: Logger;
  /** Defaults to EventBridge through the AWS SDK, at `config.eventBridgeEndpoint` when set. */
  putEvents?: PutEventsPort;
  /** Forwarder tuning (tests shorten back-offs). */
  forwarder?: Omit<ForwarderOptions, 'port' | 'metrics' | 'log'>;
  watchBackoff?: BackoffPolicy;
  watchTimeoutSeconds?: number;
  now?: () => number;
}

interface PodFacts {
  uid: string;
  key: string;
  labels: Record<string, string>;
  deletedAt?: number;
}

/**
 * `podwarden bridge`: while this replica leads, watch the managed pods and their events and forward
 * them to EventBridge; serve probes and metrics all along; on shutdown stop watching, flush, hand the
 * lease back.
 */
export class Bridge {
  readonly config: BridgeConfig;
  readonly metrics = new BridgeMetrics();
  readonly #log: Logger;
  readonly #api: KubeApi;
  readonly #port: PutEventsPort & { destroy?: () => void };
  readonly #forwarder: Forwarder;
  readonly #elector: LeaderElector;
  readonly #deps: BridgeDependencies;
  readonly #now: () => number;
  readonly #reasons: Set<string>;
  readonly #selectors: string[];
  #server: ProbeServer | undefined;
  #watchers: Array<ResourceWatcher<Pod> | ResourceWatcher<Record<string, unknown>>> = [];
  #forwarding = false;
  /** Bumped on every start and stop of forwarding, so a late continuation of an old start does nothing. */
  #generation = 0;
  #shuttingDown = false;
  #started = false;
  #transitions: Promise<void> = Promise.resolve();
  #events: Promise<void> = Promise.resolve();
  /** Live and recently deleted managed pods, by uid, for labelling their events. */
  #pods = new Map<string, PodFacts>();
  #unmanaged = new Set<string>();

  constructor(config: BridgeConfig, deps: BridgeDependencies) {
    this.config = config;
    this.#deps = deps;
    this.#log = deps.log;
    this.#now = deps.now ?? Date.now;
    this.#api = kubeApi(deps.kubeConfig);
    this.#reasons = new Set(config.eventReasons);
    this.#selectors = config.profiles.map((profile) => PROFILES[profile].labelSelector);
    this.#port =
      deps.putEvents ??
      eventBridgePort({
        region: config.region,
        ...(config.eventBridgeEndpoint ? { endpoint: config.eventBridgeEndpoint } : {}),
      });
    this.#forwarder = new Forwarder({
      ...deps.forwarder,
      port: this.#port,
      metrics: this.metrics,
      log: this.#log.createChild({ persistentKeys: { part: 'forwarder' } }),
    });
    this.#elector = new LeaderElector({
      api: this.#api,
      namespace: config.lease.namespace,
      name: config.lease.name,
      identity: config.identity,
      leaseDurationMs: config.lease.durationMs,
      renewDeadlineMs: config.lease.renewDeadlineMs,
      retryPeriodMs: config.lease.retryPeriodMs,
      log: this.#log.createChild({ persistentKeys: { part: 'leader' } }),
      onStartedLeading: () => this.#transition(true),
      onStoppedLeading: () => this.#transition(false),
      ...(deps.now ? { now: deps.now } : {}),
    });
    this.metrics.isLeader.set(0);
  }

  /** The port the probe and metrics server listens on (useful when configured as 0). */
  get serverPort(): number | undefined {
    return this.#server?.port;
  }

  get isLeader(): boolean {
    return this.#elector.isLeader;
  }

  /** Leading, watching, and every watch has listed: changes are being forwarded. */
  get isForwarding(): boolean {
    return this.#forwarding && this.#watchers.every((watcher) => watcher.synced);
  }

  /** Every watch has a stream open right now. */
  get watchesConnected(): boolean {
    return this.#watchers.length > 0 && this.#watchers.every((watcher) => watcher.connected);
  }

  get pendingEntries(): number {
    return this.#forwarder.pending;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#server = await startProbeServer({
      host: this.config.metricsHost,
      port: this.config.metricsPort,
      health: () => ({ ok: true, detail: { leader: this.isLeader, queued: this.#forwarder.pending } }),
      ready: () => {
        const syncing = this.#watchers.filter((watcher) => !watcher.synced).length;
        const ok = !this.#shuttingDown && (!this.isLeader || (this.#forwarding && syncing === 0));
        return {
          ok,
          detail: { leader: this.isLeader, shuttingDown: this.#shuttingDown, watchesSyncing: syncing },
        };
      },
      metrics: () => this.metrics.render(),
    });
    this.#log.info('bridge started', {
      cluster: this.config.cluster,
      bus: this.config.bus,
      namespaces: this.config.namespaces.length > 0 ? this.config.namespaces : '*',
      profiles: this.config.profiles,
      identity: this.config.identity,
      port: this.#server.port,
    });
    this.#elector.start();
  }

  /** Cuts every watch stream as a network failure would; each resumes from its last resourceVersion. */
  interruptWatches(): void {
    for (const watcher of this.#watchers) watcher.interrupt();
  }

  /**
   * Stop watching, deliver what is queued (up to the flush timeout), release the lease, close the
   * server. `releaseLease: false` leaves the lease to expire, as a crashed replica would.
   */
  async shutdown(options: { releaseLease?: boolean } = {}): Promise<void> {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    this.#log.info('shutting down');
    await this.#enqueueTransition(() => this.#stopForwarding());
    await this.#events;
    const { undelivered } = await this.#forwarder.flush(this.config.flushTimeoutMs);
    await this.#elector.stop({ release: options.releaseLease ?? true });
    this.metrics.isLeader.set(0);
    await this.#server?.close();
    this.#port.destroy?.();
    this.#log.info('bridge stopped', {
      forwarded: await totalOf(this.metrics.forwarded),
      failed: await totalOf(this.metrics.failed),
      undeliveredAtShutdown: undelivered,
    });
  }

  #transition(leading: boolean): void {
    this.metrics.isLeader.set(leading ? 1 : 0);
    this.metrics.leaderTransitions.inc({ to: leading ? 'leader' : 'standby' });
    void this.#enqueueTransition(() =>
      leading && !this.#shuttingDown ? this.#startForwarding() : this.#stopForwarding(),
    );
  }

  #enqueueTransition(step: () => Promise<void>): Promise<void> {
    this.#transitions = this.#transitions.then(step).catch((error: unknown) => {
      this.#log.error('leadership transition failed', { error });
    });
    return this.#transitions;
  }

  async #startForwarding(): Promise<void> {
    if (this.#forwarding) return;
    this.#forwarding = true;
    const namespaces: Array<string | undefined> =
      this.config.namespaces.length > 0 ? this.config.namespaces : [undefined];
    const podWatchers = namespaces.flatMap((namespace) =>
      this.#selectors.map(
        (labelSelector) =>
          new ResourceWatcher<Pod>({
            ...this.#watcherCommon({ resource: 'pods', ...(namespace ? { namespace } : {}), labelSelector }),
            keepObjects: true,
            retain: trimPod,
            onChange: (change, pod, via) => this.#onPod(change, pod, via),
          }),
      ),
    );
    const eventWatchers = namespaces.map(
      (namespace) =>
        new ResourceWatcher<Record<string, unknown>>({
          ...this.#watcherCommon({
            resource: 'events',
            ...(namespace ? { namespace } : {}),
            fieldSelector: POD_EVENTS,
          }),
          keepObjects: false,
          onChange: (change, event, via) => this.#onEvent(change, event, via),
        }),
    );
    this.#watchers = [...podWatchers, ...eventWatchers];
    const generation = ++this.#generation;
    this.#log.info('forwarding: watching pods and events', { watches: this.#watchers.length });
    // Not awaited: a transition back to standby must never wait for an unreachable API server.
    void (async () => {
      // Pods first: events of pods listed here can then be labelled without asking the API server.
      await Promise.all(podWatchers.map((watcher) => watcher.start()));
      if (generation !== this.#generation) return;
      await Promise.all(eventWatchers.map((watcher) => watcher.start()));
      if (generation === this.#generation) this.#log.info('forwarding: every watch has listed');
    })();
  }

  #watcherCommon(target: WatchTarget) {
    return {
      api: this.#api,
      target,
      log: this.#log.createChild({ persistentKeys: { part: 'watch' } }),
      metrics: this.metrics,
      ...(this.#deps.watchBackoff ? { backoff: this.#deps.watchBackoff } : {}),
      ...(this.#deps.watchTimeoutSeconds ? { watchTimeoutSeconds: this.#deps.watchTimeoutSeconds } : {}),
    };
  }

  async #stopForwarding(): Promise<void> {
    if (!this.#forwarding) return;
    this.#forwarding = false;
    this.#generation += 1;
    const watchers = this.#watchers;
    await Promise.all(watchers.map((watcher) => watcher.stop()));
    this.#watchers = [];
    this.#pods.clear();
    this.#unmanaged.clear();
    this.#log.info('forwarding stopped');
  }

  #onPod(change: ChangeKind, pod: Pod, via: Via): void {
    const now = this.#now();
    this.metrics.seen.inc({ resource: 'pods', change });
    const uid = pod.metadata.uid;
    if (uid) {
      const facts: PodFacts = {
        uid,
        key: podKey(pod.metadata.namespace, pod.metadata.name),
        labels: pod.metadata.labels ?? {},
      };
      if (change === 'deleted') facts.deletedAt = now;
      this.#pods.set(uid, facts);
      this.#unmanaged.delete(uid);
    }
    if (change === 'deleted') this.#forgetOldDeletions(now);
    this.#forwarder.enqueue(
      podChangedItem({
        cluster: this.config.cluster,
        bus: this.config.bus,
        change,
        pod,
        observedAt: now,
        resync: via !== 'watch',
      }),
    );
  }

  #forgetOldDeletions(now: number): void {
    for (const [uid, facts] of this.#pods) {
      if (facts.deletedAt !== undefined && now - facts.deletedAt > DELETED_POD_MEMORY_MS)
        this.#pods.delete(uid);
    }
  }

  #onEvent(change: ChangeKind, raw: Record<string, unknown>, via: Via): void {
    const observedAt = this.#now();
    this.metrics.seen.inc({ resource: 'events', change });
    const event = change === 'deleted' ? undefined : toKubeEvent(raw);
    const skip = this.#skipReason(change, event, via, observedAt);
    if (skip || !event) {
      this.#ignore(skip ?? 'malformed');
      return;
    }
    // One chain keeps the events' order even when some wait for a pod lookup.
    this.#events = this.#events
      .then(() => this.#forwardEvent(event, observedAt))
      .catch((error: unknown) => this.#log.error('forwarding an event failed', { error, event: event.name }));
  }

  #skipReason(change: ChangeKind, event: KubeEvent | undefined, via: Via, now: number): string | undefined {
    if (change === 'deleted') return 'deleted';
    if (!event) return 'malformed';
    if (!this.#reasons.has(event.reason)) return 'reason';
    if (event.involvedObject.kind !== 'Pod' || !event.involvedObject.name) return 'not-a-pod';
    const at = kubeEventTime(event);
    if (via === 'initial' && at !== undefined && now - at > this.config.eventMaxAgeMs) return 'stale';
    return undefined;
  }

  #ignore(reason: string): void {
    this.metrics.ignored.inc({ reason });
  }

  async #forwardEvent(event: KubeEvent, observedAt: number): Promise<void> {
    const labels = await this.#managedPodLabels(event);
    if (labels === null) {
      this.#ignore('unmanaged');
      return;
    }
    this.#forwarder.enqueue(
      kubeEventItem({
        cluster: this.config.cluster,
        bus: this.config.bus,
        event,
        ...(labels ? { podLabels: labels } : {}),
        observedAt,
      }),
    );
  }

  /**
   * The labels of the event's pod when it is (or was) managed; `undefined` when the pod is gone and
   * was never seen (the receiver decides by its records); `null` when the pod is not managed.
   */
  async #managedPodLabels(event: KubeEvent): Promise<Record<string, string> | undefined | null> {
    const namespace = event.involvedObject.namespace ?? event.namespace;
    const name = event.involvedObject.name!;
    const uid = event.involvedObject.uid;
    const key = podKey(namespace, name);
    if (uid) {
      if (this.#pods.has(uid)) return this.#pods.get(uid)!.labels;
      if (this.#unmanaged.has(uid)) return null;
    } else {
      for (const facts of this.#pods.values())
        if (facts.key === key && facts.deletedAt === undefined) return facts.labels;
    }
    let pod: Pod | undefined;
    try {
      pod = (await this.#api.request(
        'GET',
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
      )) as Pod;
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      this.#log.warn('could not read the pod of an event; forwarding it without labels', { error, pod: key });
      return undefined;
    }
    if (uid && pod.metadata.uid !== uid) return undefined;
    const labels = pod.metadata.labels ?? {};
    const inNamespace = this.config.namespaces.length === 0 || this.config.namespaces.includes(namespace);
    if (inNamespace && this.#selectors.some((selector) => matchesSelector(labels, selector))) return labels;
    if (pod.metadata.uid) {
      if (this.#unmanaged.size >= UNMANAGED_MEMORY_LIMIT) this.#unmanaged.clear();
      this.#unmanaged.add(pod.metadata.uid);
    }
    return null;
  }
}
