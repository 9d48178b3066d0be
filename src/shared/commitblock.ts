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

/**
 * The most a save may carry: its changes as JSON, in bytes. One number for every path. A
 * save through a slave travels as a workflow update, in slaveSync's history, where
 * Temporal refuses a payload over 2 MB; the master's API takes no more either, so that a
 * save that goes one way also goes the other.
 */
export const MAX_SAVE_BYTES = 1 << 20;

/**
 * The size MAX_SAVE_BYTES bounds: the UTF-8 bytes of the changes as JSON. Measured by
 * walking the value with a stack of its own, never by JSON.stringify of the whole: a
 * value nested 100,000 deep would overflow the call stack (and is the value check's to
 * refuse, 422), and workflow code measures it too.
 */
export function changesBytes(changes: unknown): number {
  let bytes = 0;
  const todo: unknown[] = [changes];
  while (todo.length > 0) {
    const v = todo.pop();
    if (Array.isArray(v)) {
      // Brackets, and a comma between items.
      bytes += 2 + Math.max(0, v.length - 1);
      // One by one: spreading a very long array would overflow the call stack too.
      for (const x of v) todo.push(x);
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      bytes += 2 + Math.max(0, entries.length - 1);
      for (const [key, x] of entries) {
        bytes += utf8Bytes(JSON.stringify(key)) + 1;
        todo.push(x);
      }
    } else {
      // A string, number, boolean or null: JSON.stringify of one of them does not recurse.
      bytes += utf8Bytes(JSON.stringify(v) ?? 'null');
    }
  }
  return bytes;
}

/** UTF-8 bytes of a string, counted without an encoder. */
function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A surrogate pair is one code point of four bytes; a lone surrogate becomes U+FFFD, three.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += unit < 0x80 ? 1 : unit < 0x800 ? 2 : 3;
  }
  return bytes;
}

const mib = (bytes: number) => `${(bytes / (1 << 20)).toFixed(1)} MiB`;

/** Why a save is too large, or undefined when it is not. */
export function saveTooLarge(changes: unknown): string | undefined {
  const bytes = changesBytes(changes);
  if (bytes <= MAX_SAVE_BYTES) return undefined;
  return `a save carries at most ${MAX_SAVE_BYTES >> 20} MiB of changes, this one ${mib(bytes)}: split it into smaller saves`;
}
