import { PROFILES } from '../core/identity.ts';
import type { ProfileName } from '../core/task.ts';
import { BRIDGE_IMAGE_UID } from './image.ts';

export interface BridgeManifestOptions {
  cluster: string;
  bus: string;
  region: string;
  image: string;
  /**
   * IAM role the bridge assumes through IRSA (allowed: events:PutEvents on the bus), written as the
   * service account's annotation; undefined with EKS Pod Identity, whose association (made by the
   * stack) gives the role instead.
   */
  roleArn: string | undefined;
  /** Where the bridge runs (and its Lease lives). */
  namespace: string;
  /** Namespaces to watch; empty: every namespace (then the watch rights are cluster-wide). */
  watchNamespaces: string[];
  profiles: ProfileName[];
  replicas: number;
  leaseName: string;
  metricsPort: number;
  createNamespace: boolean;
}

export const BRIDGE_NAME = 'podwarden-bridge';
const APP_LABELS = { 'app.kubernetes.io/name': BRIDGE_NAME, 'app.kubernetes.io/part-of': 'podwarden' };
/** The bridge flushes within this on SIGTERM; the pod's grace period leaves room after it. */
const FLUSH_TIMEOUT_SECONDS = 20;
const TERMINATION_GRACE_SECONDS = 30;

const IAM_ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@\-/]{1,512}$/;

export function roleArnProblem(roleArn: string): string | undefined {
  return IAM_ROLE_ARN.test(roleArn)
    ? undefined
    : `"${roleArn}" is not an IAM role ARN (arn:aws:iam::123456789012:role/name)`;
}

/** Read-only rights on exactly what the bridge watches: pods and events. */
const WATCH_RULES = [{ apiGroups: [''], resources: ['pods', 'events'], verbs: ['get', 'list', 'watch'] }];

/**
 * The Kubernetes objects that run the bridge: a ServiceAccount bound to an IAM role, least-privilege
 * RBAC (watch pods and events; create its Lease and get/update only that one), a Deployment of
 * `replicas` with probes, resources and a locked-down security context, and a PodDisruptionBudget
 * that keeps one replica through voluntary disruptions.
 */
export function bridgeManifests(options: BridgeManifestOptions): Array<Record<string, unknown>> {
  const { namespace } = options;
  const meta = (name: string, objectNamespace?: string) => ({
    name,
    ...(objectNamespace ? { namespace: objectNamespace } : {}),
    labels: APP_LABELS,
  });
  const subject = { kind: 'ServiceAccount', name: BRIDGE_NAME, namespace };
  const objects: Array<Record<string, unknown>> = [];

  if (options.createNamespace) {
    // The namespace holds only the bridge, which meets the restricted Pod Security Standard: enforce it.
    objects.push({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: namespace,
        labels: { ...APP_LABELS, 'pod-security.kubernetes.io/enforce': 'restricted' },
      },
    });
  }
  objects.push({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      ...meta(BRIDGE_NAME, namespace),
      ...(options.roleArn ? { annotations: { 'eks.amazonaws.com/role-arn': options.roleArn } } : {}),
    },
  });

  if (options.watchNamespaces.length === 0) {
    objects.push(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: meta(`${BRIDGE_NAME}-watch`),
        rules: WATCH_RULES,
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: meta(`${BRIDGE_NAME}-watch`),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${BRIDGE_NAME}-watch` },
        subjects: [subject],
      },
    );
  } else {
    for (const watched of options.watchNamespaces) {
      objects.push(
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: meta(`${BRIDGE_NAME}-watch`, watched),
          rules: WATCH_RULES,
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: meta(`${BRIDGE_NAME}-watch`, watched),
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${BRIDGE_NAME}-watch` },
          subjects: [subject],
        },
      );
    }
  }

  objects.push(
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: meta(`${BRIDGE_NAME}-lease`, namespace),
      rules: [
        // `create` cannot be limited by name (the object does not exist yet); get/update can.
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          resourceNames: [options.leaseName],
          verbs: ['get', 'update'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta(`${BRIDGE_NAME}-lease`, namespace),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: `${BRIDGE_NAME}-lease` },
      subjects: [subject],
    },
  );

  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: 'metrics' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
  const env = [
    { name: 'PODWARDEN_CLUSTER', value: options.cluster },
    { name: 'PODWARDEN_BUS', value: options.bus },
    { name: 'AWS_REGION', value: options.region },
    {
      name: 'PODWARDEN_NAMESPACES',
      value: options.watchNamespaces.length > 0 ? options.watchNamespaces.join(',') : '*',
    },
    { name: 'PODWARDEN_PROFILES', value: options.profiles.join(',') },
    { name: 'PODWARDEN_LEASE_NAME', value: options.leaseName },
    { name: 'PODWARDEN_LEASE_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'PODWARDEN_METRICS_PORT', value: String(options.metricsPort) },
    { name: 'PODWARDEN_FLUSH_TIMEOUT', value: `${FLUSH_TIMEOUT_SECONDS}s` },
  ];
  objects.push({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(BRIDGE_NAME, namespace),
    spec: {
      replicas: options.replicas,
      selector: { matchLabels: { 'app.kubernetes.io/name': BRIDGE_NAME } },
      // One replica at a time, so a standby is always there to take the lease.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 1 } },
      template: {
        metadata: {
          labels: APP_LABELS,
          annotations: {
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(options.metricsPort),
            'prometheus.io/path': '/metrics',
            // Watched-pod selectors, for whoever reads the manifest later.
            'podwarden.io/selectors': options.profiles
              .map((profile) => PROFILES[profile].labelSelector)
              .join(' | '),
          },
        },
        spec: {
          serviceAccountName: BRIDGE_NAME,
          terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
          securityContext: {
            runAsNonRoot: true,
            // The image's own user; runAsNonRoot makes the kubelet refuse any image that would be root.
            runAsUser: BRIDGE_IMAGE_UID,
            runAsGroup: BRIDGE_IMAGE_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: { 'app.kubernetes.io/name': BRIDGE_NAME } },
            },
          ],
          containers: [
            {
              name: 'bridge',
              image: options.image,
              args: ['bridge'],
              env,
              ports: [{ name: 'metrics', containerPort: options.metricsPort, protocol: 'TCP' }],
              livenessProbe: probe('/healthz', 10, 3),
              readinessProbe: probe('/readyz', 5, 2),
              resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  });
  // With a single replica a budget of one would block every node drain; it only makes sense with a standby.
  if (options.replicas < 2) return objects;
  objects.push({
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(BRIDGE_NAME, namespace),
    spec: { minAvailable: 1, selector: { matchLabels: { 'app.kubernetes.io/name': BRIDGE_NAME } } },
  });
  return objects;
}

export interface FunctionsRbacOptions {
  /** The Kubernetes group the stack's EKS access entries give the functions' roles. */
  group: string;
  /** Namespaces the functions act in; empty: every namespace (a ClusterRole and its binding). */
  namespaces: string[];
}

export const FUNCTIONS_RBAC_NAME = 'podwarden-functions';
const FUNCTIONS_LABELS = {
  'app.kubernetes.io/name': FUNCTIONS_RBAC_NAME,
  'app.kubernetes.io/part-of': 'podwarden',
};

/**
 * Exactly what the Lambda functions do through the API: read, list, create (re-create) and delete
 * (reap) pods; list events (a late `Preempted` event) and create them (each decision told on the
 * task's pod). No watch, no update, no patch, nothing beyond pods and events.
 */
export const FUNCTIONS_RULES = [
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'create', 'delete'] },
  { apiGroups: [''], resources: ['events'], verbs: ['list', 'create'] },
];

/** The Role and RoleBinding (per namespace, or cluster-wide) that the functions' group is bound to. */
export function functionsRbacManifests(options: FunctionsRbacOptions): Array<Record<string, unknown>> {
  const subjects = [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: options.group }];
  const meta = (objectNamespace?: string) => ({
    name: FUNCTIONS_RBAC_NAME,
    ...(objectNamespace ? { namespace: objectNamespace } : {}),
    labels: FUNCTIONS_LABELS,
  });
  if (options.namespaces.length === 0) {
    return [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: meta(),
        rules: FUNCTIONS_RULES,
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: meta(),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: FUNCTIONS_RBAC_NAME },
        subjects,
      },
    ];
  }
  return options.namespaces.flatMap((namespace) => [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: meta(namespace),
      rules: FUNCTIONS_RULES,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta(namespace),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: FUNCTIONS_RBAC_NAME },
      subjects,
    },
  ]);
}
