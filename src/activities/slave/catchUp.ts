/**
 * One slave catching up with the master: pull the blocks after its own high-water mark,
 * evolve the schema first whenever a block is made under a model the slave is not at
 * (the model fetched from the master by its checksum), apply, and repeat until caught
 * up, a target block is reached, or the time budget is spent.
 */
import type { Database } from '../../db/database';
import { checksumNames, modelChecksum } from '../../model/checksum';
import { currentModel } from '../../model/deploy';
import { ModelError, parseModel } from '../../model/modelFile';
import type { BlocksAfterAnswer } from '../../shared/commitblock';
import type { Model } from '../../shared/model';
import type { SlaveSyncResult } from '../../shared/slaveSync';
import { applyBlocks, evolveSlave, markOf, runsByModel } from './applyBlocks';
import type { MasterClient } from './masterClient';

export class ModelIntegrityError extends Error {
  override readonly name = 'ModelIntegrityError';
}

/**
 * The model the master sent for checksum `wanted`, before any of its SQL runs: validated
 * by the same function that validates a model deployed to the master (it came over the
 * network, and its names and types become DDL), and checked to be the model asked for.
 */
export function verifiedModel(sent: unknown, wanted: string, masterUrl: string): Model {
  const shown = `model ${wanted.slice(0, 12)}`;
  let model: Model;
  try {
    model = parseModel(sent, shown);
  } catch (err) {
    if (!(err instanceof ModelError)) throw err;
    throw new ModelIntegrityError(
      `the master at ${masterUrl} sent ${shown} that is not a valid model, refused before any of it ran: ${err.message.replace(/\n/g, '; ')}; check the model with that checksum in the master's lp_models (and what lies between slave and master), then resume the slave`,
    );
  }
  // The master's word on a model is its checksum: a model that hashes otherwise is not the one the blocks were made under.
  // An earlier version's locale-sorted checksum names the same model; the slave keeps it, as the blocks carry it.
  if (!checksumNames(model, wanted)) {
    throw new ModelIntegrityError(
      `the master at ${masterUrl} sent a model whose checksum is ${modelChecksum(model)}, not ${wanted} as asked for; refused before any of it ran`,
    );
  }
  return model;
}

export interface CatchUpOptions {
  /** Long-poll the master this long when there is no news (only before anything was applied). */
  waitMs: number;
  /** Stop once the slave has applied this block (read-your-writes). */
  until?: number;
  /** Stop after this long even when more blocks wait, so the caller can report progress. */
  budgetMs: number;
  batchSize: number;
  onProgress?: (progress: { highWaterMark: number; applied: number }) => void;
  signal?: AbortSignal;
}

export async function catchUp(db: Database, master: MasterClient, options: CatchUpOptions): Promise<SlaveSyncResult> {
  const started = Date.now();
  let hwm = 0;
  let model = (await currentModel(db))?.checksum ?? null;
  let applied = 0;
  let lastCommittedAt: string | null = null;
  const evolved: SlaveSyncResult['evolved'] = [];
  /**
   * Brings the slave's schema to the model with this checksum, fetched from the master, if
   * `needed` still holds for the slave's mark once it holds the apply lock.
   */
  const evolveTo = async (wanted: string, needed: (highWaterMark: number) => boolean) => {
    if (wanted === model) return;
    const fetched = verifiedModel(await master.model(wanted, options.signal), wanted, master.url);
    const result = await evolveSlave(db, fetched, needed, wanted);
    if (!result) {
      // Another applier went further; take the model it left.
      model = (await currentModel(db))?.checksum ?? null;
      return;
    }
    if (result.applied) evolved.push({ from: result.previous, to: wanted, changes: result.changes.map((c) => c.description) });
    model = wanted;
  };
  let next: Promise<BlocksAfterAnswer> | undefined;
  for (;;) {
    const waitMs = applied === 0 && options.until === undefined ? options.waitMs : 0;
    let answer: BlocksAfterAnswer;
    if (next) answer = await next;
    else {
      // The mark as the slave's own table says, with who made that block: the master checks it is its own.
      const mark = await markOf(db);
      hwm = mark?.seq ?? 0;
      answer = await master.blocksAfter(hwm, { limit: options.batchSize, waitMs, at: mark, signal: options.signal });
    }
    next = undefined;
    // More waiting on the master: fetch the next batch while this one is applied. The master
    // keeps everything after what is committed here (`applied`), so retention cannot outrun it.
    const last = answer.blocks.at(-1);
    if (last !== undefined && last.seq < answer.masterSeq && Date.now() - started < options.budgetMs) {
      next = master.blocksAfter(last.seq, { limit: options.batchSize, applied: hwm, at: last, signal: options.signal });
      next.catch(() => undefined); // a failed prefetch is met when awaited
    }
    for (const run of runsByModel(answer.blocks)) {
      const lastOfRun = run.at(-1)!.seq;
      // Needed while some block of the run is not applied: the next one to apply is then in this run.
      await evolveTo(run[0]!.modelChecksum, (mark) => mark < lastOfRun);
      const done = await applyBlocks(db, run);
      applied += done.applied;
      hwm = done.highWaterMark;
      lastCommittedAt = done.lastCommittedAt ?? lastCommittedAt;
    }
    // Caught up, and the master is at another model (a new slave, or a deploy no save has used yet):
    // every block of the old model is applied (same snapshot), so the slave can be ready for saves under the new one.
    if (answer.blocks.length === 0 && answer.masterModel) await evolveTo(answer.masterModel, (mark) => mark === answer.masterSeq);
    options.onProgress?.({ highWaterMark: hwm, applied });
    const caughtUp = hwm >= answer.masterSeq;
    const reached = options.until !== undefined && hwm >= options.until;
    if (answer.blocks.length === 0 || caughtUp || reached || Date.now() - started >= options.budgetMs) {
      const lagBlocks = Math.max(0, answer.masterSeq - hwm);
      return {
        highWaterMark: hwm,
        applied,
        masterSeq: answer.masterSeq,
        lagBlocks,
        lagSeconds: lagBlocks === 0 ? 0 : lastCommittedAt ? Math.max(0, (Date.now() - Date.parse(lastCommittedAt)) / 1000) : null,
        modelChecksum: model,
        evolved,
      };
    }
  }
}
