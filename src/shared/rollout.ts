/**
 * The rollout's shared shapes: its input, the status every query returns, and the
 * results of the satellites' steps.
 */
import type { FiledLesson } from './lesson';
import type { Consistency } from './rolloutOrder';
import type { Capacity } from './capacity';

export interface ExaminationResult {
  passed: boolean;
  /** How many checks ran (manifest, each test query, the test command). */
  checks: number;
  /** One line per failed check, for the operator. */
  failures: string[];
}

export interface RolloutGroup {
  name: string;
  satellites: string[];
}

export interface HoldLessonInput {
  cluster: string;
  lesson: FiledLesson;
  /** In rollout order. */
  groups: RolloutGroup[];
  /** With HAProxy under control: drain, cutover, health waits through its runtime API. */
  loadBalancerControl: boolean;
  /** With it: a drain waits at most this long for open sessions; health waits at most healthyDeadlineMs. */
  drainDeadlineMs?: number;
  healthyDeadlineMs?: number;
  /** Without it: how long to wait for the load balancer's health checks to notice a change. */
  healthCheckWaitMs: number;
  /** The seed's waits, durable timers. */
  lastCigaretteMs: number;
  coffeeMs: number;
  /** Satellites that must keep serving while a group is in the classroom. */
  minServingSatellites: number;
  /**
   * One lesson at a time, or capacity first (src/shared/rolloutOrder.ts). Absent in
   * rollouts started before the choice: those switch at the second-to-last group.
   */
  consistency?: Consistency;
  /**
   * A maintenance window (spec of src/shared/maintenanceWindow.ts): no group goes into
   * the classroom outside it. Absent: any time.
   */
  maintenanceWindow?: string;
  /**
   * When a satellite copies and is examined: `while-serving` (beside the lesson it serves,
   * examined on its private examination instance, out of service only for the switch) or
   * `out-of-service` (the source document's order: out first, then copy and examination).
   * Absent in rollouts started before the choice: out of service.
   */
  copy?: CopyOrder;
  /** While serving: how many satellites copy and are examined at once (absent: all). */
  copiesAtOnce?: number;
  /** A rollback (rollBackLesson): every satellite holds the lesson already; nothing is copied, the groups only switch. */
  rollback?: boolean;
  /** Who started the rollout (a workflow id or "operator"), for reports. */
  requestedBy: string;
}

/** rollBackLesson's input: the rollout plan, and the lesson to go back to (absent: the one filed before what the cluster serves). */
export type RollBackInput = Omit<HoldLessonInput, 'lesson' | 'copy' | 'rollback'> & { toLessonId?: string };

export type CopyOrder = 'while-serving' | 'out-of-service';

export type RolloutPhase =
  | 'starting'
  | 'stop-chatting'
  | 'last-cigarette'
  | 'lesson'
  | 'lesson-while-serving'
  | 'examination'
  | 'leave-classroom'
  | 'cutover'
  | 'coffee'
  | 'paused'
  | 'waiting-for-window'
  | 'halted'
  | 'aborting'
  | 'done'
  | 'aborted';

export type SatelliteState =
  'serving-old' | 'leaving' | 'out' | 'copying' | 'copied' | 'examining' | 'passed' | 'failed' | 'ready' | 'serving-new' | 'skipped' | 'restored';

export interface SatelliteStatus {
  name: string;
  state: SatelliteState;
  filesCopied: number;
  /** Size of the files that changed and were copied. */
  bytesCopied: number;
  /** What rsync sent for them (unchanged files are hard-linked, not sent). */
  bytesSent: number;
  examination?: ExaminationResult;
  /** The lesson users get from it now; undefined while it is out of service. */
  lessonServed?: string;
  /** Why it is out of service where its state alone does not say (e.g. an earlier run left it out). */
  note?: string;
}

/** What a satellite serves and holds, read at the start of a rollout. */
export interface SatelliteService {
  /** The lesson its web server serves (or would, once started); null before its first lesson. */
  current: string | null;
  webServerRunning: boolean;
  /** What its examination instance (the stand-in of a whole-cluster switch) has as its lesson, and whether it runs. */
  standIn?: string;
  standInRunning?: boolean;
}

/** The load balancer's name for a satellite's stand-in (its examination instance) in a whole-cluster switch. */
export const standInServer = (satellite: string) => `${satellite}-exam`;

export interface GroupStatus {
  name: string;
  /** `learning`: its satellites copy and are examined while they serve; `examined`: all passed, each serves the old lesson until its switch. */
  state: 'waiting' | 'learning' | 'examined' | 'in-classroom' | 'held-ready' | 'serving-new' | 'halted' | 'restored';
  satellites: SatelliteStatus[];
}

export interface Halt {
  step: string;
  group: string;
  satellites: string[];
  reason: string;
  since: string;
}

/** Where the rollout stands with its maintenance window, when it has one. */
export interface WindowStatus {
  spec: string;
  /** Open now (as of the rollout's last step). */
  open: boolean;
  /** While parked: when the window opens next, and the group that goes in then. */
  opensAt?: string;
  parkedBefore?: string;
  /** The operator let the rollout go on outside the window (`resume` while it waited). */
  ignored?: boolean;
}

export interface RolloutStatus {
  lessonId: string;
  phase: RolloutPhase;
  halted: Halt | null;
  /** Absent when the rollout has no maintenance window. */
  window?: WindowStatus;
  paused: boolean;
  groups: GroupStatus[];
  /** Users get the old and the new lesson side by side now: since when, and why (the operator's choice, or a pause). */
  mixed?: { since: string; why: string };
  /** How long users got two lessons side by side in this rollout, in all. */
  mixedWindowMs?: number;
  /** Serving satellites now, and the minimum the rollout keeps. */
  serving: number;
  minServing: number;
  /** What the rollout cost in serving capacity so far (absent in runs from before it was measured). */
  capacity?: Capacity;
}

/** Signals and updates of holdLesson: public names. */
export const ROLLOUT_SIGNALS = { resume: 'resume', abort: 'abort', pause: 'pause' } as const;
export const ROLLOUT_UPDATES = { retrySatellite: 'retrySatellite', skipSatellite: 'skipSatellite' } as const;
export const ROLLOUT_QUERIES = { status: 'status' } as const;
