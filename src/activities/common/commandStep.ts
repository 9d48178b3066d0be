/**
 * A command of the cluster's own as an activity's work: it heartbeats the command's field
 * and the last lines it printed while it runs (what `lesson watch` shows), stops when the
 * activity is cancelled, and turns a failure into a non-retryable one (running it again
 * unchanged would fail again: the operator fixes the cause and resumes).
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { UserCommand } from '../../config/schema';
import { HEARTBEAT_EVERY_MS } from '../../shared/heartbeats';
import { runUserCommand, UserCommandFailed, type CommandRun } from './userCommand';

/** Heartbeats while a command runs, carrying the command and the last lines it printed. */
export function commandHeartbeat(field: string): { onOutput: (tail: string) => void; stop: () => void } {
  const ctx = Context.current();
  let output = '';
  let beatAt = 0;
  let trailing: NodeJS.Timeout | undefined;
  const beat = () => {
    beatAt = Date.now();
    trailing = undefined;
    ctx.heartbeat({ command: field, output });
  };
  beat();
  const timer = setInterval(beat, HEARTBEAT_EVERY_MS);
  return {
    // At most a beat a second, and the last output always goes out (a trailing beat), however fast it comes.
    onOutput: (tail) => {
      output = tail;
      if (trailing) return;
      const wait = 1_000 - (Date.now() - beatAt);
      if (wait <= 0) beat();
      else trailing = setTimeout(beat, wait);
    },
    stop: () => {
      clearInterval(timer);
      if (trailing) clearTimeout(trailing);
    },
  };
}

/** Runs one command of the cluster's own as an activity's work: beats while it runs; a failure is the operator's to fix. */
export async function runAsStep(
  command: UserCommand,
  options: { field: string; env: Record<string, string>; accept?: number[]; expected?: string },
): Promise<CommandRun> {
  const beats = commandHeartbeat(options.field);
  try {
    return await runUserCommand(command, { ...options, signal: Context.current().cancellationSignal, onOutput: beats.onOutput });
  } catch (err) {
    // Retrying would only run it again unchanged: the operator fixes the cause and resumes.
    if (err instanceof UserCommandFailed) throw ApplicationFailure.nonRetryable(err.message, 'UserCommandFailed');
    throw err;
  } finally {
    beats.stop();
  }
}
