/**
 * Halts and the operator's decisions: one mechanism for every workflow that waits for
 * an operator (holdLesson, prepareLesson).
 *
 * What it keeps true:
 * - a halt has a number, and a decision names the halt it was made for: a `resume`, or
 *   the last retry of a halted satellite, ends that halt and no later one;
 * - `abort` holds from the moment it arrives until the run ends, whatever is halted;
 * - a cancellation request (the Temporal UI's "Request Cancellation", `temporal
 *   workflow cancel`, a parent's cancellation) is an abort: the workflow unwinds through
 *   the same path, does its clean-up out of reach of the cancellation, and only then
 *   ends as cancelled (see `cancellationOf`).
 */
import { CancellationScope, condition, isCancellation } from '@temporalio/workflow';

/** Thrown inside a workflow when the operator aborts (or cancels); unwinds to its clean-up. */
export class Aborted extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export class OperatorDecisions<H> {
  private count = 0;
  /** Halts open now, oldest first: two steps running side by side may halt at once. */
  private open = new Map<number, H>();
  private resumed = new Set<number>();
  private abortReason: string | undefined;

  /** The halt the run waits in now (the latest, when several are open), if any. */
  get current(): { id: number; halt: H } | undefined {
    const last = [...this.open].at(-1);
    return last && { id: last[0], halt: last[1] };
  }

  get aborted(): boolean {
    return this.abortReason !== undefined;
  }

  /** `resume`: ends every halt open now. False when nothing is halted (nothing to resume). */
  resume(): boolean {
    if (this.open.size === 0) return false;
    for (const id of this.open.keys()) this.resumed.add(id);
    return true;
  }

  /** Ends halt `id` if it is still open (a decision made during an earlier halt is spent). */
  settle(id: number): void {
    if (this.open.has(id)) this.resumed.add(id);
  }

  abort(reason: string): void {
    this.abortReason ??= reason;
  }

  /** An abort is spent: from now on, only a new abort counts (the restore after an abort starts with this). */
  clearAbort(): void {
    this.abortReason = undefined;
  }

  /** Throws Aborted when the operator aborted: call it before each step. */
  throwIfAborted(): void {
    if (this.abortReason !== undefined) throw new Aborted(this.abortReason);
  }

  /**
   * Halts: `announce` makes the halt visible (status, report) while it is already open,
   * so a decision that arrives meanwhile counts; then waits for the operator. Returns on
   * resume; throws Aborted on abort. Nothing but the operator ends the wait.
   */
  async halt(halt: H, announce: (id: number) => Promise<void>): Promise<void> {
    this.throwIfAborted();
    const id = ++this.count;
    this.open.set(id, halt);
    try {
      await announce(id);
      await condition(() => this.aborted || this.resumed.has(id));
    } finally {
      this.open.delete(id);
      this.resumed.delete(id);
    }
    this.throwIfAborted();
  }
}

/** The reason an abort records when it came from a cancellation request. */
export const CANCELLED_REASON = 'cancelled (Request Cancellation in the Temporal UI, temporal workflow cancel, or the parent run)';

/**
 * Turns a cancellation into an abort: returns the Aborted to unwind with, and the
 * cancellation to end the run with after the clean-up, or undefined when `err` is
 * neither an abort nor a cancellation (then it is the caller's to rethrow).
 */
export function cancellationOf(err: unknown): { aborted: Aborted; rethrow?: unknown } | undefined {
  if (err instanceof Aborted) return { aborted: err };
  if (isCancellation(err) && CancellationScope.current().consideredCancelled) return { aborted: new Aborted(CANCELLED_REASON), rethrow: err };
  return undefined;
}

/** Runs clean-up work where a cancellation of the run cannot reach it. */
export function beyondCancellation<T>(work: () => Promise<T>): Promise<T> {
  return CancellationScope.nonCancellable(work);
}
