/**
 * Commands of the cluster's own, run as real processes: how they end decides, their
 * output is kept as a bounded tail, and every failure names the field, the command, how
 * it ended and the end of its output.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { OUTPUT_TAIL_BYTES, runUserCommand, UserCommandFailed } from '../src/activities/common/userCommand';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'lessonplan-usercmd-')));
after(() => rmSync(dir, { recursive: true, force: true }));
const node = (code: string, timeout = 30_000) => ({ command: [process.execPath, '-e', code], timeout, cwd: dir });

describe('a command of the cluster’s own', () => {
  test('runs in its folder with the environment given, and its output is kept', async () => {
    const run = await runUserCommand(node('console.log(process.cwd()); console.error("lesson " + process.env.LESSON_ID)'), {
      field: 'reference.subjects[0].check',
      env: { LESSON_ID: 'L1' },
    });
    assert.equal(run.exitCode, 0);
    assert.equal(run.output, `${dir}\nlesson L1`);
  });

  test('an exit status it does not accept fails, naming the field, the command, the status and the end of the output', async () => {
    await assert.rejects(
      runUserCommand(node('for (let i = 1; i <= 40; i++) console.log("line " + i); process.exit(2)'), {
        field: 'reference.subjects[1].prepare[0]',
        env: {},
      }),
      (err: unknown) => {
        assert.ok(err instanceof UserCommandFailed);
        assert.equal(err.run.exitCode, 2);
        assert.match(err.message, /^reference\.subjects\[1\]\.prepare\[0\] \[".*node.*","-e",.*\] exited with status 2 after \d+\.\d s/);
        assert.match(err.message, /line 40$/);
        assert.doesNotMatch(err.message, /line 25\n/, 'only the last lines');
        return true;
      },
    );
  });

  test('statuses other than 0 can be accepted (a check that says "nothing new")', async () => {
    const run = await runUserCommand(node('console.log("no new rows"); process.exit(10)'), { field: 'f', env: {}, accept: [0, 10] });
    assert.equal(run.exitCode, 10);
    assert.equal(run.output, 'no new rows');
  });

  test('a chatty command keeps only a bounded tail', async () => {
    const run = await runUserCommand(node('for (let i = 0; i < 20000; i++) process.stdout.write("x".repeat(99) + "\\n"); console.log("done")'), {
      field: 'f',
      env: {},
    });
    assert.ok(run.output.length < OUTPUT_TAIL_BYTES, `${run.output.length} characters kept`);
    assert.ok(run.output.endsWith('\ndone'));
  });

  test('a command past its timeout is stopped, and says so', async () => {
    const started = Date.now();
    await assert.rejects(
      runUserCommand(node('console.log("working"); setTimeout(() => {}, 60000)', 500), { field: 'reference.backup', env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof UserCommandFailed);
        assert.match(err.message, /reference\.backup .* was stopped at its timeout of 0\.5 s/);
        assert.match(err.message, /working$/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 10_000);
  });

  test('a program that does not exist fails with the reason', async () => {
    await assert.rejects(
      runUserCommand({ command: [path.join(dir, 'no-such-script')], timeout: 5_000, cwd: dir }, { field: 'reference.snapshot.before', env: {} }),
      (err: unknown) => err instanceof UserCommandFailed && /could not run: .*ENOENT/.test(err.message),
    );
  });

  test('a cancelled step stops its command', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await assert.rejects(runUserCommand(node('setTimeout(() => {}, 60000)'), { field: 'f', env: {}, signal: controller.signal }), (err: unknown) =>
      /was stopped \(the step was cancelled\)/.test((err as Error).message),
    );
  });
});
