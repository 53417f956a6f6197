/**
 * The building blocks of Podwarden's event schemas (zod 4). The names and patterns are the ones the
 * parsers in lib/core/inbound.ts and functions/shared/intake.ts hold inbound events to, so that a
 * published schema says what the code accepts. Pure: no AWS or Kubernetes import.
 */
import { z } from 'zod';

/** Same grammar as `isValidClusterName` (lib/core/inbound.ts). */
export const clusterName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/)
  .meta({ description: 'The cluster name Podwarden is configured with.' });

/** A Kubernetes namespace name (RFC 1123 label). */
export const namespaceName = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);

/** A Kubernetes pod name (RFC 1123 subdomain). */
export const podName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);

export const nonEmpty = z.string().min(1);

/** Not empty and not only blanks. */
export const nonBlank = z.string().regex(/\S/);

export const epochMs = z.int().min(0).meta({ description: 'Milliseconds since the Unix epoch.' });

export const rfc3339 = z.iso.datetime({ offset: true });

/** What the parsers treat as "not given": absent, null, or (for strings) empty. */
export const absent = z.null().optional();
export const optionalText = z.union([z.string(), z.null()]).optional();
export const optionalTime = z.union([rfc3339, z.literal(''), z.null()]).optional();
export const optionalLabels = z.union([z.record(z.string(), z.string()), z.null()]).optional();

export const PROFILES = ['airflow-kpo', 'generic'] as const;

/**
 * The EventBridge envelope around a detail: `source` and `detail-type` fixed per event, the rest as
 * EventBridge fills it in (optional here: a sender's PutEvents entry has none of them).
 */
export function eventBridgeEvent<S extends z.ZodType, T extends string, D extends z.ZodType>(
  source: S,
  detailType: T,
  detail: D,
) {
  return z.looseObject({
    version: z.string().optional(),
    id: z.string().optional(),
    'detail-type': z.literal(detailType),
    source,
    account: z.string().optional(),
    time: z.string().optional(),
    region: z.string().optional(),
    resources: z.array(z.string()).optional(),
    detail,
  });
}
