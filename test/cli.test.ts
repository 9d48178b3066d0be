/** The lessonplan command: help everywhere, and one clear line with exit 2 for bad usage. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');
const run = (...args: string[]) => execa('node', [BIN, ...args], { reject: false });

describe('lessonplan CLI', () => {
  for (const command of [
    [],
    ['run'],
    ['dev'],
    ['dev', 'up'],
    ['dev', 'down'],
    ['dev', 'status'],
    ['dev', 'reset'],
    ['worker'],
    ['config'],
    ['lesson'],
    ['lesson', 'start'],
    ['lesson', 'status'],
    ['lesson', 'watch'],
    ['lesson', 'resume'],
    ['lesson', 'abort'],
    ['lesson', 'pause'],
    ['lesson', 'list'],
    ['reports'],
    ['slave'],
    ['slave', 'start'],
    ['slave', 'status'],
    ['slave', 'pause'],
    ['slave', 'resume'],
    ['save'],
    ['model'],
    ['model', 'deploy'],
  ]) {
    test(`lessonplan ${command.join(' ')} --help`, async () => {
      const result = await run(...command, '--help');
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^Usage: lessonplan ${command.join(' ')}`.trimEnd()));
    });
  }

  test('an unknown command: one line naming it, exit 2', async () => {
    const result = await run('deploy-everything');
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr.split('\n')[0]!, /^error: unknown command 'deploy-everything'/);
  });

  test('a worker role that does not exist is refused with the valid choices', async () => {
    const result = await run('worker', 'janitor');
    assert.equal(result.exitCode, 2);
    assert.match(
      result.stderr,
      /error: command-argument value 'janitor' is invalid for argument 'role'\. Allowed choices are orchestration, reference, satellite, master, slave, all-in-one/,
    );
  });

  test('save without --slave says what is missing', async () => {
    const result = await run('save', 'changes.json');
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr, /required option '--slave <name>' not specified/);
  });

  test('dev reset without --yes deletes nothing and says what is missing', async () => {
    const result = await run('dev', 'reset');
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr, /required option '--yes' not specified/);
  });
});
