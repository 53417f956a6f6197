import { InterruptibleSleep } from './interruptible-sleep.ts';
import { type KubeApi, KubeApiError } from './kube.ts';
import type { Logger } from './logger.ts';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** Lease times are MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LeaderElectorOptions {
  api: KubeApi;
  namespace: string;
  name: string;
  identity: string;
  /** How long others wait, after they last saw the lease change, before taking it over. */
  leaseDurationMs: number;
  /** The leader gives up if it could not renew for this long (must be shorter than the lease). */
  renewDeadlineMs: number;
  /** Pause between attempts to acquire, and between renewals. */
  retryPeriodMs: number;
  log: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  now?: () => number;
}

export function validateLeaseTiming(timing: {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}): string[] {
  const problems: string[] = [];
  if (timing.leaseDurationMs < 1000) problems.push('the lease duration must be at least 1 s');
  if (timing.renewDeadlineMs >= timing.leaseDurationMs)
    problems.push('the renew deadline must be shorter than the lease duration');
  if (timing.retryPeriodMs <= 0 || timing.retryPeriodMs >= timing.renewDeadlineMs) {
    problems.push('the retry period must be positive and shorter than the renew deadline');
  }
  return problems;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, the protocol client-go's leaderelection speaks:
 * every write is conditional on the resourceVersion read, so two candidates can never both succeed;
 * a holder's lease is considered expired only when this replica has seen it unchanged for the whole
 * lease duration (by its own clock, so clock skew between nodes does not matter).
 */
export class LeaderElector {
  readonly #options: LeaderElectorOptions;
  readonly #now: () => number;
  readonly #log: Logger;
  #leader = false;
  #stopped = true;
  #loop: Promise<void> | undefined;
  readonly #sleep = new InterruptibleSleep();
  #observed: { key: string; at: number } | undefined;
  #lastRenewAt = 0;

  constructor(options: LeaderElectorOptions) {
    const problems = validateLeaseTiming(options);
    if (problems.length > 0) throw new Error(`leader election: ${problems.join('; ')}`);
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#log = options.log.createChild({
      persistentKeys: {
        lease: `${options.namespace}/${options.name}`,
        identity: options.identity,
      },
    });
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#loop = this.#run();
  }

  /** Stops campaigning; with `release`, a leader hands the lease back so a standby takes over at once. */
  async stop(options: { release: boolean }): Promise<void> {
    this.#stopped = true;
    this.#sleep.interrupt();
    await this.#loop;
    if (this.#leader) {
      if (options.release) await this.#release();
      this.#setLeader(false);
    }
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (this.#leader) await this.#pause(this.#options.retryPeriodMs);
      if (this.#stopped) break;
      const outcome = await this.#tryAcquireOrRenew();
      if (this.#stopped) break;
      const now = this.#now();
      if (outcome === 'held') {
        this.#lastRenewAt = now;
        if (!this.#leader) {
          this.#log.info('became leader');
          this.#setLeader(true);
        }
      } else if (this.#leader && outcome === 'taken') {
        // Someone else holds a valid lease: forwarding on, even briefly, would make two leaders.
        this.#log.warn('the lease is held by another replica; stepping down');
        this.#setLeader(false);
      } else if (this.#leader && now - this.#lastRenewAt > this.#options.renewDeadlineMs) {
        this.#log.warn('could not renew the lease in time; stepping down', {
          sinceLastRenewMs: now - this.#lastRenewAt,
        });
        this.#setLeader(false);
      }
      if (!this.#leader) await this.#pause(this.#options.retryPeriodMs * (1 + Math.random() * 0.2));
    }
  }

  #setLeader(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    try {
      if (leader) this.#options.onStartedLeading();
      else this.#options.onStoppedLeading();
    } catch (error) {
      this.#log.error('leadership callback failed', { error });
    }
  }

  async #pause(ms: number): Promise<void> {
    if (!this.#stopped) await this.#sleep.sleep(ms);
  }

  #path(withName: boolean): string {
    const { namespace, name } = this.#options;
    const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
    return withName ? `${base}/${encodeURIComponent(name)}` : base;
  }

  /**
   * `held`: this replica holds the lease after the call; `taken`: another replica holds a valid lease;
   * `failed`: the call failed or lost a write race (try again later).
   */
  async #tryAcquireOrRenew(): Promise<'held' | 'taken' | 'failed'> {
    const { api, identity, namespace, name } = this.#options;
    const leaseSeconds = Math.ceil(this.#options.leaseDurationMs / 1000);
    const now = this.#now();
    try {
      let lease: Lease;
      try {
        lease = (await api.request('GET', this.#path(true))) as Lease;
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 404)) throw error;
        const created: Lease = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: leaseSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        };
        await api.request('POST', this.#path(false), { body: created });
        return 'held';
      }
      const spec = lease.spec ?? {};
      const key = JSON.stringify([
        spec.holderIdentity,
        spec.renewTime,
        spec.acquireTime,
        lease.metadata.resourceVersion,
      ]);
      if (this.#observed?.key !== key) this.#observed = { key, at: now };
      const holder = spec.holderIdentity ?? '';
      const heldByOther = holder !== '' && holder !== identity;
      const durationMs = (spec.leaseDurationSeconds ?? leaseSeconds) * 1000;
      if (heldByOther && this.#observed.at + durationMs > now) return 'taken';
      const ours = holder === identity;
      const updated: Lease = {
        ...lease,
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: leaseSeconds,
          acquireTime: ours && spec.acquireTime ? spec.acquireTime : microTime(now),
          renewTime: microTime(now),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
        },
      };
      await api.request('PUT', this.#path(true), { body: updated });
      if (heldByOther) this.#log.info('took over an expired lease', { previousHolder: holder });
      return 'held';
    } catch (error) {
      if (error instanceof KubeApiError && (error.status === 409 || error.status === 404)) return 'failed';
      this.#log.warn('lease request failed', { error });
      return 'failed';
    }
  }

  async #release(): Promise<void> {
    try {
      const lease = (await this.#options.api.request('GET', this.#path(true))) as Lease;
      if (lease.spec?.holderIdentity !== this.#options.identity) return;
      const now = this.#now();
      const released: Lease = {
        ...lease,
        spec: {
          leaseDurationSeconds: 1,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: lease.spec?.leaseTransitions ?? 0,
        },
      };
      await this.#options.api.request('PUT', this.#path(true), { body: released });
      this.#log.info('released the lease');
    } catch (error) {
      this.#log.warn('could not release the lease; a standby takes over when it expires', { error });
    }
  }
}
