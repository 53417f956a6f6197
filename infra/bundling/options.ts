/**
 * The esbuild options the Lambda functions are bundled with, in one place: the stack hands them to
 * NodejsFunction, and the benches (bundle sizes, the scale bench's pass worker) build with the same,
 * so the figures they print are those of what `cdk deploy` uploads.
 */
import { fileURLToPath } from 'node:url';

export const LAMBDA_BUNDLING = {
  format: 'esm',
  target: 'node24',
  minify: true,
  mainFields: ['module', 'main'],
  // undici drops its experimental Milo parser under esbuild; the alias keeps only the parts of
  // undici that client-node uses (see undici.mjs). Both keep bundles < 1.5 MB.
  define: { esbuildDetection: 'true' },
  alias: { undici: fileURLToPath(new URL('./undici.mjs', import.meta.url)) },
  // Some bundled CommonJS dependencies call require() for Node built-ins.
  banner:
    "import { createRequire as __podwardenRequire } from 'node:module'; const require = __podwardenRequire(import.meta.url);",
} as const;

/**
 * V8's heap for the two pass functions (reaper, timer), which read thousands of pods and records
 * per invocation. V8 sizes its heap from the memory the function has: in 512 MB about 128 MB of
 * old generation, and a young generation of a megabyte or two derived from that. Short-lived list
 * pages and records then outlive the young generation, get promoted, and a reaper pass over 10,000
 * pods spent 6.4 s of 22 s collecting garbage (`npm run bench -- scale`, worker profiled). A 16 MB
 * semi-space lets them die young. The old generation is given as V8 would size it, so that the
 * scale bench's worker, which runs with these options, is sized as the function is on any machine.
 */
export const PASS_FUNCTION_NODE_OPTIONS = '--max-old-space-size=128 --max-semi-space-size=16';
