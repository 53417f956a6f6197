import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
// The modules, not the package's index: see connections.ts.
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { RequestContext } from '@kubernetes/client-node/dist/gen/http/http.js';
import { Agent, type Dispatcher } from 'undici';
import type { Pod } from '../core/pod.ts';
import {
  type Cluster,
  ClusterError,
  type DeleteOptions,
  type DeleteOutcome,
  type KubeEvent,
  type ListPodsOptions,
} from '../core/ports.ts';
import type { StoryEvent } from '../core/story.ts';
import { type ClusterConnection, type KubeConfigDeps, kubeConfigFor } from './connections.ts';
import {
  clusterErrorFromResponse,
  clusterErrorFromThrown,
  describeTarget,
  type KubeRequestTarget,
} from './errors.ts';
import { type RetryNotice, type RetryPolicy, withRetries } from './retry.ts';

export interface KubeClusterOptions {
  /** Tries per request, the first included (default 4). */
  attempts?: number;
  /** First back-off step (default 200 ms); it doubles per retry up to `maxDelayMs`. */
  baseDelayMs?: number;
  /** Longest single wait (default 5 s). A longer Retry-After is surfaced, not slept through. */
  maxDelayMs?: number;
  /** Items per list page (default 500). */
  pageSize?: number;
  /** Deadline of one HTTP request (default 30 s). */
  requestTimeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Told before each wait; for logs and metrics. */
  onRetry?: (notice: RetryNotice & { target: KubeRequestTarget }) => void;
  /** Passed to kubeConfigFor when the clusters are given as connections. */
  connectionDeps?: KubeConfigDeps;
}

type ConfigSource = Map<string, ClusterConnection> | ((cluster: string) => Promise<KubeConfig>);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
// A list continue token expires after about five minutes; past that the list restarts from scratch.
const MAX_LIST_RESTARTS = 2;

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`KubeCluster: option ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/**
 * The Cluster port on @kubernetes/client-node. client-node supplies the connection (kubeconfig,
 * in-cluster, exec and token auth, TLS) and the HTTP transport; the bodies are exchanged as raw JSON
 * because its typed models drop fields they do not know and turn timestamps into Date objects, while
 * a pod re-created from its captured spec must be exactly what the API server returned.
 */
export class KubeCluster implements Cluster {
  readonly #source: ConfigSource;
  readonly #configs = new Map<string, Promise<KubeConfig>>();
  readonly #retry: RetryPolicy;
  readonly #pageSize: number;
  readonly #requestTimeoutMs: number;
  readonly #onRetry: KubeClusterOptions['onRetry'];
  readonly #connectionDeps: KubeConfigDeps | undefined;
  readonly #dispatchers = new Map<string, Dispatcher>();

  constructor(source: ConfigSource, options: KubeClusterOptions = {}) {
    if (source instanceof Map) {
      if (source.size === 0) throw new Error('KubeCluster: no cluster connection is configured');
    } else if (typeof source !== 'function') {
      throw new Error(
        'KubeCluster: expected a Map of cluster connections or a function returning a KubeConfig',
      );
    }
    this.#source = source;
    const attempts = integerIn('attempts', options.attempts ?? 4, 1, 10);
    const baseDelayMs = integerIn('baseDelayMs', options.baseDelayMs ?? 200, 1, 60_000);
    const maxDelayMs = integerIn('maxDelayMs', options.maxDelayMs ?? 5_000, 1, 300_000);
    if (maxDelayMs < baseDelayMs) {
      throw new Error(
        `KubeCluster: option maxDelayMs (${maxDelayMs}) must not be below baseDelayMs (${baseDelayMs})`,
      );
    }
    this.#retry = {
      attempts,
      baseDelayMs,
      maxDelayMs,
      sleep: options.sleep ?? ((ms) => delay(ms)),
      random: options.random ?? Math.random,
    };
    this.#pageSize = integerIn('pageSize', options.pageSize ?? 500, 1, 10_000);
    this.#requestTimeoutMs = integerIn('requestTimeoutMs', options.requestTimeoutMs ?? 30_000, 1, 600_000);
    this.#onRetry = options.onRetry;
    this.#connectionDeps = options.connectionDeps;
  }

  async getPod(cluster: string, namespace: string, name: string): Promise<Pod | undefined> {
    const target: KubeRequestTarget = { cluster, verb: 'get', resource: 'pods', namespace, name };
    checkNamespace(target, namespace);
    checkName(target, name);
    const response = await this.#request(target, 'GET', podPath(namespace, name));
    if (response.status === 404) return undefined;
    return this.#expectOk(target, response) as Pod;
  }

  async createPod(cluster: string, pod: Pod): Promise<{ outcome: 'created' | 'exists'; pod?: Pod }> {
    const namespace = pod?.metadata?.namespace;
    const name = pod?.metadata?.name;
    const target: KubeRequestTarget = { cluster, verb: 'create', resource: 'pods', namespace, name };
    if (namespace === undefined)
      throw new ClusterError('fatal', `${describeTarget(target)}: pod has no metadata.namespace`);
    checkNamespace(target, namespace);
    if (name !== undefined) checkName(target, name);
    const body = { apiVersion: 'v1', kind: 'Pod', ...pod };
    const response = await this.#request(target, 'POST', podPath(namespace), undefined, body);
    if (response.status === 409 && statusReason(response.body) === 'AlreadyExists')
      return { outcome: 'exists' };
    return { outcome: 'created', pod: this.#expectOk(target, response) as Pod };
  }

  async deletePod(
    cluster: string,
    namespace: string,
    name: string,
    options: DeleteOptions,
  ): Promise<DeleteOutcome> {
    const target: KubeRequestTarget = { cluster, verb: 'delete', resource: 'pods', namespace, name };
    checkNamespace(target, namespace);
    checkName(target, name);
    if (typeof options?.uid !== 'string' || options.uid === '') {
      throw new ClusterError('fatal', `${describeTarget(target)}: a uid precondition is required`);
    }
    if (!Number.isInteger(options.gracePeriodSeconds) || options.gracePeriodSeconds < 0) {
      throw new ClusterError(
        'fatal',
        `${describeTarget(target)}: gracePeriodSeconds must be a non-negative integer, got ${options.gracePeriodSeconds}`,
      );
    }
    const { resourceVersion } = options;
    if (resourceVersion !== undefined && (typeof resourceVersion !== 'string' || resourceVersion === '')) {
      throw new ClusterError(
        'fatal',
        `${describeTarget(target)}: resourceVersion must be a non-empty string when given, got ${JSON.stringify(resourceVersion)}`,
      );
    }
    const body = {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: options.gracePeriodSeconds,
      preconditions: { uid: options.uid, ...(resourceVersion ? { resourceVersion } : {}) },
    };
    const response = await this.#request(target, 'DELETE', podPath(namespace, name), undefined, body);
    if (response.status === 404) return 'not-found';
    if (response.status === 409) {
      // With the uid alone, a conflict means the name now belongs to another pod. With a
      // resourceVersion too, the pod as it is now tells which precondition failed (the API
      // server's message says it only in prose).
      if (!resourceVersion) return 'uid-mismatch';
      const now = await this.getPod(cluster, namespace, name);
      if (!now) return 'not-found';
      return now.metadata.uid === options.uid ? 'changed' : 'uid-mismatch';
    }
    this.#expectOk(target, response);
    return 'deleted';
  }

  async listPods(cluster: string, options: ListPodsOptions): Promise<Pod[]> {
    const { namespace, labelSelector, fieldSelector, onPage } = options ?? {};
    const target: KubeRequestTarget = { cluster, verb: 'list', resource: 'pods', namespace };
    if (namespace !== undefined) checkNamespace(target, namespace);
    // List items come without apiVersion and kind; add them so a listed pod looks like a read one.
    // managedFields (the server-side-apply bookkeeping, often a third of a pod) is dropped page by
    // page: nothing reads it, and a list of ten thousand pods would carry it all at once.
    return (await this.#list(
      target,
      namespace === undefined ? '/api/v1/pods' : podPath(namespace),
      { labelSelector, fieldSelector },
      (item) => {
        const { managedFields: _managedFields, ...metadata } = (item as Pod).metadata ?? {};
        return { apiVersion: 'v1', kind: 'Pod', ...(item as Pod), metadata };
      },
      onPage as ((items: unknown[]) => Promise<void>) | undefined,
    )) as Pod[];
  }

  async listEvents(cluster: string, namespace: string, fieldSelector: string): Promise<KubeEvent[]> {
    const target: KubeRequestTarget = { cluster, verb: 'list', resource: 'events', namespace };
    checkNamespace(target, namespace);
    const items = await this.#list(target, `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, {
      fieldSelector,
    });
    return items.map((item) => toKubeEvent(item as WireEvent, namespace));
  }

  async createEvent(cluster: string, event: StoryEvent, reporter: string): Promise<'created' | 'exists'> {
    const name = storyEventName(event);
    const target: KubeRequestTarget = {
      cluster,
      verb: 'create',
      resource: 'events',
      namespace: event.namespace,
      name,
    };
    checkNamespace(target, event.namespace);
    checkName(target, event.podName);
    const at = new Date(event.at).toISOString().replace(/\.\d{3}Z$/, 'Z');
    // The core/v1 form with first/last timestamps (not eventTime): `kubectl describe` and every
    // client-go reader show it, and it needs no series bookkeeping.
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: event.namespace, annotations: event.annotations },
      involvedObject: {
        kind: 'Pod',
        apiVersion: 'v1',
        namespace: event.namespace,
        name: event.podName,
        ...(event.podUid ? { uid: event.podUid } : {}),
      },
      reason: event.reason,
      message: event.message.slice(0, MAX_EVENT_MESSAGE),
      type: event.type,
      source: { component: STORY_SOURCE_COMPONENT },
      reportingComponent: STORY_REPORTING_COMPONENT,
      reportingInstance: reporter.slice(0, 128),
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    const path = `/api/v1/namespaces/${encodeURIComponent(event.namespace)}/events`;
    const response = await this.#request(target, 'POST', path, undefined, body);
    if (response.status === 409) return 'exists';
    this.#expectOk(target, response);
    return 'created';
  }

  async #list(
    target: KubeRequestTarget,
    path: string,
    selectors: { labelSelector?: string | undefined; fieldSelector?: string | undefined },
    eachItem: (item: unknown) => unknown = (item) => item,
    onPage?: (items: unknown[]) => Promise<void>,
  ): Promise<unknown[]> {
    const fetchPage = (continueToken: string | undefined) =>
      this.#request(target, 'GET', path, {
        ...selectors,
        limit: String(this.#pageSize),
        continue: continueToken,
      });
    for (let restarts = 0; ; restarts++) {
      const items: unknown[] = [];
      let continueToken: string | undefined;
      let expired = false;
      let next: Promise<RawResponse> | undefined;
      do {
        const response = await (next ?? fetchPage(continueToken));
        next = undefined;
        if (response.status === 410 && continueToken !== undefined && restarts < MAX_LIST_RESTARTS) {
          expired = true;
          break;
        }
        const page = this.#expectOk(target, response) as {
          items?: unknown[];
          metadata?: { continue?: string };
        };
        continueToken = page.metadata?.continue || undefined;
        const pageItems = (page.items ?? []).map(eachItem);
        if (!onPage) {
          for (const item of pageItems) items.push(item);
          continue;
        }
        // The next page is read while the caller works on this one.
        if (continueToken !== undefined) {
          next = fetchPage(continueToken);
          next.catch(() => {}); // awaited on the next turn; not an unhandled rejection meanwhile
        }
        await onPage(pageItems);
      } while (continueToken !== undefined);
      if (!expired) return items;
    }
  }

  /**
   * One request with retries. Answers that the callers interpret (404, 409, an expired list
   * continuation: 410) come back as responses; every other failure is thrown as a ClusterError.
   */
  async #request(
    target: KubeRequestTarget,
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    query?: Record<string, string | undefined>,
    body?: unknown,
  ): Promise<RawResponse> {
    const kc = await this.#kubeConfig(target);
    const server = kc.getCurrentCluster()?.server;
    if (!server)
      throw new ClusterError('fatal', `${describeTarget(target)}: the kubeconfig has no current cluster`);
    const url = new URL(server.replace(/\/+$/, '') + path);
    for (const [key, value] of Object.entries(query ?? {})) if (value) url.searchParams.set(key, value);

    return withRetries(
      this.#retry,
      async () => {
        const response = await this.#send(target, kc, method, url, body);
        const passThrough =
          response.status === 404 || response.status === 409 || (response.status === 410 && !!query);
        if (response.status >= 400 && !passThrough) {
          throw clusterErrorFromResponse(target, response);
        }
        return response;
      },
      (notice) => this.#onRetry?.({ ...notice, target }),
    );
  }

  async #send(
    target: KubeRequestTarget,
    kc: KubeConfig,
    method: 'GET' | 'POST' | 'DELETE',
    url: URL,
    body: unknown,
  ): Promise<RawResponse> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) headers['content-type'] = 'application/json';
    let dispatcher: Dispatcher;
    let ownDispatcher: boolean;
    try {
      ({ dispatcher, own: ownDispatcher } = await this.#authenticate(
        target.cluster,
        kc,
        url,
        method,
        headers,
      ));
    } catch (error) {
      throw new ClusterError(
        'fatal',
        `${describeTarget(target)}: could not obtain credentials: ${(error as Error)?.message ?? error}`,
      );
    }
    try {
      // undici's request() rather than fetch(): a pass makes thousands of calls, and fetch's
      // spec machinery (streams, Response objects) was a tenth of its CPU.
      const response = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        ...(payload !== undefined ? { body: payload } : {}),
        signal: AbortSignal.timeout(this.#requestTimeoutMs),
      });
      const text = await response.body.text();
      return { status: response.statusCode, headers: flatHeaders(response.headers), body: parseJson(text) };
    } catch (error) {
      throw clusterErrorFromThrown(target, error);
    } finally {
      // A dispatcher built for this request alone holds a kept-alive connection nothing will reuse:
      // closed now, not when its idle timeout comes (a CLI pass would hold one per request).
      if (ownDispatcher) void dispatcher.close().catch(() => {});
    }
  }

  /**
   * Puts the request's credentials into `headers` and returns the dispatcher to send it with.
   * Credentials are taken per request, so that rotating ones (exec plugins, EKS tokens, projected
   * tokens) stay fresh. The dispatcher holds the TLS material and the connection pool, which do not
   * rotate: client-node builds it once per cluster from the kubeconfig (CA, client certificate,
   * proxy), and every later request reuses it; building it again per request parsed the TLS key
   * and opened a new pool each time. Exec plugins may hand out client certificates, so for them
   * client-node builds it every time, as before.
   */
  async #authenticate(
    cluster: string,
    kc: KubeConfig,
    url: URL,
    method: 'GET' | 'POST' | 'DELETE',
    headers: Record<string, string>,
  ): Promise<{ dispatcher: Dispatcher; own: boolean }> {
    const exec = !!kc.getCurrentUser()?.exec;
    const pooled = this.#dispatchers.get(cluster);
    if (pooled && !exec) {
      const options: { headers?: Record<string, unknown>; auth?: string } = {};
      await kc.applyToHTTPSOptions(options);
      // As applySecurityAuthentication sets them: basic auth first, a token header over it.
      if (options.auth) headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
      for (const [name, value] of Object.entries(options.headers ?? {}))
        headers[name.toLowerCase()] = String(value);
      return { dispatcher: pooled, own: false };
    }
    const context = new RequestContext(url.toString(), method);
    await kc.applySecurityAuthentication(context);
    for (const [name, value] of Object.entries(context.getHeaders())) headers[name.toLowerCase()] = value;
    const fresh = context.getDispatcher();
    if (fresh && exec) return { dispatcher: fresh, own: true };
    const existing = this.#dispatchers.get(cluster);
    if (existing) {
      // Another request of the same cluster pooled one first.
      if (fresh) void fresh.close();
      return { dispatcher: existing, own: false };
    }
    // No TLS material in the kubeconfig (a public CA): a plain pool, as client-node's fetch would use.
    const dispatcher = fresh ?? new Agent({ connect: { keepAlive: true, keepAliveInitialDelay: 30_000 } });
    this.#dispatchers.set(cluster, dispatcher);
    return { dispatcher, own: false };
  }

  /** Closes pooled connections, so that a short-lived process can exit at once. */
  async close(): Promise<void> {
    const pools = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(pools.map((pool) => pool.close()));
  }

  #expectOk(target: KubeRequestTarget, response: RawResponse): unknown {
    if (response.status < 200 || response.status >= 300) throw clusterErrorFromResponse(target, response);
    if (response.body === null || typeof response.body !== 'object') {
      throw new ClusterError(
        'fatal',
        `${describeTarget(target)}: the API server answered without a JSON object`,
      );
    }
    return response.body;
  }

  #kubeConfig(target: KubeRequestTarget): Promise<KubeConfig> {
    const { cluster } = target;
    if (typeof cluster !== 'string' || cluster === '') {
      return Promise.reject(new ClusterError('fatal', `${describeTarget(target)}: no cluster name given`));
    }
    const source = this.#source;
    if (source instanceof Map && !source.has(cluster)) {
      const known = [...source.keys()].join(', ');
      return Promise.reject(new ClusterError('fatal', `unknown cluster "${cluster}" (configured: ${known})`));
    }
    let config = this.#configs.get(cluster);
    if (!config) {
      const load =
        source instanceof Map ? kubeConfigFor(source.get(cluster)!, this.#connectionDeps) : source(cluster);
      config = load.catch((error: unknown) => {
        this.#configs.delete(cluster); // a later call may succeed (e.g. a file that appears)
        throw error instanceof ClusterError
          ? error
          : new ClusterError(
              'fatal',
              `cluster "${cluster}": cannot set up the connection: ${(error as Error)?.message}`,
            );
      });
      this.#configs.set(cluster, config);
    }
    return config;
  }
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

function flatHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  return flat;
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function statusReason(body: unknown): string | undefined {
  return body !== null && typeof body === 'object' ? (body as { reason?: string }).reason : undefined;
}

function podPath(namespace: string, name?: string): string {
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

function checkNamespace(target: KubeRequestTarget, namespace: string): void {
  if (typeof namespace !== 'string' || !DNS_LABEL.test(namespace)) {
    throw new ClusterError(
      'fatal',
      `${describeTarget(target)}: namespace ${JSON.stringify(namespace)} is not a valid namespace name`,
    );
  }
}

function checkName(target: KubeRequestTarget, name: string): void {
  if (typeof name !== 'string' || !DNS_SUBDOMAIN.test(name)) {
    throw new ClusterError(
      'fatal',
      `${describeTarget(target)}: ${JSON.stringify(name)} is not a valid pod name`,
    );
  }
}

/** `source.component` of every Event Podwarden writes; the Airflow package selects on it. */
export const STORY_SOURCE_COMPONENT = 'podwarden';
export const STORY_REPORTING_COMPONENT = 'podwarden.io/podwarden';
// The API server refuses longer event messages (1 KiB in events.k8s.io; keep the same bound here).
const MAX_EVENT_MESSAGE = 1024;

/** `<pod>.pw-<16 hex of the story key>`: deterministic, so a repeated write answers 409. */
export function storyEventName(event: StoryEvent): string {
  const digest = createHash('sha256').update(event.key).digest('hex').slice(0, 16);
  return `${event.podName.slice(0, 253 - 20)}.pw-${digest}`;
}

interface WireEvent {
  metadata?: { name?: string; namespace?: string; uid?: string };
  reason?: string;
  message?: string;
  type?: string;
  involvedObject?: { kind?: string; name?: string; namespace?: string; uid?: string };
  count?: number;
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  eventTime?: string | null;
}

function toKubeEvent(item: WireEvent, namespace: string): KubeEvent {
  const involved = item.involvedObject ?? {};
  const event: KubeEvent = {
    namespace: item.metadata?.namespace ?? namespace,
    name: item.metadata?.name ?? '',
    reason: item.reason ?? '',
    message: item.message ?? '',
    involvedObject: {
      ...(involved.kind ? { kind: involved.kind } : {}),
      ...(involved.name ? { name: involved.name } : {}),
      ...(involved.namespace ? { namespace: involved.namespace } : {}),
      ...(involved.uid ? { uid: involved.uid } : {}),
    },
  };
  if (item.metadata?.uid) event.uid = item.metadata.uid;
  if (item.type) event.type = item.type;
  if (typeof item.count === 'number') event.count = item.count;
  // Events written through events.k8s.io/v1 (the scheduler's) carry eventTime and null timestamps.
  if (item.firstTimestamp) event.firstTimestamp = item.firstTimestamp;
  if (item.lastTimestamp) event.lastTimestamp = item.lastTimestamp;
  if (item.eventTime) event.eventTime = item.eventTime;
  return event;
}
