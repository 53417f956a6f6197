import { dumpYaml } from '@kubernetes/client-node';
import { parseFlags } from '../../lib/bridge/config.ts';
import { DEFAULT_BRIDGE_IMAGE } from '../../lib/bridge/image.ts';
import {
  BRIDGE_NAME,
  bridgeManifests,
  FUNCTIONS_RBAC_NAME,
  functionsRbacManifests,
  roleArnProblem,
} from '../../lib/bridge/manifests.ts';
import { PROFILE_NAMES, PROFILES } from '../../lib/core/identity.ts';
import { isValidClusterName } from '../../lib/core/inbound.ts';
import type { ProfileName } from '../../lib/core/task.ts';
import { type CommandIO, EXIT, writeLine } from '../command.ts';

const HELP = `usage: podwarden manifests --cluster <name> --bus <name|arn> --region <region> [--image <image>] (--role-arn <arn> | --pod-identity) [options]
       podwarden manifests --functions-rbac --namespaces <a,b|*> [--group <name>] [--format yaml|json]

Prints the Kubernetes objects that run \`podwarden bridge\` in a cluster (apply with kubectl apply -f -):
a ServiceAccount (annotated with the IAM role for IRSA), least-privilege RBAC (get/list/watch pods
and events; create the Lease, get/update only it), a Deployment of 2 replicas with probes and
resources, and a PodDisruptionBudget. The stack's outputs BridgeRoleArn and <Cluster>BridgeManifests
give the role and the whole command.

With --functions-rbac it prints instead the Role and RoleBinding (in each namespace, or a
ClusterRole for *) that bind the group of the functions' EKS access entries to exactly what they
do: get, list, create, delete pods; list and create events.

  --cluster <name>          cluster name the bridge puts in every entry (required)
  --bus <name|arn>          EventBridge bus (required)
  --region <region>         AWS region of the bus (required)
  --image <image>           the image \`npm run image\` builds, as pushed to your registry, e.g.
                            <account>.dkr.ecr.<region>.amazonaws.com/${DEFAULT_BRIDGE_IMAGE}
                            (default ${DEFAULT_BRIDGE_IMAGE}: this version's image, by name only)
  --role-arn <arn>          the stack's BridgeRoleArn, taken through IRSA (annotates the ServiceAccount)
  --pod-identity            the role comes from the stack's EKS Pod Identity association instead
  --namespace <ns>          namespace the bridge runs in (default podwarden)
  --namespaces <a,b|*>      namespaces to watch (default *: cluster-wide rights)
  --profiles <a,b>          ${PROFILE_NAMES.join(', ')} (default airflow-kpo)
  --replicas <n>            replicas, one leads at a time (default 2)
  --lease-name <name>       leader-election Lease (default ${BRIDGE_NAME})
  --metrics-port <port>     probes and /metrics (default 8080)
  --no-namespace            do not emit the Namespace object (it exists already)
  --functions-rbac          print the functions' RBAC instead (see above)
  --group <name>            with --functions-rbac: the access entries' group (default ${FUNCTIONS_RBAC_NAME})
  --format yaml|json        yaml documents (default) or one JSON List
  --help                    this text

Exit codes: 0 printed, 2 bad arguments.`;

const FLAGS = [
  'cluster',
  'bus',
  'region',
  'image',
  'role-arn',
  'namespace',
  'namespaces',
  'profiles',
  'replicas',
  'lease-name',
  'metrics-port',
  'format',
  'group',
];

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export async function run(argv: string[], io: CommandIO): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    writeLine(io.stdout, HELP);
    return EXIT.ok;
  }
  const createNamespace = !argv.includes('--no-namespace');
  const podIdentity = argv.includes('--pod-identity');
  const switches = ['--no-namespace', '--pod-identity', '--functions-rbac'];
  const { values, problems } = parseFlags(
    argv.filter((arg) => !switches.includes(arg)),
    FLAGS,
  );
  const format = values.get('format') ?? 'yaml';
  if (format !== 'yaml' && format !== 'json') problems.push(`--format "${format}" must be yaml or json`);
  if (argv.includes('--functions-rbac')) return functionsRbac(values, problems, format, io);
  const required = (flag: string): string => {
    const value = values.get(flag)?.trim();
    if (!value) problems.push(`--${flag} is required`);
    return value ?? '';
  };
  const list = (flag: string, fallback: string) =>
    (values.get(flag) ?? fallback)
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');

  const cluster = required('cluster');
  if (cluster && !isValidClusterName(cluster))
    problems.push(`--cluster "${cluster}" is not a valid cluster name`);
  const bus = required('bus');
  const region = required('region');
  if (region && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region))
    problems.push(`--region "${region}" is not an AWS region name`);
  const givenImage = values.get('image')?.trim();
  const image = givenImage || DEFAULT_BRIDGE_IMAGE;
  if (/\s/.test(image)) problems.push(`--image "${image}" contains white space`);
  let roleArn: string | undefined;
  if (podIdentity) {
    if (values.has('role-arn')) problems.push('--role-arn and --pod-identity exclude each other: give one');
  } else {
    const given = values.get('role-arn')?.trim();
    if (!given) problems.push('--role-arn (IRSA) or --pod-identity is required');
    const arnProblem = given ? roleArnProblem(given) : undefined;
    if (arnProblem) problems.push(`--role-arn ${arnProblem}`);
    roleArn = given;
  }
  const namespace = values.get('namespace') ?? 'podwarden';
  if (!DNS_LABEL.test(namespace) || namespace.length > 63)
    problems.push(`--namespace "${namespace}" is not a namespace name`);
  const watched = list('namespaces', '*');
  const watchNamespaces = watched.includes('*') ? [] : watched;
  for (const name of watchNamespaces) {
    if (!DNS_LABEL.test(name) || name.length > 63)
      problems.push(`--namespaces: "${name}" is not a namespace name`);
  }
  const profiles = list('profiles', 'airflow-kpo');
  for (const profile of profiles) {
    if (!Object.hasOwn(PROFILES, profile))
      problems.push(`--profiles: "${profile}" is unknown (known: ${PROFILE_NAMES.join(', ')})`);
  }
  const replicas = Number(values.get('replicas') ?? '2');
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 10)
    problems.push('--replicas must be a whole number from 1 to 10');
  const leaseName = values.get('lease-name') ?? BRIDGE_NAME;
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(leaseName))
    problems.push(`--lease-name "${leaseName}" is not an object name`);
  const metricsPort = Number(values.get('metrics-port') ?? '8080');
  if (!Number.isInteger(metricsPort) || metricsPort < 1 || metricsPort > 65_535)
    problems.push('--metrics-port must be 1-65535');
  if (problems.length > 0) {
    writeLine(io.stderr, `podwarden manifests: ${problems.join('; ')}\n(see podwarden manifests --help)`);
    return EXIT.usage;
  }
  if (!givenImage) {
    // stderr, so `| kubectl apply -f -` still gets only the objects.
    writeLine(
      io.stderr,
      `podwarden manifests: no --image given, using ${DEFAULT_BRIDGE_IMAGE}; the cluster's nodes must be able to pull that name (push the image to your registry and pass --image <registry>/${DEFAULT_BRIDGE_IMAGE})`,
    );
  }
  const objects = bridgeManifests({
    cluster,
    bus,
    region,
    image,
    roleArn,
    namespace,
    watchNamespaces,
    profiles: [...new Set(profiles)] as ProfileName[],
    replicas,
    leaseName,
    metricsPort,
    createNamespace,
  });
  print(objects, format, io);
  return EXIT.ok;
}

function print(objects: Array<Record<string, unknown>>, format: string, io: CommandIO): void {
  if (format === 'json') {
    writeLine(io.stdout, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2));
  } else {
    writeLine(
      io.stdout,
      objects.map((object) => dumpYaml(object, { noRefs: true }).trimEnd()).join('\n---\n'),
    );
  }
}

const BRIDGE_ONLY_FLAGS = [
  'cluster',
  'bus',
  'region',
  'image',
  'role-arn',
  'namespace',
  'profiles',
  'replicas',
  'lease-name',
  'metrics-port',
];

/** `--functions-rbac`: the functions' Role and RoleBinding per namespace (or cluster-wide for *). */
function functionsRbac(
  values: Map<string, string>,
  problems: string[],
  format: string,
  io: CommandIO,
): number {
  for (const flag of BRIDGE_ONLY_FLAGS) {
    if (values.has(flag))
      problems.push(`--${flag} is a bridge option; --functions-rbac takes --namespaces and --group`);
  }
  const group = values.get('group')?.trim() ?? FUNCTIONS_RBAC_NAME;
  if (group === '' || /\s/.test(group) || group.startsWith('system:'))
    problems.push(`--group "${group}" is not a group an EKS access entry can carry`);
  const given = values.get('namespaces');
  // Acting everywhere (create and delete pods cluster-wide) must be asked for, never a default.
  if (given === undefined)
    problems.push('--namespaces is required with --functions-rbac (a,b, or * for every namespace)');
  const names = (given ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (given !== undefined && names.length === 0) problems.push('--namespaces names no namespace');
  const namespaces = names.includes('*') ? [] : names;
  if (names.includes('*') && names.length > 1) problems.push('--namespaces: * cannot be combined with names');
  for (const name of namespaces) {
    if (!DNS_LABEL.test(name) || name.length > 63)
      problems.push(`--namespaces: "${name}" is not a namespace name`);
  }
  if (problems.length > 0) {
    writeLine(io.stderr, `podwarden manifests: ${problems.join('; ')}\n(see podwarden manifests --help)`);
    return EXIT.usage;
  }
  print(functionsRbacManifests({ group, namespaces: [...new Set(namespaces)] }), format, io);
  return EXIT.ok;
}
