/**
 * The shapes of slaveSync: its input, what one sync pass reports, its `status` query,
 * and the `save` update. Shared by the workflow, the slave's activities, the CLI and tests.
 */
import type { SlaveAlertPolicy } from './alert';
import type { ObjectChange } from './commitblock';

export interface SlaveSyncInput {
  slave: string;
  pollIntervalMs: number;
  saveTimeoutMs: number;
  /** Passes per run before continue-as-new (default 1000; tests use a few). */
  passesPerRun?: number;
  /** How often a follow of the master reports to the workflow while nothing changes (default 30 s; tests use less). */
  reportEveryMs?: number;
  /** When to tell operators (the config's `alerts`); absent: no alerts. */
  alerts?: SlaveAlertPolicy;
  /** What a previous run hands over at continue-as-new. */
  carried?: SlaveSyncCarried;
}

/** What slaveSync asks of one long follow of the master (activity `followMaster`). */
export interface FollowMasterInput {
  /** The longest one long poll of the master waits for news. */
  waitMs: number;
  /** Return to the workflow after this long at most, so its status is no older than this. */
  reportEveryMs: number;
  /** How long one catch-up may apply before it reports progress (a backlog). */
  budgetMs: number;
  /** What the workflow shows now: the activity returns as soon as that stops being true. */
  caughtUp: boolean;
}

export interface SlaveSyncCarried {
  paused: boolean;
  masterUnreachableSince: string | null;
  lastError: string | null;
  halt: SlaveHalt | null;
  appliedBlocks: number;
  evolvedModels: number;
  highWaterMark: number | null;
  masterSeq: number | null;
  modelChecksum: string | null;
  /** Events already alerted that still go on: not alerted again by the next run. */
  alerted?: SlaveAlertState;
}

export interface SlaveAlertState {
  unreachable: boolean;
  lagging: boolean;
}

/** One pass of "pull, evolve if needed, apply", as the slave's activity reports it (a summary, never the blocks). */
export interface SlaveSyncResult {
  highWaterMark: number;
  applied: number;
  masterSeq: number;
  lagBlocks: number;
  /** Seconds since the newest applied block committed on the master, while blocks wait; 0 when caught up. */
  lagSeconds: number | null;
  modelChecksum: string | null;
  evolved: { from: string | null; to: string; changes: string[] }[];
}

/** Kinds of failure a slave cannot get past by waiting: slaveSync halts on them until an operator acts. */
export const SLAVE_HALT_KINDS = [
  'BehindRetention',
  'AheadOfMaster',
  'Diverged',
  'BlockGap',
  'ModelIntegrity',
  'ApplyFailed',
  'Unauthorized',
  'UnknownModel',
  'MasterUntrusted',
];

/** How a save refused while slaveSync starts its next run ends its message; clients save again on it. */
export const SAVE_AGAIN_HINT = 'save again in a moment';

export type SlaveSyncState = 'starting' | 'syncing' | 'caught-up' | 'paused' | 'master-unreachable' | 'halted';

/** A failure that waiting will not fix: the slave stops syncing until an operator acts and sends `resume`. */
export interface SlaveHalt {
  kind: string;
  reason: string;
  since: string;
  /** What the operator runs after fixing it. */
  resumeWith: string;
}

export interface SlaveSyncStatus {
  slave: string;
  state: SlaveSyncState;
  /** The newest block applied on this slave (read from its own commitblock table). */
  highWaterMark: number | null;
  /** The master's newest block, as of the last answer. */
  masterSeq: number | null;
  lagBlocks: number | null;
  lagSeconds: number | null;
  modelChecksum: string | null;
  /** Since when the master has not answered (null while it does). */
  masterUnreachableSince: string | null;
  lastError: string | null;
  halt: SlaveHalt | null;
  paused: boolean;
  /** Blocks applied by this workflow (all runs), by its passes and by the saves through it. */
  appliedBlocks: number;
  /** Schema evolutions done by this workflow (all runs), by its passes and by the saves through it. */
  evolvedModels: number;
  lastSyncAt: string | null;
}

/** The `save` update: a commitblock through this slave, answered once it is applied here too. */
export interface SlaveSaveInput {
  changes: ObjectChange[];
  idempotencyKey: string;
  /** The model the changes are made under; defaults to the slave's current model. */
  modelChecksum?: string;
}

export interface SlaveSaveResult {
  seq: number;
  duplicate: boolean;
  /** The slave's mark after the save: at least `seq`, so a read here sees the save. */
  highWaterMark: number;
  /**
   * What the save's own catch-up did on this slave on the way (blocks applied, schema
   * evolved), counted in `status` like a pass's. Absent in saves recorded before it was.
   */
  applied?: number;
  evolved?: SlaveSyncResult['evolved'];
}
