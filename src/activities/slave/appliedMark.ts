/**
 * What this slave's worker knows about its own apply, in memory: how far the blocks are
 * applied here, and whether a follow of the master is running now. The follow moves the
 * mark after every batch it commits; a save through the slave's endpoint waits on it for
 * its own block instead of pulling for itself, so 32 saves at once make no extra pulls
 * and no contention for the apply lock. The slave's database stays the record: the
 * mark here only wakes waiters sooner.
 */
/** How long a follow that ended with its report still counts as following: the workflow starts the next one at once. */
export const HANDOVER_MS = 5_000;

export class AppliedMark {
  private applied = 0;
  private follows = 0;
  /** When the last follow ended with a report, the next one not yet started (undefined: it ended otherwise). */
  private handedOverAt: number | undefined;
  private readonly waiters = new Set<{ seq: number; wake: () => void }>();

  /** A batch up to `seq` is committed here. */
  advance(seq: number): void {
    if (seq <= this.applied) return;
    this.applied = seq;
    for (const w of this.waiters) if (w.seq <= seq) w.wake();
  }

  get highWaterMark(): number {
    return this.applied;
  }

  /**
   * A follow of the master runs from now until the returned function is called: with
   * `reported` when it ended by handing its report to the workflow, which starts the next
   * follow at once, so saves in between are not refused; without, when it was cancelled
   * (a pause) or failed.
   */
  following(): (reported?: boolean) => void {
    this.follows++;
    this.handedOverAt = undefined;
    let done = false;
    return (reported = false) => {
      if (done) return;
      done = true;
      this.follows--;
      this.handedOverAt = reported ? Date.now() : undefined;
    };
  }

  get isFollowing(): boolean {
    return this.follows > 0 || (this.handedOverAt !== undefined && Date.now() - this.handedOverAt < HANDOVER_MS);
  }

  /** True once block `seq` is applied here; false when `ms` pass first. */
  reached(seq: number, ms: number): Promise<boolean> {
    if (seq <= this.applied) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        seq,
        wake: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve(false);
      }, ms);
      this.waiters.add(waiter);
    });
  }
}
