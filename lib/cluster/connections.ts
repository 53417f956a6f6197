import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
// The modules themselves rather than the package's index, which also loads exec, attach, cp, watch
// and their dependencies (ws, tar): the Lambda bundles would carry them for nothing.
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import type { User } from '@kubernetes/client-node/dist/config_types.js';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { createEksTokenProvider, type EksTokenProvider } from './eks-token.ts';

/** How to reach one cluster's API server. */
export type ClusterConnection =
  | { kind: 'kubeconfig'; path?: string; context?: string }
  | { kind: 'in-cluster' }
  | { kind: 'eks'; clusterName: string; endpoint: string; caData: string; region: string };

export type EksConnection = Extract<ClusterConnection, { kind: 'eks' }>;

/** The environment variable that holds the JSON map of cluster names to connections. */
export const CLUSTERS_ENV = 'PODWARDEN_CLUSTERS';

// Cluster names end up in task keys and log lines: keep them to a DNS-label-like alphabet.
const CLUSTER_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const EKS_CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

const FIELDS: Record<ClusterConnection['kind'], { required: string[]; optional: string[] }> = {
  kubeconfig: { required: [], optional: ['path', 'context'] },
  'in-cluster': { required: [], optional: [] },
  eks: { required: ['clusterName', 'endpoint', 'caData', 'region'], optional: [] },
};

/**
 * Reads `{ "<cluster>": { "kind": "kubeconfig" | "in-cluster" | "eks", ... } }` (a JSON string, e.g.
 * from PODWARDEN_CLUSTERS, or the parsed value). Every error names the cluster and the field.
 */
export function parseClusterConnections(json: string | unknown): Map<string, ClusterConnection> {
  let value: unknown = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (error) {
      throw new Error(`cluster connections: not valid JSON (${(error as Error).message})`);
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(
      'cluster connections: expected a JSON object mapping cluster names to connections, e.g. {"prod": {"kind": "in-cluster"}}',
    );
  }
  const connections = new Map<string, ClusterConnection>();
  for (const [name, raw] of Object.entries(value)) {
    if (!CLUSTER_KEY.test(name)) {
      throw new Error(
        `cluster connections: cluster name ${JSON.stringify(name)} must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
      );
    }
    connections.set(name, parseConnection(name, raw));
  }
  if (connections.size === 0) throw new Error('cluster connections: no cluster is configured');
  return connections;
}

/** The connections in PODWARDEN_CLUSTERS, with an error that says so when it is unset. */
export function clusterConnectionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Map<string, ClusterConnection> {
  const json = env[CLUSTERS_ENV];
  if (json === undefined || json.trim() === '') {
    throw new Error(
      `${CLUSTERS_ENV} is not set: give it a JSON object of cluster names to connections, e.g. {"prod": {"kind": "eks", "clusterName": "...", "endpoint": "https://...", "caData": "...", "region": "..."}}`,
    );
  }
  try {
    return parseClusterConnections(json);
  } catch (error) {
    throw new Error(`${CLUSTERS_ENV}: ${(error as Error).message}`);
  }
}

function parseConnection(name: string, raw: unknown): ClusterConnection {
  const where = `cluster "${name}"`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error(`${where}: connection must be an object with a "kind"`);
  }
  const fields = raw as Record<string, unknown>;
  const kind = fields.kind;
  if (kind !== 'kubeconfig' && kind !== 'in-cluster' && kind !== 'eks') {
    throw new Error(
      `${where}: field "kind" must be "kubeconfig", "in-cluster" or "eks", got ${JSON.stringify(kind)}`,
    );
  }
  const allowed = FIELDS[kind];
  for (const field of Object.keys(fields)) {
    if (field !== 'kind' && !allowed.required.includes(field) && !allowed.optional.includes(field)) {
      const known = [...allowed.required, ...allowed.optional];
      throw new Error(
        `${where}: unknown field "${field}" for kind "${kind}" (${known.length ? `known: ${known.join(', ')}` : 'it takes no other fields'})`,
      );
    }
  }
  for (const field of allowed.required) {
    if (fields[field] === undefined)
      throw new Error(`${where}: field "${field}" is required for kind "${kind}"`);
  }
  const text = (field: string): string | undefined => {
    const v = fields[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.trim() === '') {
      throw new Error(`${where}: field "${field}" must be a non-empty string`);
    }
    return v;
  };

  switch (kind) {
    case 'in-cluster':
      return { kind };
    case 'kubeconfig': {
      const path = text('path');
      const context = text('context');
      return { kind, ...(path === undefined ? {} : { path }), ...(context === undefined ? {} : { context }) };
    }
    case 'eks': {
      const clusterName = text('clusterName')!;
      if (!EKS_CLUSTER_NAME.test(clusterName)) {
        throw new Error(
          `${where}: field "clusterName" ${JSON.stringify(clusterName)} is not an EKS cluster name (1-100 letters, digits, - or _)`,
        );
      }
      const endpoint = text('endpoint')!;
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        throw new Error(`${where}: field "endpoint" ${JSON.stringify(endpoint)} is not a URL`);
      }
      if (url.protocol !== 'https:') {
        throw new Error(
          `${where}: field "endpoint" must be an https:// URL, got ${JSON.stringify(endpoint)}`,
        );
      }
      const unsafe = unsafeEndpointProblem(url);
      if (unsafe) throw new Error(`${where}: field "endpoint" ${JSON.stringify(endpoint)} ${unsafe}`);
      const caData = text('caData')!;
      const caProblem = caDataProblem(caData);
      if (caProblem) {
        throw new Error(
          `${where}: field "caData" must be the base64 of a PEM certificate (the cluster's certificateAuthority.data): ${caProblem}`,
        );
      }
      const region = text('region')!;
      if (!REGION.test(region)) {
        throw new Error(
          `${where}: field "region" ${JSON.stringify(region)} is not an AWS region such as us-east-1`,
        );
      }
      return { kind, clusterName, endpoint: endpoint.replace(/\/+$/, ''), caData, region };
    }
  }
}

/** Why `data` is not the base64 of PEM certificates that parse, or undefined when it is. */
function caDataProblem(data: string): string | undefined {
  const compact = data.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return 'it is not base64';
  const pem = Buffer.from(compact, 'base64').toString('latin1');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return 'it holds no -----BEGIN CERTIFICATE----- block';
  for (const [index, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (error) {
      return `certificate ${index + 1} does not parse (${(error as Error).message})`;
    }
  }
  return undefined;
}

/**
 * Why an endpoint must not be called with the functions' credentials, or undefined. Link-local
 * addresses (169.254.0.0/16, fe80::/10) hold the instance metadata services (169.254.169.254,
 * fd00:ec2::254): a request there could hand out the role's credentials.
 */
export function unsafeEndpointProblem(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isIPv4(host)) {
    const [a, b] = host.split('.').map(Number);
    if (a === 169 && b === 254)
      return 'is a link-local address (169.254.0.0/16, the instance metadata range)';
    if (a === 0) return 'is an unspecified address (0.0.0.0/8)';
    return undefined;
  }
  if (isIPv6(host)) {
    const expanded = expandIPv6(host);
    if (expanded === expandIPv6('fd00:ec2::254'))
      return 'is the EC2 instance metadata address (fd00:ec2::254)';
    if (/^fe[89ab]/.test(expanded)) return 'is a link-local address (fe80::/10)';
    if (expanded === expandIPv6('::')) return 'is the unspecified address (::)';
    const mapped = /^0000:0000:0000:0000:0000:ffff:([0-9a-f]{4}):([0-9a-f]{4})$/.exec(expanded);
    if (mapped?.[1]?.startsWith('a9fe')) return 'is a link-local address (169.254.0.0/16, IPv4-mapped)';
    return undefined;
  }
  if (host === 'metadata.google.internal' || host === 'instance-data' || host.startsWith('instance-data.'))
    return 'names an instance metadata service';
  return undefined;
}

function expandIPv6(address: string): string {
  const [head = '', tail = ''] = address.split('::');
  const parts = (text: string) => (text === '' ? [] : text.split(':'));
  const left = parts(head);
  const right = address.includes('::') ? parts(tail) : [];
  const fill = address.includes('::') ? Array(8 - left.length - right.length).fill('0') : [];
  return [...left, ...fill, ...right].map((part) => part.padStart(4, '0')).join(':');
}

export interface KubeConfigDeps {
  /** Credentials for EKS tokens; defaults to the AWS SDK's default chain. */
  credentials?: AwsCredentialIdentityProvider;
  /** Replaces the EKS token provider (tests point an eks connection at a local API server). */
  eksTokenProvider?: (connection: EksConnection) => EksTokenProvider;
  /** Path prefix for the in-cluster service account files (tests). */
  inClusterPathPrefix?: string;
}

const EKS_AUTH_PROVIDER = 'podwarden-eks';
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
const SERVICE_ACCOUNT_CA = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';

/** Sets the bearer token on every request from the provider, which caches and refreshes it. */
class EksTokenAuthenticator {
  readonly #tokens: EksTokenProvider;
  constructor(tokens: EksTokenProvider) {
    this.#tokens = tokens;
  }
  isAuthProvider(user: User): boolean {
    return user.authProvider?.name === EKS_AUTH_PROVIDER;
  }
  async applyAuthentication(_user: User, opts: { headers?: Record<string, unknown> }): Promise<void> {
    const { token } = await this.#tokens.getToken();
    opts.headers ??= {};
    opts.headers.Authorization = `Bearer ${token}`;
  }
}

/**
 * A client-node KubeConfig for the connection, with its current context set. Reads KUBECONFIG,
 * HOME and KUBERNETES_SERVICE_HOST/PORT from process.env, as client-node does.
 */
export async function kubeConfigFor(
  connection: ClusterConnection,
  deps: KubeConfigDeps = {},
): Promise<KubeConfig> {
  const env = process.env;
  const kc = new KubeConfig();
  switch (connection.kind) {
    case 'kubeconfig': {
      const path = connection.path ?? defaultKubeconfigPath(env);
      if (!existsSync(path)) throw new Error(`kubeconfig ${path} does not exist`);
      kc.loadFromFile(path);
      if (connection.context !== undefined) {
        if (!kc.getContextObject(connection.context)) {
          const known = kc.getContexts().map((c) => c.name);
          throw new Error(
            `kubeconfig ${path} has no context "${connection.context}" (it has: ${known.join(', ') || 'none'})`,
          );
        }
        kc.setCurrentContext(connection.context);
      }
      if (!kc.getCurrentCluster()) {
        throw new Error(`kubeconfig ${path}: the current context names no cluster; set "context"`);
      }
      return kc;
    }
    case 'in-cluster': {
      if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
        throw new Error(
          'in-cluster connection: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (is this running in a pod?)',
        );
      }
      const prefix = deps.inClusterPathPrefix ?? '';
      for (const file of [SERVICE_ACCOUNT_TOKEN, SERVICE_ACCOUNT_CA]) {
        if (!existsSync(`${prefix}${file}`)) {
          throw new Error(
            `in-cluster connection: ${prefix}${file} is missing (is the service account token mounted in this pod?)`,
          );
        }
      }
      kc.loadFromCluster(prefix);
      return kc;
    }
    case 'eks': {
      const tokens =
        deps.eksTokenProvider?.(connection) ??
        createEksTokenProvider({
          clusterName: connection.clusterName,
          region: connection.region,
          ...(deps.credentials ? { credentials: deps.credentials } : {}),
        });
      const name = `eks-${connection.clusterName}`;
      kc.loadFromOptions({
        clusters: [{ name, server: connection.endpoint, caData: connection.caData, skipTLSVerify: false }],
        users: [{ name, authProvider: { name: EKS_AUTH_PROVIDER, config: {} } }],
        contexts: [{ name, cluster: name, user: name }],
        currentContext: name,
      });
      kc.addAuthenticator(new EksTokenAuthenticator(tokens));
      return kc;
    }
  }
}

function defaultKubeconfigPath(env: NodeJS.ProcessEnv): string {
  // Only the first file of a KUBECONFIG list: merging several is kubectl's job, not a supervisor's.
  const fromEnv = env.KUBECONFIG?.split(':').find((p) => p.length > 0);
  return fromEnv ?? join(env.HOME ?? homedir(), '.kube', 'config');
}
