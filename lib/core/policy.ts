/** Cluster-wide knobs of the decision engine and the reaper. Every duration is in milliseconds. */
export interface Policy {
  /** Re-creates allowed per try after disruptions (separate from the orchestrator's retries). */
  recreateBudget: number;
  /** Back-off before re-create n is base * 2^(n-1): 2 s, 4 s, 8 s by default. */
  recreateBackoffBaseMs: number;
  /** How long a vanished pod without disruption evidence waits for a late `Preempted` event. */
  goneGraceMs: number;
  /** Image-pull re-checks: 10 s, 20 s, 40 s ... capped (the kubelet's own back-off cap). */
  pullRecheckBaseMs: number;
  pullRecheckCapMs: number;
  /** Default deadline from the first transient pull error; annotation `podwarden.io/pull-deadline`. */
  pullDeadlineMs: number;
  /** A pod still not started after this long (for reasons other than image pulls) fails the task. */
  startupDeadlineMs: number;
  /** Main container terminated but pod not terminal for this long: sidecar zombie. */
  sidecarGraceMs: number;
  /** Pods of a finished task still present after this long are reaped. */
  finishedGraceMs: number;
  /** Every unfinished task is re-read at least this often, even when no event arrives (lost events). */
  resyncMs: number;
  /** The reaper never touches pods younger than this. */
  reaperMinAgeMs: number;
  /**
   * A reaper pass deletes at most this percentage of the managed pods it listed (or the deployment's
   * `reaperMaxDeletes`, if larger): a large cleanup takes a few passes, a wrong rule cannot empty a cluster.
   */
  reaperMaxDeletesPercent: number;
  /** How long a finished task's record is kept before DynamoDB's TTL removes it. */
  retentionMs: number;
}

export const DEFAULT_POLICY: Readonly<Policy> = Object.freeze({
  recreateBudget: 3,
  recreateBackoffBaseMs: 2_000,
  goneGraceMs: 60_000,
  pullRecheckBaseMs: 10_000,
  pullRecheckCapMs: 300_000,
  pullDeadlineMs: 600_000,
  startupDeadlineMs: 3_600_000,
  sidecarGraceMs: 300_000,
  finishedGraceMs: 600_000,
  resyncMs: 600_000,
  reaperMinAgeMs: 120_000,
  reaperMaxDeletesPercent: 10,
  retentionMs: 7 * 24 * 3_600_000,
});

export class PolicyError extends Error {
  override name = 'PolicyError';
}

/** Merges overrides into the defaults and rejects values that would make the engine misbehave. */
export function makePolicy(overrides: Partial<Policy> = {}): Policy {
  const policy: Policy = { ...DEFAULT_POLICY, ...overrides };
  for (const [name, value] of Object.entries(policy)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || !Number.isInteger(value)) {
      throw new PolicyError(`policy.${name} must be a non-negative whole number, got ${String(value)}`);
    }
  }
  if (policy.recreateBackoffBaseMs === 0) throw new PolicyError('policy.recreateBackoffBaseMs must be > 0');
  if (policy.resyncMs === 0) throw new PolicyError('policy.resyncMs must be > 0');
  if (policy.reaperMaxDeletesPercent > 100)
    throw new PolicyError('policy.reaperMaxDeletesPercent must be from 0 to 100');
  if (policy.pullRecheckBaseMs === 0) throw new PolicyError('policy.pullRecheckBaseMs must be > 0');
  if (policy.pullRecheckCapMs < policy.pullRecheckBaseMs) {
    throw new PolicyError('policy.pullRecheckCapMs must be >= policy.pullRecheckBaseMs');
  }
  return policy;
}

const DURATION = /^(\d+)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Parses `90`, `90s`, `15m`, `2h`, `500ms` (a bare number is seconds, as in Kubernetes). */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 1_000);
}
