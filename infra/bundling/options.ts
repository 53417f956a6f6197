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
