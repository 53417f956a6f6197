/**
 * Benchmark runner: `npm run bench` (all), `npm run bench -- classify engine` (files whose name
 * contains any of the words). Flags (`--pods 10000`, `--pods=10000`) are not filters: they are
 * handed to every bench that runs, which reads the ones it knows.
 *
 * It runs every `test/bench/*.bench.ts` in file-name order, one after the other. A bench file
 * default-exports one async function that receives `report(name, figure)` and calls it once per
 * figure it measured; use `measureOpsPerSecond` / `formatOps` from `./measure.ts`:
 *
 *   import { formatOps, measureOpsPerSecond } from './measure.ts';
 *   export default async function (report: Report) {
 *     report('classifyPullError, mixed messages', formatOps(await measureOpsPerSecond(() => work())));
 *   }
 *
 * Figures are printed, never judged: no bench passes or fails on speed (machines differ, and others
 * run builds on this one). A bench that throws is reported and makes the runner exit 1.
 */
import { readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Report = (name: string, figure: string) => void;
export type Bench = (report: Report, flags: string[]) => Promise<void> | void;

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const SUFFIX = '.bench.ts';

/** Splits argv into file filters and flags; a flag without `=` takes the next word as its value. */
function splitArgs(argv: string[]): { filters: string[]; flags: string[] } {
  const filters: string[] = [];
  const flags: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const word = argv[index]!;
    if (!word.startsWith('-')) filters.push(word);
    else {
      flags.push(word);
      const value = argv[index + 1];
      if (!word.includes('=') && value !== undefined && !value.startsWith('-')) {
        flags.push(value);
        index++;
      }
    }
  }
  return { filters, flags };
}

async function main(argv: string[]): Promise<number> {
  const { filters, flags } = splitArgs(argv);
  const files = (await readdir(BENCH_DIR))
    .filter((file) => file.endsWith(SUFFIX))
    .filter((file) => filters.length === 0 || filters.some((word) => file.includes(word)))
    .sort();
  if (files.length === 0) {
    console.error(
      `no ${SUFFIX} files in ${BENCH_DIR}${filters.length ? ` matching ${filters.join(', ')}` : ''}`,
    );
    return 2;
  }
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  let failed = 0;
  for (const file of files) {
    const name = basename(file, SUFFIX);
    console.log(`\n${name}`);
    try {
      const module = (await import(new URL(file, `file://${BENCH_DIR}`).href)) as { default?: unknown };
      if (typeof module.default !== 'function')
        throw new Error(`${file} has no default-exported bench function`);
      await (module.default as Bench)(
        (figureName, figure) => console.log(`  ${figureName.padEnd(56)} ${figure}`),
        flags,
      );
    } catch (error) {
      failed++;
      console.error(`  FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }
  return failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
