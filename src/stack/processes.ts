/** Starting long-lived background processes and stopping them without leaving orphans. */
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { execa, type ResultPromise } from 'execa';

/**
 * Whether the process runs. A zombie (exited, not yet reaped: daemons started by
 * pg_ctl are reaped by init, which can take a moment) counts as gone.
 */
export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may contain spaces, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): trust the signal check
  }
}

/**
 * Starts `file args` in its own process group, detached from this process, with its
 * output appended to `logFile`. Returns its pid; the caller records it to stop it later.
 */
export function spawnDetached(file: string, args: string[], options: { logFile: string; cwd?: string; env?: NodeJS.ProcessEnv }): number {
  // The child gets the log file's descriptor itself: no pipe through this process,
  // which may exit long before the child does.
  const log = openSync(options.logFile, 'a');
  try {
    const child = execa(file, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      // execa passes integer descriptors straight to spawn (see its docs); its typings
      // only accept them in some positions.
      stdio: ['ignore', log, log] as unknown as ['ignore', 'inherit', 'inherit'],
      cleanup: false,
      reject: false,
    });
    if (!child.pid) throw new Error(`could not start ${file}`);
    child.unref();
    // The promise settles when the process ends; nobody waits for it on purpose.
    child.catch(() => undefined);
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/** SIGTERM to the whole process group, then SIGKILL after `graceMs`. Resolves once all are gone. */
export async function stopProcessGroup(pid: number, graceMs = 15_000): Promise<void> {
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
  };
  if (!isAlive(pid)) return;
  signalGroup('SIGTERM');
  const until = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) {
    signalGroup('SIGKILL');
    while (isAlive(pid)) await new Promise((r) => setTimeout(r, 50));
  }
}

/** A log's text from `fromByte` on (a log appended to by several starts), or undefined when there is none. */
function logText(file: string, fromByte = 0): string | undefined {
  return existsSync(file) ? readFileSync(file).subarray(fromByte).toString('utf8').trimEnd() : undefined;
}

const lastLines = (text: string, lines: number) => text.split('\n').slice(-lines).join('\n');

/** The last lines of a log file, to explain why a process would not start. */
export function tailOf(file: string, lines = 15): string {
  const text = logText(file);
  return text === undefined ? '(no log)' : lastLines(text, lines);
}

/** How long the log file is now: where the next start's own lines begin. */
export function logLength(file: string): number {
  return existsSync(file) ? statSync(file).size : 0;
}

/**
 * Why a Go server (the Temporal CLI) stopped, from its log after `fromByte`: the
 * error lines and the panic's own line. A panic ends in a goroutine dump whose last
 * lines say nothing about the cause, so a plain tail would hide it.
 */
export function reasonInLog(file: string, fromByte = 0, lines = 15): string {
  const text = logText(file, fromByte);
  if (text === undefined) return '(no log)';
  const telling = text.split('\n').filter((line) => /^panic:|^Error:|level=(ERROR|FATAL)|"level":"(error|fatal)"|address already in use/i.test(line));
  if (telling.length > 0) return telling.slice(0, lines).join('\n');
  return lastLines(text, lines) || '(nothing written)';
}

/**
 * Waits for a program run in the foreground of this process (lessonplan temporal serve,
 * temporal ui), passing SIGTERM and SIGINT on to it. Resolves true when it ended cleanly:
 * exit 0, or ended by the signal it was passed (docker stop).
 */
export async function inForeground(child: ResultPromise): Promise<boolean> {
  let passedOn: NodeJS.Signals | undefined;
  const passOn = (signal: NodeJS.Signals) => () => {
    passedOn = signal;
    child.kill(signal);
  };
  const onTerm = passOn('SIGTERM');
  const onInt = passOn('SIGINT');
  process.on('SIGTERM', onTerm).on('SIGINT', onInt);
  try {
    const result = await child;
    return result.exitCode === 0 || (passedOn !== undefined && result.signal === passedOn);
  } finally {
    process.off('SIGTERM', onTerm).off('SIGINT', onInt);
  }
}
