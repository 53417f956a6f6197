/**
 * Podwarden's event schemas in an EventBridge schema registry, so that consumers browse them and
 * download code bindings: one `AWS::EventSchemas::Schema` (JSON Schema draft 4) per published event,
 * the very documents checked in under `schemas/`, generated from the schemas the code validates with.
 */
import { Stack } from 'aws-cdk-lib';
import { CfnRegistry, CfnSchema } from 'aws-cdk-lib/aws-eventschemas';
import { Construct } from 'constructs';
import { jsonSchemaOf, PUBLISHED_SCHEMAS } from '../lib/core/schemas/index.ts';

export class EventSchemas extends Construct {
  readonly registry: CfnRegistry;
  readonly schemas: Record<string, CfnSchema> = {};

  constructor(scope: Construct, id: string) {
    super(scope, id);
    // Registry names are unique per account and region: one per stack.
    this.registry = new CfnRegistry(this, 'Registry', {
      registryName: `${Stack.of(this).stackName}-events`,
      description: 'Podwarden: the events it sends (source podwarden) and the ones it accepts',
    });
    for (const published of PUBLISHED_SCHEMAS) {
      this.schemas[published.name] = new CfnSchema(this, published.name.replace(/[^A-Za-z0-9]/g, ''), {
        registryName: this.registry.attrRegistryName,
        schemaName: published.name,
        type: 'JSONSchemaDraft4',
        description: published.description,
        content: JSON.stringify(jsonSchemaOf(published)),
      });
    }
  }
}
