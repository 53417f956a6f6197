/**
 * The CDK app (cdk.json: `node infra/app.ts`, run by Node 24 with type stripping). Configuration
 * comes from context; see README.md "Deploy". cdk-nag's AwsSolutions checks run on every synth, and
 * an unacknowledged finding stops it.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type ContextKey, stackPropsFromContext } from './context.ts';
import { PodwardenStack } from './podwarden-stack.ts';

const app = new App();
const { stackName, props } = stackPropsFromContext((key: ContextKey) => app.node.tryGetContext(key));
new PodwardenStack(app, stackName, {
  ...props,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description: 'Podwarden: serverless supervisor for Kubernetes pod tasks',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
