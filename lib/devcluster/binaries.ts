import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** scripts/controlplane: the build script, its Go wrapper modules, versions.env and the KWOK stages. */
export const controlPlaneScriptsDir = fileURLToPath(new URL('../../scripts/controlplane/', import.meta.url));

export interface ControlPlaneVersions {
  kubernetes: string;
  etcd: string;
  kwok: string;
}

export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeScheduler: string;
  kwok: string;
  /** Where each binary was found, for messages: e.g. `etcd from KUBEBUILDER_ASSETS=/x`. */
  sources: string[];
}

/** The binaries are missing; the message says which, where they were looked for, and how to get them. */
export class ControlPlaneBinariesMissingError extends Error {
  override name = 'ControlPlaneBinariesMissingError';
  readonly missing: string[];
  constructor(missing: string[], message: string) {
    super(message);
    this.missing = missing;
  }
}

/** Reads scripts/controlplane/versions.env, the one place the versions are written down. */
export function controlPlaneVersions(): ControlPlaneVersions {
  const path = join(controlPlaneScriptsDir, 'versions.env');
  const values = new Map<string, string>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^\s*([A-Z_]+)=(\S+)\s*$/.exec(line);
    if (match) values.set(match[1]!, match[2]!);
  }
  const read = (key: string): string => {
    const value = values.get(key);
    if (!value) throw new Error(`${path} has no ${key}=... line`);
    return value;
  };
  return { kubernetes: read('KUBERNETES_VERSION'), etcd: read('ETCD_VERSION'), kwok: read('KWOK_VERSION') };
}

function goPlatform(): string {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const arch = ({ x64: 'amd64', arm64: 'arm64', ia32: '386' } as Record<string, string>)[process.arch];
  return `${os}-${arch ?? process.arch}`;
}

/** Must match `key=` in scripts/controlplane/build.sh. */
export function cacheKey(versions: ControlPlaneVersions = controlPlaneVersions()): string {
  return `k8s-${versions.kubernetes}_etcd-${versions.etcd}_kwok-${versions.kwok}_${goPlatform()}`;
}

export function controlPlaneCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const root =
    env.PODWARDEN_CONTROLPLANE_CACHE ||
    join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'podwarden', 'controlplane');
  return join(root, cacheKey());
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds etcd, kube-apiserver, kube-scheduler and kwok: all four in PODWARDEN_CONTROLPLANE_BIN if
 * that is set; otherwise etcd and kube-apiserver from KUBEBUILDER_ASSETS (envtest) when present
 * there, and the rest from the per-machine cache that `npm run controlplane:build` fills.
 * @throws ControlPlaneBinariesMissingError naming each missing binary and how to get it.
 */
export function resolveControlPlaneBinaries(env: NodeJS.ProcessEnv = process.env): ControlPlaneBinaries {
  const names = ['etcd', 'kube-apiserver', 'kube-scheduler', 'kwok'] as const;
  const found = new Map<string, string>();
  const sources: string[] = [];
  const missing: string[] = [];

  const explicit = env.PODWARDEN_CONTROLPLANE_BIN;
  if (explicit) {
    for (const name of names) {
      const path = join(explicit, name);
      if (isExecutable(path)) found.set(name, path);
      else missing.push(name);
    }
    if (missing.length > 0) {
      throw new ControlPlaneBinariesMissingError(
        missing,
        `PODWARDEN_CONTROLPLANE_BIN=${explicit} has no executable ${missing.join(', ')}. ` +
          'Put etcd, kube-apiserver, kube-scheduler and kwok there, or unset it to use the binaries ' +
          'that `npm run controlplane:build` builds.',
      );
    }
    sources.push(`all from PODWARDEN_CONTROLPLANE_BIN=${explicit}`);
  } else {
    const cache = controlPlaneCacheDir(env);
    const envtest = env.KUBEBUILDER_ASSETS;
    for (const name of names) {
      const fromEnvtest =
        envtest && (name === 'etcd' || name === 'kube-apiserver') ? join(envtest, name) : '';
      if (fromEnvtest && isExecutable(fromEnvtest)) {
        found.set(name, fromEnvtest);
        sources.push(`${name} from KUBEBUILDER_ASSETS=${envtest}`);
      } else if (isExecutable(join(cache, name))) {
        found.set(name, join(cache, name));
        sources.push(`${name} from ${cache}`);
      } else {
        missing.push(name);
      }
    }
    if (missing.length > 0) {
      const versions = controlPlaneVersions();
      throw new ControlPlaneBinariesMissingError(
        missing,
        `The local Kubernetes control plane is missing ${missing.join(', ')} (looked in ${cache}` +
          `${envtest ? ` and KUBEBUILDER_ASSETS=${envtest}` : ''}). Build them once per machine with ` +
          '`npm run controlplane:build` (needs Go 1.26 or newer and the Go module proxy; it builds ' +
          `Kubernetes ${versions.kubernetes}, etcd ${versions.etcd} and KWOK ${versions.kwok}), or set ` +
          'PODWARDEN_CONTROLPLANE_BIN to a directory holding etcd, kube-apiserver, kube-scheduler and kwok.',
      );
    }
  }
  return {
    etcd: found.get('etcd')!,
    kubeApiserver: found.get('kube-apiserver')!,
    kubeScheduler: found.get('kube-scheduler')!,
    kwok: found.get('kwok')!,
    sources,
  };
}
