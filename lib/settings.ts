/**
 * Schemas for settings given as text (environment variables, flags, CDK `-c key=value`): the pieces
 * lib/config.ts, lib/bridge/config.ts and infra/context.ts build their one schema per input from.
 * On zod/mini, because every Lambda handler bundles lib/config.ts. Each piece says what is wrong
 * with a value; the caller puts the setting's name in front (`settingsProblems`).
 */
import * as z from 'zod/mini';
import { parseDuration } from './core/policy.ts';
import { says } from './core/schemas/problems.ts';

type Text = z.ZodMiniType<string, string>;

/** A setting's text, trimmed; empty (or blanks) counts as not given. */
export const settingText = z.pipe(
  z.optional(z.string()),
  z.transform((raw: string | undefined) => (raw === undefined || raw.trim() === '' ? undefined : raw.trim())),
);

/** A setting that must be given: `whenMissing` says so and what to give. */
export function required<S extends z.ZodMiniType<unknown, string>>(whenMissing: string, schema: S) {
  return z.pipe(settingText, z.pipe(z.string(says(() => whenMissing)), schema));
}

/** A setting with a default (the value, not parsed) when it is not given. */
export function withDefault<S extends z.ZodMiniType<unknown, string>>(
  schema: S,
  fallback: z.output<S> extends undefined ? never : z.output<S>,
) {
  return z.pipe(settingText, z._default(schema, fallback as never));
}

/** A setting that may be left out altogether. */
export function mayBeUnset<S extends z.ZodMiniType<unknown, string>>(schema: S) {
  return z.pipe(settingText, z.optional(schema));
}

/**
 * A parser that throws a message (one shared with callers outside these schemas, such as
 * parseClusterConnections); its message becomes the problem.
 */
export function parsedBy<I, O>(parse: (input: I) => O) {
  return z.transform((input: I, payload) => {
    try {
      return parse(input);
    } catch (error) {
      payload.issues.push({ code: 'custom', message: (error as Error).message, input });
      return z.NEVER;
    }
  });
}

/** A text that `accept` takes, else `problem` of it. */
export const textThat = (accept: (text: string) => boolean, problem: (text: string) => string): Text =>
  z.string().check(
    z.refine(
      accept,
      says((input) => problem(String(input))),
    ),
  );

export function wholeNumberText(min: number, max: number) {
  return z.pipe(
    textThat(
      (text) => /^\d{1,15}$/.test(text) && Number(text) >= min && Number(text) <= max,
      (text) => `${JSON.stringify(text)} is not a whole number from ${min} to ${max}`,
    ),
    z.transform(Number),
  );
}

export const booleanText = z.pipe(
  textThat(
    (text) => /^(true|false)$/i.test(text),
    (text) => `${JSON.stringify(text)} is not true or false`,
  ),
  z.transform((text: string) => text.toLowerCase() === 'true'),
);

/** `90`, `90s`, `15m`, `2h`, `500ms` (lib/core/policy.ts parseDuration) as milliseconds. */
export function durationText(
  problem: (shown: string) => string,
  accept: (ms: number) => boolean = () => true,
) {
  const ms = (text: string) => parseDuration(text);
  return z.pipe(
    textThat(
      (text) => {
        const parsed = ms(text);
        return parsed !== undefined && accept(parsed);
      },
      (text) => problem(text.length > 40 ? `${text.slice(0, 40)}...` : text),
    ),
    z.transform((text: string) => ms(text) as number),
  );
}

/** `a,b` as its non-empty items, trimmed. */
export function commaList<S extends z.ZodMiniType<unknown, string>>(item: S) {
  return z.pipe(
    z.transform((text: string) =>
      text
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ''),
    ),
    z.array(item),
  );
}

/** A JSON object given as text; `expected` says what it should hold. */
export function jsonObjectText(expected: string) {
  return z.pipe(
    parsedBy((text: string) => {
      try {
        return JSON.parse(text) as unknown;
      } catch (error) {
        throw new Error(`not valid JSON (${(error as Error).message})`);
      }
    }),
    z.record(
      z.string(),
      z.unknown(),
      says(() => expected),
    ),
  );
}

/** Every problem of one settings input, reported at once: the heading, then a line each. */
export class SettingsError extends Error {
  readonly problems: string[];
  constructor(heading: string, problems: string[]) {
    super(`${heading}:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.problems = problems;
  }
}

export const unique = <T>(items: T[]): T[] => [...new Set(items)];

/**
 * Each problem as `<subject of the setting><what is wrong>`: list items and map entries report under
 * their setting (their message shows the item); problems of no one setting stand alone.
 */
export function settingsProblems(error: z.core.$ZodError, subject: (setting: string) => string): string[] {
  return error.issues.map((issue) =>
    issue.path.length === 0 ? issue.message : `${subject(String(issue.path[0]))}${issue.message}`,
  );
}

/**
 * A check of the whole settings object that runs once the settings it reads are valid, even when
 * others are not: every problem is reported in one run, none as a consequence of another.
 */
export function whenValid<T>(
  settings: readonly string[],
  fn: (value: T, payload: z.core.$RefinementCtx<T>) => void,
) {
  return z.superRefine(fn, {
    when: (payload) => payload.issues.every((issue) => !settings.includes(String(issue.path?.[0]))),
  });
}

/**
 * A check of whichever settings are valid, run whatever else is wrong: `valid` holds only the
 * settings with no problem of their own.
 */
export function ofTheValid<T extends object>(
  fn: (valid: Partial<T>, payload: z.core.$RefinementCtx<T>) => void,
) {
  return z.superRefine<T>(
    (settings, payload) => {
      const refused = new Set(payload.issues.map((issue) => String(issue.path?.[0])));
      const valid = Object.fromEntries(Object.entries(settings).filter(([key]) => !refused.has(key)));
      fn(valid as Partial<T>, payload);
    },
    { when: () => true },
  );
}
