/**
 * The commands of the cluster's own that a role runs, and whether each program is on
 * this machine. Checked where the role's worker starts (and by `lessonplan config --role`),
 * not by every process that reads the config: the reference's update scripts need not
 * exist on a satellite, nor on an operator's laptop.
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import type { Role } from '../workers/roles';
import { ConfigError } from './load';
import { fieldPath } from './messages';
import type { ClusterConfig, UserCommand } from './schema';

export interface CommandField {
  path: (string | number)[];
  command: UserCommand;
}

/** Every command of the cluster's own the reference runs, with the field it is in. */
export function referenceCommands(config: ClusterConfig): CommandField[] {
  const ref = config.reference;
  const fields: CommandField[] = [];
  for (const own of ref.ownSubjects) {
    const i = ref.subjects.indexOf(own.name);
    fields.push({ path: ['reference', 'subjects', i, 'check'], command: own.check });
    own.prepare.forEach((command, j) => fields.push({ path: ['reference', 'subjects', i, 'prepare', j], command }));
    own.proofRead.commands.forEach((command, j) => fields.push({ path: ['reference', 'subjects', i, 'proofRead', 'commands', j], command }));
  }
  if (ref.snapshot?.before) fields.push({ path: ['reference', 'snapshot', 'before'], command: ref.snapshot.before });
  if (ref.snapshot?.after) fields.push({ path: ['reference', 'snapshot', 'after'], command: ref.snapshot.after });
  if (ref.backup) fields.push({ path: ['reference', 'backup'], command: ref.backup });
  ref.webServer?.services.forEach((service, j) => {
    for (const key of ['start', 'stop', 'isUp'] as const) {
      const command = service[key];
      if (command) fields.push({ path: ['reference', 'webServer', 'services', j, key], command });
    }
  });
  return fields;
}

/** The cluster's own test commands a satellite with its own services runs in its examination: the subjects' proof-read commands. */
export function examinationCommands(config: ClusterConfig): CommandField[] {
  return referenceCommands(config).filter((f) => f.path.includes('proofRead'));
}

/** Every command of the cluster's own one satellite runs: its services', and the examination's. */
export function satelliteCommands(config: ClusterConfig, name: string | undefined): CommandField[] {
  const fields: CommandField[] = [];
  config.satellites.forEach((s, i) => {
    if (s.webServer.kind !== 'own' || (name !== undefined && s.name !== name)) return;
    s.webServer.services.forEach((service, j) => {
      for (const key of ['start', 'stop', 'isUp'] as const) {
        const command = service[key];
        if (command) fields.push({ path: ['satellites', i, 'webServer', 'services', j, key], command });
      }
    });
    fields.push(...examinationCommands(config));
  });
  return fields;
}

/** Where a program is found: its own path when it has a "/", else the first match in PATH. */
export function findProgram(program: string, searchPath = process.env.PATH ?? ''): string | undefined {
  const candidates = program.includes('/')
    ? [program]
    : searchPath
        .split(':')
        .filter(Boolean)
        .map((dir) => path.join(dir, program));
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

/** Refuses, as a config error of `file`, commands of these roles whose program is not on this machine. */
export function checkProgramsOfRoles(config: ClusterConfig, file: string, roles: { role: Role | 'all-in-one'; name?: string }[]): void {
  const shown = path.relative(process.cwd(), file) || file;
  const problems = missingPrograms(config, roles);
  if (problems.length > 0)
    throw new ConfigError(
      shown,
      problems.map((p) => `${shown}: ${p}`),
    );
}

/** One line per command of these roles whose program is not on this machine, naming the field. */
export function missingPrograms(config: ClusterConfig, roles: { role: Role | 'all-in-one'; name?: string }[]): string[] {
  const fields = roles.flatMap((r) =>
    r.role === 'all-in-one'
      ? [...referenceCommands(config), ...satelliteCommands(config, undefined)]
      : r.role === 'reference'
        ? referenceCommands(config)
        : r.role === 'satellite'
          ? satelliteCommands(config, r.name)
          : [],
  );
  const seen = new Set<string>();
  return fields.flatMap(({ path: keys, command }) => {
    if (seen.has(fieldPath(keys))) return [];
    seen.add(fieldPath(keys));
    const program = command.command[0]!;
    if (findProgram(program)) return [];
    const where = program.includes('/') ? 'no executable file there' : 'not found in PATH';
    return [`${fieldPath(keys)}: "${program}" is not a program on this machine (${where})`];
  });
}
