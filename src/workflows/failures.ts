/** What an operator reads of a failure: the innermost message, which names what went wrong. */
export function operatorMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown };
  while (e?.cause && (e.cause as { message?: string }).message) e = e.cause as typeof e;
  return e?.message ?? String(err);
}
