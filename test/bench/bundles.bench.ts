/**
 * What each Lambda bundle weighs, built as `cdk deploy` builds it (the stack's esbuild options from
 * infra/bundling/options.ts, every dependency bundled), and what the libraries of issue 13 add to
 * it, read from esbuild's metafile. The goal is at most 1.5 MB per handler; the figure is printed,
 * not judged.
 */
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { LAMBDA_BUNDLING } from '../../infra/bundling/options.ts';
import { HANDLER_NAMES } from '../../lib/routes.ts';
import type { Report } from './run.ts';

const LIBRARIES = ['zod', 'prom-client', '@aws-lambda-powertools/logger'];

/** Output bytes of one handler, in total and per library (the package's share of the output). */
export async function handlerBundle(root: string, handler: string) {
  const result = await build({
    entryPoints: [`${root}functions/${handler}.ts`],
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    ...LAMBDA_BUNDLING,
    mainFields: [...LAMBDA_BUNDLING.mainFields],
    banner: { js: LAMBDA_BUNDLING.banner },
    write: false,
    outdir: '/tmp/podwarden-bundle-bench',
    metafile: true,
    logLevel: 'silent',
  });
  return bytesOf(result.metafile);
}

function bytesOf(metafile: Metafile) {
  const output = Object.entries(metafile.outputs).find(([file]) => file.endsWith('.js'))![1];
  const byLibrary = Object.fromEntries(LIBRARIES.map((name) => [name, 0]));
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const library = LIBRARIES.find((name) => input.includes(`node_modules/${name}/`));
    if (library) byLibrary[library] = (byLibrary[library] ?? 0) + bytesInOutput;
  }
  return { total: output.bytes, byLibrary };
}

// Decimal units, as bundle.bench.ts and the 1.5 MB goal count them.
const kb = (bytes: number) => `${(bytes / 1e3).toFixed(1)} kB`;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;

export default async function (report: Report) {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  for (const handler of HANDLER_NAMES) {
    const { total, byLibrary } = await handlerBundle(root, handler);
    const shares = Object.entries(byLibrary)
      .filter(([, bytes]) => bytes > 0)
      .map(([name, bytes]) => `${name} ${kb(bytes)}`)
      .join(', ');
    report(`${handler}: bundle (goal <= 1.5 MB)`, `${mb(total)}${shares ? ` (${shares})` : ''}`);
  }
}
