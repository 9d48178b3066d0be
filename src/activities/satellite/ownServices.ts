/**
 * A satellite's own services (webServer.kind: own): the cluster's web server with its own
 * config, a database server, an application server, each started, stopped and asked
 * "are you up" by the cluster's own commands, in dependency order (stopped in reverse).
 *
 * They read the lesson at `webServer.lessonLink`, a symbolic link lessonplan keeps
 * pointing at `<dataDir>/current`, which in turn points at the lesson to serve
 * (`lessons/<lessonId>`), switched atomically like the built-in Apache's. Services hold a
 * lesson's files open (a database has its data files open), so a switch restarts them:
 * `<dataDir>/services.json` records which lesson they were started on, and a start finds
 * them already running only on that same lesson.
 *
 * With `webServer.examination`, a second set of them (the examination instance) runs on a
 * private port and reads `<dataDir>/exam` through its own link: the lesson is examined
 * there, beside the one users are served, as lessonplan's Apache does on its examPort.
 * Its state is `<dataDir>/services-exam.json`.
 *
 * Every command gets LESSON_ID (the lesson it serves), LESSON_DIR (its lesson link),
 * SATELLITE (its name), PORT (the port it answers on) and INSTANCE (serving or examination).
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { OwnService, OwnWebServerConfig, SatelliteConfig, UserCommand } from '../../config/schema';
import { runUserCommand, UserCommandFailed } from '../common/userCommand';
import { linkedLesson, type LessonLink } from './lessons';

export type OwnSatellite = SatelliteConfig & { webServer: OwnWebServerConfig };

export function isOwnSatellite(satellite: SatelliteConfig): satellite is OwnSatellite {
  return satellite.webServer.kind === 'own';
}

interface ServicesState {
  running: boolean;
  lesson: string | null;
}

/** Which set of the services: the one users reach, or the examination instance beside it. */
export type ServiceInstance = 'serve' | 'exam';

/** The services could not be brought where they must be: the message names the service, the command and why. */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
}

const stateFile = (satellite: OwnSatellite, instance: ServiceInstance) =>
  path.join(satellite.dataDir, instance === 'serve' ? 'services.json' : 'services-exam.json');

function readState(satellite: OwnSatellite, instance: ServiceInstance): ServicesState {
  try {
    return JSON.parse(readFileSync(stateFile(satellite, instance), 'utf8')) as ServicesState;
  } catch {
    return { running: false, lesson: null };
  }
}

function writeState(satellite: OwnSatellite, instance: ServiceInstance, state: ServicesState): void {
  mkdirSync(satellite.dataDir, { recursive: true });
  const temp = `${stateFile(satellite, instance)}.${process.pid}.new`;
  writeFileSync(temp, JSON.stringify(state));
  renameSync(temp, stateFile(satellite, instance));
}

/** Services started and stopped together: a satellite's, or the reference's for proof-reading. */
export interface ServiceSet {
  /** Who runs them, for messages: "satellite boy-1", "the reference". */
  who: string;
  /** Their config field, for messages: "satellite boy-1: webServer", "reference.webServer". */
  field: string;
  services: OwnService[];
  upDeadline: number;
}

/** Where an instance answers and reads its lesson, and through which of the satellite's links. */
interface InstancePlace {
  port: number;
  lessonLink: string;
  link: LessonLink;
  set: ServiceSet;
}

/** The examination instance's settings; refused for a satellite that has none. */
function examinationOf(satellite: OwnSatellite) {
  const examination = satellite.webServer.examination;
  if (!examination) {
    throw new ServiceError(`satellite ${satellite.name} has no examination instance (webServer.examination): it is examined on the port users reach`);
  }
  return examination;
}

function placeOf(satellite: OwnSatellite, instance: ServiceInstance): InstancePlace {
  const web = satellite.webServer;
  if (instance === 'serve') {
    return {
      port: web.port,
      lessonLink: web.lessonLink,
      link: 'current',
      set: {
        who: `satellite ${satellite.name}`,
        field: `satellite ${satellite.name}: webServer`,
        services: web.services,
        upDeadline: web.upDeadline,
      },
    };
  }
  const examination = examinationOf(satellite);
  return {
    port: examination.port,
    lessonLink: examination.lessonLink,
    link: 'exam',
    set: {
      who: `satellite ${satellite.name} (examination instance)`,
      field: examination.services ? `satellite ${satellite.name}: webServer.examination` : `satellite ${satellite.name}: webServer`,
      services: examination.services ?? web.services,
      upDeadline: web.upDeadline,
    },
  };
}

const field = (set: ServiceSet, j: number, what: string) => `${set.field}.services[${j}].${what}`;

function environment(satellite: OwnSatellite, place: InstancePlace, lesson: string | null): Record<string, string> {
  return {
    LESSON_ID: lesson ?? '',
    LESSON_DIR: place.lessonLink,
    SATELLITE: satellite.name,
    PORT: String(place.port),
    INSTANCE: place.link === 'current' ? 'serving' : 'examination',
  };
}

/** An instance's lesson link: made when missing, and refused when something else is in its place. */
export function installLessonLink(satellite: OwnSatellite, instance: ServiceInstance = 'serve'): void {
  const { lessonLink: link, link: name } = placeOf(satellite, instance);
  const target = path.join(satellite.dataDir, name);
  const fieldName = instance === 'serve' ? 'webServer.lessonLink' : 'webServer.examination.lessonLink';
  let existing: string | undefined;
  try {
    existing = lstatSync(link).isSymbolicLink() ? readlinkSync(link) : '';
  } catch {
    existing = undefined;
  }
  if (existing === target) return;
  if (existing === '') {
    throw new ServiceError(
      `satellite ${satellite.name}: ${fieldName} ${link} exists and is not a link; lessonplan makes it a link to ${target}: move it away`,
    );
  }
  mkdirSync(path.dirname(link), { recursive: true });
  const temp = `${link}.${process.pid}.new`;
  rmSync(temp, { force: true });
  symlinkSync(target, temp);
  renameSync(temp, link);
}

/** Whether a service's isUp command says it is up (exit 0); without one, what the state file says. */
async function isUp(command: UserCommand | undefined, env: Record<string, string>, label: string): Promise<boolean | undefined> {
  if (!command) return undefined;
  const run = await runUserCommand(command, { field: label, env, accept: Array.from({ length: 256 }, (_, i) => i) }).catch((err) => {
    if (err instanceof UserCommandFailed) return undefined;
    throw err;
  });
  return run?.exitCode === 0;
}

/** Polls isUp until it says `wanted`, within upDeadline. */
async function waitUntil(set: ServiceSet, j: number, wanted: boolean, env: Record<string, string>): Promise<void> {
  const service = set.services[j]!;
  if (!service.isUp) return;
  const deadline = Date.now() + set.upDeadline;
  for (;;) {
    if ((await isUp(service.isUp, env, field(set, j, 'isUp'))) === wanted) return;
    if (Date.now() > deadline) {
      throw new ServiceError(
        `${set.who}: service "${service.name}" is ${wanted ? 'not up' : 'still up'} ${set.upDeadline / 1000} s after its ${wanted ? 'start' : 'stop'} command returned (by its isUp command ${JSON.stringify(service.isUp.command)})`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs each service's start command in order, each up (by isUp) before the next. */
export async function startServiceSet(set: ServiceSet, env: Record<string, string>, signal?: AbortSignal): Promise<void> {
  for (const [j, service] of set.services.entries()) {
    await runUserCommand(service.start, { field: field(set, j, 'start'), env, signal });
    await waitUntil(set, j, true, env);
  }
}

/** Runs each service's stop command, the last first, each down (by isUp) before the one before it. */
export async function stopServiceSet(set: ServiceSet, env: Record<string, string>, signal?: AbortSignal): Promise<void> {
  for (let j = set.services.length - 1; j >= 0; j--) {
    await runUserCommand(set.services[j]!.stop, { field: field(set, j, 'stop'), env, signal });
    await waitUntil(set, j, false, env);
  }
}

/** Whether an instance's services run: every isUp says so, or (without isUp commands) the state file. */
export async function servicesRunning(satellite: OwnSatellite, instance: ServiceInstance = 'serve'): Promise<boolean> {
  if (instance === 'exam' && !satellite.webServer.examination) return false;
  const place = placeOf(satellite, instance);
  const state = readState(satellite, instance);
  const env = environment(satellite, place, state.lesson);
  const answers = await Promise.all(place.set.services.map((s, j) => isUp(s.isUp, env, field(place.set, j, 'isUp'))));
  const known = answers.filter((a): a is boolean => a !== undefined);
  return known.length > 0 ? known.every(Boolean) : state.running;
}

/** Stops every service of an instance, the last first; each stop command must succeed and (with isUp) the service go down. */
export async function stopServices(
  satellite: OwnSatellite,
  signal?: AbortSignal,
  instance: ServiceInstance = 'serve',
): Promise<'stopped' | 'not running'> {
  const place = placeOf(satellite, instance);
  const state = readState(satellite, instance);
  const env = environment(satellite, place, state.lesson);
  const wasRunning = state.running || (await servicesRunning(satellite, instance));
  await stopServiceSet(place.set, env, signal);
  writeState(satellite, instance, { running: false, lesson: state.lesson });
  return wasRunning ? 'stopped' : 'not running';
}

/**
 * Starts an instance's services on the lesson its link points at (`current` for the one
 * users reach, `exam` for the examination instance), in order, each up (by isUp) before
 * the next; services running on another lesson are stopped first.
 */
export async function startServices(
  satellite: OwnSatellite,
  signal?: AbortSignal,
  instance: ServiceInstance = 'serve',
): Promise<'started' | 'already running'> {
  const place = placeOf(satellite, instance);
  const lesson = linkedLesson(satellite, place.link);
  if (!lesson || !existsSync(path.join(satellite.dataDir, place.link))) {
    throw new ServiceError(
      instance === 'serve'
        ? `satellite ${satellite.name} has no lesson to serve yet: its services start once a rollout has copied one`
        : `satellite ${satellite.name} has no lesson under examination: its examination instance starts on one a rollout copied`,
    );
  }
  const state = readState(satellite, instance);
  if (state.running && state.lesson === lesson && (await servicesRunning(satellite, instance))) return 'already running';
  if (state.running) await stopServices(satellite, signal, instance);
  installLessonLink(satellite, instance);
  const env = environment(satellite, place, lesson);
  // Recorded before the first start: a start that fails half-way still gets stopped by the next stop.
  writeState(satellite, instance, { running: true, lesson });
  await startServiceSet(place.set, env, signal);
  return 'started';
}
