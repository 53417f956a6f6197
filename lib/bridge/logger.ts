/** JSON lines on a stream (stdout in a pod), one object per line, for CloudWatch/Fluent Bit to parse. */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LOG_LEVELS = Object.keys(LEVEL_RANK) as LogLevel[];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LineSink {
  write(line: string): unknown;
}

export function createLogger(options: {
  sink: LineSink;
  level?: LogLevel;
  fields?: LogFields;
  now?: () => number;
}): Logger {
  const threshold = LEVEL_RANK[options.level ?? 'info'];
  const base = options.fields ?? {};
  const now = options.now ?? Date.now;
  const emit = (level: LogLevel, msg: string, fields: LogFields | undefined) => {
    if (LEVEL_RANK[level] < threshold) return;
    const record = { time: new Date(now()).toISOString(), level, msg, ...base, ...fields };
    options.sink.write(`${JSON.stringify(record, errorReplacer)}\n`);
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** Errors serialise as `{}` by default; keep what an operator needs to act on them. */
function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const extra = value as Error & { code?: unknown; statusCode?: unknown };
    return {
      name: value.name,
      message: value.message,
      ...(extra.code === undefined ? {} : { code: extra.code }),
      ...(extra.statusCode === undefined ? {} : { statusCode: extra.statusCode }),
    };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export function silentLogger(): Logger {
  return createLogger({ sink: { write: () => undefined }, level: 'error', fields: {} }).child({});
}
