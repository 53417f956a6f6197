import type { TestProject } from 'vitest/node';
import { startControlPlane } from '../../lib/devcluster/index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of the local control plane every file of the `cluster` project shares. */
    kubeconfigPath: string;
  }
}

/**
 * globalSetup of the `cluster` project: one real control plane (etcd, kube-apiserver,
 * kube-scheduler, KWOK) for all its test files, stopped when the run ends, passes or fails.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const verbose = Boolean(process.env.PODWARDEN_CONTROLPLANE_VERBOSE);
  const controlPlane = await startControlPlane({
    log: (line) => {
      if (verbose || line.startsWith('control plane ready')) console.error(`[controlplane] ${line}`);
    },
  });
  project.provide('kubeconfigPath', controlPlane.kubeconfigPath);
  return () => controlPlane.stop();
}
