/**
 * holdLesson: the teacher holds the lesson, group after group (seed: "The solution").
 *
 * For each group: stop chatting (out of the load balancer, web server stopped), the
 * barrier (all of the group is out), a last cigarette, the lesson (copies in
 * parallel), the examination; only when every satellite of the group passed: leave
 * the classroom (web server started, back into the load balancer), a coffee, and the
 * next group. With HAProxy under control the last two groups swap in one load
 * balancer change, so users never get old and new answers side by side.
 *
 * A failure halts: the failing group stays out, the others keep serving, the task
 * monitor gets a report, and the workflow waits, with no timeout, for `resume` (retry
 * the failed step) or `abort` (everyone back on the previous lesson, in service).
 *
 * With a maintenance window, no group goes into the classroom outside it: the rollout
 * waits for the window to open (a durable timer) and, when it closes, parks before the
 * next group, to go on from there when it opens again. A group already in the
 * classroom finishes first: out of service is where it must not stay.
 */
import {
  ApplicationFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  log as workflowLog,
  metricMeter,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { LoadBalancerActivities } from '../activities/loadBalancer';
import type { ReferenceActivities } from '../activities/reference';
import type { SatelliteActivities } from '../activities/satellite';
import { REFERENCE_TASK_QUEUE, satelliteTaskQueue, searchAttributes } from '../shared/names';
import type { Report } from '../shared/report';
import { operatorMessage } from './failures';
import { Aborted, beyondCancellation, cancellationOf, OperatorDecisions } from './halts';
import { HEARTBEAT_TIMEOUT } from '../shared/heartbeats';
import { memoWriter } from './memo';
import { groupRolloutSeconds } from '../shared/metrics';
import { isOpen, nextOpening, parseWindows, type MaintenanceWindows } from '../shared/maintenanceWindow';
import { summarizeRollout } from '../shared/summaries';
import { oneLessonSwitch } from '../shared/rolloutOrder';
import { observeCapacity, startCapacity } from '../shared/capacity';
import { standInServer } from '../shared/rollout';
import type {
  GroupStatus,
  Halt,
  HoldLessonInput,
  RolloutGroup,
  RolloutPhase,
  RolloutStatus,
  SatelliteService,
  SatelliteStatus,
} from '../shared/rollout';

export const statusQuery = defineQuery<RolloutStatus>('status');
export const resumeSignal = defineSignal('resume');
export const abortSignal = defineSignal<[reason?: string]>('abort');
export const pauseSignal = defineSignal('pause');
export const retrySatelliteUpdate = defineUpdate<SatelliteStatus, [{ satellite: string }]>('retrySatellite');
export const skipSatelliteUpdate = defineUpdate<SatelliteStatus, [{ satellite: string }]>('skipSatellite');

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s' } as const;

const loadBalancer = proxyActivities<LoadBalancerActivities>({
  taskQueue: REFERENCE_TASK_QUEUE,
  startToCloseTimeout: '5m',
  scheduleToCloseTimeout: '10m',
  heartbeatTimeout: '20s',
  retry: { ...retry, maximumAttempts: 5, nonRetryableErrorTypes: ['UnknownServer'] },
});

const taskMonitor = proxyActivities<ReferenceActivities>({
  taskQueue: REFERENCE_TASK_QUEUE,
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '5m',
  retry,
});

/**
 * A satellite's activities, on its own task queue. Short steps give up after five
 * minutes when nobody serves the queue (the satellite's worker or host is gone). Each
 * carries a summary naming the satellite (and the seed's step), which the Temporal UI's
 * timeline shows beside the activity's name.
 */
function satelliteActivities(name: string) {
  const taskQueue = satelliteTaskQueue(name);
  const quick = (summary: string) =>
    proxyActivities<SatelliteActivities>({
      taskQueue,
      startToCloseTimeout: '2m',
      scheduleToCloseTimeout: '5m',
      retry: { ...retry, maximumAttempts: 5 },
      summary,
    });
  const copy = proxyActivities<SatelliteActivities>({
    taskQueue,
    startToCloseTimeout: '2h',
    scheduleToCloseTimeout: '3h',
    // The copy reports progress; a silent copy (worker killed) is retried after restart.
    heartbeatTimeout: '15s',
    retry: { ...retry, maximumAttempts: 3 },
    summary: `the lesson for ${name}`,
  });
  const exam = proxyActivities<SatelliteActivities>({
    taskQueue,
    startToCloseTimeout: '20m',
    scheduleToCloseTimeout: '30m',
    // A dead worker is noticed after a missed heartbeat or two, not minutes: the group is out of service meanwhile.
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    retry: { ...retry, maximumAttempts: 2 },
    summary: `${name}'s examination`,
  });
  // Proxies have no own keys to spread: pick each activity by name.
  return {
    stopWebServer: quick(`${name} stops chatting`).stopWebServer,
    startWebServer: quick(`${name} leaves the classroom`).startWebServer,
    activateLesson: quick(name).activateLesson,
    servedLesson: quick(name).servedLesson,
    describeService: quick(name).describeService,
    checkServing: quick(`${name}'s quick check after the switch`).checkServing,
    startStandIn: quick(`${name}'s stand-in starts`).startStandIn,
    stopStandIn: quick(`${name}'s stand-in stops`).stopStandIn,
    copyLesson: copy.copyLesson,
    examineLesson: exam.examineLesson,
  };
}
const satelliteProxies = new Map<string, ReturnType<typeof satelliteActivities>>();
function satellite(name: string) {
  if (!satelliteProxies.has(name)) satelliteProxies.set(name, satelliteActivities(name));
  return satelliteProxies.get(name)!;
}

export async function holdLesson(input: HoldLessonInput): Promise<RolloutStatus> {
  const { lesson } = input;
  /** Satellites copy and are examined while they serve; only the switch takes them out (absent in older runs: out first). */
  const whileServing = input.copy === 'while-serving';
  /** Every user moves to the new lesson in one load balancer change, through each satellite's stand-in (its examination instance). */
  const wholeCluster = whileServing && input.loadBalancerControl && input.consistency === 'whole-cluster';
  // In rollout order; the repair of what an ended run left may move groups already out of service to the front.
  const groups = [...input.groups];
  // Histories started before these were inputs ran with these values.
  const drainDeadline = input.drainDeadlineMs ?? 30_000;
  const healthyDeadline = input.healthyDeadlineMs ?? 60_000;
  const { workflowId, runId } = workflowInfo();
  const startedAt = new Date().toISOString();
  const log: string[] = [];
  /** A line for the task monitor's report, and for the worker's log (with the workflow's ids; not repeated on replay). */
  const note = (line: string, level: 'info' | 'warn' = 'info') => {
    log.push(`${new Date().toISOString()} ${line}`);
    workflowLog[level](line);
  };

  const satellites = new Map<string, SatelliteStatus>();
  const groupStatus: GroupStatus[] = groups.map((g) => ({
    name: g.name,
    state: 'waiting',
    satellites: g.satellites.map((name) => {
      const s: SatelliteStatus = { name, state: 'serving-old', filesCopied: 0, bytesCopied: 0, bytesSent: 0 };
      satellites.set(name, s);
      return s;
    }),
  }));
  /** What each satellite served before the rollout: where abort puts it back. */
  const servedBefore = new Map<string, string | null>();
  const status: RolloutStatus = {
    lessonId: lesson.lessonId,
    phase: 'starting',
    halted: null,
    paused: false,
    groups: groupStatus,
    serving: 0,
    minServing: input.minServingSatellites,
  };

  const decisions = new OperatorDecisions<Halt>();
  /** The phase the run was in when the halts open now began. */
  let phaseBeforeHalts: RolloutPhase = 'starting';
  /** Satellites an operator's retrySatellite is teaching now: the lesson waits for them. */
  const retrying = new Set<string>();
  const showSummary = memoWriter();
  const window = maintenanceWindowOf(input);
  /** The operator sent `resume` while the rollout waited for its window: it goes on regardless. */
  let windowIgnored = false;
  const windowOpen = () => !window || windowIgnored || isOpen(window, Date.now());
  /** A pause or a closed window asks the rollout to park before the next group. */
  const parkingDue = () => status.paused || !windowOpen();
  let { switchAfter, holdsReady } = switchPlan(input);
  if (window) status.window = { spec: input.maintenanceWindow!, open: windowOpen() };

  const countServing = () => [...satellites.values()].filter((s) => s.lessonServed !== undefined).length;
  /** Goes out when its group does: taught, or skipped while it learned and still serving the old lesson (it leaves, and stays out). */
  const leavesWithItsGroup = (name: string) => satellites.get(name)!.state !== 'skipped' || satellites.get(name)!.lessonServed !== undefined;
  const setPhase = (phase: RolloutPhase) => {
    status.phase = phase;
    status.serving = countServing();
    upsertSearchAttributes([
      { key: searchAttributes.phase, value: phase },
      { key: searchAttributes.halted, value: phase === 'halted' },
    ]);
    showSummary(summarizeRollout(status));
  };
  /** Where the rollout has these satellites; what users reach on them is `reach`'s to say. */
  const setState = (names: string[], state: SatelliteStatus['state']) => {
    for (const name of names) satellites.get(name)!.state = state;
  };
  /**
   * What users reach on these satellites from now on: a lesson, or nothing. Said right after
   * the call that changed it (the load balancer's; without one, the web server's), so that
   * the status, its count and its word on two lessons follow what users get, not a step
   * later. Changes made by one call are given together.
   */
  const reach = (...changes: [names: string[], lesson: string | undefined][]) => {
    const before = countServing();
    for (const [names, lessonServed] of changes) for (const name of names) satellites.get(name)!.lessonServed = lessonServed;
    status.serving = countServing();
    countCapacity(before);
    watchVersions();
  };
  /**
   * The capacity figures: from the moment the rollout knows what each satellite serves,
   * every change of what users reach counts the satellite-seconds out of service since the
   * last one (workflow time: replay counts the same).
   */
  const countCapacity = (servingBefore: number) => {
    if (status.capacity) status.capacity = observeCapacity(status.capacity, servingBefore, status.serving, Date.now());
  };
  const startCounting = () => {
    status.serving = countServing();
    // Runs from before the figure was kept (no copy order in their input) write the memo as they did.
    if (input.copy !== undefined) status.capacity ??= startCapacity(satellites.size, status.serving, Date.now());
  };
  /** Users get two lessons side by side: say so as it happens, why, and for how long. */
  const watchVersions = () => {
    const lessons = new Set([...satellites.values()].flatMap((s) => (s.lessonServed ? [s.lessonServed] : [])));
    if (lessons.size > 1 && !status.mixed) {
      status.mixed = { since: new Date().toISOString(), why: mixedReason() };
      note(`users get old and new answers side by side: ${status.mixed.why}`, 'warn');
    } else if (lessons.size <= 1 && status.mixed) {
      const lasted = Date.now() - Date.parse(status.mixed.since);
      status.mixedWindowMs = (status.mixedWindowMs ?? 0) + lasted;
      status.mixed = undefined;
      note(`one lesson again after ${lasted} ms side by side`);
    } else {
      return;
    }
    // The Temporal UI's summary says so from the change that does it, not from the next phase.
    if (patched(MEMO_FOLLOWS_VERSIONS)) showSummary(summarizeRollout(status));
  };
  /** Why ready groups are brought in before the switch, while it happens. */
  let joinReason: string | undefined;
  const mixedReason = (): string => {
    if (joinReason) return `${joinReason}: the groups ready on the new lesson serve meanwhile`;
    if (status.phase === 'aborting') return 'the abort puts groups back one after another';
    if (!input.loadBalancerControl) return 'without load balancer control each group rejoins when the health checks see it';
    if (status.paused) return 'the rollout is paused: the groups ready on the new lesson serve meanwhile';
    if (!windowOpen()) return 'outside the maintenance window: the groups ready on the new lesson serve until it opens';
    return 'capacity first: each group rejoins as soon as it passed';
  };

  upsertSearchAttributes([
    { key: searchAttributes.cluster, value: input.cluster },
    { key: searchAttributes.lessonId, value: lesson.lessonId },
  ]);

  // Descriptions are what the Temporal UI shows beside each name in its signal, update and query lists.
  setHandler(statusQuery, () => status, { description: 'Where the rollout stands: phase, each group and satellite, a halt' });
  setHandler(
    resumeSignal,
    () => {
      decisions.resume();
      if (status.phase === 'waiting-for-window') windowIgnored = true;
      status.paused = false;
    },
    { description: 'After the fix: go on from the halt (or a pause; or let the next group in outside the window)' },
  );
  setHandler(
    abortSignal,
    (reason) => {
      note(`abort requested${reason ? `: ${reason}` : ''}`);
      if (restoring && !decisions.current) note('the restore goes on: an abort gives up only a halt of it');
      decisions.abort(reason || 'aborted by the operator');
      status.paused = false;
    },
    { description: 'Stop the rollout and put the groups taken out back on the lesson they served (optional input: the reason)' },
  );
  setHandler(
    pauseSignal,
    () => {
      status.paused = true;
    },
    { description: 'Hold before the next group goes into the classroom; resume goes on' },
  );

  // ---- operator updates: act on one satellite of a halted group ---------------------
  /** The halt a retry or skip of `name` is for: only a halt of the lesson, where the satellite failed. */
  const haltedSatellite = (name: string): { id: number; halt: Halt } => {
    const open = decisions.current;
    if (!open) throw ApplicationFailure.nonRetryable('the rollout is not halted', 'NotHalted');
    const { halt } = open;
    if (halt.step !== LESSON_STEP) {
      throw ApplicationFailure.nonRetryable(
        `the rollout is halted in ${halt.step} of group ${halt.group}, not in a lesson or examination: fix the cause and send resume (or abort)`,
        'NotHalted',
      );
    }
    if (!halt.satellites.includes(name)) {
      throw ApplicationFailure.nonRetryable(`satellite ${name} is not among the halted ones (${halt.satellites.join(', ')})`, 'NotHalted');
    }
    if (retrying.has(name)) throw ApplicationFailure.nonRetryable(`satellite ${name} is being taught again already`, 'NotHalted');
    return open;
  };
  /** One satellite of a halt is settled; the last one ends that halt (and no later one). */
  const settle = ({ id, halt }: { id: number; halt: Halt }, name: string) => {
    halt.satellites = halt.satellites.filter((s) => s !== name);
    if (halt.satellites.length === 0) decisions.settle(id);
  };
  setHandler(
    retrySatelliteUpdate,
    async ({ satellite: name }) => {
      const open = haltedSatellite(name);
      retrying.add(name);
      try {
        const failure = await teach(name, true);
        if (!failure) settle(open, name);
      } finally {
        retrying.delete(name);
      }
      return satellites.get(name)!;
    },
    {
      validator: ({ satellite: name }) => void haltedSatellite(name),
      description: 'Teach one halted satellite again (input {"satellite": "<name>"}); the rollout goes on once none is left failing',
    },
  );
  setHandler(
    skipSatelliteUpdate,
    async ({ satellite: name }) => {
      const open = haltedSatellite(name);
      setState([name], 'skipped');
      if (whileServing) {
        // It still serves the lesson it had: it leaves with its group and stays out.
        note(`${name} skipped by the operator: it leaves the load balancer with its group and stays out of service`);
      } else {
        reach([[name], undefined]);
        note(`${name} skipped by the operator: it stays out of service`);
      }
      settle(open, name);
      return satellites.get(name)!;
    },
    {
      description: 'Leave one halted satellite out of service for this rollout (input {"satellite": "<name>"})',
      validator: ({ satellite: name }) => {
        haltedSatellite(name);
        // After the skip, the satellite never comes back; while the largest remaining group is in the classroom, the rest must suffice.
        const skipped = [...satellites.values()].filter((s) => s.state === 'skipped').length + 1;
        const total = satellites.size;
        const largestRemaining = Math.max(
          0,
          ...groups.filter((g) => groupStatus.find((s) => s.name === g.name)!.state !== 'serving-new').map((g) => g.satellites.length),
        );
        const left = total - skipped - largestRemaining;
        if (left < input.minServingSatellites) {
          throw new Error(
            `skipping ${name} would leave ${left} satellites serving while a group is in the classroom, below the minimum of ${input.minServingSatellites}`,
          );
        }
      },
    },
  );

  // ---- halting ------------------------------------------------------------------------
  /** Reports to the task monitor; a monitor that cannot be reached does not stop the rollout. */
  const report = (outcome: Report['status'], summary: string, key: string) =>
    taskMonitor
      .writeReport({
        runKey: `${workflowId}/${runId}${key}`,
        task: 'holdLesson',
        status: outcome,
        summary,
        log,
        details: { lessonId: lesson.lessonId, requestedBy: input.requestedBy, halted: status.halted },
        startedAt,
        finishedAt: new Date().toISOString(),
      })
      .catch((err) => {
        if (isCancellation(err)) throw err;
        note(`the report to the task monitor, or its alert, did not go through: ${operatorMessage(err)}`);
      });

  /** Halts until the operator decides; returns on resume, throws Aborted on abort. */
  async function halt(h: Omit<Halt, 'since'>): Promise<void> {
    // Several halts may be open at once (old runs' parallel steps): the phase to go back to is the one before the first.
    const before = decisions.current ? phaseBeforeHalts : status.phase;
    phaseBeforeHalts = before;
    const open: Halt = { ...h, since: new Date().toISOString() };
    let shown = false;
    // In the restore, an abort sent while it ran is spent: only one sent during this halt gives up.
    if (restoring) decisions.clearAbort();
    try {
      // Open before it is visible: a resume, retry or skip that arrives while the report is being written counts.
      await decisions.halt(open, async (id) => {
        shown = true;
        status.halted = open;
        note(`halted in ${h.step} of group ${h.group}: ${h.reason}`, 'warn');
        setPhase('halted');
        await report('halted', `lesson ${lesson.lessonId} halted in ${h.step} of group ${h.group}: ${h.reason}`, `/halt-${id}`);
      });
    } finally {
      if (shown) {
        status.halted = decisions.current?.halt ?? null;
        if (!status.halted) setPhase(before);
      }
    }
    note(`resumed ${h.step} of group ${h.group}`);
  }

  /**
   * The run restores after an abort: there an abort no longer stops it before its next
   * step, it ends only a halt of the restore (the operator gives up on a satellite that
   * cannot be put back). A restore stopped halfway would leave groups out for no reason.
   */
  let restoring = false;
  const throwIfAborted = () => {
    if (!restoring) decisions.throwIfAborted();
  };

  /** Runs a step; on failure halts, and on resume runs it again. */
  async function step<T>(name: string, group: string, names: string[], run: () => Promise<T>): Promise<T> {
    for (;;) {
      throwIfAborted();
      try {
        return await run();
      } catch (err) {
        if (isCancellation(err) || err instanceof Aborted) throw err;
        await halt({ step: name, group, satellites: names, reason: operatorMessage(err) });
      }
    }
  }

  /**
   * One step on each of `names` at once. The ones that fail halt together, in one halt
   * naming them all (one resume goes on, one abort stops), and run again on resume.
   */
  async function stepEach(name: string, group: string, names: string[], run: (satellite: string) => Promise<unknown>): Promise<void> {
    if (!patched(ONE_HALT_PER_STEP)) {
      await Promise.all(names.map((n) => step(name, group, [n], () => run(n))));
      return;
    }
    let pending = names;
    for (;;) {
      throwIfAborted();
      const reasons = new Map<string, string>();
      await Promise.all(
        pending.map(async (n) => {
          try {
            await run(n);
          } catch (err) {
            if (isCancellation(err) || err instanceof Aborted) throw err;
            reasons.set(n, operatorMessage(err));
          }
        }),
      );
      // In the group's order, whichever failed first.
      const failed = pending.filter((n) => reasons.has(n)).map((n) => ({ name: n, reason: reasons.get(n)! }));
      if (failed.length === 0) return;
      const reason = failed.length === 1 ? failed[0]!.reason : failed.map((f) => `${f.name}: ${f.reason}`).join(' | ');
      await halt({ step: name, group, satellites: failed.map((f) => f.name), reason });
      pending = failed.map((f) => f.name);
    }
  }

  async function holdIfPaused(): Promise<void> {
    if (!status.paused) return;
    const before = status.phase;
    setPhase('paused');
    note('paused before the next group');
    await condition(() => !status.paused || decisions.aborted);
    setPhase(before);
    decisions.throwIfAborted();
  }

  /**
   * The maintenance window: before a group goes into the classroom, wait until it is open
   * (durable timer; `abort` ends the wait, `resume` lets the rollout go on regardless).
   */
  async function waitForWindow(group: string): Promise<void> {
    if (!window) return;
    const before = status.phase;
    let waited = false;
    while (!windowOpen()) {
      const now = Date.now();
      const opensAt = nextOpening(window, now);
      status.window = { spec: input.maintenanceWindow!, open: false, opensAt: new Date(opensAt).toISOString(), parkedBefore: group };
      if (!waited) note(`parked before group ${group}: the maintenance window (${input.maintenanceWindow}) opens ${status.window.opensAt}`);
      waited = true;
      setPhase('waiting-for-window');
      await condition(() => decisions.aborted || windowIgnored, opensAt - now);
      decisions.throwIfAborted();
    }
    status.window = { spec: input.maintenanceWindow!, open: true, ...(windowIgnored ? { ignored: true } : {}) };
    if (waited) {
      note(
        windowIgnored
          ? `the operator let group ${group} in outside the maintenance window`
          : `the maintenance window is open: group ${group} goes in`,
      );
      setPhase(before);
    }
  }

  /** Copy then examine one satellite; returns the failure, or undefined when it passed. */
  async function teach(name: string, repair: boolean): Promise<string | undefined> {
    const s = satellites.get(name)!;
    const acts = satellite(name);
    try {
      s.state = 'copying';
      const copy = await acts.copyLesson(lesson, { repair });
      s.filesCopied += copy.filesCopied;
      s.bytesCopied += copy.bytesChanged;
      s.bytesSent += copy.bytesSent;
      s.state = 'examining';
      const exam = await acts.examineLesson(lesson);
      s.examination = exam;
      s.state = exam.passed ? 'passed' : 'failed';
      return exam.passed ? undefined : `${name} failed the examination: ${exam.failures.join('; ')}`;
    } catch (err) {
      if (isCancellation(err)) throw err;
      s.state = 'failed';
      return `${name}: ${operatorMessage(err)}`;
    }
  }

  // ---- before the first group ------------------------------------------------------------

  /**
   * What every satellite serves now, and a repair of what an ended run left (a run that
   * was terminated cannot clean up after itself): a satellite out of service whose
   * current lesson is the one the cluster serves comes back at once; one that has
   * another lesson stays out (never back on a lesson the others do not serve), and its
   * group, if none of it serves, takes the lesson first so that capacity is not lost twice.
   */
  async function repairWhatWasLeft(): Promise<void> {
    const all = groups.flatMap((g) => g.satellites);
    // A whole-cluster switch that was terminated between its two changes left users on the stand-ins: the own instances take their lesson.
    if (input.loadBalancerControl && input.copy !== undefined) await backFromStandIns('repair', (_name, service) => service.standIn ?? null);
    const { found, balancer, inService } = await readServices(all);
    const clusterLesson = mostCommon(all.filter(inService).map((n) => found.get(n)!.current)) ?? mostCommon(all.map((n) => found.get(n)!.current));
    const out = all.filter((n) => !inService(n) && found.get(n)!.current !== null);
    // An operator's own maintenance state in HAProxy is theirs to end.
    const repairable = out.filter((n) => found.get(n)!.current === clusterLesson && balancer?.get(n) !== 'MAINT');
    // Known before the repair, so that an abort or a cancel during it puts the repaired back too.
    for (const name of all) {
      const s = satellites.get(name)!;
      const serves = inService(name);
      s.lessonServed = serves ? (found.get(name)!.current ?? undefined) : undefined;
      // Abort puts a satellite back only on what it served when the rollout began (or the cluster's lesson, which the repair gives back).
      servedBefore.set(name, serves || repairable.includes(name) ? found.get(name)!.current : null);
      if (!serves && !repairable.includes(name) && found.get(name)!.current !== null) {
        s.state = 'out';
        s.note = `out of service when the rollout began (left by an earlier run, on lesson ${found.get(name)!.current}); it takes the lesson with its group`;
        note(`${name}: ${s.note}`, 'warn');
      }
    }
    startCounting();
    if (repairable.length > 0) {
      note(`repairing what an earlier run left out of service: ${repairable.join(', ')} back on lesson ${clusterLesson}`, 'warn');
      await stepEach('repair: start web server', 'all', repairable, (name) => satellite(name).startWebServer());
      if (balancer) {
        await step('repair: health checks', 'all', repairable, () =>
          loadBalancer.waitUntilHealthy(repairable, { serving: false, deadlineMs: healthyDeadline }),
        );
        await step('repair: back into the load balancer', 'all', repairable, () => loadBalancer.switchServers({ ready: repairable, drain: [] }));
        await step('repair: serving', 'all', repairable, () =>
          loadBalancer.waitUntilHealthy(repairable, { serving: true, deadlineMs: healthyDeadline }),
        );
      } else {
        await pause(input.healthCheckWaitMs, { summary: "repair: the load balancer's health checks see the repaired satellites back" });
      }
      reach([repairable, clusterLesson]);
    }
    // Groups wholly out of service go first: taking them costs no capacity.
    const whollyOut = (g: RolloutGroup) => g.satellites.every((n) => !satellites.get(n)!.lessonServed);
    const order = [...groups.filter(whollyOut), ...groups.filter((g) => !whollyOut(g))];
    if (clusterLesson && order.some((g, i) => g !== groups[i])) {
      const statusOf = new Map(groupStatus.map((gs) => [gs.name, gs]));
      groups.splice(0, groups.length, ...order);
      groupStatus.splice(0, groupStatus.length, ...order.map((g) => statusOf.get(g.name)!));
      ({ switchAfter, holdsReady } = switchPlan({ ...input, groups }));
      note(`groups already out of service go first: ${order.map((g) => g.name).join(', ')}`);
    }
  }

  /** What each satellite has as its lesson, and whether users reach it: its web server runs and (with control) HAProxy sends users to it. */
  async function readServices(names: string[]) {
    const found = new Map<string, SatelliteService>();
    await stepEach('read served lesson', 'all', names, async (name) => found.set(name, await satellite(name).describeService()));
    const balancer = input.loadBalancerControl
      ? new Map((await step('read the load balancer', 'all', names, () => loadBalancer.readLoadBalancer())).map((s) => [s.name, s.status]))
      : undefined;
    const inService = (name: string) => found.get(name)!.webServerRunning && (!balancer || takesUsers(balancer.get(name)));
    return { found, balancer, inService };
  }

  // ---- the steps of one group ---------------------------------------------------------

  /** A pause or a closed window parks the rollout before the next group, with nobody out of service. */
  async function parkIfAsked(group: string): Promise<void> {
    if (held.length > 0 && parkingDue()) await bringIn([], group, 'the rollout parks');
    await holdIfPaused();
    await waitForWindow(group);
  }

  /** Stop chatting: out of the load balancer, then the web server stops; the barrier is all of them out. */
  async function stopChatting(index: number): Promise<string[]> {
    const g = groups[index]!;
    const gs = groupStatus[index]!;
    const names = g.satellites.filter((n) => satellites.get(n)!.state !== 'skipped');
    const leaving = g.satellites.filter(leavesWithItsGroup);
    gs.state = 'in-classroom';
    groupStartedAt = Date.now();
    setPhase('stop-chatting');
    // Capacity: the rest of the cluster must keep serving while this group is out. A group
    // none of whose satellites serves (the switch took it out, or a skip) costs nothing.
    const servingHere = () => leaving.filter((n) => satellites.get(n)!.lessonServed !== undefined).length;
    const wouldServe = () => countServing() - servingHere();
    const costsCapacity = () => (patched(NO_FLOOR_HALT_FOR_A_GROUP_OUT) ? servingHere() > 0 : countServing() > 0);
    while (costsCapacity() && wouldServe() < input.minServingSatellites) {
      // Nobody waits for the operator out of service who could serve: the groups held for the switch come in first.
      if (held.length > 0) {
        await bringIn([], g.name, 'the capacity floor would halt the rollout');
        continue;
      }
      await halt({
        step: 'stop chatting',
        group: g.name,
        satellites: names,
        reason: `taking group ${g.name} out would leave ${wouldServe()} satellites serving, below the minimum of ${input.minServingSatellites}`,
      });
    }
    setState(names, 'leaving');
    if (input.loadBalancerControl) {
      const toDrain = leaving.filter((n) => !drainedByCutover.includes(n));
      if (toDrain.length > 0) {
        await step('stop chatting: drain', g.name, toDrain, () => loadBalancer.drainServers(toDrain));
        reach([toDrain, undefined]);
      }
      const drained = await step('stop chatting: wait for open requests', g.name, leaving, () =>
        loadBalancer.waitUntilDrained(leaving, drainDeadline),
      );
      if (!drained.drained)
        note(`drain deadline passed with sessions open: ${JSON.stringify(drained.openSessions)}; Apache's graceful stop lets them finish`);
    }
    await stepEach('stop chatting: stop web server', g.name, leaving, (name) => satellite(name).stopWebServer());
    setState(names, 'out');
    reach([leaving, undefined]);
    if (!input.loadBalancerControl) await pause(input.healthCheckWaitMs, { summary: `the load balancer's health checks see group ${g.name} out` });
    return names;
  }

  /** Last cigarette: the seed's wait before the lesson. */
  async function lastCigarette(group: string): Promise<void> {
    setPhase('last-cigarette');
    await pause(input.lastCigaretteMs, { summary: `last cigarette before group ${group}'s lesson` });
  }

  /** The lesson and the examination, in parallel across the group; failures halt until the operator decides. */
  async function lessonAndExamination(index: number, names: string[]): Promise<string[]> {
    setPhase('lesson');
    return teachEach(groups[index]!.name, names);
  }

  /**
   * The lesson while serving: every satellite copies the new lesson beside the one it
   * serves and is examined on its private examination instance, at most `copiesAtOnce`
   * at a time, while users still reach the old lesson on all of them. A failure halts
   * here, before any satellite has left the load balancer.
   */
  async function lessonWhileServing(): Promise<void> {
    setPhase('lesson-while-serving');
    for (const gs of groupStatus) gs.state = 'learning';
    const names = groups.flatMap((g) => g.satellites).filter((n) => satellites.get(n)!.state !== 'skipped');
    await teachEach(undefined, names, Math.max(1, input.copiesAtOnce ?? names.length));
    for (const gs of groupStatus) gs.state = 'examined';
    note(`every satellite has lesson ${lesson.lessonId} copied and examined beside the one it serves`);
  }

  /** A rollback: every satellite holds the lesson, as filed (rollBackLesson checked), so each is ready for its switch. */
  function lessonKept(): void {
    for (const s of satellites.values()) if (s.state !== 'skipped') s.state = 'passed';
    for (const gs of groupStatus) gs.state = 'examined';
    note(`rolling back to lesson ${lesson.lessonId}: every satellite holds it, nothing is copied`);
  }

  /**
   * Copy and examine each of `names` (all at once, or at most `atOnce` at a time); the
   * failures halt together, and on resume only they are taught again. Returns the ones
   * that passed.
   */
  async function teachEach(group: string | undefined, names: string[], atOnce?: number): Promise<string[]> {
    let pending = names;
    let repair = false;
    for (;;) {
      const outcomes = new Map<string, string | undefined>();
      const one = async (name: string) => void outcomes.set(name, await teach(name, repair));
      await (atOnce === undefined ? Promise.all(pending.map(one)) : atMost(atOnce, pending, one));
      const failures = pending.filter((n) => outcomes.get(n) !== undefined);
      if (failures.length === 0) break;
      const halted = groupStatus.filter((gs) => gs.satellites.some((s) => failures.includes(s.name)));
      const stateBefore = new Map(halted.map((gs) => [gs, gs.state]));
      for (const gs of halted) gs.state = 'halted';
      await halt({
        step: LESSON_STEP,
        // While serving, the halt names the groups of the satellites that failed.
        group: group ?? halted.map((gs) => gs.name).join(', '),
        satellites: failures,
        reason: failures.map((n) => outcomes.get(n)).join(' | '),
      });
      for (const [gs, state] of stateBefore) gs.state = state;
      // A retry the operator started may still run when the halt ends (a resume came too): its outcome decides.
      await condition(() => pending.every((n) => !retrying.has(n)));
      // Satellites the operator retried successfully or skipped during the halt are settled.
      pending = failures.filter((n) => satellites.get(n)!.state === 'failed');
      repair = true;
    }
    return names.filter((n) => satellites.get(n)!.state === 'passed');
  }

  /**
   * Leave the classroom: the new lesson becomes what the web server serves. Then, with
   * the load balancer under control, one of three: wait ready out of service for the
   * switch (one lesson at a time, before the switch); the switch itself (every group
   * ready comes in, every group still on the old lesson goes out, in one change); or
   * back into the load balancer. Returns whether the group serves users now.
   */
  async function leaveTheClassroom(index: number, passed: string[]): Promise<boolean> {
    const g = groups[index]!;
    const gs = groupStatus[index]!;
    setPhase('leave-classroom');
    await stepEach('leave the classroom: start web server', g.name, passed, async (name) => {
      await satellite(name).activateLesson(lesson.lessonId);
      await satellite(name).startWebServer();
    });
    // Examined beside the old lesson, so after the switch one look through the port users reach suffices.
    if (whileServing) await stepEach('leave the classroom: quick check', g.name, passed, (name) => satellite(name).checkServing(lesson));
    setState(passed, 'ready');
    if (!input.loadBalancerControl) {
      // Nothing keeps users away from a running web server but the health checks, which see it soon.
      reach([passed, lesson.lessonId]);
      await pause(input.healthCheckWaitMs, { summary: `the load balancer's health checks see group ${g.name} back` });
      servingNew(index, passed);
      return true;
    }
    await step('leave the classroom: health checks', g.name, passed, () =>
      loadBalancer.waitUntilHealthy(passed, { serving: false, deadlineMs: healthyDeadline }),
    );
    if (holdsReady && index < switchAfter && !parkingDue()) {
      held.push(...passed);
      gs.state = 'held-ready';
      note(`group ${g.name} is ready on lesson ${lesson.lessonId}, out of service until the switch: ${passed.join(', ')}`);
      return false;
    }
    // Outside the window, or paused, the remaining groups are not taken out: the ready ones simply come in.
    if (index === switchAfter && windowOpen() && !(status.paused && patched(NO_PARKING_OUT_OF_SERVICE))) {
      await cutover(index, passed);
    } else {
      await bringIn(passed, g.name, `group ${g.name} leaves the classroom`);
    }
    servingNew(index, passed);
    return true;
  }

  /** The switch: the ready groups in, every group still on the old lesson out, in one load balancer change. */
  async function cutover(index: number, passed: string[]): Promise<void> {
    setPhase('cutover');
    const ready = [...held, ...passed];
    const rest = groups.slice(index + 1).flatMap((g) => g.satellites.filter(leavesWithItsGroup));
    await step('cutover', groups[index]!.name, [...ready, ...rest], () => loadBalancer.switchServers({ ready, drain: rest }));
    reach([ready, lesson.lessonId], [rest, undefined]);
    drainedByCutover = rest;
    setState(rest, 'leaving');
    note(`cutover: ${ready.join(', ')} in, ${rest.join(', ')} out`);
    await becomeServing(ready, groups[index]!.name);
  }

  /** Satellites ready on the new lesson (and any held for the switch) back into the load balancer. */
  async function bringIn(passed: string[], group: string, why: string): Promise<void> {
    const ready = [...held, ...passed];
    if (held.length > 0) {
      note(`${why}: the groups held for the switch come in too (${held.join(', ')})`);
      joinReason = why;
    }
    await step('leave the classroom: back into the load balancer', group, ready, () => loadBalancer.switchServers({ ready, drain: [] }));
    reach([ready, lesson.lessonId]);
    await becomeServing(ready, group);
  }

  /** Waits until the load balancer sends users to them; from then they serve the new lesson. */
  async function becomeServing(ready: string[], group: string): Promise<void> {
    await step('leave the classroom: serving', group, ready, () =>
      loadBalancer.waitUntilHealthy(ready, { serving: true, deadlineMs: healthyDeadline }),
    );
    const wasHeld = new Set(held);
    held = [];
    setState(ready, 'serving-new');
    joinReason = undefined;
    for (const [i, gs] of groupStatus.entries()) {
      if (gs.state === 'held-ready' && groups[i]!.satellites.some((n) => wasHeld.has(n))) gs.state = 'serving-new';
    }
  }

  /** The group's satellites serve the new lesson: recorded in the status and the metrics. */
  function servingNew(index: number, passed: string[]): void {
    const g = groups[index]!;
    setState(passed, 'serving-new');
    groupStatus[index]!.state = 'serving-new';
    groupRolloutSeconds(metricMeter).record((Date.now() - groupStartedAt) / 1000, { cluster: input.cluster, group: g.name });
    note(`group ${g.name} serves lesson ${lesson.lessonId}: ${passed.join(', ')}`);
  }

  /** Coffee: the seed's wait after a group serves again. */
  async function coffee(group: string): Promise<void> {
    setPhase('coffee');
    await pause(input.coffeeMs, { summary: `coffee after group ${group}` });
  }

  // ---- the whole-cluster switch ------------------------------------------------------

  /**
   * Every user from the old lesson to the new one in one load balancer change: each
   * satellite's examination instance serves the examined lesson as its stand-in; one
   * change sends users to the stand-ins and away from the satellites' own instances; these
   * move to the new lesson behind them (drain, stop, repoint, start, the quick check); a
   * second change brings users back to them; the stand-ins stop.
   */
  async function switchWholeCluster(): Promise<void> {
    const names = [...satellites.values()].filter((s) => s.state !== 'skipped').map((s) => s.name);
    // Skipped while learning, still serving the old lesson: out with the switch, and they stay out.
    const skippedServing = [...satellites.keys()].filter((n) => satellites.get(n)!.state === 'skipped' && leavesWithItsGroup(n));
    const standIns = names.map(standInServer);
    groupStartedAt = Date.now();
    setPhase('cutover');
    await stepEach('whole-cluster switch: stand-ins start', 'all', names, async (name) => {
      await satellite(name).startStandIn(lesson.lessonId);
      await satellite(name).checkServing(lesson, { standIn: true });
    });
    await step('whole-cluster switch: the load balancer checks the stand-ins', 'all', names, async () => {
      await loadBalancer.switchServers({ ready: [], drain: standIns });
      await loadBalancer.waitUntilHealthy(standIns, { serving: false, deadlineMs: healthyDeadline });
    });
    await step('whole-cluster switch: users to the new lesson', 'all', names, () =>
      loadBalancer.switchServers({ ready: standIns, drain: [...names, ...skippedServing] }),
    );
    reach([names, lesson.lessonId], [skippedServing, undefined]);
    note(`whole-cluster switch: every user gets lesson ${lesson.lessonId}, from the stand-ins of ${names.join(', ')}`);
    await step('whole-cluster switch: stand-ins serving', 'all', names, () =>
      loadBalancer.waitUntilHealthy(standIns, { serving: true, deadlineMs: healthyDeadline }),
    );

    setPhase('leave-classroom');
    setState(names, 'leaving');
    const drained = await step('whole-cluster switch: wait for open requests', 'all', names, () =>
      loadBalancer.waitUntilDrained([...names, ...skippedServing], drainDeadline),
    );
    if (!drained.drained)
      note(`drain deadline passed with sessions open: ${JSON.stringify(drained.openSessions)}; Apache's graceful stop lets them finish`);
    await stepEach('whole-cluster switch: stop skipped', 'all', skippedServing, (name) => satellite(name).stopWebServer());
    await stepEach('whole-cluster switch: own instances to the new lesson', 'all', names, async (name) => {
      await satellite(name).stopWebServer();
      await satellite(name).activateLesson(lesson.lessonId);
      await satellite(name).startWebServer();
      await satellite(name).checkServing(lesson);
    });
    setState(names, 'ready');
    await step('whole-cluster switch: health checks', 'all', names, () =>
      loadBalancer.waitUntilHealthy(names, { serving: false, deadlineMs: healthyDeadline }),
    );
    await step('whole-cluster switch: users back on the own instances', 'all', names, () =>
      loadBalancer.switchServers({ ready: names, drain: standIns }),
    );
    await step('whole-cluster switch: own instances serving', 'all', names, () =>
      loadBalancer.waitUntilHealthy(names, { serving: true, deadlineMs: healthyDeadline }),
    );
    for (const [index, g] of groups.entries())
      servingNew(
        index,
        g.satellites.filter((n) => names.includes(n)),
      );
    await retireStandIns('whole-cluster switch', [...satellites.keys()]);
  }

  /** The stand-ins of `names` are done: once no request is open on them, their instances stop and the load balancer keeps them in maintenance. */
  async function retireStandIns(label: string, names: string[]): Promise<void> {
    if (names.length === 0) return;
    const standIns = names.map(standInServer);
    await step(`${label}: stand-ins drain`, 'all', names, async () => {
      await loadBalancer.switchServers({ ready: [], drain: standIns });
      await loadBalancer.waitUntilDrained(standIns, drainDeadline);
    });
    await stepEach(`${label}: stand-ins stop`, 'all', names, (name) => satellite(name).stopStandIn());
    await step(`${label}: stand-ins to maintenance`, 'all', names, () => loadBalancer.switchServers({ ready: [], drain: [], maint: standIns }));
  }

  /**
   * Users on the stand-ins (a whole-cluster switch was stopped between its two changes):
   * each satellite's own instance is put on `target` behind its stand-in, one change
   * brings users back to the own instances, and those stand-ins retire, as do stand-ins
   * that run without users. A stand-in whose satellite has no lesson to go back to keeps
   * serving (taking it out would take the satellite out), and the log says so.
   */
  async function backFromStandIns(label: string, target: (name: string, service: SatelliteService) => string | null): Promise<void> {
    const all = [...satellites.keys()];
    const lb = new Map(
      (await step(`${label}: read the load balancer`, 'all', all, () => loadBalancer.readLoadBalancer())).map((s) => [s.name, s.status]),
    );
    // A backend without stand-in servers has nothing to bring back.
    if (!all.some((n) => lb.has(standInServer(n)))) return;
    const services = new Map<string, SatelliteService>();
    await stepEach(`${label}: read the stand-ins`, 'all', all, async (name) => services.set(name, await satellite(name).describeService()));
    const onStandIns = all.filter((n) => takesUsers(lb.get(standInServer(n))));
    const back = onStandIns.filter((n) => target(n, services.get(n)!) !== null);
    const left = onStandIns.filter((n) => !back.includes(n));
    if (back.length > 0) {
      note(`${label}: users are on the stand-ins of ${back.join(', ')}; their own instances go back on their lesson behind them`, 'warn');
      await stepEach(`${label}: own instances behind the stand-ins`, 'all', back, async (name) => {
        await satellite(name).stopWebServer();
        await satellite(name).activateLesson(target(name, services.get(name)!)!);
        await satellite(name).startWebServer();
      });
      await step(`${label}: health checks`, 'all', back, () => loadBalancer.waitUntilHealthy(back, { serving: false, deadlineMs: healthyDeadline }));
      await step(`${label}: users back on the own instances`, 'all', back, () =>
        loadBalancer.switchServers({ ready: back, drain: back.map(standInServer) }),
      );
      reach(...back.map((name): [string[], string] => [[name], target(name, services.get(name)!)!]));
    }
    if (left.length > 0) note(`${label}: ${left.join(', ')} had no lesson to go back to: their stand-ins keep serving users`, 'warn');
    // Stand-ins that run, or that the load balancer does not keep in maintenance, retire, but none that still serves users.
    const idle = all.filter(
      (n) => !left.includes(n) && (services.get(n)!.standInRunning || (lb.has(standInServer(n)) && !lb.get(standInServer(n))!.startsWith('MAINT'))),
    );
    await retireStandIns(label, idle);
  }

  // ---- the story ----------------------------------------------------------------------
  let drainedByCutover: string[] = [];
  /** Satellites ready on the new lesson, out of service, waiting for the switch (one lesson at a time). */
  let held: string[] = [];
  let groupStartedAt = 0;

  try {
    // What every satellite serves now, asked of all of them at once.
    if (patched(REPAIR_WHAT_WAS_LEFT)) {
      await repairWhatWasLeft();
    } else {
      await Promise.all(
        groups.flatMap((g) =>
          g.satellites.map(async (name) => {
            const before = await step('read served lesson', g.name, [name], () => satellite(name).servedLesson());
            servedBefore.set(name, before);
            satellites.get(name)!.lessonServed = before ?? undefined;
          }),
        ),
      );
    }
    startCounting();

    if (whileServing) {
      // Every satellite learns beside the lesson it serves (a rollback finds it kept); then group after group only switches.
      if (input.rollback) lessonKept();
      else await lessonWhileServing();
      if (wholeCluster) {
        await parkIfAsked('all');
        await switchWholeCluster();
      } else {
        for (const [index, g] of groups.entries()) {
          if (!(drainedByCutover.length > 0 && parkingDue())) await parkIfAsked(g.name);
          const names = await stopChatting(index);
          const serving = await leaveTheClassroom(index, names);
          // A rollback is a way back, not a lesson: no waits between its groups.
          if (serving && !input.rollback) await coffee(g.name);
        }
      }
    } else {
      for (const [index, g] of groups.entries()) {
        // A group the switch took out is out of service already: no pause or window may park it there.
        const outAlready = drainedByCutover.length > 0 && parkingDue() && patched(NO_PARKING_OUT_OF_SERVICE);
        if (!outAlready) await parkIfAsked(g.name);
        const names = await stopChatting(index);
        await lastCigarette(g.name);
        const passed = await lessonAndExamination(index, names);
        const serving = await leaveTheClassroom(index, passed);
        if (serving) await coffee(g.name);
      }
    }
    countCapacity(countServing());
    setPhase('done');
    const sideBySide = status.mixedWindowMs
      ? `; users got old and new answers side by side for ${(status.mixedWindowMs / 1000).toFixed(1)} s in all`
      : '';
    await report('ok', `lesson ${lesson.lessonId} served by ${countServing()} of ${satellites.size} satellites${sideBySide}`, '');
  } catch (err) {
    // An abort, or a cancellation, which means the same: put everyone back, report, and only then end.
    const stop = cancellationOf(err);
    if (!stop) throw err;
    const ending = stop.rethrow ? 'cancelled' : 'aborted';
    if (stop.rethrow) note(`${stop.aborted.reason}: putting every satellite back as abort does`, 'warn');
    await beyondCancellation(async () => {
      try {
        await restore();
      } catch (again) {
        if (!(again instanceof Aborted)) throw again;
        // An abort while the restore is halted: stop there. Satellites still out stay out
        // (never serving a half-copied lesson); the status and the report say which.
        const out = [...satellites.values()].filter((s) => !s.lessonServed && servedBefore.get(s.name));
        for (const s of out) {
          s.state = 'failed';
          s.note = `out of service: the operator gave up the restore before it was back on lesson ${servedBefore.get(s.name)}`;
        }
        note(`restore abandoned by the operator; out of service: ${out.map((s) => s.name).join(', ')}`, 'warn');
      }
      countCapacity(countServing());
      setPhase('aborted');
      await report(
        'aborted',
        `lesson ${lesson.lessonId} ${ending}; ${countServing()} of ${satellites.size} satellites serve their previous lesson`,
        '',
      );
    });
    if (stop.rethrow) throw stop.rethrow;
  }
  return status;

  /**
   * Abort: back to one consistent version, the previous lesson, at full power. The
   * satellites out of service are put back first and come in with one load balancer
   * change that also takes out as many groups on the new lesson as the floor allows
   * (when all fit, users never get both lessons); the other groups on the new lesson
   * follow one at a time, the last taught first, satellite by satellite where a whole
   * group would take the cluster below the floor. Once started, the restore runs to its
   * end: an abort only gives up a halt of it.
   */
  async function restore(): Promise<void> {
    setPhase('aborting');
    decisions.clearAbort();
    const aboveTheFloor = patched(RESTORE_ABOVE_THE_FLOOR);
    restoring = aboveTheFloor;
    const lb = input.loadBalancerControl;
    // Users may be on the stand-ins: first back on the satellites' own instances, on the lesson before.
    if (input.loadBalancerControl && input.copy !== undefined) {
      // What it served when the rollout began; a run stopped before it had read that takes the own instance's lesson.
      await backFromStandIns('abort', (name, service) => (servedBefore.has(name) ? servedBefore.get(name)! : service.current));
      setState(
        [...satellites.values()].filter((s) => s.lessonServed !== undefined && s.lessonServed !== lesson.lessonId).map((s) => s.name),
        'restored',
      );
    }
    if (aboveTheFloor) {
      // What users reach now, read rather than believed: the call an abort or a cancel interrupted
      // (a drain, a switch) may or may not have taken effect. A run stopped before it had read what
      // every satellite served at the start takes what serves now as that.
      const all = [...satellites.keys()];
      const { found, inService } = await readServices(all);
      const serves = (name: string) => (inService(name) ? (found.get(name)!.current ?? undefined) : undefined);
      for (const name of all) if (!servedBefore.has(name)) servedBefore.set(name, serves(name) ?? null);
      reach(...all.map((name): [string[], string | undefined] => [[name], serves(name)]));
    }
    const previous = (name: string) => servedBefore.get(name)!;
    const restorable = (names: string[]) => names.filter((n) => servedBefore.get(n));
    const outNow = restorable([...satellites.values()].filter((s) => s.lessonServed === undefined).map((s) => s.name));
    const onNew = [...groups]
      .reverse()
      .map((g) => restorable(g.satellites.filter((n) => satellites.get(n)!.lessonServed === lesson.lessonId)))
      .filter((names) => names.length > 0);

    const putBack = async (names: string[]) => {
      if (names.length === 0 && aboveTheFloor) return;
      await stepEach('abort: back to the previous lesson', 'all', names, async (name) => {
        await satellite(name).activateLesson(previous(name));
        await satellite(name).startWebServer();
      });
      if (lb)
        await step('abort: health checks', 'all', names, () => loadBalancer.waitUntilHealthy(names, { serving: false, deadlineMs: healthyDeadline }));
    };
    const restored = (names: string[]) => {
      setState(names, 'restored');
      reach(...names.map((name): [string[], string] => [[name], previous(name)]));
    };
    /** Satellites on the new lesson that users no longer reach: stopped, put back, and in again. */
    const swapBack = async (names: string[]) => {
      if (lb) await step('abort: wait for open requests', 'all', names, () => loadBalancer.waitUntilDrained(names, drainDeadline));
      await stepEach('abort: stop web server', 'all', names, (name) => satellite(name).stopWebServer());
      setState(names, 'out');
      reach([names, undefined]);
      await putBack(names);
      if (lb) await step('abort: back into the load balancer', 'all', names, () => loadBalancer.switchServers({ ready: names, drain: [] }));
      else if (aboveTheFloor)
        await pause(input.healthCheckWaitMs, { summary: "abort: the load balancer's health checks see the restored satellites back" });
      restored(names);
    };

    // The first change: who is out comes back, and as many groups on the new lesson go as the floor allows.
    const first: string[] = [];
    let after = countServing() + outNow.length;
    while (onNew.length > 0 && (!aboveTheFloor || after - onNew[0]!.length >= input.minServingSatellites)) {
      after -= onNew[0]!.length;
      first.push(...onNew.shift()!);
    }
    await putBack(outNow);
    if (lb) {
      if (outNow.length + first.length > 0 || !aboveTheFloor)
        await step('abort: back into the load balancer', 'all', [...outNow, ...first], () =>
          loadBalancer.switchServers({ ready: outNow, drain: first }),
        );
      setState(first, 'leaving');
      reach([first, undefined]);
    } else {
      await pause(input.healthCheckWaitMs, { summary: "abort: the load balancer's health checks see the restored satellites back" });
      setState(first, 'leaving');
    }
    restored(outNow);
    if (first.length > 0) await swapBack(first);

    // The rest, one group at a time; one satellite at a time where the group would take the cluster below the floor.
    for (const group of onNew) {
      const batches = countServing() - group.length >= input.minServingSatellites ? [group] : group.map((name) => [name]);
      for (const batch of batches) {
        if (countServing() - batch.length < input.minServingSatellites)
          note(
            `the restore takes ${batch.join(', ')} out with ${countServing()} serving: below the minimum of ${input.minServingSatellites} for a moment`,
            'warn',
          );
        if (lb) await step('abort: out of the load balancer', 'all', batch, () => loadBalancer.drainServers(batch));
        setState(batch, 'leaving');
        if (lb) reach([batch, undefined]);
        await swapBack(batch);
      }
    }
    for (const gs of groupStatus) gs.state = 'restored';
    note(`aborted: ${countServing()} satellites serve their previous lesson`);
  }
}

/** Runs `run` on each name, at most `limit` at a time, in their order. */
async function atMost(limit: number, names: string[], run: (name: string) => Promise<void>): Promise<void> {
  const queue = [...names];
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) await run(name);
  };
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, worker));
}

/**
 * A configured wait as a durable timer; none for a wait of 0, since the server fires even a
 * 1 ms timer only after about a second (and a group may be out of service meanwhile).
 */
async function pause(ms: number, options: { summary: string }): Promise<void> {
  if (ms <= 0 && patched(NO_TIMER_FOR_NO_PAUSE)) return;
  await sleep(ms, options);
}

/** Patch: a wait of 0 starts no timer. */
const NO_TIMER_FOR_NO_PAUSE = 'no-timer-for-no-pause';

/** Patch: the rollout starts by reading each satellite's service and repairing what an ended run left. */
const REPAIR_WHAT_WAS_LEFT = 'repair-what-was-left';

/** HAProxy's word for a server that takes users. */
const takesUsers = (status: string | undefined) => status === 'UP' || (status?.startsWith('UP ') ?? false);

/** The value most of them have (the first of equals); undefined when none has one. */
export function mostCommon(values: (string | null)[]): string | undefined {
  const counts = new Map<string, number>();
  for (const v of values) if (v !== null) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: string | undefined;
  for (const [v, n] of counts) if (best === undefined || n > counts.get(best)!) best = v;
  return best;
}

/** Patch: the parallel steps of a group halt as one (before, each failing satellite halted on its own, and a resume ended only one). */
const ONE_HALT_PER_STEP = 'one-halt-per-step';
/** Patch: the floor check does not halt for a group that serves nobody (taking it out costs nothing). */
const NO_FLOOR_HALT_FOR_A_GROUP_OUT = 'no-floor-halt-for-a-group-out';
/** Patch: the restore puts groups on the new lesson back as capacity allows, and runs to its end unless halted. */
const RESTORE_ABOVE_THE_FLOOR = 'restore-above-the-floor';

/** Patch: the memo's summary is written when users start or stop getting two lessons. */
const MEMO_FOLLOWS_VERSIONS = 'memo-follows-versions';

/** The halt of a group's lesson and examination: the one halt where retrySatellite and skipSatellite apply. */
const LESSON_STEP = 'lesson and examination';
/** Patch: no pause or window parks a group out of service (a cutover is not made into a pause; a group it took out goes on). */
const NO_PARKING_OUT_OF_SERVICE = 'no-parking-out-of-service';

/**
 * Where the switch from the old lesson to the new one happens. One lesson at a time (with
 * the load balancer under control): the groups before the switch wait ready, out of
 * service, and the switch brings them all in. Otherwise, and in histories from before the
 * choice existed, every group but the last two rejoins as soon as it passed, and the
 * second-to-last swaps with the last.
 */
function switchPlan(input: HoldLessonInput): { switchAfter: number; holdsReady: boolean } {
  const plain = { switchAfter: input.groups.length - 2, holdsReady: false };
  if (input.consistency !== 'one-lesson' || !input.loadBalancerControl || input.groups.length < 3) return plain;
  const point = oneLessonSwitch(
    input.groups.map((g) => g.satellites.length),
    input.minServingSatellites,
  );
  if (!point) {
    throw ApplicationFailure.nonRetryable(
      `no switch point keeps ${input.minServingSatellites} satellites serving with one lesson at a time for groups of ${input.groups.map((g) => g.satellites.length).join(', ')}: lower the minimum or choose capacity-first`,
      'BadRolloutPlan',
    );
  }
  return { switchAfter: point.after, holdsReady: true };
}

/** The rollout's maintenance window; a spec that does not parse fails the run (it came past the CLI's check). */
function maintenanceWindowOf(input: HoldLessonInput): MaintenanceWindows | undefined {
  if (!input.maintenanceWindow) return undefined;
  try {
    return parseWindows(input.maintenanceWindow);
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`maintenanceWindow: ${(err as Error).message}`, 'BadMaintenanceWindow');
  }
}
