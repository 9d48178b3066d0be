/**
 * The lessonplan command: help on every command of the program (walked from the program
 * itself, so a new command is covered the day it is added), and bad usage as one clear
 * line with exit 2. Each case runs the real command as its own process.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { execa } from 'execa';
import { buildProgram } from '../src/operator/cli';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');
const run = (...args: string[]) => execa('node', [BIN, ...args], { reject: false });

function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return [prefix, ...command.commands.flatMap((sub) => commandPaths(sub, [...prefix, sub.name()]))];
}
const paths = commandPaths(buildProgram());

describe('lessonplan CLI', { concurrency: 4 }, () => {
  test('the walk finds every command group', () => {
    const top = paths.filter((p) => p.length === 1).map((p) => p[0]);
    for (const name of ['run', 'dev', 'worker', 'config', 'lesson', 'reports', 'schedule', 'window', 'slave', 'save', 'model']) {
      assert.ok(top.includes(name), `${name} is a command`);
    }
    assert.ok(paths.length >= 35, `${paths.length} commands`);
  });

  for (const command of paths) {
    test(`lessonplan ${command.join(' ')} --help`, async () => {
      const result = await run(...command, '--help');
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^Usage: lessonplan ${command.join(' ')}`.trimEnd()));
    });
    test(`lessonplan ${command.join(' ')} with an option it does not have: one line, exit 2`, async () => {
      const result = await run(...command, '--no-such-option');
      assert.equal(result.exitCode, 2, result.stderr);
      assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
      // Commander checks required options and arguments first: those lines are as clear.
      assert.match(
        result.stderr.trimEnd(),
        /^error: (unknown option '--no-such-option'|required option '.+' not specified|missing required argument '.+') \(see --help\)$/,
      );
    });
  }

  test('an unknown command: one line naming it, exit 2', async () => {
    const result = await run('deploy-everything');
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr.trimEnd(), /^error: unknown command 'deploy-everything' \(see --help\)$/);
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
