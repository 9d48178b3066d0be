/**
 * A subject of the cluster's own, on the real parts (the Temporal server, the reference
 * and satellite workers, Apache, HAProxy, rsync): the library example's scripts
 * (examples/library) check a feed for new books, update a SQLite database and build its
 * full-text index in the reference's served folder, and test what the reference's web
 * server answers; filing copies the folder between the snapshot commands; the satellites
 * take the lesson and answer as the reference did. A failing command halts the run with
 * the command, its exit status and the end of its output; resume after the fix goes on;
 * a subject that writes outside its files is stopped; nothing new is no lesson.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { lessonDir, linkedLesson } from '../src/activities/satellite/lessons';
import { liveCommandOutput, type LiveCommand } from '../src/operator/liveCommands';
import { startPrepareLesson } from '../src/operator/prepare';
import { freeStablePort } from '../src/stack/ports';
import { replayAndRecord } from './helpers/histories';
import { preparationTestBed, servedVersions, waitForStatus } from './helpers/preparation';

const EXAMPLE = path.resolve(import.meta.dirname, '../examples/library/scripts');
const python = (script: string, ...args: string[]) => ['python3', '-B', path.join(EXAMPLE, script), ...args];
const book = (id: number, title: string, author: string, year: number) => JSON.stringify({ id, title, author, year });

describe("prepareLesson with a subject of the cluster's own", async () => {
  let feed = '';
  let served = '';
  let strayMarker = '';
  let snapshotLog = '';
  let writesInPlace = '';
  let slowStart = '';
  const referencePort = await freeStablePort();
  const { config, client, ops } = await preparationTestBed('prepare-own', (raw) => {
    const dir = path.dirname(path.dirname(raw.reference.lessonsDir));
    feed = path.join(dir, 'feed');
    served = path.join(dir, 'reference/served');
    strayMarker = path.join(dir, 'write-a-stray-file');
    snapshotLog = path.join(dir, 'snapshot.log');
    const logLine = (word: string) => [
      'python3',
      '-c',
      `import os; open(${JSON.stringify(snapshotLog)}, 'a').write('${word} ' + os.environ['LESSON_ID'] + '\\n')`,
    ];
    raw.reference.servedDir = served;
    raw.reference.keepLessons = 3;
    raw.reference.subjects = [
      {
        name: 'library',
        check: python('check.py', '--feed', feed),
        prepare: [
          { command: python('update.py', '--feed', feed), timeout: '2m' },
          python('build-index.py'),
          // A slow step that says what it does: lesson watch shows it while it runs.
          ['python3', '-c', 'import time; print("warming the cache", flush=True); time.sleep(3)'],
          // An operator's mistake, on demand: a file outside what the subject owns.
          [
            'python3',
            '-c',
            `import os; os.path.exists(${JSON.stringify(strayMarker)}) and open(os.environ['LESSON_DIR'] + '/stray.txt', 'w').write('x')`,
          ],
        ],
        proofRead: { commands: [python('test.py')], queries: ['/index/catalogue.json', '/index/books/1.json'] },
        owns: ['db/', 'index/'],
      },
    ];
    raw.reference.snapshot = { before: logLine('before'), after: logLine('after') };
    // The reference's own web server for the proof-read: the example's app, and a service that is slow to come up on demand.
    slowStart = path.join(dir, 'start-slowly');
    const app = (action: string) => [
      'python3',
      '-B',
      path.join(EXAMPLE, '../app/service.py'),
      action,
      '--state-dir',
      path.join(dir, 'reference/app'),
    ];
    raw.reference.webServer = {
      kind: 'own',
      port: referencePort,
      services: [
        { name: 'library', start: app('start'), stop: app('stop'), isUp: app('isup') },
        {
          name: 'cache',
          start: ['python3', '-c', `import os, time; os.path.exists(${JSON.stringify(slowStart)}) and time.sleep(20); print('cache warm')`],
          stop: ['true'],
        },
      ],
    };
    // A database server that writes the filed copy in place (hint bits, statistics), on demand.
    writesInPlace = path.join(dir, 'write-the-filed-database');
    raw.reference.backup = [
      'python3',
      '-c',
      `import os; os.path.exists(${JSON.stringify(writesInPlace)}) and open(os.environ['LESSON_DIR'] + '/db/library.sqlite', 'ab').write(b'hint bits')`,
    ];
  });
  mkdirSync(feed, { recursive: true });
  mkdirSync(served, { recursive: true });
  const feedFile = path.join(feed, 'books.jsonl');
  writeFileSync(
    feedFile,
    [book(1, 'Dune', 'Frank Herbert', 1965), book(2, 'Solaris', 'Stanisław Lem', 1961), book(3, 'Kindred', 'Octavia Butler', 1979)].join('\n') + '\n',
  );
  const throughHaproxy = async (urlPath: string) => {
    const lb = config.loadBalancer.kind === 'haproxy' ? config.loadBalancer.frontendPort : 0;
    const response = await fetch(`http://127.0.0.1:${lb}${urlPath}`);
    assert.equal(response.status, 200, urlPath);
    return response.text();
  };
  const reportOf = async (handle: { workflowId: string; firstExecutionRunId: string }) =>
    (await ops.query<{ log: string }>('SELECT log FROM reports WHERE run_key = $1', [`${handle.workflowId}/${handle.firstExecutionRunId}`])).rows[0]
      ?.log ?? '';

  let first = '';

  test(
    'new books: checked, updated, indexed and tested on the reference, filed as a copy, served by every satellite',
    { timeout: 300_000 },
    async () => {
      const handle = await startPrepareLesson(client, config, 'test');
      // What lesson watch reads: the running command and its output, from the activity's heartbeat.
      const seen: LiveCommand[] = [];
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const live = await liveCommandOutput(client, handle.workflowId).catch(() => undefined);
          if (live) seen.push(live);
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const result = await handle.result().finally(() => (watching = false));
      await watcher;
      assert.equal(result.phase, 'done', result.summary);
      first = result.lessonId!;
      assert.ok(
        seen.some((l) => l.command === 'reference.subjects[0].prepare[2]' && l.output === 'warming the cache'),
        `seen live: ${JSON.stringify(seen.slice(0, 20))}`,
      );
      assert.match(result.summary, /served by 4 satellites/);
      assert.deepEqual(
        result.subjects.map((s) => [s.subject, s.found]),
        [['library', '3 new and 0 changed books in the feed']],
      );
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => first),
      );
      const catalogue = JSON.parse(await throughHaproxy('/index/catalogue.json')) as { title: string }[];
      assert.deepEqual(
        catalogue.map((b) => b.title),
        ['Dune', 'Solaris', 'Kindred'],
      );
      // The filed lesson is a copy of the served folder, made between the snapshot commands.
      const filedDb = path.join(config.reference.lessonsDir, first, 'db/library.sqlite');
      assert.notEqual(statSync(filedDb).ino, statSync(path.join(served, 'db/library.sqlite')).ino, 'a copy, not a hard link');
      assert.equal(readFileSync(snapshotLog, 'utf8'), `before ${first}\nafter ${first}\n`);
      for (const s of config.satellites) {
        assert.equal(linkedLesson(s), first);
        assert.deepEqual(
          readFileSync(path.join(lessonDir(s, first), 'db/library.sqlite')),
          readFileSync(filedDb),
          `${s.name} has the database as filed`,
        );
      }
      const report = await reportOf(handle);
      assert.match(report, /library: new subject matter; the check said:\n3 new and 0 changed books in the feed/);
      assert.match(report, /build-index\.py done in .* s, \d+ files changed; it printed:\nindexed 3 books/);
    },
  );

  test('nothing new in the feed: no lesson', { timeout: 120_000 }, async () => {
    const result = await (await startPrepareLesson(client, config, 'test')).result();
    assert.equal(result.phase, 'nothing-to-do', result.summary);
    assert.equal(result.subjects[0]!.found, 'nothing new: the 3 books of the feed are in the database');
    assert.deepEqual(
      await servedVersions(config),
      config.satellites.map(() => first),
    );
  });

  test(
    'a failing command halts with the command, its exit status and the end of its output; resume after the fix goes on',
    { timeout: 300_000 },
    async () => {
      appendFileSync(feedFile, `${book(4, 'The Left Hand of Darkness', 'Ursula K. Le Guin', 1969)}\n{"id": 5, "title": "Neuromancer"}\n`);
      const handle = await startPrepareLesson(client, config, 'test');
      // The check reads the feed too: it is the first command to meet the bad line.
      const halted = await waitForStatus(handle, (s) => s.halted !== null, 'halted');
      assert.equal(halted.halted!.step, 'check new subject matter (library)');
      assert.match(
        halted.halted!.reason,
        /^reference\.subjects\[0\]\.check \["python3","-B",".*check\.py","--feed",".*"\] exited with status 3 after/,
      );
      assert.match(halted.halted!.reason, /expected 0 for new matter or 10 for nothing new/);
      assert.match(halted.halted!.reason, /books\.jsonl line 5: not a book: expected exactly the fields id, title, author, year$/);
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => first),
        'nothing reached the satellites',
      );
      // The task monitor has the same reason.
      let reported: string | undefined;
      for (let i = 0; i < 100 && reported === undefined; i++) {
        const report = await ops.query<{ summary: string }>('SELECT summary FROM reports WHERE run_key = $1', [
          `${handle.workflowId}/${handle.firstExecutionRunId}/halt-1`,
        ]);
        reported = report.rows[0]?.summary;
        if (reported === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(reported ?? '', /halted in "check new subject matter \(library\)": reference\.subjects\[0\]\.check .* exited with status 3/);
      // The fix: the feed's fifth line completed.
      writeFileSync(
        feedFile,
        readFileSync(feedFile, 'utf8').replace('{"id": 5, "title": "Neuromancer"}', book(5, 'Neuromancer', 'William Gibson', 1984)),
      );
      await handle.signal('resume');
      const result = await handle.result();
      assert.equal(result.phase, 'done', result.summary);
      assert.notEqual(result.lessonId, first);
      const catalogue = JSON.parse(await throughHaproxy('/index/catalogue.json')) as { id: number }[];
      assert.deepEqual(
        catalogue.map((b) => b.id),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(
        await servedVersions(config),
        config.satellites.map(() => result.lessonId),
      );
      await replayAndRecord(handle, 'prepareLesson.own-subject.json');
    },
  );

  test(
    'a prepare command that writes outside what the subject owns halts, naming the file; abort leaves the satellites as they were',
    { timeout: 300_000 },
    async () => {
      const before = (await servedVersions(config))[0]!;
      appendFileSync(feedFile, `${book(6, 'Ubik', 'Philip K. Dick', 1969)}\n`);
      writeFileSync(strayMarker, 'yes');
      try {
        const handle = await startPrepareLesson(client, config, 'test');
        const halted = await waitForStatus(handle, (s) => s.halted !== null, 'halted');
        assert.match(halted.halted!.step, /^prepare the subject matter \(library\): python3 -c /);
        assert.match(
          halted.halted!.reason,
          /wrote 1 file in .* outside what subject "library" owns \(db\/, index\/\): stray\.txt \(no subject owns it\)/,
        );
        await handle.signal('abort', 'the test is done with it');
        const result = await handle.result();
        assert.equal(result.phase, 'aborted');
        assert.deepEqual(
          await servedVersions(config),
          config.satellites.map(() => before),
        );
      } finally {
        rmSync(strayMarker, { force: true });
        rmSync(path.join(served, 'stray.txt'), { force: true });
      }
    },
  );

  test(
    'a filed database written in place before it is handed out halts before any satellite copies it; the next run files what the aborted runs left',
    { timeout: 300_000 },
    async () => {
      const before = (await servedVersions(config))[0]!;
      appendFileSync(feedFile, `${book(7, 'Kalpa Imperial', 'Angélica Gorodischer', 1983)}\n`);
      writeFileSync(writesInPlace, 'yes');
      const handle = await startPrepareLesson(client, config, 'test');
      try {
        const halted = await waitForStatus(handle, (s) => s.halted !== null, 'halted');
        assert.equal(halted.halted!.step, 'hand out the books');
        assert.match(halted.halted!.reason, /changed after it was filed \(db\/library\.sqlite: /);
        assert.deepEqual(
          await servedVersions(config),
          config.satellites.map(() => before),
          'no satellite has it',
        );
        for (const s of config.satellites) assert.equal(linkedLesson(s), before);
        await handle.signal('abort', 'the filed copy was written');
        assert.equal((await handle.result()).phase, 'aborted');
      } finally {
        rmSync(writesInPlace, { force: true });
      }
      // Nothing new in the feed now (its books are in the database), but the database is not what the last lesson was filed from.
      const next = await (await startPrepareLesson(client, config, 'test')).result();
      assert.equal(next.phase, 'done', next.summary);
      assert.deepEqual(
        next.subjects.map((s) => [s.found, s.unfiled]),
        [['nothing new: the 7 books of the feed are in the database', 1]],
      );
      const catalogue = JSON.parse(await throughHaproxy('/index/catalogue.json')) as { id: number }[];
      assert.deepEqual(
        catalogue.map((b) => b.id),
        [1, 2, 3, 4, 5, 6, 7],
        'book 6 (the stray run) and 7 (the written copy) went out',
      );
    },
  );

  test(
    'a reference service that takes longer than the heartbeat timeout to start: the proof-read waits for it, once, and goes on',
    { timeout: 300_000 },
    async () => {
      appendFileSync(feedFile, `${book(20, 'The Dispossessed', 'Ursula K. Le Guin', 1974)}\n`);
      writeFileSync(slowStart, 'yes');
      try {
        const handle = await startPrepareLesson(client, config, 'test');
        const ended = await waitForStatus(handle, (s) => s.phase === 'done' || s.halted !== null, 'done or halted', 240_000);
        assert.equal(ended.halted, null, `halted: ${JSON.stringify(ended.halted)}`);
        assert.equal(ended.phase, 'done', ended.summary);
        const history = await handle.fetchHistory();
        const proofReads = (history.events ?? []).filter(
          (e) => e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.attempt) > 1,
        );
        assert.deepEqual(proofReads, [], 'no activity needed a second attempt');
        await assert.rejects(fetch(`http://127.0.0.1:${referencePort}/health`), 'the reference app stopped after the proof-read');
      } finally {
        rmSync(slowStart, { force: true });
      }
    },
  );
});
