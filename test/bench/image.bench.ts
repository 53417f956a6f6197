/**
 * `npm run image`: how long the build takes (CI runs it in test/cluster/image.test.ts) and how big
 * the image is against the 80 MB goal. Three builds, the median time; sizes are the same each time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildImage } from '../../scripts/image/build.ts';
import type { Report } from './run.ts';

const MB = 1_000_000;

export default async function imageBench(report: Report): Promise<void> {
  const out = mkdtempSync(join(tmpdir(), 'podwarden-image-bench-'));
  try {
    const seconds: number[] = [];
    let last: Awaited<ReturnType<typeof buildImage>> | undefined;
    for (let run = 0; run < 3; run += 1) {
      const started = performance.now();
      last = await buildImage({ outDir: out });
      seconds.push((performance.now() - started) / 1000);
    }
    const median = [...seconds].sort((a, b) => a - b)[1]!;
    report('build, median of 3', `${median.toFixed(1)} s (${seconds.map((s) => s.toFixed(1)).join(', ')})`);
    const { sizes } = last!;
    report('image, uncompressed (the layer tar)', `${(sizes.uncompressed / MB).toFixed(1)} MB (goal 80 MB)`);
    report('image, compressed (gzip layer, what is pushed)', `${(sizes.compressed / MB).toFixed(1)} MB`);
    for (const [part, bytes] of Object.entries(sizes.parts).sort((a, b) => b[1] - a[1])) {
      report(`  of which ${part}`, `${(bytes / MB).toFixed(1)} MB`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
