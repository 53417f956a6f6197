// `podwarden manifests` for the stack's wiring: the bridge under EKS Pod Identity (no IRSA
// annotation), and `--functions-rbac`, the Role and RoleBinding behind the functions' access entries.
import { PassThrough } from 'node:stream';
import { loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { run as runManifests } from '../../bin/commands/manifests.ts';
import { FUNCTIONS_RULES, functionsRbacManifests } from '../../lib/bridge/manifests.ts';
import type { Cluster } from '../../lib/core/ports.ts';

type K8sObject = {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: the tests read deep into plain manifest objects.
} & Record<string, any>;

async function manifests(argv: string[]) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk) => out.push(String(chunk)));
  stderr.on('data', (chunk) => err.push(String(chunk)));
  const code = await runManifests(argv, { stdin: new PassThrough(), stdout, stderr });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

const BRIDGE = [
  '--cluster',
  'prod',
  '--bus',
  'podwarden',
  '--region',
  'eu-west-1',
  '--image',
  'registry.example/podwarden:0.1.0',
];

describe('podwarden manifests: the bridge role', () => {
  it('with --pod-identity leaves the service account unannotated (the association gives the role)', async () => {
    const { code, stdout } = await manifests([...BRIDGE, '--pod-identity']);
    expect(code).toBe(0);
    const account = (loadAllYaml(stdout) as K8sObject[]).find((object) => object.kind === 'ServiceAccount');
    expect(account?.metadata).toMatchObject({ name: 'podwarden-bridge', namespace: 'podwarden' });
    expect(account?.metadata.annotations).toBeUndefined();
  });

  it('with --role-arn annotates it for IRSA', async () => {
    const arn = 'arn:aws:iam::123456789012:role/Podwarden-BridgeRole317484EB-AbC';
    const { code, stdout } = await manifests([...BRIDGE, '--role-arn', arn]);
    expect(code).toBe(0);
    const account = (loadAllYaml(stdout) as K8sObject[]).find((object) => object.kind === 'ServiceAccount');
    expect(account?.metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': arn });
  });

  it('wants exactly one of the two', async () => {
    const neither = await manifests(BRIDGE);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('--role-arn (IRSA) or --pod-identity is required');
    const both = await manifests([
      ...BRIDGE,
      '--pod-identity',
      '--role-arn',
      'arn:aws:iam::123456789012:role/x',
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--role-arn and --pod-identity exclude each other');
  });
});

describe('podwarden manifests --functions-rbac', () => {
  it('binds the group in each namespace to get/list/create/delete pods and list/create events, nothing more', async () => {
    const { code, stdout } = await manifests([
      '--functions-rbac',
      '--namespaces',
      'airflow,batch',
      '--group',
      'pw-fns',
    ]);
    expect(code).toBe(0);
    const objects = loadAllYaml(stdout) as K8sObject[];
    expect(objects.map((object) => `${object.kind}/${object.metadata.namespace}`)).toEqual([
      'Role/airflow',
      'RoleBinding/airflow',
      'Role/batch',
      'RoleBinding/batch',
    ]);
    for (const role of objects.filter((object) => object.kind === 'Role')) {
      expect(role.rules).toEqual([
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'create', 'delete'] },
        { apiGroups: [''], resources: ['events'], verbs: ['list', 'create'] },
      ]);
    }
    for (const binding of objects.filter((object) => object.kind === 'RoleBinding')) {
      expect(binding.subjects).toEqual([
        { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'pw-fns' },
      ]);
      expect(binding.roleRef).toEqual({
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: 'podwarden-functions',
      });
    }
  });

  it('is cluster-wide only when * is asked for', async () => {
    const { code, stdout } = await manifests(['--functions-rbac', '--namespaces', '*']);
    expect(code).toBe(0);
    const objects = loadAllYaml(stdout) as K8sObject[];
    expect(objects.map((object) => object.kind)).toEqual(['ClusterRole', 'ClusterRoleBinding']);
    expect(objects[1]?.subjects).toEqual([
      { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'podwarden-functions' },
    ]);
  });

  it('refuses to guess the namespaces, and names bad arguments', async () => {
    const missing = await manifests(['--functions-rbac']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--namespaces is required with --functions-rbac');
    const bad = await manifests([
      '--functions-rbac',
      '--namespaces',
      'Bad_Name',
      '--group',
      'system:masters',
      '--bus',
      'x',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--namespaces: "Bad_Name" is not a namespace name');
    expect(bad.stderr).toContain('--group "system:masters" is not a group an EKS access entry can carry');
    expect(bad.stderr).toContain('--bus is a bridge option');
  });

  it('covers every Cluster port call the functions make, as the verb the API server checks', () => {
    // Each method of the Cluster port (lib/core/ports.ts) and the request KubeCluster makes for it;
    // a new method must be added here, and its verb to FUNCTIONS_RULES, or this fails to compile.
    const requests: Record<keyof Cluster, { resource: string; verb: string }> = {
      getPod: { resource: 'pods', verb: 'get' },
      listPods: { resource: 'pods', verb: 'list' },
      createPod: { resource: 'pods', verb: 'create' },
      deletePod: { resource: 'pods', verb: 'delete' },
      listEvents: { resource: 'events', verb: 'list' },
      createEvent: { resource: 'events', verb: 'create' },
    };
    const granted = new Set(
      FUNCTIONS_RULES.flatMap((rule) => rule.resources.flatMap((r) => rule.verbs.map((v) => `${v} ${r}`))),
    );
    for (const { resource, verb } of Object.values(requests))
      expect(granted).toContain(`${verb} ${resource}`);
    // Kubernetes Events on the task's pod (the decisions, told to kubectl describe and the operator).
    expect(granted).toContain('create events');
    expect(granted.size).toBe(6);
    expect(functionsRbacManifests({ group: 'g', namespaces: ['a'] })).toHaveLength(2);
  });
});
