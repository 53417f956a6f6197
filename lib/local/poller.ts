/**
 * A polling transport for the local runtime (`podwarden demo`, the end-to-end tests): instead of a
 * bridge forwarding watch events to EventBridge, it lists what the bridge would have forwarded and
 * hands each item to the very same reconcile loop the Lambda functions use. Only the transport
 * differs; every decision is the shared library's.
 */
import { PROFILES } from '../core/identity.ts';
import { eventHint } from '../core/kube-event.ts';
import type { ProfileName } from '../core/task.ts';
import { runReaperPass, runTimerPass } from '../reconciler/passes.ts';
import { type ReconcilerDeps, reconcile } from '../reconciler/reconcile.ts';

export interface PollerOptions {
  cluster: string;
  namespace: string;
  profile: ProfileName;
  /** Deletes per reaper pass. */
  maxDeletes: number;
}

export interface PollSummary {
  pods: number;
  events: number;
  timers: number;
  reaped: number;
}

/**
 * Lists what the bridge would forward and reconciles each item. It remembers the pods of the last
 * list, so a pod that vanished between two polls is reconciled like the bridge's DELETED change.
 */
export class Poller {
  readonly #deps: ReconcilerDeps;
  readonly #options: PollerOptions;
  #known = new Set<string>();

  constructor(deps: ReconcilerDeps, options: PollerOptions) {
    this.#deps = deps;
    this.#options = options;
  }

  async poll(reaper = false): Promise<PollSummary> {
    const deps = this.#deps;
    const { cluster, namespace, profile } = this.#options;
    const pods = await deps.cluster.listPods(cluster, {
      namespace,
      labelSelector: PROFILES[profile].labelSelector,
    });
    const names = new Set(pods.flatMap((pod) => (pod.metadata.name ? [pod.metadata.name] : [])));
    for (const podName of [...names, ...[...this.#known].filter((name) => !names.has(name))]) {
      await reconcile(deps, { cluster, namespace, profile, podName }, []);
    }
    this.#known = names;
    let events = 0;
    for (const event of await deps.cluster.listEvents(cluster, namespace, 'involvedObject.kind=Pod')) {
      const hint = eventHint(event, deps.clock());
      const podName = event.involvedObject.name;
      if (!hint || !podName) continue;
      // An event is delivered once per (uid, count), as the bridge's de-duplication would.
      if (
        !(await deps.store.markSeen(
          `${event.uid ?? event.name}#${event.count ?? 1}`,
          deps.clock(),
          3_600_000,
        ))
      )
        continue;
      await reconcile(deps, { cluster, namespace, profile, podName }, [hint]);
      events++;
    }
    const timers = await runTimerPass(deps);
    const reaped = reaper
      ? (
          await runReaperPass(deps, {
            cluster,
            profiles: [profile],
            namespaces: [namespace],
            maxDeletes: this.#options.maxDeletes,
          })
        ).deleted
      : 0;
    return { pods: pods.length, events, timers: timers.reconciled, reaped };
  }
}
