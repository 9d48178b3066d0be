/**
 * Group commit: work that arrives while a batch is being committed waits for that batch
 * to end and then goes, all of it (up to a cap), in the next one. One commit (one WAL
 * flush, one turn of a lock) then serves many callers; a caller alone still goes at once.
 * Each caller gets its own outcome: the batch settles every item on its own.
 */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export class GroupCommit<Item, Answer> {
  private queue: { item: Item; resolve: (answer: Answer) => void; reject: (error: unknown) => void }[] = [];
  private running = false;

  /** `commit` runs one batch and returns an outcome per item, in order; if it throws, every item of the batch fails with that error. */
  constructor(
    private readonly commit: (items: Item[]) => Promise<Outcome<Answer>[]>,
    private readonly maxBatch: number,
  ) {}

  submit(item: Item): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        // Let the callers just answered (and requests already read from the network) join first: taken at
        // once, the next batch would hold only what arrived during the commit, and batches would alternate
        // between one item and the rest.
        await new Promise((resolve) => setImmediate(resolve));
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const outcomes = await this.commit(batch.map((b) => b.item));
          batch.forEach((b, i) => {
            const outcome = outcomes[i]!;
            if (outcome.ok) b.resolve(outcome.value);
            else b.reject(outcome.error);
          });
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
