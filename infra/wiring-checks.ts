/**
 * Checks of the stack's AWS wiring props (bus principals, bridge identities, the functions'
 * Kubernetes group, VPC placement, reserved concurrency). Each problem starts with the prop's name,
 * which is also its CDK context key; infra/context.ts and the stack both report them.
 */
import { FUNCTION_NAMES } from '../lib/routes.ts';
import type { PodwardenStackProps } from './podwarden-stack.ts';

type WiringProps = Pick<
  PodwardenStackProps,
  | 'clusters'
  | 'orchestratorPrincipalArns'
  | 'exporterPrincipalArns'
  | 'bridge'
  | 'functionsGroup'
  | 'vpc'
  | 'reservedConcurrency'
  | 'imageRepository'
>;

// What aws:PrincipalArn holds for a role session, an IAM user, or an account's root.
const PRINCIPAL_ARN =
  /^arn:aws[a-z-]*:iam::\d{12}:(role\/[\w+=,.@\-/]{1,512}|user\/[\w+=,.@\-/]{1,512}|root)$/;
const OIDC_PROVIDER_ARN = /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/[A-Za-z0-9.-]+(\/[A-Za-z0-9._-]+)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;
const SECURITY_GROUP_ID = /^sg-[0-9a-f]{8,17}$/;
// ECR's repository name rule (namespaces separated by /), 2 to 256 characters.
const ECR_REPOSITORY = /^(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
/** Lambda's default account concurrency; a reservation above it cannot be granted anyway. */
const MAX_RESERVED_CONCURRENCY = 1_000;

export function wiringProblems(props: Partial<WiringProps>): string[] {
  const problems: string[] = [];
  for (const key of ['orchestratorPrincipalArns', 'exporterPrincipalArns'] as const) {
    for (const arn of props[key] ?? []) {
      if (!PRINCIPAL_ARN.test(arn)) {
        problems.push(
          `${key}: ${JSON.stringify(arn)} is not an IAM role, user or root ARN (arn:aws:iam::123456789012:role/name)`,
        );
      }
    }
  }
  for (const [cluster, identity] of Object.entries(props.bridge ?? {})) {
    if (props.clusters && !Object.hasOwn(props.clusters, cluster)) {
      problems.push(
        `bridge: cluster "${cluster}" is not in clusters (configured: ${Object.keys(props.clusters).join(', ')})`,
      );
    }
    if (typeof identity !== 'object' || identity === null || Array.isArray(identity)) {
      problems.push(`bridge.${cluster}: must be an object with oidcProviderArn, namespace, serviceAccount`);
      continue;
    }
    for (const field of Object.keys(identity)) {
      if (!['oidcProviderArn', 'namespace', 'serviceAccount'].includes(field)) {
        problems.push(
          `bridge.${cluster}: unknown field "${field}" (known: oidcProviderArn, namespace, serviceAccount)`,
        );
      }
    }
    if (identity.oidcProviderArn !== undefined && !OIDC_PROVIDER_ARN.test(identity.oidcProviderArn)) {
      problems.push(
        `bridge.${cluster}.oidcProviderArn: ${JSON.stringify(identity.oidcProviderArn)} is not an IAM OIDC provider ARN (arn:aws:iam::123456789012:oidc-provider/oidc.eks.<region>.amazonaws.com/id/<id>)`,
      );
    }
    if (identity.namespace !== undefined && !DNS_LABEL.test(identity.namespace)) {
      problems.push(
        `bridge.${cluster}.namespace: ${JSON.stringify(identity.namespace)} is not a namespace name`,
      );
    }
    if (identity.serviceAccount !== undefined && !SERVICE_ACCOUNT.test(identity.serviceAccount)) {
      problems.push(
        `bridge.${cluster}.serviceAccount: ${JSON.stringify(identity.serviceAccount)} is not a service account name`,
      );
    }
  }
  if (props.functionsGroup !== undefined) {
    const group = props.functionsGroup;
    if (typeof group !== 'string' || group.trim() === '' || group.length > 255 || /\s/.test(group)) {
      problems.push(`functionsGroup: ${JSON.stringify(group)} is not a Kubernetes group name`);
    } else if (group.startsWith('system:')) {
      problems.push(`functionsGroup: "${group}": EKS access entries refuse groups starting with system:`);
    }
  }
  if (props.vpc !== undefined) {
    const { subnetIds, securityGroupIds } = props.vpc;
    if (!Array.isArray(subnetIds) || subnetIds.length === 0) {
      problems.push(
        'vpc.subnetIds: give at least one subnet id (subnet-...), ideally one per availability zone',
      );
    } else {
      for (const id of subnetIds) {
        if (!SUBNET_ID.test(id))
          problems.push(`vpc.subnetIds: ${JSON.stringify(id)} is not a subnet id (subnet-0123abcd)`);
      }
    }
    if (!Array.isArray(securityGroupIds) || securityGroupIds.length === 0) {
      problems.push('vpc.securityGroupIds: give at least one security group id (sg-...)');
    } else {
      for (const id of securityGroupIds) {
        if (!SECURITY_GROUP_ID.test(id))
          problems.push(
            `vpc.securityGroupIds: ${JSON.stringify(id)} is not a security group id (sg-0123abcd)`,
          );
      }
    }
  }
  for (const [name, value] of Object.entries(props.reservedConcurrency ?? {})) {
    if (!(FUNCTION_NAMES as readonly string[]).includes(name)) {
      problems.push(`reservedConcurrency: "${name}" is not a function (known: ${FUNCTION_NAMES.join(', ')})`);
    } else if (
      !Number.isSafeInteger(value) ||
      (value as number) < 1 ||
      (value as number) > MAX_RESERVED_CONCURRENCY
    ) {
      // 0 would throttle every invocation: a disabled function, not a limit.
      problems.push(
        `reservedConcurrency.${name}: ${JSON.stringify(value)} is not a whole number from 1 to ${MAX_RESERVED_CONCURRENCY}`,
      );
    }
  }
  if (props.imageRepository !== undefined && !ECR_REPOSITORY.test(props.imageRepository)) {
    problems.push(
      `imageRepository: ${JSON.stringify(props.imageRepository)} is not an ECR repository name (lower-case letters, digits, . _ - and /, e.g. podwarden or platform/podwarden)`,
    );
  }
  return problems;
}
