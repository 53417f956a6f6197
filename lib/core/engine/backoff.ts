/** The two back-off curves of the engine: re-creates after a disruption, and image-pull re-checks. */
import type { Policy } from '../policy.ts';

/** Back-off before re-create number `n` (1-based): base, 2*base, 4*base, ... */
export function recreateBackoffMs(n: number, policy: Policy): number {
  return policy.recreateBackoffBaseMs * 2 ** Math.max(0, n - 1);
}

/** Delay before image-pull re-check number `n` (1-based): base, 2*base, ... capped. */
export function pullRecheckMs(n: number, policy: Policy): number {
  return Math.min(policy.pullRecheckCapMs, policy.pullRecheckBaseMs * 2 ** Math.max(0, n - 1));
}
