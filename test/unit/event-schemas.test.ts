import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { orchestratorIntake } from '../../functions/shared/intake.ts';
import type { PodwardenConfig } from '../../lib/config.ts';
import type { OutboundEvent } from '../../lib/core/action.ts';
import { parseInboundEvent } from '../../lib/core/inbound.ts';
import { INBOUND_EVENTS } from '../../lib/core/schemas/inbound.ts';
import { jsonSchemaOf, PUBLISHED_SCHEMAS } from '../../lib/core/schemas/index.ts';
import { OUTBOUND_DETAILS, outboundEventProblem } from '../../lib/core/schemas/outbound.ts';
import {
  acceptedBridgeEvents,
  EXPORTER_SOURCE,
  exporterEvent,
  fixturePodChanges,
  refusedBridgeEvents,
  taskInstanceDetail,
} from '../support/inbound-cases.ts';

const SCHEMAS_DIR = new URL('../../schemas/', import.meta.url);

describe('published schemas', () => {
  it('are the checked-in files, one per event (run `npm run schemas` after changing lib/core/schemas)', () => {
    const files = readdirSync(SCHEMAS_DIR).filter((file) => file.endsWith('.json'));
    expect(files.sort()).toEqual(PUBLISHED_SCHEMAS.map((published) => `${published.name}.json`).sort());
    for (const published of PUBLISHED_SCHEMAS) {
      const checkedIn = JSON.parse(readFileSync(new URL(`${published.name}.json`, SCHEMAS_DIR), 'utf8'));
      expect(checkedIn, `schemas/${published.name}.json is stale`).toEqual(jsonSchemaOf(published));
    }
  });

  it('cover every outbound and inbound event, and each example matches its schema', () => {
    expect(PUBLISHED_SCHEMAS.map((published) => published.detailType).sort()).toEqual(
      [...Object.keys(OUTBOUND_DETAILS), ...Object.keys(INBOUND_EVENTS)].sort(),
    );
    for (const published of PUBLISHED_SCHEMAS) {
      const result = published.schema.safeParse(published.example);
      expect(result.success, `${published.name}: ${result.error?.message}`).toBe(true);
      expect(published.example).toMatchObject({
        source: published.source,
        'detail-type': published.detailType,
      });
    }
  });

  it('describe the envelope with a fixed source and detail-type, in JSON Schema draft 4', () => {
    for (const published of PUBLISHED_SCHEMAS) {
      const schema = jsonSchemaOf(published) as {
        $schema: string;
        properties: Record<string, { enum?: unknown[] }>;
        required: string[];
      };
      expect(schema.$schema).toBe('http://json-schema.org/draft-04/schema#');
      expect(schema.properties['detail-type']?.enum).toEqual([published.detailType]);
      if (published.direction === 'outbound')
        expect(schema.properties.source?.enum).toEqual([published.source]);
      expect(schema.required).toEqual(expect.arrayContaining(['detail-type', 'source', 'detail']));
    }
  });
});

describe('README', () => {
  it('shows one example of each event, each matching its schema', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.split('## Events on the bus')[1]!.split('\n## ')[0]!;
    const examples = [...section.matchAll(/```json\n([\s\S]*?)\n```/g)].map(
      (match) => JSON.parse(match[1]!) as Record<string, unknown>,
    );
    expect(examples.map((example) => example['detail-type'])).toEqual(
      PUBLISHED_SCHEMAS.map((published) => published.detailType),
    );
    for (const example of examples) {
      const published = PUBLISHED_SCHEMAS.find((entry) => entry.detailType === example['detail-type'])!;
      expect(published.schema.safeParse(example).success, published.name).toBe(true);
    }
  });
});

describe('outbound events', () => {
  const example = (type: string) =>
    PUBLISHED_SCHEMAS.find((published) => published.detailType === type)!.example
      .detail as unknown as OutboundEvent;

  it('accept what the engine emits and name the field that is wrong', () => {
    expect(outboundEventProblem(example('Task Failed'))).toBeUndefined();
    expect(
      outboundEventProblem({ ...example('Task Failed'), tryNumber: -1 } as unknown as OutboundEvent),
    ).toMatch(/^tryNumber: /);
    expect(outboundEventProblem({ ...example('Task Failed'), extra: 1 } as unknown as OutboundEvent)).toMatch(
      /extra/,
    );
    expect(
      outboundEventProblem({ ...example('Task Failed'), rule: 'stale-try' } as unknown as OutboundEvent),
    ).toMatch(/rule/);
    expect(
      outboundEventProblem({ ...example('Pod Reaped'), rule: 'whim' } as unknown as OutboundEvent),
    ).toMatch(/^rule: /);
    expect(
      outboundEventProblem({ ...example('Pod Reaped'), type: 'Pod Exploded' } as unknown as OutboundEvent),
    ).toBe('type "Pod Exploded" is not an outbound event type');
  });
});

/** The published schema's verdict on an event as an EventBridge target receives it. */
function schemaAccepts(event: unknown): boolean {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return false;
  const envelope = event as Record<string, unknown>;
  const schema = (INBOUND_EVENTS as Record<string, (typeof INBOUND_EVENTS)[keyof typeof INBOUND_EVENTS]>)[
    String(envelope['detail-type'])
  ];
  if (!schema) return false;
  let detail = envelope.detail;
  // A sender may put the detail on the wire as a JSON string; the schema describes the JSON in it.
  if (typeof detail === 'string') {
    try {
      detail = JSON.parse(detail);
    } catch {
      return false;
    }
  }
  return schema.safeParse({ ...envelope, detail }).success;
}

describe('the parsers refuse exactly what the published schemas refuse', () => {
  const bridgeCases: Array<[string, unknown]> = [
    ...acceptedBridgeEvents(),
    ...fixturePodChanges(),
    ...refusedBridgeEvents().map(([name, event]): [string, unknown] => [name, event]),
  ];

  it.each(bridgeCases)('%s', (_name, event) => {
    expect(schemaAccepts(event)).toBe(parseInboundEvent(event).ok);
  });

  it('the accepted cases are accepted and the refused ones refused (the agreement is not vacuous)', () => {
    expect(acceptedBridgeEvents().every(([, event]) => schemaAccepts(event))).toBe(true);
    expect(fixturePodChanges().every(([, event]) => schemaAccepts(event))).toBe(true);
    expect(refusedBridgeEvents().some(([, event]) => schemaAccepts(event))).toBe(false);
  });

  it('kubernetes-event-exporter events are not Podwarden\u2019s format, so no schema of Podwarden claims them', () => {
    expect(parseInboundEvent(exporterEvent, { exporterSources: { [EXPORTER_SOURCE]: 'prod-eu' } }).ok).toBe(
      true,
    );
    expect(schemaAccepts(exporterEvent)).toBe(false);
  });

  const config: Pick<
    PodwardenConfig,
    'clusters' | 'profiles' | 'allowedNamespaces' | 'exporterSources' | 'orchestratorSources'
  > = {
    clusters: new Map([['prod', { kind: 'kubeconfig', path: '/dev/null' } as never]]),
    profiles: ['airflow-kpo', 'generic'],
    allowedNamespaces: [],
    exporterSources: {},
    orchestratorSources: ['airflow.listener'],
  };
  const good = taskInstanceDetail;
  const taskInstance = (detail: unknown) => ({
    version: '0',
    id: 'e-1',
    source: 'airflow.listener',
    'detail-type': 'Task Instance Changed',
    time: '2026-01-02T03:04:05Z',
    detail,
  });
  const { try_number: _try, ...withoutTry } = good;
  const { map_index: _map, ...unmapped } = good;
  const taskCases: Array<[string, unknown, boolean]> = [
    ['a task instance', taskInstance(good), true],
    ['unmapped (no map_index)', taskInstance(unmapped), true],
    ['map_index null', taskInstance({ ...good, map_index: null }), true],
    ['map_index as a string', taskInstance({ ...good, map_index: ' 3 ' }), true],
    ['the detail as a JSON string', taskInstance(JSON.stringify(good)), true],
    ['an explicit profile', taskInstance({ ...good, profile: 'airflow-kpo' }), true],
    ['no try number', taskInstance(withoutTry), false],
    ['a negative try number', taskInstance({ ...good, try_number: -1 }), false],
    ['a try number as a string', taskInstance({ ...good, try_number: '1' }), false],
    ['a fractional try number', taskInstance({ ...good, try_number: 1.5 }), false],
    ['a map_index below -1', taskInstance({ ...good, map_index: -2 }), false],
    ['a map_index that is no number', taskInstance({ ...good, map_index: 'x' }), false],
    ['a map_index that is an object', taskInstance({ ...good, map_index: {} }), false],
    ['a blank dag_id', taskInstance({ ...good, dag_id: '  ' }), false],
    ['no run_id', taskInstance({ ...good, run_id: undefined }), false],
    ['no state', taskInstance({ ...good, state: '' }), false],
    ['a bad cluster', taskInstance({ ...good, cluster: '../x' }), false],
    ['a bad namespace', taskInstance({ ...good, namespace: 'Air Flow' }), false],
    ['an unknown profile', taskInstance({ ...good, profile: 'cron' }), false],
    ['a detail that is not an object', taskInstance([]), false],
    ['another detail-type', { ...taskInstance(good), 'detail-type': 'Task Exploded' }, false],
  ];

  it.each(taskCases)('Task Instance Changed: %s', (_name, event, accepted) => {
    expect(orchestratorIntake(event, config).kind !== 'malformed').toBe(accepted);
    expect(schemaAccepts(event)).toBe(accepted);
  });
});
