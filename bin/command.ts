import type { Readable, Writable } from 'node:stream';

/** The streams a command uses, passed in so tests (and `main`) can run commands in-process. */
export interface CommandIO {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/** Every `bin/commands/<name>.ts` exports `run`; it returns the process exit code. */
export type RunCommand = (argv: string[], io: CommandIO) => Promise<number>;

/** Exit codes shared by every command. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Bad input from the user (arguments, files): the command prints the message and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function writeLine(stream: Writable, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}
