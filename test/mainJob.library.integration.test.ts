/**
 * `lessonplan run --example library`: the second example cluster run like the main job,
 * on a copy of examples/library with free ports and its own data folder. Its own Temporal
 * and PostgreSQL; the reference updates the SQLite database and its full-text index with
 * the example's scripts and tests them; four satellites serve it with the example's web
 * application behind HAProxy. On an empty cluster a first lesson comes from the example's
 * feed, then the main job adds books and the measured lesson goes out under load: exit 0,
 * no failed request, and every satellite's database finds the books it added.
 */
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { execa } from 'execa';
import { freeStablePort } from '../src/stack/ports';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');
const EXAMPLE = path.resolve(import.meta.dirname, '../examples/library');

describe('the library example (lessonplan run --example library)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-library-'));
  chmodSync(dir, 0o755);
  const examples = path.join(dir, 'examples');
  cpSync(EXAMPLE, path.join(examples, 'library'), { recursive: true });
  const configFile = path.join(examples, 'library/cluster.yaml');
  // The example's fixed ports (18300 for HAProxy, 18301-18304 for the satellites, 18305 for the reference's app,
  // 18311-18314 for the satellites' examination instances) become free ones.
  const taken = new Set<number>();
  const ports = new Map<string, number>();
  for (const fixed of ['18300', '18301', '18302', '18303', '18304', '18305', '18311', '18312', '18313', '18314']) {
    ports.set(fixed, await freeStablePort(taken));
  }
  writeFileSync(
    configFile,
    readFileSync(configFile, 'utf8').replace(/\b18(?:30[0-5]|31[1-4])\b/g, (p) => String(ports.get(p))),
  );
  const env = { NO_COLOR: '1', LESSONPLAN_EXAMPLES_DIR: examples };
  after(async () => {
    await execa('node', [BIN, '--config', configFile, 'dev', 'down'], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  });

  test(
    'a first lesson from the feed, then new books under load: exit 0, no request failed, every satellite finds them',
    { timeout: 600_000 },
    async () => {
      const result = await execa('node', [BIN, 'run', '--example', 'library'], { reject: false, all: true, timeout: 590_000, env });
      const output = String(result.all);
      assert.equal(result.exitCode, 0, output.split('\n').slice(-40).join('\n'));
      assert.match(output, /the cluster serves no lesson yet: for a first lesson, the example's books into /);
      const added = /new subject matter: books (\d+)-(\d+) added to /.exec(output);
      assert.ok(added, output);
      const lines = output.split('\n');
      const summary = lines.slice(lines.indexOf('summary')).join('\n');
      const lessonId = /lesson: +(\S+) \(done\)/.exec(summary)?.[1];
      assert.ok(lessonId, summary);
      assert.match(summary, /requests: +\d+ through HAProxy, 0 failed/);
      assert.match(summary, /serving: +4 of 4 satellites serve the new lesson/);
      assert.match(output, /subject library: the check says: 3 new and 0 changed books in the feed/, "progress gives the check's own words");
      assert.match(output, /subject library: 2 prepare commands done/);
      assert.match(output, new RegExp(`stop it with: npm run lessonplan -- --config \\S*cluster\\.yaml dev down`));
      const first = Number(added[1]);
      // The example's own browser test, through HAProxy: the search page finds a new book.
      const browser = await execa(
        'node',
        [path.join(EXAMPLE, 'tests/browser-search.mjs'), `http://127.0.0.1:${ports.get('18300')}/`, 'Acquisition', `Acquisition ${first + 2}`],
        { reject: false, all: true },
      );
      assert.equal(browser.exitCode, 0, String(browser.all));
      for (const fixed of ['18301', '18302', '18303', '18304']) {
        const base = `http://127.0.0.1:${ports.get(fixed)}`;
        assert.equal((await (await fetch(`${base}/version`)).text()).trim(), lessonId);
        const search = (await (await fetch(`${base}/search?q=Acquisition`)).json()) as { ids: number[] };
        assert.deepEqual(search.ids, [first, first + 1, first + 2], `satellite on ${base} finds the new books in its database`);
      }
    },
  );
});
