/**
 * The master/slave commands of the lessonplan CLI against the real stack: model deploy
 * (dry run, deploy, a destructive change refused), slave start/status/pause/resume, and
 * save from a file through a slave. Each runs as its own process, as an operator would.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { replicationCluster, waitForStatus, LIBRARY_V1, LIBRARY_V2 } from './helpers/replication';
import { onTeardown } from './helpers/stack';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

describe('lessonplan slave, save and model deploy', async () => {
  const cluster = await replicationCluster('cli', ['cli-a']);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-cli-'));
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: unknown) => {
    const full = path.join(dir, name);
    writeFileSync(full, typeof content === 'string' ? content : stringify(content));
    return full;
  };
  const lessonplan = (...args: string[]) => execa('node', [BIN, '--config', cluster.configFile, ...args], { reject: false, env: { NO_COLOR: '1' } });
  const current = async () => (await cluster.master.db.query<{ checksum: string }>('SELECT checksum FROM lp_models WHERE current')).rows[0]?.checksum;

  test('model deploy: a dry run prints the changes and changes nothing; then it deploys', { timeout: 60_000 }, async () => {
    const v1 = file('v1.yaml', LIBRARY_V1);
    const dry = await lessonplan('model', 'deploy', v1, '--dry-run');
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stdout, /would deploy model [0-9a-f]{12} \(from no model\): 1 changes\n {2}add class book \(3 attributes, key id\)/);
    assert.equal(await current(), undefined);
    const done = await lessonplan('model', 'deploy', v1);
    assert.equal(done.exitCode, 0, done.stderr);
    assert.match(done.stdout, /^deployed model/);
    assert.ok(await current());
    const v2 = await lessonplan('model', 'deploy', file('v2.yaml', LIBRARY_V2), '--dry-run', '--json');
    const plan = JSON.parse(v2.stdout) as { changes: { description: string }[]; applied: boolean };
    assert.equal(plan.applied, false);
    assert.deepEqual(plan.changes.map((c) => c.description).sort(), [
      'add attribute book.isbn (text)',
      'add class loan (3 attributes, key book_id, reader)',
      'widen attribute book.copies from integer to bigint',
    ]);
  });

  test('a destructive model is refused with the change named and exit 1; a bad model file exits 2 naming the field', async () => {
    const dropped = { classes: [{ ...LIBRARY_V1.classes[0]!, attributes: LIBRARY_V1.classes[0]!.attributes.filter((a) => a.name !== 'copies') }] };
    const before = await current();
    const refused = await lessonplan('model', 'deploy', file('dropped.yaml', dropped));
    assert.equal(refused.exitCode, 1);
    assert.match(refused.stderr, /^error: .*drop attribute book\.copies \(its values would be lost\).*--allow-destructive/);
    assert.equal(await current(), before);
    const bad = await lessonplan(
      'model',
      'deploy',
      file('bad.yaml', { classes: [{ name: 'Book', key: ['id'], attributes: [{ name: 'id', type: 'integer' }] }] }),
    );
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /error: .*bad\.yaml: classes\[0\]\.name: expected a name of lowercase letters/);
  });

  test('slave start, save from a file, status, pause and resume', { timeout: 90_000 }, async () => {
    const notYet = await lessonplan('slave', 'status', 'cli-a');
    assert.equal(notYet.exitCode, 1);
    assert.match(notYet.stdout, /cli-a +not running; start it with: lessonplan slave start cli-a/);

    const started = await lessonplan('slave', 'start');
    assert.equal(started.exitCode, 0, started.stderr);
    assert.match(started.stdout, /cli-a: slave-sync\/cli-a running/);
    const handle = cluster.client.workflow.getHandle('slave-sync/cli-a');
    await waitForStatus(handle, (s) => s.modelChecksum !== null);

    const saveFile = file('save.json', JSON.stringify({ changes: [{ class: 'book', op: 'upsert', values: { id: 7, title: 'Seven', copies: 2 } }] }));
    const saved = await lessonplan('save', saveFile, '--slave', 'cli-a');
    assert.equal(saved.exitCode, 0, saved.stderr);
    const seq = Number(/saved as block (\d+)/.exec(saved.stdout)?.[1]);
    assert.ok(seq > 0, saved.stdout);
    const { rows } = await cluster.slaves['cli-a']!.db.query<{ title: string }>('SELECT title FROM book WHERE id = 7');
    assert.deepEqual(rows, [{ title: 'Seven' }], 'read-your-writes on the slave');
    const again = await lessonplan('save', saveFile, '--slave', 'cli-a');
    assert.match(again.stdout, new RegExp(`saved as block ${seq} \\(this key was saved before: nothing new\\)`));

    const status = await lessonplan('--json', 'slave', 'status', 'cli-a');
    assert.equal(status.exitCode, 0, status.stdout);
    assert.equal((JSON.parse(status.stdout) as { slaves: { highWaterMark: number }[] }).slaves[0]!.highWaterMark, seq);

    assert.equal((await lessonplan('slave', 'pause', 'cli-a')).exitCode, 0);
    await waitForStatus(handle, (s) => s.state === 'paused');
    const refused = await lessonplan('save', file('other.json', { changes: [{ class: 'book', op: 'delete', key: { id: 7 } }] }), '--slave', 'cli-a');
    assert.equal(refused.exitCode, 1);
    assert.match(refused.stderr, /^error: slave cli-a is paused; saves through it are refused until it is resumed/);
    assert.equal((await lessonplan('slave', 'resume', 'cli-a')).exitCode, 0);
    await waitForStatus(handle, (s) => !s.paused);
  });

  test(
    'slave verify: the same rows say so (exit 0); a row changed on the slave is named by table and key (exit 1)',
    { timeout: 90_000 },
    async () => {
      const same = await lessonplan('slave', 'verify', 'cli-a', '--wait', '30');
      assert.equal(same.exitCode, 0, same.stdout + same.stderr);
      assert.match(same.stdout, /^cli-a: same as the master at block \d+ \(\d+ tables, \d+ rows\)$/m);
      const slaveDb = cluster.slaves['cli-a']!.db;
      // Written behind the slave's back, as a stray script or a restored file might.
      await slaveDb.query("UPDATE book SET title = 'Tampered' WHERE id = 7");
      try {
        const differs = await lessonplan('--json', 'slave', 'verify', 'cli-a', '--wait', '30');
        assert.equal(differs.exitCode, 1, differs.stdout + differs.stderr);
        const report = JSON.parse(differs.stdout) as {
          slaves: { same: boolean; differences: { table: string; firstKey: Record<string, string> }[] }[];
        };
        assert.equal(report.slaves[0]!.same, false);
        assert.deepEqual(
          report.slaves[0]!.differences.map((d) => [d.table, d.firstKey]),
          [['book', { id: '7' }]],
        );
        const text = await lessonplan('slave', 'verify', 'cli-a', '--wait', '30');
        assert.match(text.stdout, /cli-a: DIFFERS from the master at block \d+\n {2}table book: .*first differing key \{"id":"7"\}/);
      } finally {
        await slaveDb.query("UPDATE book SET title = 'Seven' WHERE id = 7");
      }
    },
  );

  test('bad save files and unknown slaves: one line, exit 2, nothing saved', async () => {
    const bad = await lessonplan('save', file('bad.json', { changes: [{ class: 'book', op: 'rename' }] }), '--slave', 'cli-a');
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /^error: .*bad\.json: changes\.0\.op: /);
    const unknown = await lessonplan('slave', 'status', 'nobody');
    assert.equal(unknown.exitCode, 2);
    assert.match(unknown.stderr, /^error: no slave named "nobody" in the config; configured: cli-a/);
  });
});
