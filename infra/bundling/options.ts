/**
 * The esbuild options the Lambda functions are bundled with, in one place: the stack hands them to
 * NodejsFunction, and the benches (bundle sizes, the scale bench's pass worker) build with the same,
 * so the figures they print are those of what `cdk deploy` uploads.
 */
import { fileURLToPath } from 'node:url';

function bundlingFile(name: string): string {
  return fileURLToPath(new URL(`./${name}`, import.meta.url));
}

export const LAMBDA_BUNDLING = {
  format: 'esm',
  target: 'node24',
  minify: true,
  mainFields: ['module', 'main'],
  // undici drops its experimental Milo parser under esbuild; the undici alias keeps only the parts
  // of undici that client-node uses (see undici.mjs). Both keep bundles < 1.5 MB. The http and https
  // aliases take those built-ins without an ESM import (see node-http.cjs): a cold import ~16 ms
  // shorter (median of 15 fresh imports of the reaper's bundle, 186 ms against 202 ms).
  define: { esbuildDetection: 'true' },
  alias: {
    undici: bundlingFile('undici.mjs'),
    http: bundlingFile('node-http.cjs'),
    'node:http': bundlingFile('node-http.cjs'),
    https: bundlingFile('node-https.cjs'),
    'node:https': bundlingFile('node-https.cjs'),
  },
  // Some bundled CommonJS dependencies call require() for Node built-ins.
  banner:
    "import { createRequire as __podwardenRequire } from 'node:module'; const require = __podwardenRequire(import.meta.url);",
} as const;

/**
 * V8's heap for the two pass functions (reaper, timer), which read thousands of pods and records
 * per invocation. V8 sizes its heap from the memory it sees: 512 MB gives a 1 MB semi-space, with
 * which short-lived list pages and records outlive the young generation and get promoted (a reaper
 * pass over 10,000 pods spent 6.4 s of 22 s collecting garbage; `npm run bench -- scale`, worker
 * profiled); with 16 MB, 1.2 s of 12 s. The pass functions' 1,769 MB would give ~7 MB and an old
 * generation of ~880 MB that V8 lets the heap grow into before collecting. The old generation is
 * capped at 128 MB: the pass's live data peaks at ~65 MB at 10,000 pods, and V8 then collects
 * early (peak RSS 168-179 MB; 327 MB with this 23 GB machine's defaults). Raise it with the
 * cluster: the bench prints the heap's peak. The scale bench's worker runs with these options, so
 * its figures are the function's on any machine.
 */
export const PASS_FUNCTION_NODE_OPTIONS = '--max-old-space-size=128 --max-semi-space-size=16';
