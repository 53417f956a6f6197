import { type BackoffPolicy, retryDelayMs } from './batching.ts';
import { InterruptibleSleep } from './interruptible-sleep.ts';
import { type KubeApi, KubeApiError, type Query, type WatchStream } from './kube.ts';
import type { Logger } from './logger.ts';
import type { BridgeMetrics } from './metrics.ts';
import { type ChangeKind, diffRelist, type KnownObject, type ObjectMeta } from './relist.ts';

export interface WatchTarget {
  resource: 'pods' | 'events';
  /** Undefined: all namespaces. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export function targetPath(target: WatchTarget): string {
  const scope = target.namespace ? `/namespaces/${encodeURIComponent(target.namespace)}` : '';
  return `/api/v1${scope}/${target.resource}`;
}

export function describeTarget(target: WatchTarget): string {
  return [
    target.resource,
    `namespace=${target.namespace ?? '*'}`,
    ...(target.labelSelector ? [`labels=${target.labelSelector}`] : []),
    ...(target.fieldSelector ? [`fields=${target.fieldSelector}`] : []),
  ].join(' ');
}

/** How a change reached the watcher: the first list, the watch stream, or a re-list after losing its place. */
export type Via = 'initial' | 'watch' | 'relist';

/** Where a watcher stands: resume a stopped watcher from it, or inspect it. */
export interface WatcherCheckpoint<T> {
  resourceVersion: string | undefined;
  known: Map<string, KnownObject<T>>;
}

export interface WatcherOptions<T> {
  api: KubeApi;
  target: WatchTarget;
  log: Logger;
  metrics: BridgeMetrics;
  onChange: (change: ChangeKind, object: T, via: Via) => void;
  /** Keep each object's last state, to report deletions a re-list finds (pods); else only versions. */
  keepObjects: boolean;
  /** What to keep of an object (e.g. without managedFields); the whole object by default. */
  retain?: (object: T) => T;
  checkpoint?: WatcherCheckpoint<T>;
  pageSize?: number;
  /**
   * Server-side length of one watch request. The server ends it with a bookmark, and the watch resumes
   * from there; it stays below client-node's 30 s inactivity timeout so a quiet watch is not cut off.
   */
  watchTimeoutSeconds?: number;
  backoff?: BackoffPolicy;
  random?: () => number;
}

type StreamOutcome =
  | { kind: 'closed'; receivedAny: boolean }
  | { kind: 'gone' }
  | { kind: 'error'; error: unknown };

/**
 * List, then watch from the list's resourceVersion with bookmarks; resume from the last version seen
 * after a closed or failed stream (with back-off), and re-list on 410 Gone, reporting what changed
 * while it was away. Each object is reported in the order the API server gave its versions.
 */
export class ResourceWatcher<T extends ObjectMeta> {
  readonly target: WatchTarget;
  readonly #options: WatcherOptions<T>;
  readonly #log: Logger;
  #resourceVersion: string | undefined;
  #known: Map<string, KnownObject<T>>;
  #listedOnce: boolean;
  #stopped = true;
  #loop: Promise<void> | undefined;
  #stream: WatchStream | undefined;
  readonly #sleep = new InterruptibleSleep();
  #synced = false;
  #streamOpened: (() => void) | undefined;
  #syncWaiters: Array<() => void> = [];

  constructor(options: WatcherOptions<T>) {
    this.#options = options;
    this.target = options.target;
    this.#log = options.log.createChild({ persistentKeys: { watch: describeTarget(options.target) } });
    this.#resourceVersion = options.checkpoint?.resourceVersion;
    this.#known = new Map(options.checkpoint?.known ?? []);
    this.#listedOnce = options.checkpoint !== undefined;
  }

  /** True once the watcher has listed (or resumed its watch) and is following changes. */
  get synced(): boolean {
    return this.#synced;
  }

  /** A watch stream is open right now (false while listing or backing off before a reconnect). */
  get connected(): boolean {
    return this.#stream !== undefined;
  }

  get resourceVersion(): string | undefined {
    return this.#resourceVersion;
  }

  checkpoint(): WatcherCheckpoint<T> {
    return { resourceVersion: this.#resourceVersion, known: new Map(this.#known) };
  }

  /** Starts following; resolves once synced (or when stopped before that). */
  async start(): Promise<void> {
    if (!this.#stopped) return this.#waitSynced();
    this.#stopped = false;
    this.#loop = this.#run();
    return this.#waitSynced();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stream?.abort();
    this.#sleep.interrupt();
    await this.#loop;
    this.#synced = false;
    this.#releaseSyncWaiters();
  }

  /** Cuts the current stream as a network failure would; the watcher resumes from its last version. */
  interrupt(): void {
    this.#stream?.abort();
    this.#stream = undefined;
  }

  #waitSynced(): Promise<void> {
    if (this.#synced || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  #markSynced(): void {
    if (this.#synced) return;
    this.#synced = true;
    this.#releaseSyncWaiters();
  }

  #releaseSyncWaiters(): void {
    for (const resolve of this.#syncWaiters.splice(0)) resolve();
  }

  async #run(): Promise<void> {
    const resource = this.target.resource;
    let failures = 0;
    // A stream the server accepted ends a run of failures: the next failure backs off from the start.
    this.#streamOpened = () => {
      failures = 0;
    };
    while (!this.#stopped) {
      try {
        if (this.#resourceVersion === undefined) await this.#list();
        if (this.#stopped) break;
        const outcome = await this.#watchOnce();
        if (this.#stopped) break;
        if (outcome.kind === 'gone') {
          this.#options.metrics.watchRestarts.inc({ resource, reason: 'gone' });
          this.#log.warn('watch resourceVersion expired (410 Gone); re-listing', {
            resourceVersion: this.#resourceVersion,
          });
          this.#resourceVersion = undefined;
          failures = 0;
          continue;
        }
        if (outcome.kind === 'error') throw outcome.error;
        this.#options.metrics.watchRestarts.inc({ resource, reason: 'closed' });
        if (outcome.receivedAny) {
          failures = 0;
          continue;
        }
        // A stream that closes without a word, again and again, must not become a busy loop.
        failures += 1;
        await this.#pause(retryDelayMs(failures, this.#backoff(), this.#options.random));
      } catch (error) {
        if (this.#stopped) break;
        failures += 1;
        this.#options.metrics.watchRestarts.inc({ resource, reason: 'error' });
        if (error instanceof KubeApiError && error.status === 410) this.#resourceVersion = undefined;
        const delayMs = retryDelayMs(failures, this.#backoff(), this.#options.random);
        this.#log.warn('watch failed; reconnecting', {
          error,
          failures,
          delayMs,
          resourceVersion: this.#resourceVersion,
        });
        await this.#pause(delayMs);
      }
    }
  }

  #backoff(): BackoffPolicy {
    return this.#options.backoff ?? { baseMs: 500, maxMs: 30_000 };
  }

  async #pause(ms: number): Promise<void> {
    if (!this.#stopped) await this.#sleep.sleep(ms);
  }

  async #list(): Promise<void> {
    const { api, target } = this.#options;
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = (await api.request('GET', targetPath(target), {
        query: {
          labelSelector: target.labelSelector,
          fieldSelector: target.fieldSelector,
          limit: this.#options.pageSize ?? 500,
          continue: continueToken,
        },
      })) as { items?: T[]; metadata?: { resourceVersion?: string; continue?: string } };
      items.push(...(page.items ?? []));
      continueToken = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    } while (continueToken && !this.#stopped);
    if (this.#stopped) return;
    const via: Via = this.#listedOnce ? 'relist' : 'initial';
    this.#options.metrics.relists.inc({ resource: target.resource, via });
    const { changes, next } = diffRelist(this.#known, items);
    for (const known of next.values()) {
      if (!this.#options.keepObjects) delete known.object;
      else if (known.object && this.#options.retain) known.object = this.#options.retain(known.object);
    }
    this.#known = next;
    this.#resourceVersion = resourceVersion;
    this.#listedOnce = true;
    this.#log.info('listed', { via, items: items.length, changes: changes.length, resourceVersion });
    for (const { change, object } of changes) this.#emit(change, object, via);
    this.#markSynced();
  }

  #watchOnce(): Promise<StreamOutcome> {
    const { api, target } = this.#options;
    const query: Query = {
      allowWatchBookmarks: true,
      resourceVersion: this.#resourceVersion,
      labelSelector: target.labelSelector,
      fieldSelector: target.fieldSelector,
      timeoutSeconds: this.#options.watchTimeoutSeconds ?? 25,
    };
    return new Promise<StreamOutcome>((resolve) => {
      let settled = false;
      let receivedAny = false;
      let stream: WatchStream | undefined;
      const finish = (outcome: StreamOutcome) => {
        if (settled) return;
        settled = true;
        stream?.abort();
        this.#stream = undefined;
        resolve(outcome);
      };
      const onEvent = (type: string, object: unknown) => {
        if (settled) return;
        receivedAny = true;
        if (type === 'ERROR') {
          const status = (object ?? {}) as { code?: number; message?: string; reason?: string };
          if (status.code === 410) finish({ kind: 'gone' });
          else {
            const code = status.code ?? 0;
            finish({
              kind: 'error',
              error: new KubeApiError(code, `watch error ${code}: ${status.message ?? ''}`, status.reason),
            });
          }
          return;
        }
        const resourceVersion = (object as ObjectMeta | undefined)?.metadata?.resourceVersion;
        if (type === 'BOOKMARK') {
          if (resourceVersion) this.#resourceVersion = resourceVersion;
          return;
        }
        if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
        this.#apply(type, object as T);
      };
      const onDone = (error: unknown) => {
        if (!error) finish({ kind: 'closed', receivedAny });
        else if ((error as { statusCode?: number }).statusCode === 410) finish({ kind: 'gone' });
        else finish({ kind: 'error', error });
      };
      api.watch(targetPath(target), query, onEvent, onDone).then(
        (opened) => {
          stream = opened;
          if (settled || this.#stopped) {
            opened.abort();
            return;
          }
          this.#stream = opened;
          this.#streamOpened?.();
          this.#markSynced();
        },
        (error: unknown) => finish({ kind: 'error', error }),
      );
    });
  }

  #apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): void {
    const uid = object.metadata?.uid;
    const resourceVersion = object.metadata?.resourceVersion;
    if (resourceVersion) this.#resourceVersion = resourceVersion;
    if (!uid) return;
    if (type === 'DELETED') {
      this.#known.delete(uid);
      this.#emit('deleted', object, 'watch');
      return;
    }
    this.#known.set(uid, {
      resourceVersion: resourceVersion ?? '',
      ...(this.#options.keepObjects
        ? { object: this.#options.retain ? this.#options.retain(object) : object }
        : {}),
    });
    this.#emit(type === 'ADDED' ? 'added' : 'modified', object, 'watch');
  }

  #emit(change: ChangeKind, object: T, via: Via): void {
    try {
      this.#options.onChange(change, object, via);
    } catch (error) {
      this.#log.error('handling a change failed', { error, change, name: object.metadata?.name });
    }
  }
}
