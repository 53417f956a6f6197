/**
 * Turns what a zod schema refuses into Podwarden's problem sentences: `<field> <what is wrong>`,
 * e.g. `detail.pod.metadata.labels["a"] is number 1, not a string`. Schemas say what is wrong with
 * a value (`says`); where the field sits is rendered here from the issue's path, walked through the
 * schema so that map keys read `["key"]` and list items `[0]`. Pure: no AWS or Kubernetes import.
 */
import type * as z from 'zod/mini';

/** A short description of an untrusted value for error messages (never the whole value). */
export function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `"${value.length > 60 ? `${value.slice(0, 60)}...` : value}"`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/**
 * Schema params whose message is what is wrong with the refused value; `problems` puts the field's
 * name in front. Returning undefined leaves the message to the next map (the parse's, then zod's).
 */
export const says = (what: (input: unknown) => string | undefined) => ({
  error: (issue: { input?: unknown }) => what(issue.input),
});

export const notAn = (kind: string) => says((input) => `is ${describe(input)}, not ${kind}`);

/**
 * Given as the parse's own error map: a union without a message of its own is reported by its
 * closest option instead (the one the value got furthest into), as a hand parser would have.
 */
const CLOSEST_OPTION = '\u0000closest option';
const closestOption = (issue: { code?: string }) =>
  issue.code === 'invalid_union' ? CLOSEST_OPTION : undefined;

type Issue = z.core.$ZodIssue;

/** Each issue as `[field path, what is wrong]`, in the order the schema found them. */
export function problemsOf(schema: z.ZodMiniType, error: z.core.$ZodError): Array<[string, string]> {
  return flatten(error.issues, []).map(([path, message]) => [pathText(schema, path), message]);
}

function flatten(issues: readonly Issue[], prefix: PropertyKey[]): Array<[PropertyKey[], string]> {
  return issues.flatMap((issue): Array<[PropertyKey[], string]> => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union' && issue.message === CLOSEST_OPTION && issue.errors.length > 0) {
      return flatten(closest(issue.errors), path).slice(0, 1);
    }
    return [[path, issue.message]];
  });
}

/** The option whose issues lie deepest in the value; on a tie, the one with fewer issues. */
function closest(options: Issue[][]): Issue[] {
  const depth = (issues: Issue[]) => Math.max(...issues.map((issue) => issue.path.length));
  return options.reduce((best, option) =>
    depth(option) > depth(best) || (depth(option) === depth(best) && option.length < best.length)
      ? option
      : best,
  );
}

/** `pod.metadata.labels["a"]`, `spec.containers[0]`: object fields dotted, map keys and indexes bracketed. */
export function pathText(schema: z.ZodMiniType, path: readonly PropertyKey[]): string {
  let text = '';
  let at: z.core.$ZodType | undefined = schema;
  for (const segment of path) {
    const container: z.core.$ZodType | undefined = at === undefined ? undefined : unwrap(at, segment);
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (container?._zod.def.type === 'record') text += `[${JSON.stringify(String(segment))}]`;
    else text += `${text === '' ? '' : '.'}${String(segment)}`;
    at = container === undefined ? undefined : child(container, segment);
  }
  return text;
}

type Def = {
  type: string;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  options?: z.core.$ZodType[];
  shape?: Record<string, z.core.$ZodType>;
  valueType?: z.core.$ZodType;
  element?: z.core.$ZodType;
};

/** The object, record or array under optional/nullable/pipe wrappers that holds `segment`. */
function unwrap(schema: z.core.$ZodType, segment: PropertyKey): z.core.$ZodType | undefined {
  const def = schema._zod.def as Def;
  if (def.innerType) return unwrap(def.innerType, segment);
  if (def.in) return unwrap(def.in, segment);
  if (def.options) {
    for (const option of def.options) {
      const found = unwrap(option, segment);
      if (found && child(found, segment)) return found;
    }
    return undefined;
  }
  return schema;
}

function child(container: z.core.$ZodType, segment: PropertyKey): z.core.$ZodType | undefined {
  const def = container._zod.def as Def;
  if (def.type === 'object') return def.shape?.[String(segment)];
  if (def.type === 'record') return def.valueType;
  if (def.type === 'array') return def.element;
  return undefined;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: Array<[string, string]> };

/**
 * Parses `input` with `schema`: the typed value, or each problem as `[field path, what is wrong]`.
 * `error` answers first for messages that depend on the caller (e.g. the profiles it configures).
 */
export function check<S extends z.ZodMiniType>(
  schema: S,
  input: unknown,
  error?: (issue: z.core.$ZodRawIssue) => string | undefined,
): Checked<z.output<S>> {
  const result = schema.safeParse(input, { error: (issue) => error?.(issue) ?? closestOption(issue) });
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, problems: problemsOf(schema, result.error) };
}
