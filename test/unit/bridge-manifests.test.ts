import { PassThrough } from 'node:stream';
import { loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { run as runBridge } from '../../bin/commands/bridge.ts';
import { run as runManifests } from '../../bin/commands/manifests.ts';
import { DEFAULT_BRIDGE_IMAGE } from '../../lib/bridge/image.ts';
import { bridgeManifests } from '../../lib/bridge/manifests.ts';
import packageJson from '../../package.json' with { type: 'json' };

const options = {
  cluster: 'prod-eu',
  bus: 'podwarden',
  region: 'eu-west-1',
  image: 'registry.example/podwarden:0.1.0',
  roleArn: 'arn:aws:iam::123456789012:role/podwarden-bridge',
  namespace: 'podwarden',
  watchNamespaces: [] as string[],
  profiles: ['airflow-kpo' as const],
  replicas: 2,
  leaseName: 'podwarden-bridge',
  metricsPort: 8080,
  createNamespace: true,
};

type K8sObject = {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: the tests read deep into plain manifest objects.
} & Record<string, any>;

function byKind(objects: Array<Record<string, unknown>>, kind: string): K8sObject[] {
  return (objects as K8sObject[]).filter((object) => object.kind === kind);
}

async function runCommand(run: typeof runManifests, argv: string[]) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk) => out.push(String(chunk)));
  stderr.on('data', (chunk) => err.push(String(chunk)));
  const code = await run(argv, { stdin: new PassThrough(), stdout, stderr });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('bridgeManifests', () => {
  it('gives the service account the IAM role and the bridge read-only rights on pods and events', () => {
    const objects = bridgeManifests(options);
    expect(objects.map((object) => object.kind)).toEqual([
      'Namespace',
      'ServiceAccount',
      'ClusterRole',
      'ClusterRoleBinding',
      'Role',
      'RoleBinding',
      'Deployment',
      'PodDisruptionBudget',
    ]);
    const [account] = byKind(objects, 'ServiceAccount');
    expect(account!.metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': options.roleArn });
    const [watchRole] = byKind(objects, 'ClusterRole');
    expect(watchRole!.rules).toEqual([
      { apiGroups: [''], resources: ['pods', 'events'], verbs: ['get', 'list', 'watch'] },
    ]);
    const leaseRole = byKind(objects, 'Role').find(
      (role) => role.metadata.name === 'podwarden-bridge-lease',
    )!;
    expect(leaseRole.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['podwarden-bridge'],
        verbs: ['get', 'update'],
      },
    ]);
    const everyVerb = [...byKind(objects, 'ClusterRole'), ...byKind(objects, 'Role')].flatMap((role) =>
      role.rules.flatMap((rule: { verbs: string[] }) => rule.verbs),
    );
    expect(new Set(everyVerb)).toEqual(new Set(['get', 'list', 'watch', 'create', 'update']));
  });

  it('limits the watch rights to the watched namespaces when there are some', () => {
    const objects = bridgeManifests({
      ...options,
      watchNamespaces: ['airflow', 'batch'],
      createNamespace: false,
    });
    expect(byKind(objects, 'ClusterRole')).toEqual([]);
    expect(byKind(objects, 'Namespace')).toEqual([]);
    const watchRoles = byKind(objects, 'Role').filter(
      (role) => role.metadata.name === 'podwarden-bridge-watch',
    );
    expect(watchRoles.map((role) => role.metadata.namespace)).toEqual(['airflow', 'batch']);
    const deployment = byKind(objects, 'Deployment')[0]!;
    const env = deployment.spec.template.spec.containers[0].env as Array<{ name: string; value?: string }>;
    expect(env.find((variable) => variable.name === 'PODWARDEN_NAMESPACES')?.value).toBe('airflow,batch');
  });

  it('runs two replicas with probes on the metrics port, resources, and a budget that keeps one', () => {
    const objects = bridgeManifests(options);
    const deployment = byKind(objects, 'Deployment')[0]!;
    expect(deployment.spec.replicas).toBe(2);
    const pod = deployment.spec.template.spec;
    expect(pod.serviceAccountName).toBe('podwarden-bridge');
    const container = pod.containers[0];
    expect(container.args).toEqual(['bridge']);
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
    expect(container.resources.requests).toEqual({ cpu: '50m', memory: '128Mi' });
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    const env = Object.fromEntries(
      container.env.map((variable: { name: string; value?: string; valueFrom?: unknown }) => [
        variable.name,
        variable.value ?? variable.valueFrom,
      ]),
    );
    expect(env).toMatchObject({
      PODWARDEN_CLUSTER: 'prod-eu',
      PODWARDEN_BUS: 'podwarden',
      AWS_REGION: 'eu-west-1',
      PODWARDEN_PROFILES: 'airflow-kpo',
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      PODWARDEN_LEASE_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
    });
    // The flush on SIGTERM must end before the kubelet kills the container.
    expect(Number.parseInt(env.PODWARDEN_FLUSH_TIMEOUT, 10)).toBeLessThan(pod.terminationGracePeriodSeconds);
    const budget = byKind(objects, 'PodDisruptionBudget')[0]!;
    expect(budget.spec).toEqual({
      minAvailable: 1,
      selector: { matchLabels: { 'app.kubernetes.io/name': 'podwarden-bridge' } },
    });
    expect(byKind(bridgeManifests({ ...options, replicas: 1 }), 'PodDisruptionBudget')).toEqual([]);
  });
});

describe('podwarden manifests', () => {
  const required = [
    '--cluster',
    'prod-eu',
    '--bus',
    'podwarden',
    '--region',
    'eu-west-1',
    '--image',
    options.image,
    '--role-arn',
    options.roleArn,
  ];

  it('prints YAML documents kubectl can apply', async () => {
    const { code, stdout } = await runCommand(runManifests, required);
    expect(code).toBe(0);
    const documents = loadAllYaml(stdout) as K8sObject[];
    expect(documents.map((document) => document.kind)).toEqual(
      bridgeManifests(options).map((object) => object.kind),
    );
    expect(documents).toEqual(bridgeManifests(options));
  });

  it('prints a JSON List on request', async () => {
    const { code, stdout } = await runCommand(runManifests, [
      ...required,
      '--format',
      'json',
      '--no-namespace',
      '--namespaces',
      'airflow',
    ]);
    expect(code).toBe(0);
    const list = JSON.parse(stdout);
    expect(list.kind).toBe('List');
    expect(list.items.some((item: K8sObject) => item.kind === 'Namespace')).toBe(false);
  });

  it('names every missing or bad argument and exits 2', async () => {
    const { code, stderr, stdout } = await runCommand(runManifests, [
      '--cluster',
      'prod-eu',
      '--role-arn',
      'arn:aws:iam::1:user/x',
      '--replicas',
      '0',
    ]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('--bus is required');
    expect(stderr).toContain('--role-arn "arn:aws:iam::1:user/x" is not an IAM role ARN');
    expect(stderr).toContain('--replicas must be a whole number from 1 to 10');
  });
});

describe('the bridge under the restricted Pod Security Standard', () => {
  // Admission by the API server itself is tested in test/cluster/pod-security.test.ts.
  it('prints a Namespace that enforces it and a pod spec that meets it', () => {
    const objects = bridgeManifests(options);
    expect(byKind(objects, 'Namespace')[0]?.metadata).toMatchObject({
      labels: { 'pod-security.kubernetes.io/enforce': 'restricted' },
    });
    const spec = byKind(objects, 'Deployment')[0]?.spec.template.spec;
    expect(spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(spec.containers[0].securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });
});

describe('podwarden manifests --image', () => {
  it('defaults to the image this version builds, and says so on stderr only', async () => {
    const { code, stdout, stderr } = await runCommand(runManifests, [
      ...['--cluster', 'prod-eu', '--bus', 'podwarden', '--region', 'eu-west-1'],
      ...['--role-arn', options.roleArn, '--format', 'json'],
    ]);
    expect(code).toBe(0);
    expect(DEFAULT_BRIDGE_IMAGE).toBe(`podwarden:${packageJson.version}`);
    const deployment = (JSON.parse(stdout).items as K8sObject[]).find((item) => item.kind === 'Deployment');
    expect(JSON.stringify(deployment)).toContain(`"image":"${DEFAULT_BRIDGE_IMAGE}"`);
    expect(stderr).toContain(`no --image given, using ${DEFAULT_BRIDGE_IMAGE}`);
  });
});

describe('podwarden bridge', () => {
  it('exits 2 naming what is missing before touching any cluster', async () => {
    const { code, stderr } = await runCommand(runBridge, ['--bus', 'b']);
    expect(code).toBe(2);
    expect(stderr).toContain('--cluster (or PODWARDEN_CLUSTER) is required');
  });

  it('prints its options on --help', async () => {
    const { code, stdout } = await runCommand(runBridge, ['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--eventbridge-endpoint');
  });
});
