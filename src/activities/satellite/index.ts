/**
 * Activities of one satellite (task queue `satellite-<name>`): they touch only this
 * satellite's web server and copy of the data. Each is idempotent: run twice, it
 * finds the work done and says so.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { examinationPort, examinedBeside, type SatelliteConfig, type UserCommand } from '../../config/schema';
import type { FiledLesson } from '../../shared/lesson';
import { bytesCopied, examinationFailures } from '../../shared/metrics';
import type { ExaminationResult, SatelliteService } from '../../shared/rollout';
import { apacheOf, apachePid, startApache, stopApache } from './apache';
import { isOwnSatellite, ServiceError, servicesRunning, startServices, stopServices } from './ownServices';
import { UserCommandFailed } from '../common/userCommand';
import { askQuery, examine, examineOnOwnServices } from './examination';
import { keepAlive } from '../keepAlive';
import { copyLessonFiles, CorruptCopy, linkedLesson, pointLink, whyNotKept, type CopyResult } from './lessons';

export interface SatelliteDependencies {
  satellite: SatelliteConfig;
  /** The test suite run in the examination, against the examination URL; without one, the built-in browser test. */
  testCommand?: string[];
  /** The browser of the built-in test; without it (and without a command) the examination runs the queries only. */
  chromium?: string;
  /** With the satellite's own services: the cluster's own test commands the examination runs here. */
  ownTestCommands?: { field: string; command: UserCommand }[];
}

/** A service command that failed is the operator's to fix: not retried. */
async function asOperatorsToFix<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof UserCommandFailed || err instanceof ServiceError) throw ApplicationFailure.nonRetryable(err.message, 'ServiceFailed');
    throw err;
  }
}

export function createSatelliteActivities({ satellite, testCommand, chromium, ownTestCommands = [] }: SatelliteDependencies) {
  return {
    /** Stop chatting: Apache stops gracefully (in-flight requests finish), verified by the port closing; or the satellite's own services stop, last first. */
    async stopWebServer(): Promise<string> {
      if (isOwnSatellite(satellite)) return asOperatorsToFix(() => stopServices(satellite, Context.current().cancellationSignal));
      return stopApache(apacheOf(satellite), 'serve');
    },

    /** Leave the classroom: Apache serves again, verified by the port answering; or the satellite's own services start on the current lesson. */
    async startWebServer(): Promise<string> {
      if (isOwnSatellite(satellite)) return asOperatorsToFix(() => startServices(satellite, Context.current().cancellationSignal));
      return startApache(apacheOf(satellite), 'serve');
    },

    /** The lesson: rsync from the reference's filed lesson, then every file checked against the manifest. */
    async copyLesson(lesson: FiledLesson, options: { repair?: boolean } = {}): Promise<CopyResult> {
      const ctx = Context.current();
      let last = 0;
      try {
        // Verification and a large unchanged file are silent stretches of the copy.
        const result = await keepAlive(() =>
          copyLessonFiles(satellite, lesson, {
            // A retry after a failure compares contents, not only sizes and times.
            repair: options.repair === true || ctx.info.attempt > 1,
            signal: ctx.cancellationSignal,
            onProgress: (progress) => {
              if (Date.now() - last > 500) {
                last = Date.now();
                ctx.heartbeat(progress);
              }
            },
          }),
        );
        bytesCopied(ctx.metricMeter).add(result.bytesChanged, { satellite: satellite.name });
        ctx.log.info(`lesson ${lesson.lessonId} copied to ${satellite.name}`, {
          filesCopied: result.filesCopied,
          bytesChanged: result.bytesChanged,
          alreadyCopied: result.alreadyCopied,
        });
        return result;
      } catch (err) {
        if (err instanceof CorruptCopy) throw ApplicationFailure.retryable(err.message, 'CorruptCopy');
        throw err;
      }
    },

    /** The examination, through this satellite's own Apache on its private port. */
    async examineLesson(lesson: FiledLesson): Promise<ExaminationResult> {
      const ctx = Context.current();
      const failed = (why: string, details: object) => {
        examinationFailures(ctx.metricMeter).add(1, { satellite: satellite.name });
        ctx.log.warn(`${satellite.name} failed the examination of lesson ${lesson.lessonId}: ${why}`, details);
      };
      try {
        // The browser test or a test command can be silent for a while.
        const onCheck = (done: number) => ctx.heartbeat({ checks: done });
        const result = await keepAlive(() =>
          isOwnSatellite(satellite)
            ? examineOnOwnServices(satellite, lesson, { testCommands: ownTestCommands, signal: ctx.cancellationSignal, onCheck })
            : examine(apacheOf(satellite), lesson, { testCommand, chromium, signal: ctx.cancellationSignal, onCheck }),
        );
        if (!result.passed) failed(`${result.failures.length} checks failed`, { failures: result.failures });
        return result;
      } catch (err) {
        // An examination that cannot even run (its web server does not start) is failed too; a cancelled one is not.
        if (!ctx.cancellationSignal.aborted) failed((err as Error).message, {});
        throw err;
      }
    },

    /**
     * The quick check after a switch: the reference's queries through the port users reach,
     * answered as the reference answers them. The lesson was examined in full beside the old
     * one; this shows that what now serves users is that lesson. A wrong answer is the
     * operator's to look at (not retried): the satellite stays out of service.
     */
    async checkServing(lesson: FiledLesson, options: { standIn?: boolean } = {}): Promise<{ queries: number }> {
      const port = options.standIn ? examinationPort(satellite) : satellite.webServer.port;
      const failures = (await Promise.all(lesson.testQueries.map((query) => askQuery(`http://127.0.0.1:${port}`, query)))).flat();
      if (failures.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `${satellite.name} does not answer as the reference on its ${options.standIn ? "stand-in's" : "users'"} port on lesson ${lesson.lessonId}: ${failures.join('; ')}`,
          'QuickCheckFailed',
        );
      }
      return { queries: lesson.testQueries.length };
    },

    /**
     * The whole-cluster switch: the examination instance serves `lessonId` as the
     * satellite's stand-in, for users to be sent to while the satellite's own instance
     * moves to it. Restarted when it runs on another lesson.
     */
    async startStandIn(lessonId: string): Promise<string> {
      if (isOwnSatellite(satellite)) {
        const signal = Context.current().cancellationSignal;
        return asOperatorsToFix(async () => {
          if (linkedLesson(satellite, 'exam') !== lessonId) {
            await stopServices(satellite, signal, 'exam');
            pointLink(satellite, 'exam', lessonId);
          }
          return startServices(satellite, signal, 'exam');
        });
      }
      const apache = apacheOf(satellite);
      if (linkedLesson(satellite, 'exam') !== lessonId) {
        await stopApache(apache, 'exam');
        pointLink(satellite, 'exam', lessonId);
      }
      return startApache(apache, 'exam');
    },

    /** The stand-in is no longer needed: the examination instance stops (gracefully). */
    async stopStandIn(): Promise<string> {
      if (isOwnSatellite(satellite)) return asOperatorsToFix(() => stopServices(satellite, Context.current().cancellationSignal, 'exam'));
      return stopApache(apacheOf(satellite), 'exam');
    },

    /** For a rollback: whether this satellite still holds the lesson, complete and as filed; the reason when not. */
    async keptLesson(lesson: FiledLesson): Promise<{ kept: boolean; reason?: string }> {
      const reason = await whyNotKept(satellite, lesson);
      return reason ? { kept: false, reason } : { kept: true };
    },

    /** Points what users are served (`current`) at a copied lesson. */
    async activateLesson(lessonId: string): Promise<{ previous?: string; current: string }> {
      const previous = linkedLesson(satellite, 'current');
      if (previous !== lessonId) pointLink(satellite, 'current', lessonId);
      return { previous, current: lessonId };
    },

    /** What this satellite serves (or would once started) and whether its web server runs: the start of a rollout repairs from it. */
    async describeService(): Promise<SatelliteService> {
      const own = isOwnSatellite(satellite) ? satellite : undefined;
      const running = own ? await servicesRunning(own) : apachePid(apacheOf(satellite), 'serve') !== undefined;
      const standIn = examinedBeside(satellite) ? linkedLesson(satellite, 'exam') : undefined;
      const standInRunning = async () => (own ? servicesRunning(own, 'exam') : apachePid(apacheOf(satellite), 'exam') !== undefined);
      return {
        current: linkedLesson(satellite, 'current') ?? null,
        webServerRunning: running,
        ...(standIn ? { standIn, standInRunning: await standInRunning() } : {}),
      };
    },

    /** The lesson this satellite serves (or would serve once started). */
    async servedLesson(): Promise<string | null> {
      return linkedLesson(satellite, 'current') ?? null;
    },
  };
}

export type SatelliteActivities = ReturnType<typeof createSatelliteActivities>;
