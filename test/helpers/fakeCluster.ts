/**
 * A satellite cluster in memory, for tests of holdLesson's logic with stubbed
 * activities: what each satellite serves, whether its web server runs, what the load
 * balancer sends it, and every call in order. It answers the same activities as the
 * real satellite and reference workers, and lets a test hold or fail any of them.
 */
import { ApplicationFailure } from '@temporalio/common';
import { keepAlive } from '../../src/activities/keepAlive';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { FiledLesson } from '../../src/shared/lesson';
import { ORCHESTRATION_TASK_QUEUE } from '../../src/shared/names';
import type { HoldLessonInput, RollBackInput, RolloutStatus } from '../../src/shared/rollout';
import { rollBackLesson } from '../../src/workflows/rollBackLesson';
import { holdLesson, statusQuery } from '../../src/workflows/holdLesson';
import { REFERENCE_TASK_QUEUE, satelliteTaskQueue } from '../../src/shared/names';
import { testStack } from './stack';
import { clientForTest, runStubbedWorkers } from './workers';

export interface ReportSeen {
  status: string;
  summary: string;
}

export class FakeCluster {
  calls: string[] = [];
  served: Map<string, string>;
  running: Set<string>;
  /** Satellites the load balancer sends no users to (drained or stopped in its view). */
  drained = new Set<string>();
  copied: Map<string, Set<string>>;
  failExam = new Set<string>();
  /** A failing stop: the satellite's stopWebServer throws this (non-retryable) error. */
  failStop = new Map<string, string>();
  reports: ReportSeen[] = [];
  /** The calls after which users could reach two lessons at once. */
  mixedAfter: string[] = [];
  /** The fewest satellites in service after any call. */
  lowestInService: number;
  /** Runs inside every examination and copy: a test can make one last until a given moment. */
  examHold: (name: string) => Promise<void> = async () => undefined;
  copyHold: (name: string) => Promise<void> = async () => undefined;
  /** Each satellite's stand-in (its examination instance): the lesson it has, whether it runs, and the load balancer's state for it. */
  standIn = new Map<string, string>();
  standInRunning = new Set<string>();
  standInState = new Map<string, 'ready' | 'drain' | 'maint'>();
  /** Satellites whose quick check after the switch fails. */
  failCheck = new Set<string>();
  /** Copies running now, and the most that ran at once. */
  copying = 0;
  mostCopiesAtOnce = 0;
  /** Holds heartbeat as a live worker's activities do; false: they go silent, as when the worker died. */
  heartbeats = true;

  constructor(readonly names: string[]) {
    this.served = new Map(names.map((s) => [s, 'old']));
    this.running = new Set(names);
    this.copied = new Map(names.map((s) => [s, new Set(['old'])]));
    this.lowestInService = names.length;
    for (const name of names) this.standInState.set(name, 'maint');
  }

  /** After every change of what users reach: note two lessons at once, and the lowest capacity. */
  private observe(call: string): void {
    const inService = this.inService();
    if (new Set(inService.values()).size > 1) this.mixedAfter.push(call);
    // A satellite serves when its own instance or its stand-in takes users.
    const satellites = new Set([...inService.keys()].map((server) => server.replace(/-exam$/, '')));
    this.lowestInService = Math.min(this.lowestInService, satellites.size);
  }

  /** Who users can reach now (own instances by the satellite's name, stand-ins as <name>-exam): running, taking users, and what each serves. */
  inService(): Map<string, string> {
    const own = [...this.served].filter(([name]) => this.running.has(name) && !this.drained.has(name));
    const standIns = [...this.standIn]
      .filter(([name]) => this.standInRunning.has(name) && this.standInState.get(name) === 'ready')
      .map(([name, lesson]): [string, string] => [`${name}-exam`, lesson]);
    return new Map([...own, ...standIns]);
  }

  /** A load balancer state change of one server, own or stand-in. */
  private setServer(server: string, state: 'ready' | 'drain' | 'maint'): void {
    const standIn = /^(.+)-exam$/.exec(server);
    if (standIn) this.standInState.set(standIn[1]!, state);
    else if (state === 'ready') this.drained.delete(server);
    else this.drained.add(server);
  }

  private held(hold: () => Promise<void>): Promise<void> {
    return this.heartbeats ? keepAlive(hold) : hold();
  }

  satellite(name: string) {
    const log = (call: string) => this.calls.push(`${name}:${call}`);
    return {
      servedLesson: async () => this.served.get(name)!,
      describeService: async () => ({ current: this.served.get(name) ?? null, webServerRunning: this.running.has(name) }),
      stopWebServer: async () => {
        const failure = this.failStop.get(name);
        if (failure) throw ApplicationFailure.nonRetryable(failure, 'StopNotConfirmed');
        log('stop');
        this.running.delete(name);
        this.observe(`${name}:stop`);
        return 'stopped';
      },
      startWebServer: async () => {
        log('start');
        this.running.add(name);
        this.observe(`${name}:start`);
        return 'started';
      },
      copyLesson: async (lesson: FiledLesson) => {
        this.mostCopiesAtOnce = Math.max(this.mostCopiesAtOnce, ++this.copying);
        await this.held(() => this.copyHold(name)).finally(() => this.copying--);
        log(`copy ${lesson.lessonId}`);
        this.copied.get(name)!.add(lesson.lessonId);
        return { lessonId: lesson.lessonId, filesCopied: 3, bytesChanged: 300, bytesSent: 310, alreadyCopied: false };
      },
      examineLesson: async () => {
        await this.held(() => this.examHold(name));
        log('exam');
        const passed = !this.failExam.has(name);
        return { passed, checks: 2, failures: passed ? [] : ["query version: answer differs from the reference's"] };
      },
      activateLesson: async (lessonId: string) => {
        log(`activate ${lessonId}`);
        const previous = this.served.get(name);
        this.served.set(name, lessonId);
        this.observe(`${name}:activate ${lessonId}`);
        return { previous, current: lessonId };
      },
      startStandIn: async (lessonId: string) => {
        log(`stand-in ${lessonId}`);
        this.standIn.set(name, lessonId);
        this.standInRunning.add(name);
        this.observe(`${name}:stand-in ${lessonId}`);
        return 'started';
      },
      stopStandIn: async () => {
        log('stand-in stop');
        this.standInRunning.delete(name);
        this.observe(`${name}:stand-in stop`);
        return 'stopped';
      },
      checkServing: async (lesson: FiledLesson, options: { standIn?: boolean } = {}) => {
        log(options.standIn ? 'check stand-in' : 'check');
        if (options.standIn) {
          if (this.standIn.get(name) !== lesson.lessonId || !this.standInRunning.has(name))
            throw ApplicationFailure.nonRetryable(`${name}'s stand-in does not answer as the reference`, 'QuickCheckFailed');
          return { queries: 1 };
        }
        if (this.failCheck.has(name) || this.served.get(name) !== lesson.lessonId || !this.running.has(name))
          throw ApplicationFailure.nonRetryable(`${name} does not answer as the reference on its users' port`, 'QuickCheckFailed');
        return { queries: 1 };
      },
      keptLesson: async (lesson: FiledLesson) => {
        log(`kept? ${lesson.lessonId}`);
        return this.copied.get(name)!.has(lesson.lessonId)
          ? { kept: true }
          : { kept: false, reason: `${name} no longer holds lesson ${lesson.lessonId}` };
      },
      describeHost: async () => ({}),
    };
  }

  reference() {
    return {
      writeReport: async (r: ReportSeen) => (this.reports.push({ status: r.status, summary: r.summary }), 1),
      drainServers: async (names: string[]) => {
        this.calls.push(`lb:drain ${names.join(',')}`);
        for (const n of names) this.setServer(n, 'drain');
        this.observe(`lb:drain ${names.join(',')}`);
      },
      waitUntilDrained: async () => ({ drained: true, openSessions: {} }),
      switchServers: async (c: { ready: string[]; drain: string[]; maint?: string[] }) => {
        const call = `lb:switch ready=${c.ready.join(',')} drain=${c.drain.join(',')}${c.maint?.length ? ` maint=${c.maint.join(',')}` : ''}`;
        this.calls.push(call);
        for (const n of c.drain) this.setServer(n, 'drain');
        for (const n of c.maint ?? []) this.setServer(n, 'maint');
        for (const n of c.ready) this.setServer(n, 'ready');
        this.observe(call);
      },
      waitUntilHealthy: async () => [],
      findKeptLesson: async (request: { lessonId?: string; current?: string }): Promise<FiledLesson> => {
        this.calls.push(`ref:kept ${request.lessonId ?? `before ${request.current}`}`);
        return stubLesson(request.lessonId ?? 'old');
      },
      readLoadBalancer: async () => [
        ...this.names.map((name) => ({ name, status: !this.running.has(name) ? 'DOWN' : this.drained.has(name) ? 'DRAIN' : 'UP' })),
        ...this.names.map((name) => {
          const state = this.standInState.get(name)!;
          const status = state === 'maint' ? 'MAINT' : !this.standInRunning.has(name) ? 'DOWN' : state === 'drain' ? 'DRAIN' : 'UP';
          return { name: `${name}-exam`, status };
        }),
      ],
    };
  }
}

/** A promise and the function that settles it: a gate a test opens when it is ready. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/** A stub lesson's description, as the reference would give it. */
export const stubLesson = (lessonId: string): FiledLesson => ({
  lessonId,
  source: '/nowhere',
  manifestSha256: 'x',
  fileCount: 3,
  totalBytes: 300,
  testQueries: [],
});

let started = 0;
/** Runs of earlier tests: a test that failed may leave its run going, calling into the next test's fake. */
const earlier: WorkflowHandle[] = [];

/** A rollout plan on `groups` (name → satellites), with HAProxy under control and no waits. */
function stubPlan(groups: Record<string, string[]>): RollBackInput {
  return {
    cluster: 'test',
    groups: Object.entries(groups).map(([name, satellites]) => ({ name, satellites })),
    loadBalancerControl: true,
    healthCheckWaitMs: 0,
    lastCigaretteMs: 0,
    coffeeMs: 0,
    minServingSatellites: 2,
    requestedBy: 'test',
  };
}

/** Runs of earlier tests end before the next starts, so that none calls into the next test's fake. */
const endEarlierRuns = () => Promise.all(earlier.splice(0).map((h) => h.terminate('the test that started it is over').catch(() => undefined)));

/** Starts holdLesson for a stub lesson on `groups` (name → satellites), with no waits unless overridden. */
export async function startStubRollout(
  client: Client,
  groups: Record<string, string[]>,
  overrides: Partial<HoldLessonInput> = {},
): Promise<WorkflowHandle<typeof holdLesson>> {
  const lessonId = `stub-${++started}-${Date.now()}`;
  const input: HoldLessonInput = { ...stubPlan(groups), lesson: stubLesson(lessonId), ...overrides };
  await endEarlierRuns();
  const handle = await client.workflow.start(holdLesson, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: `hold-lesson/${lessonId}`,
    args: [input],
  });
  earlier.push(handle);
  return handle;
}

/** Starts rollBackLesson on `groups` (to `toLessonId`, or the lesson before), with no waits unless overridden. */
export async function startStubRollBack(
  client: Client,
  groups: Record<string, string[]>,
  overrides: Partial<RollBackInput> = {},
): Promise<WorkflowHandle<typeof rollBackLesson>> {
  const input: RollBackInput = { ...stubPlan(groups), ...overrides };
  await endEarlierRuns();
  const handle = await client.workflow.start(rollBackLesson, {
    taskQueue: ORCHESTRATION_TASK_QUEUE,
    workflowId: `roll-back/test-${++started}-${Date.now()}`,
    args: [input],
  });
  earlier.push(handle);
  return handle;
}

/** Polls the rollout's status until `until` holds; fails with the last status seen. */
export async function waitForRollout(
  handle: WorkflowHandle,
  until: (s: RolloutStatus) => boolean,
  what: string,
  deadlineMs = 30_000,
): Promise<RolloutStatus> {
  const end = Date.now() + deadlineMs;
  let last: RolloutStatus | undefined;
  while (Date.now() < end) {
    last = await handle.query(statusQuery);
    if (until(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the rollout never reached "${what}"; last status: ${JSON.stringify(last)}`);
}

/**
 * A test file's bed for holdLesson logic: the suite's Temporal server, its client, and
 * stub workers for the reference and every named satellite that call into `bed.cluster`
 * (a test swaps in a fresh FakeCluster; the workers keep running).
 */
export async function stubbedRolloutBed(names: string[]): Promise<{ client: Client; cluster: FakeCluster }> {
  const config = await testStack();
  const { client } = await clientForTest(config);
  const bed = { client, cluster: new FakeCluster(names) };
  await runStubbedWorkers(config, {
    [REFERENCE_TASK_QUEUE]: () => bed.cluster.reference(),
    ...Object.fromEntries(names.map((name) => [satelliteTaskQueue(name), () => bed.cluster.satellite(name)])),
  });
  return bed;
}
