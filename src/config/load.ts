/**
 * Loads a cluster config file (YAML or JSON), validates it and resolves its relative
 * paths against the file's folder. Every problem becomes one line:
 *
 *   config/cluster.yaml:14: satellites[1].webServer.port: expected a port number (integer), found the string "80x"
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { z } from 'zod';
import { describeWrongType, fieldPath, unsafeCharacter } from './messages';
import { clusterConfigSchema, generatedConfigPaths, type ClusterConfig, type OwnService, type UserCommand } from './schema';

export { fieldPath };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    /** One human-readable line per problem. */
    readonly problems: string[],
  ) {
    super(`invalid config ${file}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/** The config used when none is given: the local demo cluster, on the embedded stack. */
export const DEFAULT_CONFIG_FILE = path.resolve(import.meta.dirname, '../../config/local-demo.yaml');

/** Which file to load: an explicit path, else $LESSONPLAN_CONFIG, else the local demo. */
export function configFileFrom(explicit?: string): string {
  return path.resolve(explicit ?? process.env.LESSONPLAN_CONFIG ?? DEFAULT_CONFIG_FILE);
}

export function loadConfig(file: string = configFileFrom()): ClusterConfig {
  const shown = path.relative(process.cwd(), file) || file;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(shown, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  return parseConfig(text, shown, path.dirname(path.resolve(file)));
}

/** Validates config text; `baseDir` anchors relative paths. */
export function parseConfig(text: string, shown: string, baseDir: string): ClusterConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      shown,
      doc.errors.map((e) => `${shown}:${lineCounter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`),
    );
  }
  // A value of the wrong type is worded by the schema, or else by describeWrongType: what
  // was expected and what the file holds; only an absent field "is required".
  const resolved = clusterConfigSchema.transform((config, ctx) => {
    const absolute = resolvePaths(config, baseDir);
    for (const { path: keys, value, file } of generatedConfigPaths(absolute)) {
      const found = unsafeCharacter(value);
      if (found)
        ctx.issues.push({
          code: 'custom',
          path: keys,
          input: value,
          message: `resolves to ${JSON.stringify(value)}, which contains ${found} (it goes into ${file})`,
        });
    }
    return absolute;
  });
  const result = resolved.safeParse(doc.toJS() ?? {}, { error: describeWrongType });
  if (!result.success) {
    throw new ConfigError(
      shown,
      result.error.issues.map((issue) => describeIssue(issue, doc, lineCounter, shown)),
    );
  }
  return result.data;
}

function describeIssue(issue: z.core.$ZodIssue, doc: ReturnType<typeof parseDocument>, lines: LineCounter, shown: string): string {
  const keys = issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k));
  const where = fieldPath(keys) || '(top level)';
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  // Point at the closest node that exists in the file: the field itself, or its parent.
  let line: number | undefined;
  for (let n = keys.length; n >= 0 && line === undefined; n--) {
    const node = doc.getIn(keys.slice(0, n), true);
    if (isNode(node) && node.range) line = lines.linePos(node.range[0]).line;
  }
  return `${shown}${line ? `:${line}` : ''}: ${where}: ${message}`;
}

function resolvePaths(config: ClusterConfig, baseDir: string): ClusterConfig {
  const abs = (p: string) => path.resolve(baseDir, p);
  // A command runs in the config's folder; a program named by a relative path is found from there too.
  const run = (c: UserCommand): UserCommand => {
    const [program, ...args] = c.command;
    return { ...c, command: [program!.includes('/') ? abs(program!) : program!, ...args], cwd: baseDir };
  };
  const ref = config.reference;
  const services = (list: OwnService[]): OwnService[] =>
    list.map((service) => ({
      ...service,
      start: run(service.start),
      stop: run(service.stop),
      ...(service.isUp ? { isUp: run(service.isUp) } : {}),
    }));
  return {
    ...config,
    dataDir: abs(config.dataDir),
    reference: {
      ...ref,
      ownSubjects: ref.ownSubjects.map((o) => ({
        ...o,
        check: run(o.check),
        prepare: o.prepare.map(run),
        proofRead: { ...o.proofRead, commands: o.proofRead.commands.map(run) },
      })),
      ...(ref.servedDir ? { servedDir: abs(ref.servedDir) } : {}),
      ...(ref.snapshot
        ? {
            snapshot: {
              ...(ref.snapshot.before ? { before: run(ref.snapshot.before) } : {}),
              ...(ref.snapshot.after ? { after: run(ref.snapshot.after) } : {}),
            },
          }
        : {}),
      ...(ref.backup ? { backup: run(ref.backup) } : {}),
      ...(ref.webServer ? { webServer: { ...ref.webServer, services: services(ref.webServer.services) } } : {}),
      lessonsDir: abs(config.reference.lessonsDir),
      backupsDir: abs(config.reference.backupsDir ?? path.join(path.dirname(config.reference.lessonsDir), 'backups')),
    },
    satellites: config.satellites.map((s) => ({
      ...s,
      dataDir: abs(s.dataDir),
      webServer:
        s.webServer.kind === 'own'
          ? {
              ...s.webServer,
              lessonLink: abs(s.webServer.lessonLink),
              services: services(s.webServer.services),
              ...(s.webServer.examination
                ? {
                    examination: {
                      ...s.webServer.examination,
                      lessonLink: abs(s.webServer.examination.lessonLink),
                      ...(s.webServer.examination.services ? { services: services(s.webServer.examination.services) } : {}),
                    },
                  }
                : {}),
            }
          : s.webServer,
    })),
    ...(config.master?.api.tls
      ? {
          master: {
            ...config.master,
            api: {
              ...config.master.api,
              tls: {
                certFile: abs(config.master.api.tls.certFile),
                keyFile: abs(config.master.api.tls.keyFile),
                ...(config.master.api.tls.caFile ? { caFile: abs(config.master.api.tls.caFile) } : {}),
              },
            },
          },
        }
      : {}),
    loadBalancer:
      config.loadBalancer.kind === 'haproxy' && !/^[^/]+:\d+$/.test(config.loadBalancer.runtimeApi)
        ? { ...config.loadBalancer, runtimeApi: abs(config.loadBalancer.runtimeApi) }
        : config.loadBalancer,
  };
}
