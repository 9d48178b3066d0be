/**
 * The one description of a lessonplan cluster. Every process (workers, CLI, tests)
 * reads the same file through `loadConfig`, which validates it against this schema.
 *
 * Objects are strict: an unknown key is an error, so a typo ("satelites") is caught
 * at load instead of silently falling back to a default.
 */
import { mostGroupsKeptOneLesson, oneLessonSwitch, servingFloor, type Consistency } from '../shared/rolloutOrder';
import type { CopyOrder } from '../shared/rollout';
import { z } from 'zod';
import { msToNumber } from '@temporalio/common/lib/time';
import { describeWrongType, expecting, fieldPath, unsafeCharacter, wrongTypeMessage } from './messages';

const DURATION_EXAMPLES = '"250ms", "30s", "5m" or "1h"';

/** A number on its own: the duration parser would read it as milliseconds. */
const BARE_NUMBER = /^\s*-?(\d+\.?\d*|\.\d+)\s*$/;

/**
 * A duration such as "5m", "30s" or "250ms", kept in milliseconds after validation. The
 * unit is required (ms, s, m, h, d, w, y, or their long forms): "60" is refused rather
 * than read as 60 ms.
 */
const duration = z
  .string({ error: expecting(`a duration such as ${DURATION_EXAMPLES}`) })
  .refine((value) => !BARE_NUMBER.test(value), {
    abort: true,
    error: (issue) => {
      const amount = String(issue.input).trim();
      return `"${amount}" has no unit (ms, s, m, h, d, w or y); write e.g. "${amount}s" for ${amount} seconds or "${amount}ms" for milliseconds`;
    },
  })
  .refine(
    (value) => {
      try {
        return msToNumber(value as never) >= 0;
      } catch {
        return false;
      }
    },
    { message: `expected a duration such as ${DURATION_EXAMPLES}` },
  )
  .transform((value) => msToNumber(value as never));

const name = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'expected a name of lowercase letters, digits and "-", starting with a letter');

/** A whole number; a value of another type is reported as such, never as missing. */
const integer = () => z.int({ error: expecting('an integer') });
const port = z
  .int({ error: expecting('a port number (integer)') })
  .min(0)
  .max(65535);
const fixedPort = z
  .int({ error: expecting('a port number (integer)') })
  .min(1)
  .max(65535);
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected the name of an environment variable, e.g. LESSONPLAN_PG_PASSWORD');
const sqlIdentifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a database name of lowercase letters, digits and "_"');
/** Which generated file a value is written into, for the message when it cannot be. */
const APACHE = 'the generated Apache config';
const HAPROXY = 'the generated HAProxy config';
const POSTGRES = 'the generated PostgreSQL config';

/** A path (or address) written as it is into a generated config file: nothing that breaks or extends its line. */
const generatedConfigText = (file: string) =>
  z
    .string()
    .min(1)
    .refine((value) => unsafeCharacter(value) === undefined, {
      error: (issue) => `must not contain ${unsafeCharacter(String(issue.input))} (it goes into ${file})`,
    });

/** A name used in HAProxy runtime API commands, where ";" separates commands and "/" backend from server. */
const haproxyName = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,62}$/, {
  error: (issue) =>
    `expected a name of letters, digits, "_", "." and "-", starting with a letter (it goes into HAProxy runtime API commands), found ${JSON.stringify(issue.input)}`,
});

/** A host name of a URL, as HAProxy's config takes it: a DNS name or an IP address, nothing to quote. */
const SAFE_HOSTNAME = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)$/i;
const hostnameOf = (url: unknown) => {
  try {
    return new URL(String(url)).hostname;
  } catch {
    return undefined;
  }
};

const command = z.array(z.string().min(1)).min(1, 'expected a command as an argument array, e.g. ["apachectl", "-k", "start"]');

/** Where a PostgreSQL server is: the embedded one, or a connection URL (no password in it). */
const postgresUrl = z.union(
  [
    z.literal('embedded'),
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'expected "embedded" or a URL such as postgres://lessonplan@db.example:5432')
      .refine((url) => !/^postgres(ql)?:\/\/[^/@]*:[^/@]*@/.test(url), {
        message: 'must not contain a password; put it in the environment variable named by passwordEnv',
      }),
  ],
  { error: expecting('"embedded" or a URL such as postgres://lessonplan@db.example:5432') },
);

/** One database: its name, on the cluster's default server unless `url` says otherwise. */
const database = z.strictObject({
  name: sqlIdentifier,
  url: postgresUrl.optional(),
  passwordEnv: envName.optional(),
});

const temporal = z.strictObject({
  /** "embedded" (the project's Temporal CLI dev server) or host:port of a Temporal frontend. */
  address: z
    .union([z.literal('embedded'), z.string().regex(/^[^\s:]+:\d+$/, 'expected "embedded" or host:port')], {
      error: expecting('"embedded" or host:port'),
    })
    .default('embedded'),
  namespace: z.string().min(1).default('default'),
  /**
   * The embedded server: `dev`, the Temporal CLI's dev server (SQLite, with the Web UI), or
   * `postgres`, the Temporal server built from its Go module with its history and
   * visibility on the embedded PostgreSQL, as production runs it, with the Web UI server beside it.
   * Preferred ports: 0 picks a free one.
   */
  embedded: z
    .strictObject({ server: z.enum(['dev', 'postgres']).default('dev'), port: port.default(0), uiPort: port.default(0) })
    .default({ server: 'dev', port: 0, uiPort: 0 }),
});

const postgres = z.strictObject({
  url: postgresUrl.default('embedded'),
  passwordEnv: envName.optional(),
  embedded: z.strictObject({ port: port.default(0) }).default({ port: 0 }),
});

/**
 * A field that takes one of several shapes, told apart by the value's type (a list or a
 * mapping, a string or a mapping), so that a mistake inside the chosen shape is reported
 * as itself, where a union would only say "matches none of them".
 */
function chosenByType<S extends z.ZodType>(what: string, pick: (value: unknown) => S | undefined) {
  return z.unknown().transform((value, ctx): z.output<S> => {
    const schema = pick(value);
    if (!schema) {
      ctx.addIssue({ code: 'custom', message: wrongTypeMessage(what, value) });
      return z.NEVER;
    }
    const result = schema.safeParse(value, { error: describeWrongType });
    if (result.success) return result.data;
    for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
    return z.NEVER;
  });
}

/** How long a command of the cluster's own may run when its entry gives no timeout. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 10 * 60_000;

/**
 * A command of the cluster's own, run by a lessonplan worker: an argument array (never a
 * shell string), alone or with its time limit. Run in the config file's folder, so a
 * relative script path is relative to the config, as every path in it.
 */
const userCommandObject = z.strictObject({
  command,
  timeout: duration.pipe(z.number().max(24 * 3_600_000, 'expected at most 24h')).default(DEFAULT_COMMAND_TIMEOUT_MS),
});
const userCommand = chosenByType('a command as an argument array, or { command: [...], timeout: "10m" }', (value) =>
  Array.isArray(value) ? command : typeof value === 'object' && value !== null ? userCommandObject : undefined,
).transform((c) => (Array.isArray(c) ? { command: c, timeout: DEFAULT_COMMAND_TIMEOUT_MS, cwd: '' } : { ...c, cwd: '' }));
export type UserCommand = z.output<typeof userCommand>;

const apacheWebServer = z.strictObject({
  kind: z.literal('apache'),
  /** Port users reach through the load balancer. */
  port: fixedPort,
  /** Private port for the examination: Apache answers here while the load balancer keeps the satellite out. */
  examPort: fixedPort,
  /** Optional overrides of how to start and stop it (argument arrays, never shell strings). */
  start: command.optional(),
  stop: command.optional(),
});

/** One service of the satellite's own that reads the lesson: how to start and stop it, and how to tell it is up. */
const ownService = z.strictObject({
  name,
  /** Returns once the service is started (as `apachectl start` does); the satellite's worker runs it. */
  start: userCommand,
  /** Returns once it is stopped: without one, a lesson could never be switched under it. */
  stop: userCommand,
  /** Exit status 0 while it is up and answering; polled after start (until up) and after stop (until not). */
  isUp: userCommand.optional(),
});

/**
 * The satellite's own services (its web server with the user's own config, its database
 * server, an application server), in dependency order: started in this order, stopped in
 * the reverse. They read the lesson at `lessonLink`, which lessonplan points at the lesson
 * to serve (through `<dataDir>/current`).
 */
const ownWebServer = z.strictObject({
  kind: z.literal('own'),
  /** The port users reach through the load balancer, answered by these services; the examination asks it while the satellite is out. */
  port: fixedPort,
  /** Where the services read the lesson: a symbolic link lessonplan makes, to <dataDir>/current. */
  lessonLink: z.string().min(1),
  services: z.array(ownService).min(1, 'expected at least one service (the web server users reach)'),
  /** How long a service gets to come up (isUp) after its start command, or to go down after its stop. */
  upDeadline: duration.default(60_000),
  /**
   * A second set of the same services on a private port, reading the lesson at its own link:
   * with it the satellite is examined beside the lesson it serves, so it can copy while
   * serving (groups.copy: while-serving) and stand in for itself in a whole-cluster switch.
   */
  examination: z
    .strictObject({
      /** The private port these services answer on (PORT); never in the load balancer's rotation but as a stand-in. */
      port: fixedPort,
      /** Where they read the lesson under examination: a symbolic link lessonplan makes, to <dataDir>/exam. */
      lessonLink: z.string().min(1),
      /** Their commands; without them, the services' own, run with this port and link (and INSTANCE=examination). */
      services: z.array(ownService).min(1).optional(),
    })
    .optional(),
});

const satellite = z.strictObject({
  name,
  group: name,
  /** Host the satellite runs on; its worker polls the task queue satellite-<name>. */
  host: z.string().min(1).default('localhost'),
  /** Where this satellite keeps its copy of the lessons; written into its Apache configs. */
  dataDir: generatedConfigText(APACHE),
  /** Apache run by lessonplan on the lesson's files (kind: apache), or the satellite's own services (kind: own). */
  webServer: z.discriminatedUnion('kind', [apacheWebServer, ownWebServer]),
  /** URL users (and the load balancer's health check) reach this satellite at; its host goes into HAProxy's config. */
  url: z.url({
    hostname: SAFE_HOSTNAME,
    error: (issue) => {
      const host = hostnameOf(issue.input);
      return host !== undefined && !SAFE_HOSTNAME.test(host)
        ? `expected a host name of letters, digits, ".", "-" and "_", or an IP address (it goes into ${HAPROXY}), found ${JSON.stringify(host)}`
        : undefined;
    },
  }),
  /** Caps the copy's bandwidth (KiB/s), so that copying does not starve the satellites still serving. */
  copyBandwidthLimit: integer().min(1).optional(),
  /**
   * Earlier lessons this satellite keeps besides the one it serves and the one it examines:
   * what `lessonplan lesson rollback` can go back to without copying. At least the previous one.
   */
  keepLessons: integer().min(1).default(3),
});

const haproxy = z.strictObject({
  kind: z.literal('haproxy'),
  /** Port users connect to. */
  frontendPort: fixedPort,
  /** HAProxy runtime API: a unix socket path, or host:port. */
  runtimeApi: generatedConfigText(HAPROXY),
  /** The backend of the satellites; its servers are named after them (names are safe there by their own pattern). */
  backend: haproxyName.default('satellites'),
  /** A drain waits for in-flight sessions to reach zero, at most this long. */
  drainDeadline: duration.default(30_000),
  /** How long to wait for the load balancer to report a server healthy again. */
  healthyDeadline: duration.default(60_000),
});

const noLoadBalancerControl = z.strictObject({
  kind: z.literal('none'),
  /** Without control, the rollout relies on health checks and this wait, as in the seed. */
  healthCheckWait: duration.default(60_000),
});

/** A path inside the lesson, "/"-separated, without "..": a file, or a folder when it ends with "/". */
const lessonPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').some((part) => part === '..' || part === '.') && !p.includes('//'), {
    message: 'expected a path inside the lesson such as "db/catalog.sqlite" or "index/" (relative, no "." or "..")',
  });

/** A URL path the reference answers and every satellite must answer the same, e.g. /search?q=dune */
const queryPath = z.string().regex(/^\/[^\s#]*$/, 'expected a URL path starting with "/", such as /search?q=dune');

/**
 * A subject of the cluster's own: its steps are the cluster's commands, working in
 * `reference.servedDir`. Exit statuses of `check`: NEW_MATTER_EXIT (0) new matter,
 * NOTHING_NEW_EXIT (10) nothing new; any other status is a failure.
 */
const ownSubject = z.strictObject({
  name,
  /** Says whether there is new subject matter (by its exit status) and, in its output, what it found. */
  check: userCommand,
  /** The update and index-build commands, in order. */
  prepare: z.array(userCommand).min(1, 'expected at least one command (the update)'),
  proofRead: z
    .strictObject({
      /** The subject's test suite, run against the reference's web server (LESSON_URL). */
      commands: z.array(userCommand).default([]),
      /** URL paths whose answers on the reference become the lesson's expected answers. */
      queries: z.array(queryPath).default([]),
    })
    .default({ commands: [], queries: [] }),
  /** The files (or folders, ending in "/") of the lesson this subject writes; no two subjects own one path. */
  owns: z.array(lessonPath).min(1).optional(),
});
export type OwnSubject = z.output<typeof ownSubject>;

/** A name or a subject of the cluster's own. */
const subjectEntry = chosenByType('a subject name, or { name, check, prepare, proofRead?, owns? }', (value) =>
  typeof value === 'string' ? name : typeof value === 'object' && value !== null && !Array.isArray(value) ? ownSubject : undefined,
);
export const NEW_MATTER_EXIT = 0;
export const NOTHING_NEW_EXIT = 10;

const reference = z
  .strictObject({
    /** The reference machine (the teacher); never serves users. */
    name,
    host: z.string().min(1).default('localhost'),
    database,
    /** Filed lessons live here, one folder per lesson; the proof-reading Apache's config names it. */
    lessonsDir: generatedConfigText(APACHE),
    /** How many filed lessons (and database backups) to keep. */
    keepLessons: integer().min(2).default(5),
    /**
     * Subjects, prepared in this order: a name is a subject of the built-in catalog (read
     * from the inbox); an object is a subject of the cluster's own, prepared by its commands.
     */
    subjects: z.array(subjectEntry).min(1).default(['records', 'documents']),
    /**
     * The folder on the reference that holds what the satellites serve (database, index and
     * application files): the cluster's own subjects update it in place, and filing copies it
     * into the lesson. Required with subjects of the cluster's own.
     */
    servedDir: z.string().min(1).optional(),
    /** Commands around the copy of servedDir, so that its files are consistent (e.g. checkpoint or stop a database, then start it). */
    snapshot: z.strictObject({ before: userCommand.optional(), after: userCommand.optional() }).optional(),
    /** A backup of the cluster's own, run after filing with the filed lesson in LESSON_DIR. */
    backup: userCommand.optional(),
    /** Database backups (pg_dump), one per filed lesson; defaults to a "backups" folder beside lessonsDir. */
    backupsDir: z.string().min(1).optional(),
    /** Test suite run in the proof-reading step and in every examination; omitted means the built-in browser test. */
    testCommand: command.optional(),
    /** Private port of the reference's own Apache, which answers the proof-reading queries; 0 picks a free one. */
    proofReadPort: port.default(0),
    /**
     * The reference's own web server for proof-reading subjects of the cluster's own: its
     * services, started on servedDir (LESSON_DIR) answering on `port` (PORT) for the proof-read
     * commands and queries, stopped after. Without it, lessonplan's Apache serves servedDir's files.
     */
    webServer: z
      .strictObject({
        kind: z.literal('own'),
        port: fixedPort,
        services: z.array(ownService).min(1, 'expected at least one service (the web server the queries ask)'),
        upDeadline: duration.default(60_000),
      })
      .optional(),
    /** The browser of the built-in test (Debian's chromium), launched headless. */
    chromium: z.string().min(1).default('/usr/bin/chromium'),
    /** Inbox items taken per subject and lesson, so that one lesson stays a reviewable size. */
    maxItemsPerLesson: integer().min(1).default(50_000),
  })
  .transform((r) => ({
    ...r,
    /** Every subject's name, in order. */
    subjects: r.subjects.map((s) => (typeof s === 'string' ? s : s.name)),
    /** The subjects of the cluster's own, with their commands. */
    ownSubjects: r.subjects.filter((s): s is OwnSubject => typeof s !== 'string'),
  }));

/** What `master.api.plainHttp` must say for saves and credentials to cross a network unencrypted. */
export const PLAIN_HTTP_WORDS = 'trusted network';

const master = z.strictObject({
  name,
  database,
  /** The HTTP API slaves talk to: HTTPS with `tls`; plain HTTP off this machine only where the config says the network is trusted. */
  api: z.strictObject({
    host: z.string().default('127.0.0.1'),
    port: fixedPort,
    tls: z
      .strictObject({
        /** The master's certificate (PEM, with any intermediates after it), valid for `host`. */
        certFile: z.string().min(1),
        /** Its private key (PEM); only the master's worker reads it. */
        keyFile: z.string().min(1),
        /** The CA certificate(s) the slaves verify the master by; omitted: the system's CAs. */
        caFile: z.string().min(1).optional(),
      })
      .optional(),
    /** Without `tls`, a master on another host is refused unless this says, in these words, that the network is trusted. */
    plainHttp: z.literal(PLAIN_HTTP_WORDS, { error: expecting(`the words "${PLAIN_HTTP_WORDS}" (or configure master.api.tls)`) }).optional(),
  }),
  /** How often the master prunes the commitblocks every configured slave has applied. */
  pruneInterval: duration.default(60_000),
  /** Blocks younger than this are never pruned: the margin for slaves made from a backup, and how long idempotency keys last. */
  keepBlocksFor: duration.default(7 * 24 * 3_600_000),
});

/** host:port, as Prometheus scrape targets are written (IPv6 in brackets). */
const listenAddress = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9464');

const slave = z.strictObject({
  name,
  database,
  /** Environment variable holding this slave's credential for the master's API. */
  credentialEnv: envName.optional(),
  /** Blocks asked for per request, and applied per transaction at most. */
  batchSize: integer().min(1).max(5_000).default(1_000),
  /**
   * Where this slave reaches the master's API, when not at master.api.host:port: a port
   * forward, a NAT or a proxy between them (host:port). With TLS the master's certificate is
   * still checked for master.api.host.
   */
  masterAddress: listenAddress.optional(),
  /**
   * An HTTP endpoint of the slave's worker where the application on the slave's host saves:
   * forwarded to the master, answered once applied here. Loopback only: it is for the host's own
   * application, and carries the token in the clear.
   */
  saveEndpoint: z
    .strictObject({
      port,
      host: z
        .string()
        .default('127.0.0.1')
        .refine((h) => ['127.0.0.1', '::1', 'localhost'].includes(h), {
          message: "must be a loopback address (127.0.0.1, ::1 or localhost): the endpoint serves the slave host's own application",
        }),
      /** Environment variable holding the endpoint's token; absent: a random one in <dataDir>/credentials/<slave>.saves. */
      tokenEnv: envName.optional(),
    })
    .optional(),
});

const timings = z
  .strictObject({
    /** The seed's "have a last cigarette": wait before a group leaves the load balancer. */
    lastCigarette: duration.default(5 * 60_000),
    /** The seed's "get a coffee": wait after a group is back in service. */
    coffee: duration.default(10 * 60_000),
    /** How often a slave asks the master for news when no signal arrives. */
    slavePollInterval: duration.default(1_000),
    /** A save through a slave fails after this long when the master does not answer. */
    saveTimeout: duration.default(10_000),
  })
  .default({ lastCigarette: 5 * 60_000, coffee: 10 * 60_000, slavePollInterval: 1_000, saveTimeout: 10_000 });

const workers = z
  .strictObject({
    /** In-flight activities get this long to finish on SIGINT/SIGTERM before they are cancelled. */
    shutdownGraceTime: duration.default(30_000),
  })
  .default({ shutdownGraceTime: 30_000 });

const metrics = z.strictObject({
  /** Where each worker process serves Prometheus (/metrics); a worker's --metrics overrides it (one port per process). */
  bindAddress: listenAddress,
});

/**
 * Where operators are told when something needs them: a webhook (JSON POST) and/or a
 * command (the same JSON on its standard input). Each event is sent once, with a key
 * the receiver can use to drop a repeat after a network failure.
 */
const alerts = z
  .strictObject({
    webhook: z.url().optional(),
    /** Environment variable holding a bearer token for the webhook (never put in the file, never logged). */
    webhookTokenEnv: envName.optional(),
    command: command.optional(),
    /** A delivery that takes longer than this fails (and is tried again). */
    timeout: duration.default(10_000),
    /** A slave whose master has not answered for this long is reported. */
    slaveUnreachableAfter: duration.default(5 * 60_000),
    /** A slave more than this many blocks behind the master is reported. */
    lagAboveBlocks: integer().min(0).default(10_000),
    /** A slave whose newest applied block is older than this, while more wait, is reported. */
    lagAboveSeconds: duration.default(5 * 60_000),
  })
  .refine((a) => a.webhook !== undefined || a.command !== undefined, { message: 'expected a webhook, a command, or both' })
  .refine((a) => !a.webhookTokenEnv || a.webhook, { message: 'webhookTokenEnv is set but there is no webhook', path: ['webhookTokenEnv'] });

export const clusterConfigSchema = z
  .strictObject({
    /** Name of the cluster, shown in reports and the Temporal UI. */
    cluster: name,
    /** Folder for the embedded stack's state (databases, Temporal history, logs), relative to the file. */
    dataDir: generatedConfigText(POSTGRES).default('../data'),
    temporal: temporal.default({ address: 'embedded', namespace: 'default', embedded: { server: 'dev', port: 0, uiPort: 0 } }),
    postgres: postgres.default({ url: 'embedded', embedded: { port: 0 } }),
    operationalDatabase: database,
    reference,
    satellites: z.array(satellite).min(1),
    /** Rollout order of the groups; defaults to the order they first appear in `satellites`. */
    groups: z
      .strictObject({
        order: z.array(name).min(1).optional(),
        /** Groups that must keep serving during a rollout; defaults to all groups but one. */
        minServingGroups: integer().min(0).optional(),
        /**
         * one-lesson: users get the old lesson or the new one, never both (groups taught
         * before the switch wait ready, out of service); capacity-first: each group
         * rejoins as soon as it passed, and the run reports the window in which users get
         * both; whole-cluster (copying while serving, with HAProxy): every satellite's
         * examination instance stands in for it and one load balancer change moves every
         * user to the new lesson. Default: one-lesson with HAProxy under control, capacity-first without.
         */
        consistency: z.enum(['one-lesson', 'capacity-first', 'whole-cluster']).optional(),
        /**
         * while-serving: each satellite copies the new lesson beside the one it serves and is
         * examined on its examination instance; it leaves the load balancer only for the switch.
         * out-of-service: the source document's order (out first, then copy and examine), for
         * services that cannot hold two lessons side by side. Default: while-serving when every
         * satellite has an examination instance (lessonplan's Apache, or webServer.examination).
         */
        copy: z.enum(['while-serving', 'out-of-service']).optional(),
        /** While serving: how many satellites copy and are examined at once (each capped by its copyBandwidthLimit). Default: all. */
        copiesAtOnce: integer().min(1).optional(),
      })
      .default({}),
    loadBalancer: z.discriminatedUnion('kind', [haproxy, noLoadBalancerControl]),
    master: master.optional(),
    slaves: z.array(slave).default([]),
    timings,
    workers,
    /** Who is told about halts, aborts, an unreachable master and replication lag; omitted: nobody (the task monitor still has it all). */
    alerts: alerts.optional(),
    metrics: metrics.optional(),
  })
  .superRefine((config, ctx) => {
    const unique = (values: string[], path: (i: number) => (string | number)[], what: string) => {
      const seen = new Map<string, number>();
      values.forEach((value, i) => {
        if (seen.has(value)) {
          ctx.addIssue({ code: 'custom', path: path(i), message: `duplicate ${what} "${value}" (also at index ${seen.get(value)})` });
        } else seen.set(value, i);
      });
    };
    unique(
      config.satellites.map((s) => s.name),
      (i) => ['satellites', i, 'name'],
      'satellite name',
    );
    unique(
      config.slaves.map((s) => s.name),
      (i) => ['slaves', i, 'name'],
      'slave name',
    );
    for (const clash of portClashes(config)) ctx.addIssue({ code: 'custom', ...clash });
    const groupsInUse = [...new Set(config.satellites.map((s) => s.group))];
    if (config.groups.order) {
      config.groups.order.forEach((group, i) => {
        if (!groupsInUse.includes(group)) {
          ctx.addIssue({ code: 'custom', path: ['groups', 'order', i], message: `group "${group}" has no satellite` });
        }
      });
      unique(config.groups.order, (i) => ['groups', 'order', i], 'group');
      for (const group of groupsInUse) {
        if (!config.groups.order.includes(group)) {
          ctx.addIssue({ code: 'custom', path: ['groups', 'order'], message: `group "${group}" of some satellite is missing from the order` });
        }
      }
    }
    const groupCount = groupsInUse.length;
    if (config.groups.minServingGroups !== undefined && config.groups.minServingGroups > groupCount - 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['groups', 'minServingGroups'],
        message: `${config.groups.minServingGroups} groups must keep serving, but with ${groupCount} groups at most ${groupCount - 1} can while one is in the classroom`,
      });
    }
    // One lesson at a time holds the groups taught before the switch out of service: the floor must fit that.
    const sizes = (config.groups.order ?? groupsInUse).map((g) => config.satellites.filter((s) => s.group === g).length);
    if (config.groups.consistency === 'one-lesson' && config.loadBalancer.kind !== 'haproxy') {
      ctx.addIssue({
        code: 'custom',
        path: ['groups', 'consistency'],
        message:
          'one lesson at a time needs the load balancer under control (loadBalancer.kind: haproxy); without it each group rejoins when the health checks see it',
      });
    } else if (consistencyOf(config) === 'one-lesson' && sizes.length > 2) {
      const floor = servingFloor(sizes, config.groups.minServingGroups);
      if (!oneLessonSwitch(sizes, floor)) {
        const keep = mostGroupsKeptOneLesson(sizes);
        ctx.addIssue({
          code: 'custom',
          path: ['groups', config.groups.consistency ? 'consistency' : 'minServingGroups'],
          message:
            `with groups of ${sizes.join(', ')} satellites, one lesson at a time cannot keep ${floor} serving: the groups on the new lesson wait out of service until the switch. ` +
            `Set groups.minServingGroups: ${keep} (${servingFloor(sizes, keep)} serve throughout, never two lessons at once), ` +
            `or groups.consistency: capacity-first (${floor} serve, old and new answers side by side until the last group, reported as it happens)`,
        });
      }
    }
    if (config.groups.consistency === 'whole-cluster') {
      if (config.loadBalancer.kind !== 'haproxy') {
        ctx.addIssue({
          code: 'custom',
          path: ['groups', 'consistency'],
          message: 'the whole-cluster switch is one load balancer change: it needs HAProxy under control (loadBalancer.kind: haproxy)',
        });
      } else if (copyOrderOf(config) !== 'while-serving') {
        ctx.addIssue({
          code: 'custom',
          path: ['groups', 'consistency'],
          message:
            'the whole-cluster switch sends users to the examination instances, which serve the examined new lesson only when satellites copy while serving: set groups.copy: while-serving (every satellite with an examination instance)',
        });
      }
    }
    if (config.groups.copy === 'while-serving') {
      const own = config.satellites.findIndex((s) => !examinedBeside(s));
      if (own >= 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['groups', 'copy'],
          message: `satellite "${config.satellites[own]!.name}" runs services of its own with no examination instance, so it is examined on the port users reach and cannot be examined beside the lesson it serves. Give it one (webServer.examination: { port, lessonLink }), or use groups.copy: out-of-service`,
        });
      }
    }
    if (config.satellites.some((s) => s.name === config.reference.name)) {
      ctx.addIssue({
        code: 'custom',
        path: ['reference', 'name'],
        message: 'the reference machine must not also be a satellite: it never serves users',
      });
    }
    const api = config.master?.api;
    if (api && !api.tls && !api.plainHttp && !LOOPBACK.test(api.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['master', 'api', 'tls'],
        message:
          `${api.host} is not this machine, and without TLS the slaves' credentials and every save and block would cross the network unencrypted, ` +
          `for anyone on the path to read or change. Give the master a certificate (tls: { certFile, keyFile, caFile }), ` +
          `or, on a network you trust, say so: plainHttp: "${PLAIN_HTTP_WORDS}"`,
      });
    }
    for (const [i, s] of config.slaves.entries()) {
      const host = s.masterAddress?.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      if (api && host && !api.tls && !api.plainHttp && !LOOPBACK.test(host)) {
        ctx.addIssue({
          code: 'custom',
          path: ['slaves', i, 'masterAddress'],
          message:
            `${host} is not this machine, and without TLS slave ${s.name}'s credential and its saves and blocks would cross the network unencrypted. ` +
            `Give the master a certificate (master.api.tls), or, on a network you trust, say so: master.api.plainHttp: "${PLAIN_HTTP_WORDS}"`,
        });
      }
    }
    if (api?.tls && api.plainHttp) {
      ctx.addIssue({ code: 'custom', path: ['master', 'api', 'plainHttp'], message: 'the master serves HTTPS (tls is set): remove plainHttp' });
    }
    for (const clash of subjectProblems(config.reference)) ctx.addIssue({ code: 'custom', ...clash });
    if (config.slaves.length > 0 && !config.master) {
      ctx.addIssue({ code: 'custom', path: ['master'], message: 'slaves are configured, so a master is required' });
    }
  });

/** The cluster configuration after validation (durations in milliseconds, paths absolute). */
export type ClusterConfig = z.output<typeof clusterConfigSchema>;
export type SatelliteConfig = ClusterConfig['satellites'][number];
export type ApacheWebServerConfig = z.output<typeof apacheWebServer>;
export type OwnWebServerConfig = z.output<typeof ownWebServer>;
export type OwnService = z.output<typeof ownService>;
export type DatabaseConfig = ClusterConfig['operationalDatabase'];
export type SlaveConfig = ClusterConfig['slaves'][number];
export type LoadBalancerConfig = ClusterConfig['loadBalancer'];
export type AlertsConfig = NonNullable<ClusterConfig['alerts']>;

/** One lesson at a time or capacity first: as configured, else one lesson where HAProxy is under control. */
export function consistencyOf(config: Pick<ClusterConfig, 'groups' | 'loadBalancer'>): Consistency {
  return config.groups.consistency ?? (config.loadBalancer.kind === 'haproxy' ? 'one-lesson' : 'capacity-first');
}

/** Whether a satellite has an examination instance beside the one users reach: lessonplan's Apache always, its own services when configured. */
export function examinedBeside(satellite: Pick<SatelliteConfig, 'webServer'>): boolean {
  return satellite.webServer.kind === 'apache' || satellite.webServer.examination !== undefined;
}

/** The private port of a satellite's examination instance (lessonplan's Apache's examPort, or webServer.examination.port). */
export function examinationPort(satellite: Pick<SatelliteConfig, 'name' | 'webServer'>): number {
  if (satellite.webServer.kind === 'apache') return satellite.webServer.examPort;
  if (satellite.webServer.examination) return satellite.webServer.examination.port;
  throw new Error(`satellite ${satellite.name} has no examination instance (webServer.examination)`);
}

/** When satellites copy: as configured, else while serving where every satellite has an examination instance. */
export function copyOrderOf(config: Pick<ClusterConfig, 'groups' | 'satellites'>): CopyOrder {
  return config.groups.copy ?? (config.satellites.every(examinedBeside) ? 'while-serving' : 'out-of-service');
}

/** Groups in rollout order. */
export function groupOrder(config: ClusterConfig): string[] {
  return config.groups.order ?? [...new Set(config.satellites.map((s) => s.group))];
}

/**
 * The subjects as a whole: names unique; the built-in catalog and the cluster's own not
 * mixed (the catalog writes the lesson folder itself, the cluster's own subjects fill
 * servedDir, which filing copies; one lesson is made one way); servedDir given with
 * subjects of the cluster's own; no path owned by two subjects.
 */
function subjectProblems(reference: ClusterConfig['reference']): { path: (string | number)[]; message: string }[] {
  const problems: { path: (string | number)[]; message: string }[] = [];
  const at = (name: string) => reference.subjects.indexOf(name);
  const seen = new Set<string>();
  reference.subjects.forEach((name, i) => {
    if (seen.has(name)) problems.push({ path: ['reference', 'subjects', i], message: `duplicate subject "${name}"` });
    seen.add(name);
  });
  // (Absent when the reference itself did not validate: its own problems are reported already.)
  const own = reference.ownSubjects ?? [];
  if (own.length === 0) {
    if (reference.webServer)
      problems.push({
        path: ['reference', 'webServer'],
        message:
          "the reference's own web server proof-reads subjects of the cluster's own; the built-in catalog is proof-read on lessonplan's Apache: remove it, or give the subjects their commands",
      });
    return problems;
  }
  const builtIn = reference.subjects.filter((name) => !own.some((o) => o.name === name));
  if (builtIn.length > 0) {
    problems.push({
      path: ['reference', 'subjects', at(builtIn[0]!)],
      message: `"${builtIn[0]}" is a subject of the built-in catalog, and ${own.map((o) => `"${o.name}"`).join(', ')} the cluster's own: a cluster's lessons are made one way or the other, so give every subject its commands, or none`,
    });
  }
  if (!reference.servedDir) {
    problems.push({
      path: ['reference', 'servedDir'],
      message: "subjects of the cluster's own work in the folder that holds what the satellites serve: name it (e.g. servedDir: /srv/app/data)",
    });
  }
  const owners: { subject: string; owned: string; i: number; j: number }[] = own.flatMap((o) =>
    (o.owns ?? []).map((owned, j) => ({ subject: o.name, owned, i: at(o.name), j })),
  );
  for (const [k, a] of owners.entries()) {
    for (const b of owners.slice(0, k)) {
      if (a.subject === b.subject) continue;
      const covers = (x: string, y: string) => x === y || (x.endsWith('/') && y.startsWith(x));
      if (covers(a.owned, b.owned) || covers(b.owned, a.owned)) {
        problems.push({
          path: ['reference', 'subjects', a.i, 'owns', a.j],
          message: `"${a.owned}" overlaps "${b.owned}", owned by subject "${b.subject}": no two subjects may write the same file`,
        });
      }
    }
  }
  return problems;
}

/** The local machine, however a config spells it: the embedded demo has every role on it. */
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/i;
const hostKey = (host: string) => (LOOPBACK.test(host) ? 'localhost' : host.toLowerCase());

/** A port some part of the cluster listens on, and the host(s) it listens there. */
interface Listener {
  path: (string | number)[];
  hosts: string[];
  port: number;
  /** Shown after the field, e.g. satellite "boy-1". */
  note?: string;
}

/**
 * Every fixed port of a host checked against every other port of that host: the
 * embedded servers and the reference's proof-reading Apache, the satellites' Apaches
 * (users' and examination port), HAProxy (frontend, and its runtime API when on TCP), the
 * master's API, and the Prometheus port every worker serves. Port 0 picks a free one.
 */
function portClashes(config: ClusterConfig): { path: (string | number)[]; message: string }[] {
  const listeners = listenersOf(config);
  const clashes: { path: (string | number)[]; message: string }[] = [];
  const taken = new Map<string, Listener[]>();
  for (const listener of listeners) {
    for (const host of listener.hosts) {
      const where = `${host}:${listener.port}`;
      const earlier = taken.get(where) ?? [];
      for (const owner of earlier) {
        clashes.push({ path: listener.path, message: `${where} is already used by ${fieldPath(owner.path)}${owner.note ? ` (${owner.note})` : ''}` });
      }
      taken.set(where, [...earlier, listener]);
    }
  }
  return clashes;
}

/**
 * The fixed ports the config gives parts on this machine: a port lessonplan picks for
 * itself (port 0) must not be one of them, even while it is still free (the part that
 * owns it may start later, as the satellites' Apaches start after PostgreSQL).
 */
export function localFixedPorts(config: ClusterConfig): Set<number> {
  return new Set(listenersOf(config).flatMap((l) => (l.hosts.includes('localhost') ? [l.port] : [])));
}

function listenersOf(config: ClusterConfig): Listener[] {
  const listeners: Listener[] = [];
  const listen = (path: Listener['path'], hosts: string[], port: number, note?: string) => {
    if (port > 0) listeners.push({ path, hosts: [...new Set(hosts.map(hostKey))], port, ...(note ? { note } : {}) });
  };
  // The embedded servers run on the machine of `lessonplan dev up`, with every role.
  if (config.temporal.address === 'embedded') {
    listen(['temporal', 'embedded', 'port'], ['localhost'], config.temporal.embedded.port);
    listen(['temporal', 'embedded', 'uiPort'], ['localhost'], config.temporal.embedded.uiPort);
  }
  const databases = [
    config.operationalDatabase,
    config.reference.database,
    ...(config.master ? [config.master.database] : []),
    ...config.slaves.map((s) => s.database),
  ];
  if (databases.some((db) => (db.url ?? config.postgres.url) === 'embedded')) {
    listen(['postgres', 'embedded', 'port'], ['localhost'], config.postgres.embedded.port);
  }
  listen(['reference', 'proofReadPort'], [config.reference.host], config.reference.proofReadPort);
  if (config.reference.webServer) listen(['reference', 'webServer', 'port'], [config.reference.host], config.reference.webServer.port);
  config.satellites.forEach((s, i) => {
    listen(['satellites', i, 'webServer', 'port'], [s.host], s.webServer.port, `satellite "${s.name}"`);
    if (s.webServer.kind === 'apache') listen(['satellites', i, 'webServer', 'examPort'], [s.host], s.webServer.examPort, `satellite "${s.name}"`);
    if (s.webServer.kind === 'own' && s.webServer.examination) {
      listen(['satellites', i, 'webServer', 'examination', 'port'], [s.host], s.webServer.examination.port, `satellite "${s.name}"`);
    }
  });
  if (config.loadBalancer.kind === 'haproxy') {
    // HAProxy runs where its runtime API is: host:port, or else a socket beside the reference's worker.
    const tcp = /^([^/]+):(\d+)$/.exec(config.loadBalancer.runtimeApi);
    const host = tcp ? tcp[1]! : config.reference.host;
    listen(['loadBalancer', 'frontendPort'], [host], config.loadBalancer.frontendPort);
    if (tcp) listen(['loadBalancer', 'runtimeApi'], [host], Number(tcp[2]));
  }
  if (config.master) listen(['master', 'api', 'port'], [config.master.api.host], config.master.api.port);
  // A slave's save endpoint is on the loopback of its worker's machine, which the config does not name: counted as this one.
  config.slaves.forEach((s, i) => {
    if (s.saveEndpoint) listen(['slaves', i, 'saveEndpoint', 'port'], ['localhost'], s.saveEndpoint.port, `slave "${s.name}"`);
  });
  if (config.metrics) {
    const workerHosts = [config.reference.host, ...config.satellites.map((s) => s.host), ...(config.master ? [config.master.api.host] : [])];
    listen(['metrics', 'bindAddress'], workerHosts, Number(/:(\d+)$/.exec(config.metrics.bindAddress)![1]));
  }
  return listeners;
}

/**
 * The paths written into generated config files, once resolved against the config
 * file's folder: a relative path is only as safe as that folder.
 */
export function generatedConfigPaths(config: ClusterConfig): { path: (string | number)[]; value: string; file: string }[] {
  return [
    { path: ['dataDir'], value: config.dataDir, file: POSTGRES },
    { path: ['reference', 'lessonsDir'], value: config.reference.lessonsDir, file: APACHE },
    ...(config.reference.servedDir ? [{ path: ['reference', 'servedDir'], value: config.reference.servedDir, file: APACHE }] : []),
    ...config.satellites.map((s, i) => ({ path: ['satellites', i, 'dataDir'], value: s.dataDir, file: APACHE })),
    ...(config.loadBalancer.kind === 'haproxy'
      ? [{ path: ['loadBalancer', 'runtimeApi'], value: config.loadBalancer.runtimeApi, file: HAPROXY }]
      : []),
  ];
}
