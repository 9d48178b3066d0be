/**
 * A commitblock: what one save changed, under which model, in master order. The master
 * writes it in the same transaction as the business data; slaves apply blocks in
 * sequence order, each exactly once, with the block row in the same transaction.
 */
export type ObjectValue = string | number | boolean | null | Record<string, unknown> | unknown[];

export type ObjectChange =
  { class: string; op: 'upsert'; values: Record<string, ObjectValue> } | { class: string; op: 'delete'; key: Record<string, ObjectValue> };

/** A save as a client (or a slave on its behalf) sends it. */
export interface SaveRequest {
  modelChecksum: string;
  changes: ObjectChange[];
  /** Who asked: a slave's name, or "master" for a direct save. */
  origin: string;
  /** The same key saved twice gives the first save's sequence number. */
  idempotencyKey: string;
}

export interface CommitBlock extends SaveRequest {
  seq: number;
  committedAt: string;
}

/** What the master answers to "blocks after n": the blocks, and where the master stands. */
export interface BlocksAfterAnswer {
  blocks: CommitBlock[];
  /** The newest block the master holds (0: none yet). */
  masterSeq: number;
  /** The model the master is at now (null: none deployed), seen in the same snapshot as the blocks. */
  masterModel: string | null;
}

/** The master's answer to a save. */
export interface SaveAnswer {
  seq: number;
  /** The idempotency key was saved before: this is the first save's number, nothing changed now. */
  duplicate: boolean;
}
