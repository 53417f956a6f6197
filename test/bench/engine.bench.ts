/** Decisions per second of the engine, on the observations a busy cluster sends most. */
import { decide, decideAll, startTask } from '../../lib/core/engine.ts';
import { makePolicy } from '../../lib/core/policy.ts';
import type { TaskRecord } from '../../lib/core/task.ts';
import { kpoPod, preemptedCondition, running, T0, waiting } from '../support/pod-builder.ts';
import { formatOps, measureOpsPerSecond } from './measure.ts';
import type { Report } from './run.ts';

const policy = makePolicy();

export default async function engineBench(report: Report): Promise<void> {
  const runningPod = kpoPod({ main: running() });
  const task = decide(
    startTask(runningPod, 'airflow-kpo', 'prod', T0) as TaskRecord,
    { type: 'pod-seen', pod: runningPod },
    T0,
    policy,
  ).task;

  report(
    'decide: pod-seen of a running pod (steady state)',
    formatOps(
      await measureOpsPerSecond(() => decide(task, { type: 'pod-seen', pod: runningPod }, T0 + 1000, policy)),
    ),
  );

  const pulling = kpoPod({
    phase: 'Pending',
    main: waiting('ErrImagePull', 'toomanyrequests: You have reached your pull rate limit'),
  });
  report(
    'decide: pod-seen with a transient pull error',
    formatOps(
      await measureOpsPerSecond(() => decide(task, { type: 'pod-seen', pod: pulling }, T0 + 1000, policy)),
    ),
  );

  const victim = kpoPod({ main: running(), conditions: [preemptedCondition()], deleting: true });
  report(
    'decideAll: preemption to re-create (seen, gone, timer)',
    formatOps(
      await measureOpsPerSecond(() =>
        decideAll(
          task,
          [
            { type: 'pod-seen', pod: victim },
            { type: 'pod-gone', podName: 'load-abc123' },
            { type: 'timer-fired' },
          ],
          T0 + 60_000,
          policy,
        ),
      ),
    ),
  );
}
