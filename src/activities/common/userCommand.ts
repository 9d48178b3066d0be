/**
 * Running a command of the cluster's own (a subject's check, update, index build or test
 * suite; a snapshot or backup hook): an argument array through execa, never a shell
 * string, in the config file's folder, with its time limit, its environment on top of the
 * worker's, and stdin closed so that nothing waits for a terminal.
 *
 * Its output (stdout and stderr interleaved, as a terminal shows them) is kept only as a
 * bounded tail: a chatty index build cannot fill the worker's memory, and what reaches
 * workflow history, the task monitor and a halt reason is the end, where the error is.
 * While it runs, the tail's last lines are reported through `onOutput`, which activities
 * turn into heartbeat details (shown live by `lesson watch` and the Temporal UI).
 */
import { execa } from 'execa';
import type { UserCommand } from '../../config/schema';

/** Output kept of a command, from its end. */
export const OUTPUT_TAIL_BYTES = 16 * 1024;
/** Lines of that tail a halt reason or a report shows. */
export const SHOWN_TAIL_LINES = 15;
/** A command asked to stop (timeout, cancellation) gets this long before SIGKILL. */
const KILL_GRACE_MS = 5_000;

export interface CommandRun {
  /** The config field the command came from, e.g. reference.subjects[0].prepare[1]. */
  field: string;
  argv: string[];
  exitCode: number;
  durationMs: number;
  /** The last SHOWN_TAIL_LINES lines of its output. */
  output: string;
}

/** A command that did not end as its step needs: the field, the command, how it ended and the end of its output. */
export class UserCommandFailed extends Error {
  override readonly name = 'UserCommandFailed';
  constructor(
    readonly run: Omit<CommandRun, 'exitCode'> & { exitCode?: number; ended: string },
    expected: string,
  ) {
    super(
      `${run.field} ${JSON.stringify(run.argv)} ${run.ended} after ${seconds(run.durationMs)} (expected ${expected})` +
        (run.output ? `; its output ended with:\n${run.output}` : '; it printed nothing'),
    );
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Characters of those lines at most: one very long line is cut from its start. */
const SHOWN_TAIL_CHARS = 4_000;

/** The last `lines` lines of text, without trailing blank ones, at most SHOWN_TAIL_CHARS. */
export function lastLines(text: string, lines = SHOWN_TAIL_LINES): string {
  const shown = text.replace(/\s+$/, '').split('\n').slice(-lines).join('\n');
  return shown.length > SHOWN_TAIL_CHARS ? `...${shown.slice(-SHOWN_TAIL_CHARS)}` : shown;
}

/**
 * Runs the command to its end. Resolves with how it ended when its exit status is one
 * of `accept` (default: 0); otherwise rejects with UserCommandFailed. A timeout or a
 * cancellation stops it (SIGTERM, then SIGKILL) and is a failure too.
 */
export async function runUserCommand(
  spec: UserCommand,
  options: {
    field: string;
    env: Record<string, string>;
    accept?: number[];
    /** Says what the accepted statuses mean, for the failure's message. */
    expected?: string;
    signal?: AbortSignal;
    onOutput?: (tail: string) => void;
  },
): Promise<CommandRun> {
  const [program, ...args] = spec.command;
  const accept = options.accept ?? [0];
  const started = Date.now();
  let tail = '';
  const child = execa(program!, args, {
    cwd: spec.cwd || undefined,
    env: options.env,
    stdin: 'ignore',
    all: true,
    buffer: false,
    reject: false,
    timeout: spec.timeout,
    forceKillAfterDelay: KILL_GRACE_MS,
    ...(options.signal ? { cancelSignal: options.signal } : {}),
  });
  child.all?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    options.onOutput?.(lastLines(tail, 3));
  });
  const result = await child;
  const base = { field: options.field, argv: spec.command, durationMs: Date.now() - started, output: lastLines(tail) };
  const expected = options.expected ?? `exit status ${accept.join(' or ')}`;
  if (result.failed && result.exitCode === undefined) {
    const ended = result.timedOut
      ? `was stopped at its timeout of ${seconds(spec.timeout)}`
      : result.isCanceled
        ? 'was stopped (the step was cancelled)'
        : result.signal
          ? `was killed by ${result.signal}`
          : `could not run: ${result.originalMessage ?? result.shortMessage}`;
    throw new UserCommandFailed({ ...base, ended }, expected);
  }
  const exitCode = result.exitCode ?? -1;
  if (!accept.includes(exitCode)) throw new UserCommandFailed({ ...base, exitCode, ended: `exited with status ${exitCode}` }, expected);
  return { ...base, exitCode };
}
