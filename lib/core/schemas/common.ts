/**
 * The building blocks of Podwarden's event schemas, on zod/mini: the same zod 4 schemas and JSON
 * Schema output as classic zod, at a fraction of the bundle (the sink, in every handler that emits,
 * carries them). lib/core/inbound.ts parses inbound events with them, so a published schema says
 * what the code accepts; each says what is wrong with a refused value (lib/core/schemas/problems.ts
 * puts the field's name in front). Pure: no AWS or Kubernetes import.
 */

import { en } from 'zod/locales';
import * as z from 'zod/mini';
import { describe, notAn, says } from './problems.ts';

// zod/mini starts without messages; English ones make the problems it reports readable.
z.config(en());

export const described = <T extends z.ZodMiniType>(schema: T, description: string): T =>
  schema.check(z.meta({ description }));

export const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function isValidClusterName(name: string): boolean {
  return CLUSTER_NAME.test(name);
}

/** A required name: missing or empty says so, a malformed one is shown with what it is not. */
const aName = (what: string) =>
  says((input) =>
    typeof input === 'string' && input !== ''
      ? `${describe(input)} is not ${what}`
      : `is ${describe(input)}, not a non-empty string`,
  );

/** For a check that makes the ones after it pointless: one problem per field is enough. */
const first = <T extends object>(params: T) => ({ ...params, abort: true });

export const clusterName = described(
  z.string(aName('a valid cluster name')).check(z.regex(CLUSTER_NAME, aName('a valid cluster name'))),
  'The cluster name Podwarden is configured with.',
);

// Names end up in API paths of the receiver's re-read, so anything outside Kubernetes' own name
// grammar is refused rather than trusted.
const kubernetesName = (maxLength: number, grammar: RegExp, what: string) => {
  const problem = aName(what);
  return z.string(problem).check(z.maxLength(maxLength, first(problem)), z.regex(grammar, problem));
};

/** A Kubernetes namespace name (RFC 1123 label). */
export const namespaceName = kubernetesName(63, DNS_LABEL, 'a valid namespace name');

/** A Kubernetes pod name (RFC 1123 subdomain). */
export const podName = kubernetesName(253, DNS_SUBDOMAIN, 'a valid pod name');

const nonEmptyProblem = notAn('a non-empty string');
export const nonEmpty = () => z.string(nonEmptyProblem).check(z.minLength(1, nonEmptyProblem));

/** Not empty and not only blanks. */
export const nonBlank = () => z.string(nonEmptyProblem).check(z.regex(/\S/, first(nonEmptyProblem)));

export const wholeNumber = (minimum: number) => {
  const problem = notAn(`a whole number >= ${minimum}`);
  return z.int(problem).check(z.gte(minimum, problem));
};

export const epochMs = described(wholeNumber(0), 'Milliseconds since the Unix epoch.');

const timeProblem = notAn('an RFC 3339 time');
export const rfc3339 = z.iso.datetime({ offset: true, ...timeProblem });

/** What the parsers treat as "not given": absent, null, or (for strings) empty. */
export const absent = z.optional(z.null());
export const optionalText = z.optional(z.nullable(z.string(notAn('a string'))));
export const optionalTime = () => z.optional(z.union([rfc3339, z.literal(''), z.null()], timeProblem));
export const optionalLabels = () =>
  z.optional(z.nullable(z.record(z.string(), z.string(notAn('a string')), notAn('an object'))));

/** Given: neither absent, null nor empty. */
export const given = (value: unknown) => value !== undefined && value !== null && value !== '';

export const PROFILES = ['airflow-kpo', 'generic'] as const;

/**
 * The EventBridge envelope around a detail: `source` and `detail-type` fixed per event, the rest as
 * EventBridge fills it in (optional here: a sender's PutEvents entry has none of them).
 */
export function eventBridgeEvent<S extends z.ZodMiniType, T extends string, D extends z.ZodMiniType>(
  source: S,
  detailType: T,
  detail: D,
) {
  return z.looseObject({
    version: z.optional(z.string()),
    id: z.optional(z.string()),
    'detail-type': z.literal(detailType),
    source,
    account: z.optional(z.string()),
    time: z.optional(z.string()),
    region: z.optional(z.string()),
    resources: z.optional(z.array(z.string())),
    detail,
  });
}
