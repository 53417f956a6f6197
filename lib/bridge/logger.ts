/**
 * The bridge logs with the functions' logger (Powertools Logger, which works outside Lambda), so
 * every line of the project has the same fields: `level`, `message`, `timestamp`, `service`,
 * `sampling_rate`, then the persistent keys (the bridge's `cluster` and `identity`, a part's
 * `part` or `watch`) and the line's own fields. One JSON object per line, for CloudWatch or
 * Fluent Bit to parse.
 */
import { type LogItem, Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export type LogFields = Record<string, unknown>;

/** Powertools' Logger: `info(message, fields)`, `createChild({ persistentKeys })`, … */
export type Logger = PowertoolsLogger;

export interface LineSink {
  write(line: string): unknown;
}

export const BRIDGE_SERVICE = 'podwarden-bridge';

/**
 * Powertools prints through a Console on process.stdout; the bridge CLI writes to the stream it is
 * given (stdout in a pod, a buffer in tests). Only the printing is replaced: levels, keys, error
 * formatting and children are Powertools' own.
 */
class LineLogger extends PowertoolsLogger {
  // Not a #private field: Powertools may print (its own config warnings) from inside super().
  private sink: LineSink | undefined;

  constructor(sink: LineSink, options: ConstructorParameters<typeof PowertoolsLogger>[0]) {
    super(options);
    this.sink = sink;
  }

  protected override printLog(_level: number, log: LogItem): void {
    log.prepareForPrint();
    (this.sink ?? process.stdout).write(`${JSON.stringify(log.getAttributes(), this.getJsonReplacer())}\n`);
  }

  protected override createLogger(
    options: ConstructorParameters<typeof PowertoolsLogger>[0],
  ): PowertoolsLogger {
    return new LineLogger(this.sink ?? process.stdout, options);
  }
}

export function createLogger(options: { sink: LineSink; level?: LogLevel; fields?: LogFields }): Logger {
  return new LineLogger(options.sink, {
    serviceName: BRIDGE_SERVICE,
    logLevel: (options.level ?? 'info').toUpperCase() as Uppercase<LogLevel>,
    persistentKeys: options.fields ?? {},
  });
}

export function silentLogger(): Logger {
  return createLogger({ sink: { write: () => undefined }, level: 'error' });
}
