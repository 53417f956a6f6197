/**
 * What the DynamoDB store spends per record besides the network: encoding and decoding items, and
 * compressing large captured specs; plus item sizes, which decide write units (1 per KB).
 */
import { itemSizeBytes } from '../../lib/store/attribute-codec.ts';
import { fromTaskItem, toTaskItem } from '../../lib/store/task-item.ts';
import { FIXTURE_NOW, makeCapturedPod, makeTaskRecord } from '../support/task-fixtures.ts';
import { formatOps, measureOpsPerSecond } from './measure.ts';
import type { Report } from './run.ts';

const OPTIONS = { shards: 8, retentionMs: 7 * 24 * 3_600_000, now: FIXTURE_NOW };

export default async function storeBench(report: Report): Promise<void> {
  const typical = makeTaskRecord({ dueAt: FIXTURE_NOW + 10_000 });
  const typicalItem = toTaskItem(typical, OPTIONS).item;
  report('task item size, typical KPO record', `${itemSizeBytes(typicalItem)} bytes`);
  report(
    'toTaskItem, typical record',
    formatOps(await measureOpsPerSecond(() => toTaskItem(typical, OPTIONS))),
  );
  report(
    'fromTaskItem, typical record',
    formatOps(await measureOpsPerSecond(() => fromTaskItem(typicalItem))),
  );

  // A pod with many settings in its environment, as generated DAGs produce.
  const captured = makeCapturedPod();
  const env = (captured.spec.containers as Array<{ env: unknown[] }>)[0]!.env;
  for (let index = 0; index < 1_500; index++)
    env.push({ name: `SETTING_${index}`, value: `value-${index}-abcdef` });
  const large = makeTaskRecord({ captured });
  const largeItem = toTaskItem(large, OPTIONS).item;
  report(
    'task item size, 1,500 env vars (gzip-compressed spec)',
    `${itemSizeBytes(largeItem)} bytes from ${Buffer.byteLength(JSON.stringify(captured))} bytes of spec`,
  );
  report(
    'toTaskItem, large spec (gzip)',
    formatOps(await measureOpsPerSecond(() => toTaskItem(large, OPTIONS))),
  );
  report(
    'fromTaskItem, large spec (gunzip)',
    formatOps(await measureOpsPerSecond(() => fromTaskItem(largeItem))),
  );
}
