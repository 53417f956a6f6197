// The schema registry in the synthesized template: one schema per published event, holding the very
// JSON Schema checked in under schemas/. Bundling is skipped (the functions' code is irrelevant here).
import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { PodwardenStack } from '../../infra/podwarden-stack.ts';
import { PUBLISHED_SCHEMAS } from '../../lib/core/schemas/index.ts';
import { CA_DATA } from '../support/ca.ts';

let template: Template;

beforeAll(() => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new PodwardenStack(app, 'Podwarden', {
    clusters: {
      prod: {
        kind: 'eks',
        clusterName: 'prod',
        endpoint: 'https://ABC123.gr7.eu-west-1.eks.amazonaws.com',
        caData: CA_DATA,
        region: 'eu-west-1',
      },
    },
    allowedNamespaces: ['airflow'],
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  template = Template.fromStack(stack);
});

describe('event schema registry', () => {
  it('has one registry named after the stack', () => {
    template.resourceCountIs('AWS::EventSchemas::Registry', 1);
    template.hasResourceProperties('AWS::EventSchemas::Registry', { RegistryName: 'Podwarden-events' });
  });

  it('registers every published event as JSON Schema draft 4, the content being the checked-in file', () => {
    const registryId = Object.keys(template.findResources('AWS::EventSchemas::Registry'))[0]!;
    const schemas = Object.values(template.findResources('AWS::EventSchemas::Schema')) as Array<{
      Properties: { SchemaName: string; Type: string; Content: string; RegistryName: unknown };
    }>;
    expect(schemas.map((schema) => schema.Properties.SchemaName).sort()).toEqual(
      PUBLISHED_SCHEMAS.map((published) => published.name).sort(),
    );
    for (const { Properties } of schemas) {
      expect(Properties.Type).toBe('JSONSchemaDraft4');
      // The schema waits for the registry: its name is the registry's attribute, not a copy.
      expect(Properties.RegistryName).toEqual({ 'Fn::GetAtt': [registryId, 'RegistryName'] });
      const file = new URL(`../../schemas/${Properties.SchemaName}.json`, import.meta.url);
      expect(JSON.parse(Properties.Content)).toEqual(JSON.parse(readFileSync(file, 'utf8')));
    }
    template.hasResourceProperties('AWS::EventSchemas::Schema', {
      SchemaName: 'podwarden@TaskFailed',
      Description: Match.stringLikeRegexp('failed for good'),
    });
  });
});
