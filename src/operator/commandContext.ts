/** What every group of lessonplan commands gets from the program: the config, output, and the exit code. */
import type { ClusterConfig } from '../config/schema';

export interface CommandContext {
  config(): ClusterConfig;
  /** The command's answer: the text, or the data as JSON with --json. */
  print(text: string, data: unknown): void;
  /** A progress line, printed only as text (not with --json). */
  say(line: string): void;
  /** The command ends with exit 1 (something needs attention). */
  fail(): void;
  /** --json was given: output is for scripts. */
  json(): boolean;
}

/** A usage problem found after parsing (a file that does not validate): exit 2 with one line. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
