// The synthesized CloudFormation of the Podwarden stack, checked against the route table, the store's
// table definition and the alarm list. Bundling is skipped here (one synth shared by the file);
// test/infra/bundle.test.ts bundles and runs the real function code.
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/shared/metric-names.ts';
import { PASS_FUNCTION_NODE_OPTIONS } from '../../infra/bundling/options.ts';
import { PodwardenStack, type PodwardenStackProps } from '../../infra/podwarden-stack.ts';
import type { ClusterConnection } from '../../lib/cluster/connections.ts';
import { ConfigError, ENV, loadConfig } from '../../lib/config.ts';
import { FUNCTION_NAMES, HANDLER_NAMES } from '../../lib/routes.ts';
import { TTL_ATTRIBUTE, tableDefinition } from '../../lib/store/schema.ts';
import { CA_DATA } from '../support/ca.ts';

// Only the PEM armour matters: the CA is parsed when a TLS connection is made, never here.
const CLUSTERS: Record<string, ClusterConnection> = {
  prod: {
    kind: 'eks',
    clusterName: 'prod-eu',
    endpoint: 'https://ABC123.gr7.eu-west-1.eks.amazonaws.com',
    caData: CA_DATA,
    region: 'eu-west-1',
  },
};
const PROPS: PodwardenStackProps = {
  clusters: CLUSTERS,
  allowedNamespaces: ['airflow', 'batch'],
  alarmEmail: 'oncall@example.com',
  exporterSources: { 'k8s.events.prod': 'prod' },
  policy: { recreateBudget: 4 },
  env: { account: '123456789012', region: 'eu-west-1' },
};

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };

/** A stack without bundling: the functions' code is a placeholder asset. */
function synth(
  props: PodwardenStackProps = PROPS,
  id = 'Podwarden',
): { stack: PodwardenStack; template: Template } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PodwardenStack(app, id, props);
  return { stack, template: Template.fromStack(stack) };
}

let stack: PodwardenStack;
let template: Template;
let resources: Record<string, Resource>;

beforeAll(() => {
  ({ stack, template } = synth());
  resources = template.toJSON().Resources as Record<string, Resource>;
});

function logicalId(construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as never);
}

function ofType(type: string): Array<[string, Resource]> {
  return Object.entries(resources).filter(([, resource]) => resource.Type === type);
}

describe('table', () => {
  it('has the keys, attributes and index of tableDefinition, on demand, with TTL and PITR', () => {
    const layout = tableDefinition('any-name');
    const [[, table]] = ofType('AWS::DynamoDB::Table') as [[string, Resource]];
    const sortByName = <T extends { AttributeName?: string }>(items: T[]) =>
      [...items].sort((a, b) => String(a.AttributeName).localeCompare(String(b.AttributeName)));
    expect(table.Properties.KeySchema).toEqual(layout.KeySchema);
    expect(sortByName(table.Properties.AttributeDefinitions as [])).toEqual(
      sortByName(layout.AttributeDefinitions ?? []),
    );
    expect(table.Properties.GlobalSecondaryIndexes).toEqual(layout.GlobalSecondaryIndexes);
    expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: TTL_ATTRIBUTE, Enabled: true });
    expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(table.DeletionPolicy).toBe('Retain');
  });
});

describe('rules', () => {
  it('has one rule per route, and nothing else', () => {
    expect(stack.routes.map((route) => route.id)).toContain('exporter-kubernetes-event');
    // Plus the rule that keeps rejected events (issue 9).
    template.resourceCountIs('AWS::Events::Rule', stack.routes.length + 1);
  });

  it('keeps every rejected event, with its problem, on a queue of its own', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: logicalId(stack.eventBus as never) },
      EventPattern: { source: ['podwarden'], 'detail-type': ['Event Rejected'] },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [logicalId(stack.rejectedEventsQueue), 'Arn'] } })],
    });
    expect(resources[logicalId(stack.rejectedEventsQueue)]?.Properties.MessageRetentionPeriod).toBe(
      1_209_600,
    );
    // EventBridge may send to it: the queue policy the target adds.
    expect(JSON.stringify(ofType('AWS::SQS::QueuePolicy'))).toContain('events.amazonaws.com');
  });

  it('gives each event route its pattern on the bus, targeting its handler with a DLQ', () => {
    const busId = logicalId(stack.eventBus as never);
    for (const route of stack.routes.filter((candidate) => candidate.trigger === 'event')) {
      const fnId = logicalId(stack.functions[route.handler].function);
      const dlqId = logicalId(stack.ruleDeadLetterQueues[route.id]!);
      template.hasResourceProperties('AWS::Events::Rule', {
        EventBusName: { Ref: busId },
        EventPattern: Match.exact(JSON.parse(JSON.stringify(route.pattern))),
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [fnId, 'Arn'] },
            DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlqId, 'Arn'] } },
            RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 3600 },
          }),
        ],
      });
    }
  });

  it('schedules the timer every minute and the reaper every 5, each delivering its route event', () => {
    const expected = { timer: 'rate(1 minute)', reaper: 'rate(5 minutes)' } as const;
    for (const route of stack.routes.filter((candidate) => candidate.trigger === 'schedule')) {
      const handler = route.handler as keyof typeof expected;
      const fnId = logicalId(stack.functions[handler].function);
      const [rule] = ofType('AWS::Events::Rule').filter(([, resource]) => {
        const targets = resource.Properties.Targets as Array<{ Arn: unknown }>;
        return JSON.stringify(targets[0]?.Arn) === JSON.stringify({ 'Fn::GetAtt': [fnId, 'Arn'] });
      });
      expect(rule, route.id).toBeDefined();
      const properties = rule![1].Properties;
      expect(properties.ScheduleExpression).toBe(expected[handler]);
      expect(properties.EventBusName).toBeUndefined();
      const target = (properties.Targets as Array<Record<string, { InputTemplate: string }>>)[0]!;
      // The template's placeholders are filled by EventBridge; put strings in them to read it back.
      const delivered = JSON.parse(target.InputTransformer!.InputTemplate.replace(/<(id|time)>/g, '"$1"'));
      expect(delivered).toEqual({
        version: '0',
        id: 'id',
        source: route.pattern.source[0],
        'detail-type': route.pattern['detail-type']?.[0],
        time: 'time',
        detail: {},
      });
    }
  });

  it('uses an existing bus by name instead of making one', () => {
    const existing = synth({ ...PROPS, eventBusName: 'shared-bus' }, 'ExistingBus').template;
    existing.resourceCountIs('AWS::Events::EventBus', 0);
    const rules = Object.values(existing.findResources('AWS::Events::Rule'));
    expect(rules.filter((rule) => rule.Properties.EventBusName === 'shared-bus')).toHaveLength(5);
  });
});

describe('functions', () => {
  it('runs every handler on arm64 and Node.js 24, logging to a log group of its own with retention', () => {
    template.resourceCountIs('AWS::Lambda::Function', FUNCTION_NAMES.length);
    for (const handler of FUNCTION_NAMES) {
      const { logGroup, role } = stack.functions[handler];
      template.hasResourceProperties('AWS::Lambda::Function', {
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        LoggingConfig: { LogGroup: { Ref: logicalId(logGroup) } },
        Role: { 'Fn::GetAtt': [logicalId(role), 'Arn'] },
      });
      expect(resources[logicalId(logGroup)]?.Properties.RetentionInDays).toBe(30);
    }
  });

  it('retries asynchronous invocations twice, then sends them to the function DLQ', () => {
    for (const handler of HANDLER_NAMES) {
      const { function: fn, deadLetterQueue } = stack.functions[handler];
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: logicalId(fn) },
        MaximumRetryAttempts: 2,
        DestinationConfig: {
          OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(deadLetterQueue), 'Arn'] } },
        },
      });
    }
  });

  it('configures the functions with environment variables loadConfig accepts', () => {
    const [[, fn]] = ofType('AWS::Lambda::Function') as [[string, Resource]];
    const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables[ENV.tableName]).toEqual({ Ref: logicalId(stack.table) });
    expect(variables[ENV.eventBusName]).toEqual({ Ref: logicalId(stack.eventBus as never) });
    expect(variables[ENV.checkQueueUrl]).toEqual({ Ref: logicalId(stack.checkQueue) });
    // Stand-ins for the deploy-time references; everything else is the literal the function reads.
    const env = Object.fromEntries(
      Object.entries(variables).map(([name, value]) => [
        name,
        typeof value === 'string'
          ? value
          : name === ENV.checkQueueUrl
            ? 'https://sqs.eu-west-1.amazonaws.com/123456789012/Podwarden-CheckQueue'
            : 'resolved-at-deploy',
      ]),
    );
    const config = loadConfig(env);
    expect(config.allowedNamespaces).toEqual(['airflow', 'batch']);
    expect(config.exporterSources).toEqual({ 'k8s.events.prod': 'prod' });
    expect(config.policy.recreateBudget).toBe(4);
    expect([...config.clusters.keys()]).toEqual(['prod']);
    expect(variables.POWERTOOLS_METRICS_NAMESPACE).toBe(METRICS_NAMESPACE);
    expect(variables.POWERTOOLS_SERVICE_NAME).toBe(SERVICE_NAME);
  });

  it('gives the pass functions, and only them, a full vCPU and the young generation their lists need', () => {
    for (const handler of HANDLER_NAMES) {
      const id = logicalId(stack.functions[handler].function);
      const properties = template.toJSON().Resources[id].Properties;
      const variables = (properties.Environment as { Variables: Record<string, string> }).Variables;
      const passes = handler === 'reaper' || handler === 'timer';
      expect(properties.MemorySize).toBe(passes ? 1769 : 512);
      expect(variables.NODE_OPTIONS).toBe(
        passes ? `--enable-source-maps ${PASS_FUNCTION_NODE_OPTIONS}` : '--enable-source-maps',
      );
    }
  });
});

describe('IAM', () => {
  type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Condition?: unknown };
  const statementsOf = (roleId: string): Statement[] =>
    ofType('AWS::IAM::Policy')
      .filter(([, policy]) => JSON.stringify(policy.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
      .flatMap(([, policy]) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  const actionsOf = (statement: Statement) => [statement.Action].flat();

  it('grants each role only its log group, the table and its index, PutEvents as podwarden, the check queue, and its DLQ', () => {
    const tableArn = { 'Fn::GetAtt': [logicalId(stack.table), 'Arn'] };
    const checkQueueArn = JSON.stringify({ 'Fn::GetAtt': [logicalId(stack.checkQueue), 'Arn'] });
    for (const handler of FUNCTION_NAMES) {
      const { role, logGroup, deadLetterQueue } = stack.functions[handler];
      const roleResource = resources[logicalId(role)]!;
      expect(roleResource.Properties.ManagedPolicyArns).toBeUndefined();
      expect(roleResource.Properties.AssumeRolePolicyDocument).toMatchObject({
        Statement: [{ Principal: { Service: 'lambda.amazonaws.com' } }],
      });
      const statements = statementsOf(logicalId(role));
      const byResource = new Map(
        statements.map((statement) => [JSON.stringify(statement.Resource), statement]),
      );
      expect(statements.every((statement) => statement.Effect === 'Allow')).toBe(true);

      expect(
        actionsOf(byResource.get(JSON.stringify({ 'Fn::GetAtt': [logicalId(logGroup), 'Arn'] }))!),
      ).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
      const table = byResource.get(
        JSON.stringify([tableArn, { 'Fn::Join': ['', [tableArn, '/index/due-timers']] }]),
      )!;
      expect(actionsOf(table).sort()).toEqual(
        [
          'dynamodb:BatchGetItem',
          'dynamodb:BatchWriteItem',
          'dynamodb:ConditionCheckItem',
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:Query',
          'dynamodb:UpdateItem',
        ].sort(),
      );
      const putEvents = byResource.get(
        JSON.stringify({ 'Fn::GetAtt': [logicalId(stack.eventBus as never), 'Arn'] }),
      )!;
      expect(actionsOf(putEvents)).toEqual(['events:PutEvents']);
      expect(putEvents.Condition).toEqual({ StringEquals: { 'events:source': ['podwarden'] } });
      const checkQueue = statements.filter(
        (statement) => JSON.stringify(statement.Resource) === checkQueueArn,
      );
      if (handler === 'check') {
        // The event source mapping's own grant (receive, delete, ...) and the send of the next check.
        expect(checkQueue.flatMap(actionsOf).sort()).toEqual(
          [
            'sqs:ChangeMessageVisibility',
            'sqs:DeleteMessage',
            'sqs:GetQueueAttributes',
            'sqs:GetQueueUrl',
            'sqs:ReceiveMessage',
            'sqs:SendMessage',
          ].sort(),
        );
        // Its failures return to the queue, whose redrive (not the function) feeds the DLQ.
        expect(byResource.has(JSON.stringify({ 'Fn::GetAtt': [logicalId(deadLetterQueue), 'Arn'] }))).toBe(
          false,
        );
        expect(statements).toHaveLength(5);
      } else {
        expect(checkQueue.flatMap(actionsOf)).toEqual(['sqs:SendMessage']);
        const dlq = byResource.get(JSON.stringify({ 'Fn::GetAtt': [logicalId(deadLetterQueue), 'Arn'] }))!;
        expect(actionsOf(dlq)).toContain('sqs:SendMessage');
        expect(statements).toHaveLength(5);
      }
    }
  });

  it('has no wildcard action or resource, no table scan or delete, and no EKS API access', () => {
    const text = JSON.stringify(ofType('AWS::IAM::Policy'));
    expect(text).not.toMatch(/"\*"|:\*"/);
    expect(text).not.toMatch(/dynamodb:(Scan|DeleteItem|DeleteTable|\*)/);
    expect(text).not.toMatch(/"eks:/);
  });
});

describe('alarms', () => {
  type AlarmProperties = Record<string, unknown>;
  const alarms = (): AlarmProperties[] =>
    ofType('AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties);
  const topicRef = () => ({ Ref: logicalId(stack.alarmTopic) });

  it('sends every alarm to the SNS topic, which mails the on-call address', () => {
    expect(alarms().length).toBeGreaterThan(0);
    for (const alarm of alarms()) expect(alarm.AlarmActions).toEqual([topicRef()]);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
      TopicArn: topicRef(),
    });
  });

  it('alarms on errors and throttles of every function', () => {
    for (const handler of FUNCTION_NAMES) {
      const functionName = { Ref: logicalId(stack.functions[handler].function) };
      for (const metricName of ['Errors', 'Throttles']) {
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          Namespace: 'AWS/Lambda',
          MetricName: metricName,
          Dimensions: [{ Name: 'FunctionName', Value: functionName }],
          Statistic: 'Sum',
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        });
      }
    }
  });

  it('alarms on every dead-letter queue that is not empty', () => {
    const queues = [
      ...Object.values(stack.functions).map((fn) => fn.deadLetterQueue),
      ...Object.values(stack.ruleDeadLetterQueues),
    ];
    // Every queue is a DLQ but the check queue itself (its age has an alarm of its own) and the
    // rejected-events queue, watched by MalformedEventsAlarm instead (every message is one).
    expect(queues).toHaveLength(ofType('AWS::SQS::Queue').length - 2);
    for (const queue of queues) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(queue), 'QueueName'] } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    }
  });

  it.each([
    [METRIC.malformedEvents, {}, 'Sum', 1, 'GreaterThanOrEqualToThreshold'],
    [METRIC.tasksFailed, { cause: 'DisruptionBudgetExhausted' }, 'Sum', 1, 'GreaterThanOrEqualToThreshold'],
    [METRIC.timerLagSeconds, {}, 'Maximum', 300, 'GreaterThanThreshold'],
    [METRIC.reconcileErrors, {}, 'Sum', 1, 'GreaterThanOrEqualToThreshold'],
  ] as const)(
    'alarms on %s %o (%s, threshold %d)',
    (metricName, dimensions, statistic, threshold, comparison) => {
      const expectedDimensions = Object.entries({ ...dimensions, service: SERVICE_NAME })
        .map(([Name, Value]) => ({ Name, Value }))
        .sort((a, b) => a.Name.localeCompare(b.Name));
      const matching = alarms().filter(
        (alarm) => alarm.Namespace === METRICS_NAMESPACE && alarm.MetricName === metricName,
      );
      expect(matching).toHaveLength(1);
      expect(matching[0]).toMatchObject({
        Statistic: statistic,
        Threshold: threshold,
        ComparisonOperator: comparison,
      });
      expect(matching[0]?.Dimensions).toEqual(expectedDimensions);
    },
  );

  it('treats a silent timer as late', () => {
    const [timerLag] = alarms().filter((alarm) => alarm.MetricName === METRIC.timerLagSeconds);
    expect(timerLag).toMatchObject({
      TreatMissingData: 'breaching',
      Period: 60,
      EvaluationPeriods: 5,
      DatapointsToAlarm: 3,
    });
  });

  it('has a dashboard that shows every alarm', () => {
    const [[, dashboard]] = ofType('AWS::CloudWatch::Dashboard') as [[string, Resource]];
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const [id] of ofType('AWS::CloudWatch::Alarm')) expect(body).toContain(id);
    for (const metricName of Object.values(METRIC)) expect(body).toContain(metricName);
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged in the stack', () => {
    const report = new AwsSolutionsChecks().validateScope(stack);
    const findings = report.violations.map((violation) => ({
      rule: violation.ruleName,
      where: violation.violatingResources.map(
        (resource) => resource.constructPath ?? resource.resourceLogicalId,
      ),
    }));
    expect(findings).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('would find a queue without encryption or TLS (so the check above can fail)', () => {
    const control = new Stack(new App(), 'Control');
    new sqs.Queue(control, 'Plain', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    const rules = new AwsSolutionsChecks()
      .validateScope(control)
      .violations.map((violation) => violation.ruleName);
    expect(rules).toEqual(expect.arrayContaining([expect.stringMatching(/AwsSolutions-SQS4/)]));
  });
});

describe('props', () => {
  it('refuses cluster connections a Lambda function cannot use', () => {
    expect(() =>
      synth({ ...PROPS, clusters: { dev: { kind: 'kubeconfig', path: '/home/me/.kube/config' } } }, 'Bad'),
    ).toThrow(/cluster "dev": Lambda functions reach clusters only through "eks" connections/);
  });

  it('checks the rest as the functions will, naming the variable', () => {
    const attempt = () =>
      synth({ ...PROPS, allowedNamespaces: ['Not_A_Namespace'], reaper: { maxDeletes: -1 } }, 'Bad2');
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/PODWARDEN_ALLOWED_NAMESPACES: "Not_A_Namespace" is not a valid namespace name/);
    expect(attempt).toThrow(/PODWARDEN_REAPER_MAX_DELETES/);
  });
});
