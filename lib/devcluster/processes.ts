import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

/**
 * Runs `binary args` under a small sh guard in a process group of its own. The guard holds the
 * read end of a pipe whose write end only this Node process has: when this process dies in any
 * way (even SIGKILL, when no handler runs), the pipe closes and the guard stops the component.
 * POSIX gives a background job /dev/null as stdin, hence the explicit fd 3.
 */
const guardScript = `
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
(
  read -r _ <&3
  kill -TERM "$child" 2>/dev/null
  n=0
  while kill -0 "$child" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  kill -KILL "$child" 2>/dev/null
) &
watcher=$!
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
`;

export interface ComponentExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Component {
  name: string;
  /** Also the process group id. */
  pid: number;
  logPath: string;
  /** Settles when the guard exits: the component stopped or died. */
  exited: Promise<ComponentExit>;
  hasExited(): boolean;
}

// Process groups still running, so exit and signal handlers can stop them when nothing else will.
const liveGroups = new Set<number>();
// Synchronous clean-ups (e.g. removing a temp work dir) to run after those groups are killed.
const exitCleanups = new Set<() => void>();
let handlersInstalled = false;

/** Runs `cleanup` if this process exits or is signalled before `unregister()` is called. */
export function onAbnormalExit(cleanup: () => void): () => void {
  installExitHandlers();
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}

function killEverything(): void {
  for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  liveGroups.clear();
  for (const cleanup of exitCleanups) {
    try {
      cleanup();
    } catch {
      // Best effort while exiting: nothing is left to report to.
    }
  }
  exitCleanups.clear();
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the whole group is gone already.
  }
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL is the only stop that needs no waiting.
  process.on('exit', killEverything);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      killEverything();
      // Listening replaced the default action (exit); restore it when we were the only listener.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

/**
 * The Go runtime's collector settings for the control plane's components (all Go programs). The
 * local control plane shares a machine of few cores with what it serves (a managed one would not),
 * and collects less often with these: in the second reaper pass of `npm run bench -- scale --pods
 * 10000`, the API server used a median 4.4 s of CPU over seven runs with Go's default (GOGC 100)
 * and 3.9 s over nine with these, on a machine whose speed moves such figures by ±15%. The memory
 * limit bounds what the laxer collection may cost; the environment's own values win.
 */
const GO_RUNTIME_ENV = { GOGC: '400', GOMEMLIMIT: '1536MiB' };

export function startComponent(name: string, binary: string, args: string[], logPath: string): Component {
  installExitHandlers();
  const log = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', guardScript, `guard-${name}`, binary, ...args], {
      detached: true,
      env: { ...GO_RUNTIME_ENV, ...process.env },
      stdio: ['pipe', log, log],
    });
  } finally {
    closeSync(log);
  }
  if (child.pid === undefined) throw new Error(`could not start ${name} (${binary})`);
  const pid = child.pid;
  liveGroups.add(pid);
  let done = false;
  const exited = new Promise<ComponentExit>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    child.once('error', () => {
      done = true;
      resolve({ code: null, signal: null });
    });
  });
  // Neither the child nor its stdin pipe may keep the event loop (e.g. vitest) alive.
  child.unref();
  (child.stdin as Socket | null)?.unref();
  return { name, pid, logPath, exited, hasExited: () => done };
}

/** Members of a process group that are still alive (not zombies), from /proc where there is one. */
function groupAlive(pgid: number): boolean {
  if (!existsSync('/proc/self/stat')) {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the parenthesised command name: state, ppid, pgrp, ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true;
  }
  return false;
}

async function waitGroupGone(pgid: number, deadline: number): Promise<boolean> {
  for (;;) {
    if (!groupAlive(pgid)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Stops a component and everything it started: SIGTERM to its process group, then SIGKILL if
 * the group is not gone within `graceMs`. Resolves once no member of the group is alive.
 */
export async function stopComponent(component: Component, graceMs = 5000): Promise<void> {
  killGroup(component.pid, 'SIGTERM');
  if (!(await waitGroupGone(component.pid, Date.now() + graceMs))) {
    killGroup(component.pid, 'SIGKILL');
    if (!(await waitGroupGone(component.pid, Date.now() + 5000))) {
      throw new Error(`${component.name} (process group ${component.pid}) survived SIGKILL`);
    }
  }
  liveGroups.delete(component.pid);
}

/** The last lines of a component's log, for error messages. */
export function logTail(component: Component, lines = 25): string {
  try {
    const text = readFileSync(component.logPath, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
