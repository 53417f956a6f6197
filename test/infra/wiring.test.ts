// The stack's production wiring, on the synthesized template: the delayed check queue and its
// consumer, the bus policy (who may speak with which source), the bridge's role, the functions'
// EKS access entries, VPC placement and reserved concurrency. Policies are asserted by their exact
// principals, actions and conditions, and the bus policy is also evaluated for concrete callers,
// so that a wrong or missing principal fails a test.
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { PodwardenStack, type PodwardenStackProps } from '../../infra/podwarden-stack.ts';
import type { ClusterConnection } from '../../lib/cluster/connections.ts';
import { ConfigError } from '../../lib/config.ts';
import { FUNCTION_NAMES } from '../../lib/routes.ts';
import packageJson from '../../package.json' with { type: 'json' };
import { CA_DATA } from '../support/ca.ts';

const eksCluster = (clusterName: string, region = 'eu-west-1'): ClusterConnection => ({
  kind: 'eks',
  clusterName,
  endpoint: `https://${clusterName.toUpperCase()}.gr7.${region}.eks.amazonaws.com`,
  caData: CA_DATA,
  region,
});
const ACCOUNT = '123456789012';
const AIRFLOW_ROLE = `arn:aws:iam::${ACCOUNT}:role/airflow-workers`;
const EXPORTER_ROLE = `arn:aws:iam::${ACCOUNT}:role/event-exporter`;
const OIDC_PROVIDER = `arn:aws:iam::${ACCOUNT}:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/B1E2C3D4`;
const PROPS: PodwardenStackProps = {
  clusters: { prod: eksCluster('prod-eu'), batch: eksCluster('batch-eu') },
  allowedNamespaces: ['airflow'],
  exporterSources: { 'k8s.events.prod': 'prod' },
  orchestratorPrincipalArns: [AIRFLOW_ROLE],
  exporterPrincipalArns: [EXPORTER_ROLE],
  bridge: { batch: { oidcProviderArn: OIDC_PROVIDER, namespace: 'ops' } },
  env: { account: ACCOUNT, region: 'eu-west-1' },
};

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = {
  Sid?: string;
  Effect: string;
  Principal?: unknown;
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
};

function synth(props: PodwardenStackProps = PROPS, id = 'Podwarden') {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PodwardenStack(app, id, props);
  const template = Template.fromStack(stack);
  return { stack, template, resources: template.toJSON().Resources as Record<string, Resource> };
}

let stack: PodwardenStack;
let template: Template;
let resources: Record<string, Resource>;
beforeAll(() => {
  ({ stack, template, resources } = synth());
});

const logicalId = (construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);
const arnOf = (construct: { node: { defaultChild?: unknown } }) => ({
  'Fn::GetAtt': [logicalId(construct), 'Arn'],
});
const ofType = (type: string) => Object.entries(resources).filter(([, resource]) => resource.Type === type);
const policyStatements = (roleId: string): Statement[] =>
  ofType('AWS::IAM::Policy')
    .filter(([, policy]) => JSON.stringify(policy.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap(([, policy]) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);

describe('check queue', () => {
  it('is encrypted, TLS-only, redrives to its DLQ after 5 receives, with six times the function timeout as visibility', () => {
    const queue = resources[logicalId(stack.checkQueue)]!;
    expect(queue.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      VisibilityTimeout: 360,
      MessageRetentionPeriod: 86_400,
      RedrivePolicy: { deadLetterTargetArn: arnOf(stack.checkDeadLetterQueue), maxReceiveCount: 5 },
    });
    expect(resources[logicalId(stack.checkDeadLetterQueue)]!.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1_209_600,
    });
    const tlsOnly = ofType('AWS::SQS::QueuePolicy').filter(([, policy]) =>
      JSON.stringify(policy.Properties.Queues).includes(logicalId(stack.checkQueue)),
    );
    expect(JSON.stringify(tlsOnly)).toContain('"aws:SecureTransport":"false"');
    expect(resources[logicalId(stack.functions.check.function)]!.Properties.Timeout).toBe(60);
  });

  it('feeds the check function, reporting batch item failures, without a batching window', () => {
    const mappings = ofType('AWS::Lambda::EventSourceMapping');
    expect(mappings).toHaveLength(1);
    expect(mappings[0]![1].Properties).toEqual({
      EventSourceArn: arnOf(stack.checkQueue),
      FunctionName: { Ref: logicalId(stack.functions.check.function) },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    // The check function is invoked by the mapping only: no asynchronous retries or destination.
    const invokeConfigs = ofType('AWS::Lambda::EventInvokeConfig').filter(
      ([, config]) =>
        JSON.stringify(config.Properties.FunctionName) ===
        JSON.stringify({ Ref: logicalId(stack.functions.check.function) }),
    );
    expect(invokeConfigs).toEqual([]);
  });

  it('alarms on its DLQ and on checks waiting longer than the longest delay', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack.checkDeadLetterQueue), 'QueueName'] } },
      ],
      Threshold: 1,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack.checkQueue), 'QueueName'] } },
      ],
      Statistic: 'Maximum',
      Threshold: 900 + 120,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });
});

/**
 * EventBridge's decision for a same-account PutEvents under this bus policy: the caller's IAM policy
 * allows it (the functions' and the bridge's roles are checked separately), so only a Deny matters.
 */
function busAllows(statements: Statement[], principalArn: unknown, source: string): boolean {
  const key = JSON.stringify(principalArn);
  return !statements.some((statement) => {
    if (statement.Effect !== 'Deny' || statement.Principal !== '*') return false;
    if ([statement.Action].flat().every((action) => action !== 'events:PutEvents')) return false;
    const sources = statement.Condition?.StringEquals?.['events:source'] as string[] | undefined;
    if (!sources?.includes(source)) return false;
    const exempt = statement.Condition?.ArnNotEquals?.['aws:PrincipalArn'] as unknown[] | undefined;
    return !(exempt ?? []).some((arn) => JSON.stringify(arn) === key);
  });
}

describe('bus policy', () => {
  const busStatements = () =>
    ofType('AWS::Events::EventBusPolicy').map(([, policy]) => {
      expect(policy.Properties.EventBusName).toEqual({ Ref: logicalId(stack.eventBus as never) });
      const statement = policy.Properties.Statement as Statement;
      expect(statement.Resource).toEqual({ 'Fn::GetAtt': [logicalId(stack.eventBus as never), 'Arn'] });
      expect(policy.Properties.StatementId).toBe(statement.Sid);
      return statement;
    });

  it('denies each source to everyone but its owner, by exact principal', () => {
    const bySid = Object.fromEntries(busStatements().map((statement) => [statement.Sid, statement]));
    expect(Object.keys(bySid).sort()).toEqual([
      'OnlyTheBridge',
      'OnlyTheExporter',
      'OnlyTheFunctions',
      'OnlyTheOrchestrator',
    ]);
    expect(bySid.OnlyTheBridge!.Condition).toEqual({
      StringEquals: { 'events:source': ['podwarden.bridge'] },
      ArnNotEquals: { 'aws:PrincipalArn': [arnOf(stack.bridgeRole)] },
    });
    expect(bySid.OnlyTheFunctions!.Condition).toEqual({
      StringEquals: { 'events:source': ['podwarden'] },
      ArnNotEquals: { 'aws:PrincipalArn': FUNCTION_NAMES.map((name) => arnOf(stack.functions[name].role)) },
    });
    expect(bySid.OnlyTheOrchestrator!.Condition).toEqual({
      StringEquals: { 'events:source': ['airflow.listener'] },
      ArnNotEquals: { 'aws:PrincipalArn': [AIRFLOW_ROLE] },
    });
    expect(bySid.OnlyTheExporter!.Condition).toEqual({
      StringEquals: { 'events:source': ['k8s.events.prod'] },
      ArnNotEquals: { 'aws:PrincipalArn': [EXPORTER_ROLE] },
    });
  });

  it('lets each sender put its own source and refuses forged ones', () => {
    const statements = busStatements();
    const bridge = arnOf(stack.bridgeRole);
    const timer = arnOf(stack.functions.timer.role);
    const stranger = `arn:aws:iam::${ACCOUNT}:role/someone-else`;
    expect(busAllows(statements, bridge, 'podwarden.bridge')).toBe(true);
    expect(busAllows(statements, timer, 'podwarden')).toBe(true);
    expect(busAllows(statements, AIRFLOW_ROLE, 'airflow.listener')).toBe(true);
    expect(busAllows(statements, EXPORTER_ROLE, 'k8s.events.prod')).toBe(true);
    // Forgeries: a stranger, a function or the orchestrator speaking for a cluster; the bridge
    // speaking as Podwarden or as the orchestrator.
    expect(busAllows(statements, stranger, 'podwarden.bridge')).toBe(false);
    expect(busAllows(statements, timer, 'podwarden.bridge')).toBe(false);
    expect(busAllows(statements, AIRFLOW_ROLE, 'podwarden.bridge')).toBe(false);
    expect(busAllows(statements, bridge, 'podwarden')).toBe(false);
    expect(busAllows(statements, bridge, 'airflow.listener')).toBe(false);
    expect(busAllows(statements, stranger, 'airflow.listener')).toBe(false);
    expect(busAllows(statements, stranger, 'k8s.events.prod')).toBe(false);
  });

  it('refuses every orchestrator event when no orchestrator principal is named, and says so', () => {
    const { stack: closed, template: closedTemplate } = synth(
      { ...PROPS, orchestratorPrincipalArns: undefined, exporterSources: undefined },
      'Closed',
    );
    const statements = Object.values(closedTemplate.findResources('AWS::Events::EventBusPolicy')).map(
      (policy) => policy.Properties.Statement as Statement,
    );
    expect(statements.map((statement) => statement.Sid).sort()).toEqual([
      'OnlyTheBridge',
      'OnlyTheFunctions',
      'OnlyTheOrchestrator',
    ]);
    expect(busAllows(statements, AIRFLOW_ROLE, 'airflow.listener')).toBe(false);
    Annotations.fromStack(closed).hasWarning(
      '*',
      Match.stringLikeRegexp(
        'no orchestratorPrincipalArns given: the bus refuses every event with source airflow.listener',
      ),
    );
  });

  it('puts the policy on an existing bus too', () => {
    const { template: shared } = synth({ ...PROPS, eventBusName: 'shared-bus' }, 'Shared');
    const policies = Object.values(shared.findResources('AWS::Events::EventBusPolicy'));
    expect(policies).toHaveLength(4);
    for (const policy of policies) expect(policy.Properties.EventBusName).toBe('shared-bus');
  });
});

describe('bridge role', () => {
  it('is assumable through Pod Identity on its clusters and through IRSA by the bridge service account only', () => {
    const trust = resources[logicalId(stack.bridgeRole)]!.Properties.AssumeRolePolicyDocument as {
      Statement: Statement[];
    };
    expect(trust.Statement).toEqual([
      {
        Effect: 'Allow',
        Principal: { Service: 'pods.eks.amazonaws.com' },
        Action: ['sts:AssumeRole', 'sts:TagSession'],
        Condition: {
          StringEquals: { 'aws:SourceAccount': ACCOUNT },
          ArnEquals: {
            'aws:SourceArn': [
              {
                'Fn::Join': [
                  '',
                  ['arn:', { Ref: 'AWS::Partition' }, `:eks:eu-west-1:${ACCOUNT}:cluster/prod-eu`],
                ],
              },
            ],
          },
        },
      },
      {
        Effect: 'Allow',
        Principal: { Federated: OIDC_PROVIDER },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            'oidc.eks.eu-west-1.amazonaws.com/id/B1E2C3D4:sub': 'system:serviceaccount:ops:podwarden-bridge',
            'oidc.eks.eu-west-1.amazonaws.com/id/B1E2C3D4:aud': 'sts.amazonaws.com',
          },
        },
      },
    ]);
  });

  it('may put events on this bus with its own source and nothing else', () => {
    expect(policyStatements(logicalId(stack.bridgeRole))).toEqual([
      {
        Effect: 'Allow',
        Action: 'events:PutEvents',
        Resource: { 'Fn::GetAtt': [logicalId(stack.eventBus as never), 'Arn'] },
        Condition: { StringEquals: { 'events:source': ['podwarden.bridge'] } },
      },
    ]);
  });

  it('is associated with the bridge service account on the Pod Identity clusters', () => {
    expect(
      ofType('AWS::EKS::PodIdentityAssociation').map(([, association]) => association.Properties),
    ).toEqual([
      {
        ClusterName: 'prod-eu',
        Namespace: 'podwarden',
        ServiceAccount: 'podwarden-bridge',
        RoleArn: arnOf(stack.bridgeRole),
      },
    ]);
  });

  it('is an output, with the manifests command for each cluster', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.BridgeRoleArn?.Value).toEqual(arnOf(stack.bridgeRole));
    expect(JSON.stringify(outputs.ProdBridgeManifests?.Value)).toContain('--pod-identity');
    expect(JSON.stringify(outputs.BatchBridgeManifests?.Value)).toContain(
      `--role-arn ",${JSON.stringify(arnOf(stack.bridgeRole))}`,
    );
    expect(outputs.ProdFunctionsRbac?.Value).toBe(
      'podwarden manifests --functions-rbac --group podwarden-functions --namespaces airflow',
    );
  });
});

describe('EKS access entries', () => {
  it('maps every function role on every cluster to the functions group', () => {
    const entries = ofType('AWS::EKS::AccessEntry').map(([, entry]) => entry.Properties);
    const expected = ['prod-eu', 'batch-eu'].flatMap((clusterName) =>
      FUNCTION_NAMES.map((name) => ({
        ClusterName: clusterName,
        PrincipalArn: arnOf(stack.functions[name].role),
        KubernetesGroups: ['podwarden-functions'],
        Type: 'STANDARD',
      })),
    );
    expect(entries).toHaveLength(expected.length);
    expect(entries).toEqual(expect.arrayContaining(expected));
  });

  it('leaves clusters of another region to the operator, with a warning', () => {
    const { stack: split, template: splitTemplate } = synth(
      {
        ...PROPS,
        clusters: { ...PROPS.clusters, us: eksCluster('us-east', 'us-east-1') },
        functionsGroup: 'airflow-supervisors',
      },
      'Split',
    );
    const entries = Object.values(splitTemplate.findResources('AWS::EKS::AccessEntry'));
    expect(entries.map((entry) => entry.Properties.ClusterName)).not.toContain('us-east');
    expect(new Set(entries.map((entry) => JSON.stringify(entry.Properties.KubernetesGroups)))).toEqual(
      new Set([JSON.stringify(['airflow-supervisors'])]),
    );
    Annotations.fromStack(split).hasWarning(
      '*',
      Match.stringLikeRegexp('cluster "us" is in us-east-1, this stack in eu-west-1'),
    );
  });
});

describe('VPC and concurrency', () => {
  const placed = () =>
    synth(
      {
        ...PROPS,
        vpc: { subnetIds: ['subnet-0a1b2c3d', 'subnet-4e5f6a7b'], securityGroupIds: ['sg-0123abcd'] },
        reservedConcurrency: { check: 20, reaper: 1 },
      },
      'Placed',
    );

  it('places every function in the given subnets with the given security group', () => {
    const { stack: inVpc, resources: vpcResources } = placed();
    for (const name of FUNCTION_NAMES) {
      const fn = vpcResources[inVpc.getLogicalId(inVpc.functions[name].function.node.defaultChild as never)]!;
      expect(fn.Properties.VpcConfig).toEqual({
        SubnetIds: ['subnet-0a1b2c3d', 'subnet-4e5f6a7b'],
        SecurityGroupIds: ['sg-0123abcd'],
      });
      const role = vpcResources[inVpc.getLogicalId(inVpc.functions[name].role.node.defaultChild as never)]!;
      expect(JSON.stringify(role.Properties.ManagedPolicyArns)).toContain(
        'service-role/AWSLambdaVPCAccessExecutionRole',
      );
    }
    // Without the context, no function is in a VPC and no role has a managed policy.
    for (const [, resource] of ofType('AWS::Lambda::Function'))
      expect(resource.Properties.VpcConfig).toBeUndefined();
  });

  it('reserves concurrency only where the context asks', () => {
    const { stack: inVpc, resources: vpcResources } = placed();
    const reserved = (name: (typeof FUNCTION_NAMES)[number]) =>
      vpcResources[inVpc.getLogicalId(inVpc.functions[name].function.node.defaultChild as never)]!.Properties
        .ReservedConcurrentExecutions;
    expect(reserved('check')).toBe(20);
    expect(reserved('reaper')).toBe(1);
    expect(reserved('timer')).toBeUndefined();
  });

  it('stays cdk-nag clean with the VPC policy acknowledged', () => {
    const { stack: inVpc } = placed();
    const report = new AwsSolutionsChecks().validateScope(inVpc);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
  });

  it('refuses bad wiring props, naming each', () => {
    const attempt = () =>
      synth(
        {
          ...PROPS,
          orchestratorPrincipalArns: ['airflow-workers'],
          bridge: { elsewhere: {}, prod: { oidcProviderArn: 'oidc.eks.example' } },
          functionsGroup: 'system:masters',
          vpc: { subnetIds: [], securityGroupIds: ['sg-nope'] },
          reservedConcurrency: { check: 0, cron: 3 } as never,
        },
        'Bad',
      );
    expect(attempt).toThrow(ConfigError);
    for (const problem of [
      /orchestratorPrincipalArns: "airflow-workers" is not an IAM role, user or root ARN/,
      /bridge: cluster "elsewhere" is not in clusters/,
      /bridge.prod.oidcProviderArn: "oidc.eks.example" is not an IAM OIDC provider ARN/,
      /functionsGroup: "system:masters": EKS access entries refuse groups starting with system:/,
      /vpc.subnetIds: give at least one subnet id/,
      /vpc.securityGroupIds: "sg-nope" is not a security group id/,
      /reservedConcurrency.check: 0 is not a whole number from 1 to 1000/,
      /reservedConcurrency: "cron" is not a function/,
    ]) {
      expect(attempt).toThrow(problem);
    }
  });
});

describe('image repository', () => {
  const withRepository = () => synth({ ...PROPS, imageRepository: 'platform/podwarden' }, 'WithImages');

  it('is made only when asked: immutable tags, scanned on push, kept with the stack', () => {
    expect(ofType('AWS::ECR::Repository')).toEqual([]);
    expect(stack.imageRepository).toBeUndefined();
    const { resources: withResources, template: withTemplate } = withRepository();
    const repositories = Object.values(withResources).filter(
      (resource) => resource.Type === 'AWS::ECR::Repository',
    );
    expect(repositories).toHaveLength(1);
    expect(repositories[0]!.Properties).toMatchObject({
      RepositoryName: 'platform/podwarden',
      ImageTagMutability: 'IMMUTABLE',
      ImageScanningConfiguration: { ScanOnPush: true },
    });
    withTemplate.hasResource('AWS::ECR::Repository', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('fills the push command and the manifests --image with <repository>:<version>', () => {
    const { stack: withImages, template: withTemplate } = withRepository();
    const outputs = withTemplate.toJSON().Outputs as Record<string, { Value: unknown }>;
    const uri = withImages.resolve(withImages.imageRepository!.repositoryUri);
    expect(outputs.ImageRepositoryUri?.Value).toEqual(uri);
    expect(outputs.PushImage?.Value).toEqual({
      'Fn::Join': [
        '',
        [
          `skopeo copy oci-archive:build/image/podwarden-${packageJson.version}.oci.tar docker://`,
          ...uri['Fn::Join'][1],
          `:${packageJson.version}`,
        ],
      ],
    });
    const manifests = JSON.stringify(outputs.ProdBridgeManifests?.Value);
    expect(manifests).toMatch(
      new RegExp(`--image ",.*\\{"Ref":"ImageRepository\\w+"\\},":${packageJson.version} --pod-identity"`),
    );
    expect(manifests).not.toContain('<image>');
    // Without a repository the operator fills the image in.
    const plain = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(JSON.stringify(plain.ProdBridgeManifests?.Value)).toContain('--image <image> ');
    expect(plain.PushImage).toBeUndefined();
  });

  it('stays cdk-nag clean and refuses a name ECR would refuse', () => {
    const report = new AwsSolutionsChecks().validateScope(withRepository().stack);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
    expect(() => synth({ ...PROPS, imageRepository: 'Podwarden' }, 'BadImages')).toThrow(
      /imageRepository: "Podwarden" is not an ECR repository name/,
    );
  });
});
