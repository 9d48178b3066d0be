/**
 * Satellites that serve with their own services (webServer.kind: own), on the real parts:
 * each satellite runs the library example's web application (examples/library/app), which
 * answers from the SQLite database and index files of the lesson it was started on, and a
 * second one on a private port as its examination instance (webServer.examination); the
 * reference prepares the lessons with the example's own scripts. A rollout under load
 * through HAProxy copies the lesson to every satellite while it serves (copies, not hard
 * links), examines it on the examination instance with the reference's queries and the
 * subject's own test command, and only then switches group by group (stop the services,
 * repoint, start them on the new lesson, a quick check): no request fails, users never
 * see two lessons, every satellite's database answers the new books. A service that does
 * not start halts the rollout with its command, exit status and output: copying while
 * serving, before any satellite left the load balancer; in the source document's order
 * (groups.copy: out-of-service), with a group out, which abort, once the service can start
 * again, puts back on its previous lesson, serving.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, test } from 'node:test';
import { lessonDir } from '../src/activities/satellite/lessons';
import { showServers } from '../src/activities/loadBalancer/runtimeApi';
import { startLoad } from '../src/cluster/loadGenerator';
import { freeStablePort } from '../src/stack/ports';
import { examinationPort } from '../src/config/schema';
import { startPrepareLesson } from '../src/operator/prepare';
import { standInServer, type RolloutStatus } from '../src/shared/rollout';
import { preparationTestBed, servedVersions, waitForStatus } from './helpers/preparation';

const EXAMPLE = path.resolve(import.meta.dirname, '../examples/library');
const python = (script: string, ...args: string[]) => ['python3', '-B', path.join(EXAMPLE, script), ...args];
const book = (id: number, title: string, author: string, year: number) => JSON.stringify({ id, title, author, year });
const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');
const FAIL_WHEN_MARKED = path.resolve(import.meta.dirname, 'helpers/failWhenMarked.py');

describe('satellites with their own services', async () => {
  let feed = '';
  let brokenWarmUp = '';
  let markers = '';
  // Every command of the reference fails with status 7 while its marker file exists.
  const failable = (marker: string, argv: string[]) => ['python3', '-B', FAIL_WHEN_MARKED, path.join(markers, marker), ...argv];
  const referencePort = await freeStablePort();
  const { config, configFile, client, ops } = await preparationTestBed('own-services', (raw) => {
    const dir = path.dirname(path.dirname(raw.reference.lessonsDir));
    feed = path.join(dir, 'feed');
    brokenWarmUp = path.join(dir, 'warm-up-broken');
    markers = path.join(dir, 'fail');
    raw.reference.servedDir = path.join(dir, 'reference/served');
    raw.reference.keepLessons = 3;
    raw.reference.subjects = [
      {
        name: 'library',
        check: failable('check', python('scripts/check.py', '--feed', feed)),
        prepare: [failable('update', python('scripts/update.py', '--feed', feed)), failable('index', python('scripts/build-index.py'))],
        proofRead: {
          commands: [failable('test', python('scripts/test.py'))],
          // A search is answered by the application from the database: the reference's own web server proof-reads it.
          queries: ['/index/catalogue.json', '/index/books/1.json', '/search?q=Dune'],
        },
        owns: ['db/', 'index/'],
      },
    ];
    raw.reference.snapshot = {
      before: failable('checkpoint', ['python3', '-c', 'print("checkpointed")']),
      after: failable('restart', ['python3', '-c', 'print("restarted")']),
    };
    const referenceApp = (action: string) => python('app/service.py', action, '--state-dir', path.join(dir, 'reference/app'));
    raw.reference.webServer = {
      kind: 'own',
      port: referencePort,
      services: [{ name: 'library', start: referenceApp('start'), stop: referenceApp('stop'), isUp: referenceApp('isup') }],
    };
    raw.reference.backup = failable('backup', ['python3', '-c', 'print("backed up")']);
    for (const s of raw.satellites) {
      const state = path.join(s.dataDir, 'app');
      const service = (action: string) => python('app/service.py', action, '--state-dir', state);
      s.webServer = {
        kind: 'own',
        port: s.webServer.port,
        lessonLink: path.join(s.dataDir, 'serving'),
        // The same commands on its own port (the app keeps a pid file per port) and its own link.
        examination: { port: s.webServer.examPort, lessonLink: path.join(s.dataDir, 'examining') },
        upDeadline: '15s',
        services: [
          { name: 'library', start: service('start'), stop: service('stop'), isUp: service('isup') },
          // A second service that depends on the first: its start fails while the marker exists.
          {
            name: 'warm-up',
            start: [
              'python3',
              '-c',
              `import os, sys; broken = os.path.exists(${JSON.stringify(brokenWarmUp)}); print('cache warm-up failed: no space left' if broken else 'warm'); sys.exit(4 if broken else 0)`,
            ],
            stop: ['true'],
          },
        ],
      };
    }
  });
  mkdirSync(feed, { recursive: true });
  mkdirSync(markers, { recursive: true });
  const feedFile = path.join(feed, 'books.jsonl');
  writeFileSync(
    feedFile,
    [book(1, 'Dune', 'Frank Herbert', 1965), book(2, 'Solaris', 'Stanisław Lem', 1961), book(3, 'Kindred', 'Octavia Butler', 1979)].join('\n') + '\n',
  );
  const lb = `http://127.0.0.1:${config.loadBalancer.kind === 'haproxy' ? config.loadBalancer.frontendPort : 0}`;
  const search = async (word: string) => (await (await fetch(`${lb}/search?q=${word}`)).json()) as { ids: number[] };

  const first = await (await startPrepareLesson(client, config, 'test')).result();
  assert.equal(first.phase, 'done', first.summary);

  test(
    'a rollout under load: no request fails, one lesson at a time, every satellite answers the new books from its database',
    { timeout: 300_000 },
    async () => {
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => first.lessonId),
      );
      assert.deepEqual(await search('Kindred'), { q: 'Kindred', ids: [3] });
      // The reference's own web server answered the proof-read's search (lessonplan's Apache has no /search), and stopped after it.
      await assert.rejects(fetch(`http://127.0.0.1:${referencePort}/health`), 'the reference app runs only while proof-reading');
      appendFileSync(feedFile, `${book(4, 'Neuromancer', 'William Gibson', 1984)}\n${book(5, 'Ubik', 'Philip K. Dick', 1969)}\n`);
      const load = startLoad({
        baseUrl: lb,
        paths: ['/index/catalogue.json', '/version', '/search?q=Dune'],
        concurrency: 4,
        maxRequests: 1_000_000,
        maxDurationMs: 240_000,
        pauseMs: 5,
        classify: (urlPath, status, body) => {
          if (status !== 200) return 'neither';
          if (urlPath === '/version') return body.trim() === first.lessonId ? 'old' : 'new';
          if (urlPath === '/index/catalogue.json') {
            const n = (JSON.parse(body) as unknown[]).length;
            return n === 3 ? 'old' : n === 5 ? 'new' : 'neither';
          }
          return 'either';
        },
      });
      const second = await (await startPrepareLesson(client, config, 'test')).result();
      const traffic = await load.stop();
      assert.equal(second.phase, 'done', second.summary);
      assert.equal(traffic.failed, 0, traffic.failures.slice(0, 5).join('\n'));
      assert.equal(traffic.neither, 0);
      assert.ok(traffic.old > 0 && traffic.new > 0, JSON.stringify(traffic));
      // One change switches the groups; only requests in flight across it may end on both sides of it.
      assert.ok(traffic.mixedWindowMs < 1_000, `mixed-version window ${traffic.mixedWindowMs} ms`);
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => second.lessonId),
      );
      const rollout = (await client.workflow.getHandle(second.rollout!.workflowId).result()) as RolloutStatus;
      assert.equal(rollout.capacity?.lowestServing, 2, 'copied and examined while serving: only the switch takes a group out');
      for (const s of config.satellites) {
        // The examination instance ran only while it examined.
        await assert.rejects(fetch(`http://127.0.0.1:${examinationPort(s)}/health`), `${s.name}'s examination instance stopped`);
        const answer = (await (await fetch(`${s.url}search?q=Neuromancer`)).json()) as { ids: number[] };
        assert.deepEqual(answer.ids, [4], `${s.name}'s database has the new book`);
        // Its own copy of each lesson's database: never a hard link to the previous lesson's.
        const db = (lesson: string) => statSync(path.join(lessonDir(s, lesson), 'db/library.sqlite'));
        assert.notEqual(db(second.lessonId!).ino, db(first.lessonId!).ino);
      }
    },
  );

  test(
    'the whole-cluster switch on services of their own: the examination instances stand in, every satellite serves throughout, users never see two lessons',
    { timeout: 300_000 },
    async () => {
      const before = (await servedVersions(config))[0]!;
      appendFileSync(feedFile, `${book(9, 'Beloved', 'Toni Morrison', 1987)}\n`);
      const load = startLoad({
        baseUrl: lb,
        paths: ['/version', '/search?q=Beloved'],
        concurrency: 4,
        maxRequests: 1_000_000,
        maxDurationMs: 240_000,
        pauseMs: 5,
        classify: (urlPath, status, body) => {
          if (status !== 200) return 'neither';
          if (urlPath === '/version') return body.trim() === before ? 'old' : 'new';
          const ids = (JSON.parse(body) as { ids: number[] }).ids;
          return ids.length === 0 ? 'old' : ids[0] === 9 ? 'new' : 'neither';
        },
      });
      const whole = { ...config, groups: { ...config.groups, consistency: 'whole-cluster' as const } };
      const prepared = await (await startPrepareLesson(client, whole, 'test')).result();
      const traffic = await load.stop();
      assert.equal(prepared.phase, 'done', prepared.summary);
      const rollout = (await client.workflow.getHandle(prepared.rollout!.workflowId).result()) as RolloutStatus;
      assert.equal(traffic.failed, 0, traffic.failures.slice(0, 5).join('\n'));
      assert.equal(traffic.neither, 0);
      assert.ok(traffic.old > 0 && traffic.new > 0, JSON.stringify(traffic));
      // Old answers after the first new one come only from requests open across the one change.
      assert.ok(traffic.mixedWindowMs < 1_000, `mixed-version window ${traffic.mixedWindowMs} ms`);
      assert.equal(rollout.mixedWindowMs, undefined, 'never two lessons in service');
      assert.equal(rollout.capacity?.lowestServing, 4, 'every satellite served throughout, itself or through its stand-in');
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => prepared.lessonId),
      );
      const lbConfig = config.loadBalancer.kind === 'haproxy' ? config.loadBalancer : undefined;
      const servers = await showServers(lbConfig!.runtimeApi, lbConfig!.backend);
      for (const s of config.satellites) {
        assert.equal(servers.find((v) => v.name === s.name)?.status, 'UP', `${s.name} takes users again`);
        assert.equal(servers.find((v) => v.name === standInServer(s.name))?.status, 'MAINT', `${s.name}'s stand-in is back in maintenance`);
        await assert.rejects(fetch(`http://127.0.0.1:${examinationPort(s)}/health`), `${s.name}'s stand-in stopped`);
      }
    },
  );

  for (const [copy, added] of [
    ['while-serving', { id: 6, title: 'Kalpa Imperial', author: 'Angélica Gorodischer', year: 1983 }],
    ['out-of-service', { id: 8, title: 'Gilead', author: 'Marilynne Robinson', year: 2004 }],
  ] as const) {
    test(
      `a service that does not start halts the rollout with its command, exit status and output (copy ${copy}); abort (after the fix) leaves every satellite serving its lesson`,
      { timeout: 300_000 },
      async () => {
        const before = (await servedVersions(config))[0]!;
        appendFileSync(feedFile, `${book(added.id, added.title, added.author, added.year)}\n`);
        writeFileSync(brokenWarmUp, 'yes');
        try {
          const handle = await startPrepareLesson(client, { ...config, groups: { ...config.groups, copy } }, 'test');
          const prep = await waitForStatus(handle, (s) => s.rollout?.workflowId !== undefined, 'the rollout started');
          const rollout = client.workflow.getHandle(prep.rollout!.workflowId);
          let halted: RolloutStatus | undefined;
          for (let i = 0; i < 600 && !halted?.halted; i++) {
            halted = await rollout.query<RolloutStatus>('status').catch(() => undefined);
            if (!halted?.halted) await new Promise((r) => setTimeout(r, 200));
          }
          assert.ok(halted?.halted, 'the rollout halted');
          assert.match(halted.halted.reason, /webServer\.services\[1\]\.start \["python3","-c",.*\] exited with status 4/);
          assert.match(halted.halted.reason, /cache warm-up failed: no space left/);
          if (copy === 'while-serving') {
            // The examination instance failed to start: no satellite has left the load balancer.
            assert.equal(halted.halted.step, 'lesson and examination');
            assert.equal(halted.serving, 4);
            const lb = config.loadBalancer.kind === 'haproxy' ? config.loadBalancer : undefined;
            const up = (await showServers(lb!.runtimeApi, lb!.backend)).filter((s) => s.status === 'UP').map((s) => s.name);
            assert.deepEqual(up.sort(), config.satellites.map((s) => s.name).sort(), 'every satellite still takes users');
            assert.deepEqual(
              await servedVersions(config),
              config.satellites.map(() => before),
              'on the lesson before',
            );
          }
          // In the source's order the previous lesson needs the same services: they start again only after the fix.
          rmSync(brokenWarmUp, { force: true });
          await rollout.signal('abort', 'the test is done with it');
          const result = await handle.result();
          assert.equal(result.phase, 'aborted', result.summary);
          assert.equal(result.rollout?.phase, 'aborted');
          assert.deepEqual(
            await servedVersions(config),
            config.satellites.map(() => before),
            'every satellite serves its previous lesson',
          );
          assert.deepEqual((await search(added.title.split(' ')[0]!)).ids, [], 'and answers from its database');
        } finally {
          rmSync(brokenWarmUp, { force: true });
        }
      },
    );
  }

  test(
    'a failing command at every step halts with the command, its exit status and its output (halt, task monitor, lesson status); resume after each fix goes on',
    { timeout: 420_000 },
    async () => {
      appendFileSync(feedFile, `${book(7, 'Piranesi', 'Susanna Clarke', 2020)}\n`);
      const examined = config.satellites[2]!.name;
      // In the order the run meets them; each fix lets the run go on to the next.
      const steps = [
        { marker: 'check', step: 'check new subject matter (library)', field: 'reference.subjects[0].check' },
        { marker: 'update', step: 'prepare the subject matter (library): ', field: 'reference.subjects[0].prepare[0]' },
        { marker: 'index', step: 'prepare the subject matter (library): ', field: 'reference.subjects[0].prepare[1]' },
        { marker: 'test', step: 'proof-read the preparation (library)', field: 'reference.subjects[0].proofRead.commands[0]' },
        { marker: 'checkpoint', step: 'file the preparation', field: 'reference.snapshot.before' },
        { marker: 'restart', step: 'file the preparation', field: 'reference.snapshot.after' },
        { marker: 'backup', step: 'file the preparation', field: 'reference.backup' },
      ];
      for (const s of steps) writeFileSync(path.join(markers, s.marker), '');
      // The examination on one satellite runs the same test command there.
      writeFileSync(path.join(markers, `test@${examined}`), '');
      const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const failed = (field: string) => new RegExp(`${escaped(field)} \\["python3","-B",".*failWhenMarked\\.py".*\\] exited with status 7 after`);
      const lessonStatus = async () => {
        const cli = await execa('node', [BIN, '--config', configFile, 'lesson', 'status'], { reject: false });
        assert.equal(cli.exitCode, 1, 'lesson status exits 1 on a halt');
        return cli.stdout;
      };
      const reported = async (workflowId: string, pattern: RegExp) => {
        for (let i = 0; i < 100; i++) {
          const rows = await ops.query<{ summary: string }>("SELECT summary FROM reports WHERE run_key LIKE $1 || '/%/halt-%'", [workflowId]);
          if (rows.rows.some((r) => pattern.test(r.summary))) return true;
          await new Promise((r) => setTimeout(r, 100));
        }
        return false;
      };

      const handle = await startPrepareLesson(client, config, 'test');
      const before = (await servedVersions(config))[0]!;
      for (const s of steps) {
        const halted = await waitForStatus(handle, (st) => st.halted !== null && failed(s.field).test(st.halted.reason), `halted by ${s.field}`);
        assert.ok(halted.halted!.step.startsWith(s.step), `${s.field} halts "${halted.halted!.step}"`);
        assert.match(halted.halted!.reason, /the test made this step fail/, 'the end of its output');
        assert.ok(await reported(handle.workflowId, failed(s.field)), `the task monitor reports the halt by ${s.field}`);
        const status = await lessonStatus();
        assert.match(status, failed(s.field));
        assert.match(status, /the test made this step fail/);
        assert.deepEqual(
          await servedVersions(config),
          config.satellites.map(() => before),
          'no satellite has the lesson yet',
        );
        rmSync(path.join(markers, s.marker));
        await handle.signal('resume');
      }

      const prep = await waitForStatus(handle, (st) => st.rollout?.workflowId !== undefined, 'the rollout started');
      const rollout = client.workflow.getHandle(prep.rollout!.workflowId);
      const examination = failed('reference.subjects[0].proofRead.commands[0]');
      let halted: RolloutStatus | undefined;
      for (let i = 0; i < 900 && !(halted?.halted && examination.test(halted.halted.reason)); i++) {
        halted = await rollout.query<RolloutStatus>('status').catch(() => undefined);
        if (!halted?.halted) await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(halted?.halted, 'the rollout halted in the examination');
      assert.match(halted.halted.reason, examination);
      assert.match(halted.halted.reason, new RegExp(escaped(examined)));
      assert.match(halted.halted.reason, /the test made this step fail/);
      // Examined beside the lesson it serves: the whole cluster still serves the lesson before, every satellite taking users.
      assert.equal(halted.serving, 4);
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => before),
      );
      assert.ok(await reported(prep.rollout!.workflowId, examination), 'the task monitor reports the examination halt');
      assert.match(await lessonStatus(), examination);
      rmSync(path.join(markers, `test@${examined}`));
      await rollout.signal('resume');

      const result = await handle.result();
      assert.equal(result.phase, 'done', result.summary);
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => result.lessonId),
      );
      assert.deepEqual((await search('Piranesi')).ids, [7]);
    },
  );
});
