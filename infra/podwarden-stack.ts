/**
 * Podwarden on AWS: the task table, the event bus and its resource policy (only the bridge speaks
 * for a cluster), one rule per route of the route table (schedules included), the delayed check
 * queue that keeps timers on their second, one small Lambda function per handler with its own DLQ
 * and least-privilege role, the bridge's IAM role (and, when asked, its image's ECR repository), the
 * functions' EKS access entries, and the alarms and dashboard an operator needs.
 */
import { fileURLToPath } from 'node:url';
import {
  Annotations,
  CfnOutput,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  type StackProps,
  Token,
  Validations,
} from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as eks from 'aws-cdk-lib/aws-eks';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import {
  CAUSE_DIMENSION,
  METRIC,
  METRICS_NAMESPACE,
  RULE_DIMENSION,
  SERVICE_DIMENSION,
  SERVICE_NAME,
} from '../functions/shared/metric-names.ts';
import { EVENT_REJECTED } from '../functions/shared/rejected.ts';
import { BRIDGE_IMAGE_NAME, BRIDGE_IMAGE_TAG } from '../lib/bridge/image.ts';
import { BRIDGE_NAME } from '../lib/bridge/manifests.ts';
import type { ClusterConnection } from '../lib/cluster/connections.ts';
import {
  type ALL_NAMESPACES,
  ConfigError,
  type ConfigSettings,
  configEnvironment,
  loadConfig,
  routeOptions,
} from '../lib/config.ts';
import { BRIDGE_SOURCE } from '../lib/core/inbound.ts';
import type { Policy } from '../lib/core/policy.ts';
import type { ProfileName } from '../lib/core/task.ts';
import {
  DEFAULT_ORCHESTRATOR_SOURCES,
  FUNCTION_NAMES,
  type FunctionName,
  OUTBOUND_SOURCE,
  type Route,
  routeTable,
  scheduleEvent,
} from '../lib/routes.ts';
import { MAX_DELAY_SECONDS } from '../lib/scheduler/sqs-check-scheduler.ts';
import { DUE_INDEX_NAME, TTL_ATTRIBUTE, tableDefinition } from '../lib/store/schema.ts';
import { LAMBDA_BUNDLING, PASS_FUNCTION_NODE_OPTIONS } from './bundling/options.ts';
import { EventSchemas } from './event-schemas.ts';
import { wiringProblems } from './wiring-checks.ts';

const REPOSITORY_ROOT = fileURLToPath(new URL('..', import.meta.url));
const FUNCTIONS_DIR = fileURLToPath(new URL('../functions/', import.meta.url));

/** Deploy-time values never reach `tableDefinition`'s name check; this one only shapes the layout. */
const LAYOUT_TABLE_NAME = 'podwarden-layout';

export interface PodwardenStackProps extends StackProps {
  /** Cluster name -> connection. Lambda functions reach clusters only as `eks` connections. */
  clusters: Record<string, ClusterConnection>;
  /** Namespaces Podwarden may act in, or `*` for every namespace. */
  allowedNamespaces: readonly string[] | typeof ALL_NAMESPACES;
  profiles?: ProfileName[];
  /** An existing bus by name; default: a new bus made by this stack. */
  eventBusName?: string;
  /** Subscribed to the alarm topic (the subscription must be confirmed from the email). */
  alarmEmail?: string;
  /** kubernetes-event-exporter `source` -> the cluster it reports for. */
  exporterSources?: Record<string, string>;
  orchestratorSources?: string[];
  reaper?: { maxDeletes?: number; dryRun?: boolean };
  timerBatchSize?: number;
  policy?: Partial<Policy>;
  logRetention?: logs.RetentionDays;
  /** TimerLagSeconds above this for 3 of 5 minutes raises the alarm (default 300). */
  timerLagAlarmSeconds?: number;
  /**
   * IAM principals (role or user ARNs) that may put orchestrator events (`orchestratorSources`) on
   * the bus, e.g. the Airflow workers' role; none: the bus refuses every orchestrator event.
   */
  orchestratorPrincipalArns?: string[];
  /** The same for kubernetes-event-exporter's sources (`exporterSources`). */
  exporterPrincipalArns?: string[];
  /** How each cluster's bridge assumes the bridge role; a cluster not listed uses EKS Pod Identity. */
  bridge?: Record<string, BridgeIdentity>;
  /** Kubernetes group the functions' EKS access entries map to (default `podwarden-functions`). */
  functionsGroup?: string;
  /** Run the functions in these subnets with these security groups (e.g. for a private API endpoint). */
  vpc?: { subnetIds: string[]; securityGroupIds: string[] };
  /** Reserved concurrency per function, e.g. `{"check": 20}`; others share the account's pool. */
  reservedConcurrency?: Partial<Record<FunctionName, number>>;
  /**
   * Name of an ECR repository this stack makes for the bridge's image (`npm run image`); the outputs
   * then give the push command and the manifests command with that image. None: push it wherever the
   * clusters pull from.
   */
  imageRepository?: string;
}

/** Where the bridge runs in a cluster, and how its service account gets the bridge role. */
export interface BridgeIdentity {
  /** IRSA: the cluster's IAM OIDC provider; without it, an EKS Pod Identity association is made. */
  oidcProviderArn?: string;
  /** Namespace and service account of the bridge (defaults: `podwarden`, `podwarden-bridge`). */
  namespace?: string;
  serviceAccount?: string;
}

export const DEFAULT_FUNCTIONS_GROUP = 'podwarden-functions';
export const DEFAULT_BRIDGE_NAMESPACE = 'podwarden';

interface FunctionSpec {
  description: string;
  timeout: Duration;
  /** V8 options beyond the defaults (NODE_OPTIONS). */
  nodeOptions?: string;
  /** Memory, and with it CPU: Lambda gives a function one full vCPU at 1,769 MB. Default 512. */
  memoryMb?: number;
  /** `event`: asynchronous invocations by EventBridge rules; `queue`: the check queue's event source mapping. */
  trigger: 'event' | 'queue';
}

/**
 * The pass functions' memory: a full vCPU. A reaper pass over 10,000 pods is 6-7 s of CPU (the
 * scale bench), which 512 MB (0.29 vCPU) would stretch to about 20 s; the timer's rounds
 * likewise. Their heap stays small either way (PASS_FUNCTION_NODE_OPTIONS).
 */
const PASS_FUNCTION_MEMORY_MB = 1_769;

const FUNCTION_SPECS: Record<FunctionName, FunctionSpec> = {
  'pod-changed': {
    description: 'Reconciles the task of a changed pod',
    timeout: Duration.seconds(60),
    trigger: 'event',
  },
  'kubernetes-event': {
    description: 'Turns a pod disruption or image-pull event into a reconcile of its task',
    timeout: Duration.seconds(60),
    trigger: 'event',
  },
  orchestrator: {
    description: "Folds the orchestrator's task-instance state into its task",
    timeout: Duration.seconds(60),
    trigger: 'event',
  },
  timer: {
    description: 'Reconciles the tasks whose timers are due (every minute, the safety net)',
    timeout: Duration.minutes(2),
    nodeOptions: PASS_FUNCTION_NODE_OPTIONS,
    memoryMb: PASS_FUNCTION_MEMORY_MB,
    trigger: 'event',
  },
  reaper: {
    description: 'Deletes zombie pods by the reaper rules (every 5 minutes)',
    timeout: Duration.minutes(5),
    nodeOptions: PASS_FUNCTION_NODE_OPTIONS,
    memoryMb: PASS_FUNCTION_MEMORY_MB,
    trigger: 'event',
  },
  check: {
    description: 'Runs due checks from the delayed check queue, on their second',
    timeout: Duration.seconds(60),
    trigger: 'queue',
  },
};

/** Lambda's advice for an SQS event source: a visibility timeout of six times the function's. */
const CHECK_VISIBILITY_TIMEOUT = Duration.seconds(6 * 60);
/** Receives of a check before it moves to the DLQ (the sweep re-converges the task meanwhile). */
const CHECK_MAX_RECEIVE_COUNT = 5;
/** Records per check invocation; processed in parallel, each waiting at most a second. */
const CHECK_BATCH_SIZE = 10;
/** How much older than the longest delay a waiting check may get before its alarm fires. */
const CHECK_AGE_MARGIN = Duration.minutes(2);

/** DynamoDB actions the TaskStore uses; no Scan, no DeleteItem (TTL expires items), no table admin. */
const TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
];

export interface PodwardenFunction {
  handler: FunctionName;
  function: NodejsFunction;
  role: iam.Role;
  logGroup: logs.LogGroup;
  deadLetterQueue: sqs.Queue;
}

export class PodwardenStack extends Stack {
  readonly table: dynamodb.Table;
  readonly eventBus: events.IEventBus;
  readonly routes: readonly Route[];
  readonly functions: Record<FunctionName, PodwardenFunction>;
  readonly ruleDeadLetterQueues: Record<string, sqs.Queue> = {};
  /** Delayed due checks (per-message DelaySeconds), consumed by the check function. */
  readonly checkQueue: sqs.Queue;
  readonly checkDeadLetterQueue: sqs.Queue;
  readonly bridgeRole: iam.Role;
  /** Where the bridge's image is pushed, when `imageRepository` asks for one. */
  readonly imageRepository: ecr.Repository | undefined;
  readonly busPolicies: events.CfnEventBusPolicy[] = [];
  readonly accessEntries: eks.CfnAccessEntry[] = [];
  readonly alarmTopic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly #props: PodwardenStackProps;
  #here: Array<[string, EksConnectionProps]> | undefined;
  /** Every rejected (malformed) event with its problem, kept 14 days to be replayed once fixed. */
  readonly rejectedEventsQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: PodwardenStackProps) {
    super(scope, id, props);
    checkProps(props);
    this.#props = props;

    this.table = this.#table();
    this.eventBus = props.eventBusName
      ? events.EventBus.fromEventBusName(this, 'EventBus', props.eventBusName)
      : new events.EventBus(this, 'EventBus', {
          description: 'Podwarden: bridge, orchestrator and outbound events',
        });
    new EventSchemas(this, 'EventSchemas');

    this.checkDeadLetterQueue = new sqs.Queue(this, 'CheckDlq', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.checkQueue = new sqs.Queue(this, 'CheckQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: CHECK_VISIBILITY_TIMEOUT,
      // A check older than a day has long been run by the sweep.
      retentionPeriod: Duration.days(1),
      deadLetterQueue: { queue: this.checkDeadLetterQueue, maxReceiveCount: CHECK_MAX_RECEIVE_COUNT },
    });

    const environment = configEnvironment({
      ...configSettings(props, this.table.tableName, this.eventBus.eventBusName),
      checkQueueUrl: this.checkQueue.queueUrl,
    });
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.functions = Object.fromEntries(
      FUNCTION_NAMES.map((handler) => [handler, this.#function(handler, environment, retention)]),
    ) as Record<FunctionName, PodwardenFunction>;
    this.functions.check.function.addEventSource(
      new SqsEventSource(this.checkQueue, {
        batchSize: CHECK_BATCH_SIZE,
        // No batching window: a check is invoked as soon as its delay ends.
        reportBatchItemFailures: true,
      }),
    );

    this.bridgeRole = this.#bridgeRole(props);
    this.imageRepository = props.imageRepository ? this.#imageRepository(props.imageRepository) : undefined;
    this.#busPolicy(props);
    this.#clusterAccess(props);

    this.routes = routeTable(
      routeOptions({
        exporterSources: props.exporterSources ?? {},
        orchestratorSources: props.orchestratorSources ?? [...DEFAULT_ORCHESTRATOR_SOURCES],
      }),
    );
    for (const route of this.routes) this.#rule(route);
    this.rejectedEventsQueue = this.#rejectedEvents();

    this.alarmTopic = this.#alarmTopic(props.alarmEmail);
    this.#alarms(props.timerLagAlarmSeconds ?? 300);
    this.#dashboard();
    this.#outputs();
  }

  #table(): dynamodb.Table {
    const layout = tableDefinition(LAYOUT_TABLE_NAME);
    const attributeType = (name: string): dynamodb.Attribute => {
      const definition = layout.AttributeDefinitions?.find((attribute) => attribute.AttributeName === name);
      if (!definition) throw new Error(`tableDefinition has no attribute definition for ${name}`);
      const types: Record<string, dynamodb.AttributeType> = {
        S: dynamodb.AttributeType.STRING,
        N: dynamodb.AttributeType.NUMBER,
        B: dynamodb.AttributeType.BINARY,
      };
      const type = types[definition.AttributeType ?? ''];
      if (!type)
        throw new Error(`tableDefinition gives ${name} the unknown type ${definition.AttributeType}`);
      return { name, type };
    };
    const key = (schema: { AttributeName?: string; KeyType?: string }[] | undefined, keyType: string) => {
      const name = schema?.find((element) => element.KeyType === keyType)?.AttributeName;
      return name === undefined ? undefined : attributeType(name);
    };
    const partitionKey = key(layout.KeySchema, 'HASH');
    if (!partitionKey) throw new Error('tableDefinition has no partition key');
    const sortKey = key(layout.KeySchema, 'RANGE');
    const table = new dynamodb.Table(this, 'Tasks', {
      partitionKey,
      ...(sortKey ? { sortKey } : {}),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TTL_ATTRIBUTE,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Task records and their audit trail outlive a stack deletion; drop the table by hand if wanted.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of layout.GlobalSecondaryIndexes ?? []) {
      const indexPartitionKey = key(index.KeySchema, 'HASH');
      if (!index.IndexName || !indexPartitionKey)
        throw new Error('tableDefinition has an index without a name or key');
      const indexSortKey = key(index.KeySchema, 'RANGE');
      const projection = index.Projection?.ProjectionType;
      table.addGlobalSecondaryIndex({
        indexName: index.IndexName,
        partitionKey: indexPartitionKey,
        ...(indexSortKey ? { sortKey: indexSortKey } : {}),
        projectionType:
          projection === 'KEYS_ONLY'
            ? dynamodb.ProjectionType.KEYS_ONLY
            : projection === 'INCLUDE'
              ? dynamodb.ProjectionType.INCLUDE
              : dynamodb.ProjectionType.ALL,
        ...(index.Projection?.NonKeyAttributes
          ? { nonKeyAttributes: index.Projection.NonKeyAttributes }
          : {}),
      });
    }
    return table;
  }

  #function(
    handler: FunctionName,
    environment: Record<string, string>,
    retention: logs.RetentionDays,
  ): PodwardenFunction {
    const id = pascal(handler);
    const spec = FUNCTION_SPECS[handler];
    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention });
    // A role of its own instead of AWSLambdaBasicExecutionRole: logs go to this function's log group only.
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Podwarden ${handler} function`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: TABLE_ACTIONS,
        resources: [this.table.tableArn, `${this.table.tableArn}/index/${DUE_INDEX_NAME}`],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['events:PutEvents'],
        resources: [this.eventBus.eventBusArn],
        // Outbound events only: a function cannot impersonate the bridge or the orchestrator.
        conditions: { StringEquals: { 'events:source': ['podwarden'] } },
      }),
    );
    // Every function may queue the next due check of the tasks it reconciles.
    role.addToPolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.checkQueue.queueArn] }),
    );
    const vpc = this.#props.vpc;
    if (vpc) {
      role.addManagedPolicy(
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'),
      );
      Validations.of(role).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          "AWSLambdaVPCAccessExecutionRole is AWS's policy for a function's network interfaces in its VPC (ec2:CreateNetworkInterface and friends, which take no narrower resource when the function is created); it is attached only when the vpc context places the functions in subnets.",
      });
    }
    const queued = spec.trigger === 'queue';
    // A queue-fed function's failures go back to its queue, and from there to the queue's DLQ.
    const deadLetterQueue = queued ? this.checkDeadLetterQueue : this.#queue(`${id}Dlq`);
    const reserved = this.#props.reservedConcurrency?.[handler];
    const fn = new NodejsFunction(this, id, {
      entry: `${FUNCTIONS_DIR}${handler}.ts`,
      handler: 'handler',
      description: `Podwarden: ${spec.description}`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: spec.memoryMb ?? 512,
      timeout: spec.timeout,
      role,
      logGroup,
      environment: {
        ...environment,
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        NODE_OPTIONS: ['--enable-source-maps', spec.nodeOptions].filter(Boolean).join(' '),
      },
      ...(reserved !== undefined ? { reservedConcurrentExecutions: reserved } : {}),
      // Asynchronous invocations (every EventBridge target): two retries, then the function's DLQ.
      ...(queued
        ? {}
        : {
            retryAttempts: 2,
            maxEventAge: Duration.hours(1),
            onFailure: new SqsDestination(deadLetterQueue),
          }),
      projectRoot: REPOSITORY_ROOT,
      depsLockFilePath: `${REPOSITORY_ROOT}package-lock.json`,
      bundling: {
        format: OutputFormat.ESM,
        target: LAMBDA_BUNDLING.target,
        minify: LAMBDA_BUNDLING.minify,
        // Source maps double the asset; `PODWARDEN_BUNDLE_SOURCE_MAPS=true cdk deploy` adds them back.
        sourceMap: process.env.PODWARDEN_BUNDLE_SOURCE_MAPS === 'true',
        mainFields: [...LAMBDA_BUNDLING.mainFields],
        define: LAMBDA_BUNDLING.define,
        esbuildArgs: Object.fromEntries(
          Object.entries(LAMBDA_BUNDLING.alias).map(([from, to]) => [`--alias:${from}`, to]),
        ),
        // Bundle the AWS SDK too, instead of taking the runtime's: the versions tested are the versions run.
        externalModules: [],
        banner: LAMBDA_BUNDLING.banner,
      },
    });
    if (vpc) {
      // Subnets and security groups by id: no VPC lookup at synth, no VPC id to configure.
      (fn.node.defaultChild as lambda.CfnFunction).vpcConfig = {
        subnetIds: vpc.subnetIds,
        securityGroupIds: vpc.securityGroupIds,
      };
    }
    return { handler, function: fn, role, logGroup, deadLetterQueue };
  }

  /**
   * The bridge's role: it may put events on this bus with its own source and nothing else. Each
   * cluster's bridge gets it through an EKS Pod Identity association, or through IRSA when the
   * cluster's OIDC provider is given.
   */
  #bridgeRole(props: PodwardenStackProps): iam.Role {
    const clusters = this.#clustersHere(props);
    const podIdentity = clusters.filter(([name]) => !props.bridge?.[name]?.oidcProviderArn);
    const irsa = clusters.filter(([name]) => props.bridge?.[name]?.oidcProviderArn);
    const principals: iam.IAssumeRolePrincipal[] = [];
    if (podIdentity.length > 0) {
      // Pod Identity tags the session; the source account and cluster keep other clusters out.
      principals.push(
        new iam.SessionTagsPrincipal(
          new iam.ServicePrincipal('pods.eks.amazonaws.com').withConditions({
            StringEquals: { 'aws:SourceAccount': this.account },
            ArnEquals: { 'aws:SourceArn': podIdentity.map(([, connection]) => this.#clusterArn(connection)) },
          }),
        ),
      );
    }
    for (const [name] of irsa) {
      const identity = props.bridge![name]!;
      const providerArn = identity.oidcProviderArn!;
      const issuer = providerArn.slice(providerArn.indexOf('oidc-provider/') + 'oidc-provider/'.length);
      principals.push(
        new iam.WebIdentityPrincipal(providerArn, {
          StringEquals: {
            [`${issuer}:sub`]: `system:serviceaccount:${bridgeNamespace(identity)}:${bridgeServiceAccount(identity)}`,
            [`${issuer}:aud`]: 'sts.amazonaws.com',
          },
        }),
      );
    }
    const [first, ...others] = principals;
    const role = new iam.Role(this, 'BridgeRole', {
      description: 'Podwarden bridge: puts podwarden.bridge events on the Podwarden bus',
      // No cluster in this stack's region: nobody can assume it until one is configured.
      assumedBy: first ?? new iam.AccountRootPrincipal(),
    });
    for (const principal of others) principal.addToAssumeRolePolicy?.(role.assumeRolePolicy!);
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['events:PutEvents'],
        resources: [this.eventBus.eventBusArn],
        conditions: { StringEquals: { 'events:source': [BRIDGE_SOURCE] } },
      }),
    );
    for (const [name, connection] of podIdentity) {
      const identity = props.bridge?.[name] ?? {};
      new eks.CfnPodIdentityAssociation(this, `${pascal(name)}BridgePodIdentity`, {
        clusterName: connection.clusterName,
        namespace: bridgeNamespace(identity),
        serviceAccount: bridgeServiceAccount(identity),
        roleArn: role.roleArn,
      });
    }
    return role;
  }

  /**
   * Clusters whose EKS resources (access entries, Pod Identity associations) this stack can make:
   * CloudFormation is regional, so those in another region are left to the operator, with a warning.
   */
  #clustersHere(props: PodwardenStackProps): Array<[string, EksConnectionProps]> {
    if (this.#here) return this.#here;
    const here: Array<[string, EksConnectionProps]> = [];
    for (const [name, connection] of Object.entries(props.clusters) as Array<[string, EksConnectionProps]>) {
      if (!Token.isUnresolved(this.region) && connection.region !== this.region) {
        Annotations.of(this).addWarningV2(
          `podwarden:CrossRegionCluster:${name}`,
          `cluster "${name}" is in ${connection.region}, this stack in ${this.region}: make its access entries and the bridge's Pod Identity association in that region (README, Deploy)`,
        );
        continue;
      }
      here.push([name, connection]);
    }
    this.#here = here;
    return here;
  }

  #clusterArn(connection: EksConnectionProps): string {
    return this.formatArn({
      service: 'eks',
      region: connection.region,
      resource: 'cluster',
      resourceName: connection.clusterName,
    });
  }

  /**
   * Who may put which source on the bus. Same-account callers need no Allow (their IAM policy
   * suffices), so each rule is a Deny for every principal but the one that owns the source: a
   * forged bridge event from any other role is refused by EventBridge itself, not only by the intake.
   */
  #busPolicy(props: PodwardenStackProps): void {
    const functionRoles = Object.values(this.functions).map((fn) => fn.role.roleArn);
    const exporterSources = Object.keys(props.exporterSources ?? {});
    const orchestratorSources = props.orchestratorSources ?? [...DEFAULT_ORCHESTRATOR_SOURCES];
    const rules: Array<{ id: string; sources: string[]; principals: string[]; who: string }> = [
      { id: 'OnlyTheBridge', sources: [BRIDGE_SOURCE], principals: [this.bridgeRole.roleArn], who: 'bridge' },
      {
        id: 'OnlyTheFunctions',
        sources: [OUTBOUND_SOURCE],
        principals: functionRoles,
        who: 'functions',
      },
      {
        id: 'OnlyTheOrchestrator',
        sources: orchestratorSources,
        principals: props.orchestratorPrincipalArns ?? [],
        who: 'orchestratorPrincipalArns',
      },
    ];
    if (exporterSources.length > 0) {
      rules.push({
        id: 'OnlyTheExporter',
        sources: exporterSources,
        principals: props.exporterPrincipalArns ?? [],
        who: 'exporterPrincipalArns',
      });
    }
    for (const rule of rules) {
      if (rule.principals.length === 0) {
        Annotations.of(this).addWarningV2(
          `podwarden:${rule.id}`,
          `no ${rule.who} given: the bus refuses every event with source ${rule.sources.join(', ')}`,
        );
      }
      const statement = {
        Sid: rule.id,
        Effect: 'Deny',
        Principal: '*',
        Action: 'events:PutEvents',
        Resource: this.eventBus.eventBusArn,
        Condition: {
          StringEquals: { 'events:source': rule.sources },
          ...(rule.principals.length > 0 ? { ArnNotEquals: { 'aws:PrincipalArn': rule.principals } } : {}),
        },
      };
      this.busPolicies.push(
        new events.CfnEventBusPolicy(this, `Bus${rule.id}Policy`, {
          eventBusName: this.eventBus.eventBusName,
          statementId: rule.id,
          statement,
        }),
      );
    }
  }

  /** An EKS access entry per function role and cluster, mapping it to the functions' Kubernetes group. */
  #clusterAccess(props: PodwardenStackProps): void {
    const group = props.functionsGroup ?? DEFAULT_FUNCTIONS_GROUP;
    for (const [name, connection] of this.#clustersHere(props)) {
      for (const { handler, role } of Object.values(this.functions)) {
        this.accessEntries.push(
          new eks.CfnAccessEntry(this, `${pascal(handler)}${pascal(name)}AccessEntry`, {
            clusterName: connection.clusterName,
            principalArn: role.roleArn,
            kubernetesGroups: [group],
            type: 'STANDARD',
          }),
        );
      }
    }
  }

  #queue(id: string): sqs.Queue {
    const queue = new sqs.Queue(this, id, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself a dead-letter queue (a Lambda on-failure destination or an EventBridge target DLQ); nag only recognises queues named in a redrive policy.',
    });
    return queue;
  }

  #rule(route: Route): void {
    const id = pascal(route.id);
    const fn = this.functions[route.handler].function;
    const deadLetterQueue = this.#queue(`${id}TargetDlq`);
    this.ruleDeadLetterQueues[route.id] = deadLetterQueue;
    const targetOptions = {
      deadLetterQueue,
      retryAttempts: 8,
      maxEventAge: Duration.hours(1),
    };
    if (route.trigger === 'schedule') {
      // Schedules live on the default bus; the target gets the route's own event, not EventBridge's.
      new events.Rule(this, `${id}Rule`, {
        description: `Podwarden route ${route.id}: ${route.description}`,
        schedule: events.Schedule.rate(Duration.minutes(route.everyMinutes)),
        targets: [
          new eventTargets.LambdaFunction(fn, {
            ...targetOptions,
            event: events.RuleTargetInput.fromObject(
              scheduleEvent(route, { id: events.EventField.eventId, time: events.EventField.time }),
            ),
          }),
        ],
      });
      return;
    }
    new events.Rule(this, `${id}Rule`, {
      description: `Podwarden route ${route.id}: ${route.description}`,
      eventBus: this.eventBus,
      eventPattern: {
        source: [...route.pattern.source],
        ...(route.pattern['detail-type'] ? { detailType: [...route.pattern['detail-type']] } : {}),
        ...(route.pattern.detail ? { detail: route.pattern.detail as Record<string, unknown> } : {}),
      },
      targets: [new eventTargets.LambdaFunction(fn, targetOptions)],
    });
  }

  /** Issue 9: the functions put rejected events on the bus as `Event Rejected`; this keeps them. */
  #rejectedEvents(): sqs.Queue {
    const queue = this.#queue('RejectedEventsQueue');
    new events.Rule(this, 'RejectedEventsRule', {
      description: 'Podwarden: keep every rejected event with its problem, to replay it once fixed',
      eventBus: this.eventBus,
      eventPattern: { source: [OUTBOUND_SOURCE], detailType: [EVENT_REJECTED] },
      targets: [new eventTargets.SqsQueue(queue)],
    });
    new CfnOutput(this, 'RejectedEventsQueueUrl', { value: queue.queueUrl });
    return queue;
  }

  #alarmTopic(email: string | undefined): sns.Topic {
    const key = new kms.Key(this, 'AlarmTopicKey', {
      description: 'Podwarden alarm topic',
      enableKeyRotation: true,
    });
    // CloudWatch alarms publish to an encrypted topic only with use of its key.
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    const topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'Podwarden alarms',
      masterKey: key,
      enforceSSL: true,
    });
    if (email) topic.addSubscription(new EmailSubscription(email));
    return topic;
  }

  #alarm(id: string, props: cloudwatch.AlarmProps): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, props);
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    this.alarms.push(alarm);
    return alarm;
  }

  #alarms(timerLagSeconds: number): void {
    const fiveMinutes = Duration.minutes(5);
    for (const { handler, function: fn, deadLetterQueue } of Object.values(this.functions)) {
      const id = pascal(handler);
      this.#alarm(`${id}ErrorsAlarm`, {
        alarmDescription: `Podwarden ${handler}: invocations failed (each is retried, then sent to its DLQ)`,
        metric: fn.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      this.#alarm(`${id}ThrottlesAlarm`, {
        alarmDescription: `Podwarden ${handler}: invocations throttled (account or reserved concurrency)`,
        metric: fn.metricThrottles({ period: fiveMinutes, statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      this.#dlqAlarm(`${id}DlqAlarm`, deadLetterQueue, `events the ${handler} function gave up on`);
    }
    this.#alarm('CheckQueueAgeAlarm', {
      alarmDescription: `Podwarden: due checks wait in the check queue longer than their longest delay (${MAX_DELAY_SECONDS} s) plus ${CHECK_AGE_MARGIN.toHumanString()}; the check function is not keeping up or not running`,
      metric: this.checkQueue.metricApproximateAgeOfOldestMessage({
        period: Duration.minutes(1),
        statistic: 'Maximum',
      }),
      threshold: MAX_DELAY_SECONDS + CHECK_AGE_MARGIN.toSeconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    for (const [routeId, queue] of Object.entries(this.ruleDeadLetterQueues)) {
      this.#dlqAlarm(
        `${pascal(routeId)}TargetDlqAlarm`,
        queue,
        `events rule ${routeId} could not deliver to its function`,
      );
    }
    this.#alarm('MalformedEventsAlarm', {
      alarmDescription:
        'Podwarden: events were rejected as malformed (a sender or its configuration is wrong)',
      metric: podwardenMetric(METRIC.malformedEvents, 'Sum', fiveMinutes),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.#alarm('DisruptionBudgetExhaustedAlarm', {
      alarmDescription:
        'Podwarden: a task failed because its pods were disrupted more often than the re-create budget allows',
      metric: podwardenMetric(METRIC.tasksFailed, 'Sum', fiveMinutes, {
        [CAUSE_DIMENSION]: 'DisruptionBudgetExhausted',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.#alarm('TimerLagAlarm', {
      alarmDescription: `Podwarden: due timers are picked up more than ${timerLagSeconds} s late, or the timer is not running`,
      metric: podwardenMetric(METRIC.timerLagSeconds, 'Maximum', Duration.minutes(1)),
      threshold: timerLagSeconds,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      // The timer reports every minute; silence means it is not running at all.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.#alarm('ReconcileErrorsAlarm', {
      alarmDescription:
        'Podwarden: reconciles keep failing (15 minutes in a row), inside passes or invocations',
      metric: podwardenMetric(METRIC.reconcileErrors, 'Sum', fiveMinutes),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  #dlqAlarm(id: string, queue: sqs.Queue, what: string): void {
    this.#alarm(id, {
      alarmDescription: `Podwarden: dead-letter queue not empty (${what})`,
      metric: queue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }

  #dashboard(): void {
    const fns = Object.values(this.functions);
    const period = Duration.minutes(5);
    const search = (metricName: string, dimension: string, label: string) =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${METRICS_NAMESPACE},${dimension},${SERVICE_DIMENSION}} MetricName="${metricName}"', 'Sum', ${period.toSeconds()})`,
        label,
        period,
      });
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(6),
    });
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Tasks',
        width: 12,
        left: [
          podwardenMetric(METRIC.tasksRecovered, 'Sum', period),
          podwardenMetric(METRIC.imagePullWaits, 'Sum', period),
          search(METRIC.tasksFailed, CAUSE_DIMENSION, 'TasksFailed'),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'Pods reaped (by rule)',
        width: 12,
        left: [search(METRIC.podsReaped, RULE_DIMENSION, 'PodsReaped')],
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Invocations and errors',
        width: 12,
        left: fns.map(({ handler, function: fn }) => fn.metricInvocations({ period, label: handler })),
        right: fns.map(({ handler, function: fn }) =>
          fn.metricErrors({ period, label: `${handler} errors` }),
        ),
      }),
      new cloudwatch.GraphWidget({
        title: 'Problems',
        width: 12,
        left: [
          podwardenMetric(METRIC.malformedEvents, 'Sum', period),
          podwardenMetric(METRIC.reconcileErrors, 'Sum', period),
        ],
        right: [
          podwardenMetric(METRIC.timerLagSeconds, 'Maximum', Duration.minutes(1)),
          podwardenMetric(METRIC.checkLagSeconds, 'Maximum', Duration.minutes(1)),
        ],
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Check queue',
        width: 24,
        left: [
          this.checkQueue.metricApproximateNumberOfMessagesDelayed({ period, label: 'delayed checks' }),
          this.checkQueue.metricApproximateNumberOfMessagesVisible({ period, label: 'due, not yet taken' }),
          podwardenMetric(METRIC.checksNotQueued, 'Sum', period),
        ],
        right: [this.checkQueue.metricApproximateAgeOfOldestMessage({ period, label: 'oldest check (s)' })],
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Dead-letter queues (messages visible)',
        width: 24,
        left: [
          ...fns.map(({ handler, deadLetterQueue }) =>
            deadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period,
              label: `${handler} function`,
            }),
          ),
          ...Object.entries(this.ruleDeadLetterQueues).map(([routeId, queue]) =>
            queue.metricApproximateNumberOfMessagesVisible({ period, label: `${routeId} rule` }),
          ),
        ],
      }),
    );
  }

  /**
   * The bridge's image repository. Tags are immutable: a tag is a version, and a node that pulled
   * podwarden:0.1.0 once must get the same bytes again. Scanned on push, encrypted at rest (ECR's
   * AES-256). Kept when the stack is deleted, like the table: images are not the stack's to throw away.
   */
  #imageRepository(name: string): ecr.Repository {
    return new ecr.Repository(this, 'ImageRepository', {
      repositoryName: name,
      imageTagMutability: ecr.TagMutability.IMMUTABLE,
      imageScanOnPush: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          description: 'untagged images (a tag moved by hand, an interrupted push) after 14 days',
          tagStatus: ecr.TagStatus.UNTAGGED,
          maxImageAge: Duration.days(14),
        },
      ],
    });
  }

  #outputs(): void {
    new CfnOutput(this, 'EventBusName', {
      value: this.eventBus.eventBusName,
      description: 'Give it to the bridge (and the orchestrator listener) as their event bus',
    });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });
    new CfnOutput(this, 'CheckQueueUrl', { value: this.checkQueue.queueUrl });
    new CfnOutput(this, 'BridgeRoleArn', {
      value: this.bridgeRole.roleArn,
      description: 'The bridge role: podwarden manifests --role-arn <this> (IRSA) or --pod-identity',
    });
    const props = this.#props;
    const image = this.imageRepository
      ? Fn.join('', [this.imageRepository.repositoryUri, `:${BRIDGE_IMAGE_TAG}`])
      : '<image>';
    if (this.imageRepository) {
      new CfnOutput(this, 'ImageRepositoryUri', {
        value: this.imageRepository.repositoryUri,
        description: "The bridge's image repository (tags are immutable)",
      });
      new CfnOutput(this, 'PushImage', {
        description: `Pushes the image npm run image built (log skopeo in first: README, The bridge)`,
        value: Fn.join('', [
          `skopeo copy oci-archive:build/image/${BRIDGE_IMAGE_NAME}-${BRIDGE_IMAGE_TAG}.oci.tar docker://`,
          image,
        ]),
      });
    }
    for (const [name, connection] of Object.entries(props.clusters) as Array<[string, EksConnectionProps]>) {
      const identity = props.bridge?.[name] ?? {};
      const how = identity.oidcProviderArn ? ['--role-arn ', this.bridgeRole.roleArn] : ['--pod-identity'];
      new CfnOutput(this, `${pascal(name)}BridgeManifests`, {
        description: `Prints the bridge's objects for cluster ${name}; pipe to kubectl apply -f -`,
        value: Fn.join('', [
          `podwarden manifests --cluster ${name} --bus `,
          this.eventBus.eventBusName,
          ` --region ${connection.region} --namespace ${bridgeNamespace(identity)} --image `,
          image,
          ' ',
          ...how,
        ]),
      });
      new CfnOutput(this, `${pascal(name)}FunctionsRbac`, {
        description: `Prints the functions' Role and RoleBinding for cluster ${name}; pipe to kubectl apply -f -`,
        value: `podwarden manifests --functions-rbac --group ${props.functionsGroup ?? DEFAULT_FUNCTIONS_GROUP} --namespaces ${props.allowedNamespaces === '*' ? '*' : props.allowedNamespaces.join(',')}`,
      });
    }
    for (const { handler, role } of Object.values(this.functions)) {
      new CfnOutput(this, `${pascal(handler)}RoleArn`, {
        value: role.roleArn,
        description: `The ${handler} function's role (an EKS access entry maps it to the functions' Kubernetes group)`,
      });
    }
  }
}

function podwardenMetric(
  metricName: string,
  statistic: string,
  period: Duration,
  dimensions: Record<string, string> = {},
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { [SERVICE_DIMENSION]: SERVICE_NAME, ...dimensions },
    statistic,
    period,
  });
}

/** The props a Lambda deployment can run with; the same checks the functions make at start. */
function checkProps(props: PodwardenStackProps): void {
  for (const [name, connection] of Object.entries(props.clusters ?? {})) {
    if (connection?.kind !== 'eks') {
      throw new ConfigError([
        `cluster "${name}": Lambda functions reach clusters only through "eks" connections (endpoint, caData, region), not ${JSON.stringify(connection?.kind)}`,
      ]);
    }
  }
  // Placeholders for what only exists at deploy time; everything else is checked as the functions will.
  loadConfig(configEnvironment(configSettings(props, LAYOUT_TABLE_NAME, props.eventBusName ?? 'podwarden')));
  const wiring = wiringProblems(props);
  if (wiring.length > 0) throw new ConfigError(wiring);
  if (props.timerLagAlarmSeconds !== undefined && !(props.timerLagAlarmSeconds > 0)) {
    throw new ConfigError([
      `timerLagAlarmSeconds must be a positive number, got ${props.timerLagAlarmSeconds}`,
    ]);
  }
}

function configSettings(props: PodwardenStackProps, tableName: string, eventBusName: string): ConfigSettings {
  return {
    tableName,
    eventBusName,
    clusters: props.clusters,
    allowedNamespaces: props.allowedNamespaces,
    ...(props.profiles ? { profiles: props.profiles } : {}),
    ...(props.reaper ? { reaper: props.reaper } : {}),
    ...(props.timerBatchSize !== undefined ? { timerBatchSize: props.timerBatchSize } : {}),
    ...(props.policy ? { policy: props.policy } : {}),
    ...(props.exporterSources ? { exporterSources: props.exporterSources } : {}),
    ...(props.orchestratorSources ? { orchestratorSources: props.orchestratorSources } : {}),
  };
}

type EksConnectionProps = Extract<ClusterConnection, { kind: 'eks' }>;

function bridgeNamespace(identity: BridgeIdentity): string {
  return identity.namespace ?? DEFAULT_BRIDGE_NAMESPACE;
}

function bridgeServiceAccount(identity: BridgeIdentity): string {
  return identity.serviceAccount ?? BRIDGE_NAME;
}

/** `pod-changed` -> `PodChanged`: construct ids from handler and route names. */
function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}
