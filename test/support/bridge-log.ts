/**
 * Follows a `podwarden bridge` process (from the repository, a bundle or an image) through its
 * stdout, which is one Powertools Logger JSON object per line. The line's text is under `message`
 * (Powertools' key): tests that run the bridge as a process find lines here, so the key lives in
 * one place. The image's run tests once looked for `msg`, the key of the logger before Powertools,
 * and waited 90 s for a line the bridge had printed within a second.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export type BridgeLogLine = Record<string, unknown> & { message?: unknown; level?: unknown };

export interface BridgeLog {
  /** Every JSON line on stdout, in order. */
  readonly lines: BridgeLogLine[];
  /** Whatever the process wrote on stderr, and any stdout line that was not JSON. */
  readonly stderr: string[];
  /** Resolves with the exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  find(message: string): BridgeLogLine | undefined;
  /**
   * The first line with this message, as soon as it is printed. Fails at once if the process exits
   * first, and at the deadline with the messages it did print, so a line printed under another shape
   * reads as such instead of as a bridge that never started.
   */
  waitFor(message: string, timeoutMs: number): Promise<BridgeLogLine>;
}

export function followBridgeLog(child: ChildProcess): BridgeLog {
  if (!child.stdout || !child.stderr) throw new Error('spawn the bridge with stdout and stderr piped');
  const lines: BridgeLogLine[] = [];
  const stderr: string[] = [];
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of listeners) listener();
  };
  createInterface(child.stdout).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as BridgeLogLine);
    } catch {
      stderr.push(`not a JSON line: ${line}\n`);
    }
    notify();
  });
  child.stderr.on('data', (chunk) => stderr.push(String(chunk)));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exitCode = code;
      notify();
      resolve(code);
    }),
  );
  const find = (message: string) => lines.find((line) => line.message === message);

  return {
    lines,
    stderr,
    exited,
    find,
    waitFor(message, timeoutMs) {
      return new Promise<BridgeLogLine>((resolve, reject) => {
        // Each distinct message once, with its count: a line printed under another shape stands out
        // even when it is buried under repeated warnings.
        const seen = () => {
          const counts = new Map<string, number>();
          for (const line of lines) {
            const text = JSON.stringify(line.message ?? line).slice(0, 200);
            counts.set(text, (counts.get(text) ?? 0) + 1);
          }
          const listed = [...counts].map(([text, count]) => (count > 1 ? `${text} ×${count}` : text));
          return listed.join('\n  ') || '(no line)';
        };
        const check = () => {
          const line = find(message);
          if (line) done(() => resolve(line));
          else if (exitCode !== undefined)
            done(() =>
              reject(
                new Error(
                  `the bridge exited (${exitCode}) before logging "${message}"; stderr: ${stderr.join('')}\n  messages printed:\n  ${seen()}`,
                ),
              ),
            );
        };
        const timer = setTimeout(
          () =>
            done(() =>
              reject(
                new Error(
                  `no "${message}" line within ${timeoutMs} ms; stderr: ${stderr.join('')}\n  messages printed:\n  ${seen()}`,
                ),
              ),
            ),
          timeoutMs,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
  };
}
