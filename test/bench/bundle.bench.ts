/**
 * The Lambda bundles as `cdk deploy` builds them (NodejsFunction with the stack's bundling options):
 * the size of each handler's index.mjs, whether a source map rides along, and its cold import time
 * (a fresh Node 24 process importing the bundle, as the Lambda runtime's init does; median of 5).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { PodwardenStack } from '../../infra/podwarden-stack.ts';
import { HANDLER_NAMES } from '../../lib/routes.ts';
import { CA_DATA } from '../support/ca.ts';
import type { Report } from './run.ts';

const IMPORTS = 5;

function coldImportMs(dir: string): number {
  const times: number[] = [];
  for (let run = 0; run < IMPORTS; run++) {
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const t = performance.now(); await import('./index.mjs'); console.log(performance.now() - t);",
      ],
      {
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
        env: { PATH: process.env.PATH, AWS_REGION: 'eu-west-1' },
      },
    );
    if (child.status !== 0) throw new Error(`importing ${dir}/index.mjs failed: ${child.stderr}`);
    times.push(Number(child.stdout.trim()));
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

export default async function bundleBench(report: Report): Promise<void> {
  const outdir = mkdtempSync(join(tmpdir(), 'podwarden-bundle-bench-'));
  try {
    const app = new App({ outdir });
    const stack = new PodwardenStack(app, 'PodwardenBundleBench', {
      clusters: {
        prod: {
          kind: 'eks',
          clusterName: 'prod',
          endpoint: 'https://abc.eks.amazonaws.com',
          caData: CA_DATA,
          region: 'eu-west-1',
        },
      },
      allowedNamespaces: ['airflow'],
    });
    const template = app.synth().getStackByName(stack.stackName).template as {
      Resources: Record<string, { Properties: { Code?: { S3Key?: string } } }>;
    };
    for (const handler of HANDLER_NAMES) {
      const id = stack.getLogicalId(stack.functions[handler].function.node.defaultChild as never);
      const key = template.Resources[id]?.Properties.Code?.S3Key;
      if (!key) throw new Error(`no code asset for ${handler}`);
      const dir = join(outdir, `asset.${key.replace(/\.zip$/, '')}`);
      const bytes = statSync(join(dir, 'index.mjs')).size;
      const map = existsSync(join(dir, 'index.mjs.map')) ? ', with source map' : ', no source map';
      report(
        `${handler}: bundle, cold import`,
        `${(bytes / 1e6).toFixed(2)} MB${map}, ${coldImportMs(dir).toFixed(0)} ms`,
      );
    }
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}
