/**
 * A fixed piece of single-threaded work, timed in a fresh process: the scale bench runs it before
 * and after its passes, so that figures from different runs and days can be told apart by the
 * machine's speed (on a shared machine it drifts by a quarter from hour to hour) rather than by the
 * code. The work is the kind a pass does most: parse and re-serialise JSON pods, hash for request
 * signing. It prints `REFERENCE <json>` with the best of three rounds.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';

function podList(count: number): string {
  const items = Array.from({ length: count }, (_, n) => ({
    metadata: {
      name: `t${n}-try1`,
      namespace: 'scale',
      uid: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
      resourceVersion: String(100_000 + n),
      labels: { dag_id: 'scale', task_id: `t${n}`, try_number: '1', kubernetes_pod_operator: 'True' },
    },
    spec: { containers: [{ name: 'base', image: 'busybox:1.36', args: ['sleep', '3600'] }], nodeName: 'n0' },
    status: {
      phase: 'Running',
      containerStatuses: [
        {
          name: 'base',
          ready: true,
          restartCount: 0,
          state: { running: { startedAt: '2026-12-01T00:00:00Z' } },
        },
      ],
    },
  }));
  return JSON.stringify({ kind: 'PodList', items });
}

function round(text: string): void {
  for (let pass = 0; pass < 10; pass++) {
    const list = JSON.parse(text) as { items: Array<{ metadata: { name: string } }> };
    const hash = createHash('sha256');
    for (const item of list.items) hash.update(JSON.stringify(item));
    hash.digest('hex');
  }
}

const text = podList(5_000);
round(text); // warm-up: compiled code, not the compiler, is what is compared
let best = { wallMs: Number.POSITIVE_INFINITY, cpuMs: Number.POSITIVE_INFINITY };
for (let attempt = 0; attempt < 3; attempt++) {
  const cpu = process.cpuUsage();
  const started = performance.now();
  round(text);
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  if (wallMs < best.wallMs) best = { wallMs, cpuMs: (used.user + used.system) / 1000 };
}
console.log(`REFERENCE ${JSON.stringify(best)}`);
