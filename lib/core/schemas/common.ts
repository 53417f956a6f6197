/**
 * The building blocks of Podwarden's event schemas, on zod/mini: the same zod 4 schemas and JSON
 * Schema output as classic zod, at a fraction of the bundle (the sink, in every handler that emits,
 * carries them). The names and patterns are the ones the parsers in lib/core/inbound.ts and
 * functions/shared/intake.ts hold inbound events to, so that a published schema says what the code
 * accepts. Pure: no AWS or Kubernetes import.
 */

import { en } from 'zod/locales';
import * as z from 'zod/mini';

// zod/mini starts without messages; English ones make the problems it reports readable.
z.config(en());

export const described = <T extends z.ZodMiniType>(schema: T, description: string): T =>
  schema.check(z.meta({ description }));

/** Same grammar as `isValidClusterName` (lib/core/inbound.ts). */
export const clusterName = described(
  z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/)),
  'The cluster name Podwarden is configured with.',
);

/** A Kubernetes namespace name (RFC 1123 label). */
export const namespaceName = z.string().check(z.maxLength(63), z.regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/));

/** A Kubernetes pod name (RFC 1123 subdomain). */
export const podName = z.string().check(z.maxLength(253), z.regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/));

export const nonEmpty = () => z.string().check(z.minLength(1));

/** Not empty and not only blanks. */
export const nonBlank = () => z.string().check(z.regex(/\S/));

export const wholeNumber = (minimum: number) => z.int().check(z.gte(minimum));

export const epochMs = described(wholeNumber(0), 'Milliseconds since the Unix epoch.');

export const rfc3339 = z.iso.datetime({ offset: true });

/** What the parsers treat as "not given": absent, null, or (for strings) empty. */
export const absent = z.optional(z.null());
export const optionalText = z.optional(z.union([z.string(), z.null()]));
export const optionalTime = () => z.optional(z.union([rfc3339, z.literal(''), z.null()]));
export const optionalLabels = () => z.optional(z.union([z.record(z.string(), z.string()), z.null()]));

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
