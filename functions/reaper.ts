/** The reaper pass (every 5 minutes): zombie pods of every configured cluster, by the reaper rules. */
import { type ReaperPassResult, runReaperPass } from '../lib/reconciler/passes.ts';
import { REAPER_PASS } from '../lib/routes.ts';
import { type ContainerDeps, containerDeps, reconcilerDeps } from './shared/deps.ts';
import { scheduleIntake } from './shared/intake.ts';
import { METRIC } from './shared/metric-names.ts';
import { count, instrument, logger, type Rejected, rejectMalformed } from './shared/observability.ts';
import { keeper } from './shared/run.ts';

export type ReaperOutcome =
  | Rejected
  | { outcome: 'reaper-pass'; dryRun: boolean; clusters: Record<string, ReaperPassResult> };

export async function handleReaper(event: unknown, deps: ContainerDeps): Promise<ReaperOutcome> {
  const intake = scheduleIntake(event, REAPER_PASS);
  if (!intake.ok) return rejectMalformed(intake.problem, event, keeper('reaper', deps));
  const { config } = deps;
  const clusters: Record<string, ReaperPassResult> = {};
  const failures: Array<{ cluster: string; error: unknown }> = [];
  // One cluster's outage must not keep the others' zombies alive: each cluster is a pass of its own.
  for (const cluster of config.clusters.keys()) {
    const { reconciler } = reconcilerDeps(deps, 'reaper');
    try {
      const result = await runReaperPass(reconciler, {
        cluster,
        profiles: config.profiles,
        namespaces: config.allowedNamespaces,
        maxDeletes: config.reaper.maxDeletes,
      });
      clusters[cluster] = result;
      const failed = result.failed + result.resyncFailed;
      if (failed > 0) count(METRIC.reconcileErrors, failed);
      logger.info('reaper pass', { cluster, dryRun: config.reaper.dryRun, ...result });
    } catch (error) {
      failures.push({ cluster, error });
      count(METRIC.reconcileErrors);
      logger.error('reaper pass failed', { cluster, error: error as Error });
    }
  }
  if (failures.length > 0) {
    throw new AggregateError(
      failures.map((failure) => failure.error),
      `reaper pass failed for cluster ${failures.map((failure) => failure.cluster).join(', ')}; the invocation will be retried`,
    );
  }
  return { outcome: 'reaper-pass', dryRun: config.reaper.dryRun, clusters };
}

export const handler = instrument('reaper', (event) => handleReaper(event, containerDeps()));
