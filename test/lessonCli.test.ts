/**
 * The lesson and reports commands against the real stack, before any run: what an
 * operator sees first. (The full start/watch/halt/resume flow comes with its own test.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { freshDatabase, onTeardown, testConfigFile, testStack } from './helpers/stack';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

describe('lessonplan lesson and reports, before any run', async () => {
  const base = await testStack();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-lesson-cli-'));
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  const raw = parse(readFileSync(testConfigFile(), 'utf8'));
  raw.dataDir = base.dataDir;
  raw.reference.name = `teacher-cli-${process.pid}`;
  raw.operationalDatabase = (await freshDatabase(base, 'lesson_cli_ops')).spec;
  const configFile = path.join(dir, 'cluster.yaml');
  writeFileSync(configFile, stringify(raw));
  const lessonplan = (...args: string[]) => execa('node', [BIN, '--config', configFile, ...args], { reject: false, env: { NO_COLOR: '1' } });

  test('lesson status with no run yet says how to start one, exit 1', async () => {
    const result = await lessonplan('lesson', 'status');
    assert.equal(result.exitCode, 1);
    assert.match(
      result.stderr,
      new RegExp(`^error: the reference teacher-cli-${process.pid} has no lesson run yet .*start one with: lessonplan lesson start`),
    );
  });

  test('lesson status of an unknown lesson, and resume with nothing to resume: one line, exit 1', async () => {
    const unknown = await lessonplan('lesson', 'status', 'no-such-lesson');
    assert.equal(unknown.exitCode, 1);
    assert.match(unknown.stderr, /^error: no rollout of lesson no-such-lesson \(hold-lesson\/no-such-lesson\)/);
    const resume = await lessonplan('lesson', 'resume');
    assert.equal(resume.exitCode, 1);
    assert.match(resume.stderr, /has no lesson run yet/);
  });

  test('reports on a fresh task monitor, and lesson list --limit checked', async () => {
    const reports = await lessonplan('reports');
    assert.equal(reports.exitCode, 0, reports.stderr);
    assert.equal(reports.stdout.trim(), '(no reports yet)');
    const json = await lessonplan('--json', 'reports');
    assert.deepEqual(JSON.parse(json.stdout), []);
    const list = await lessonplan('lesson', 'list', '--limit', '5');
    assert.equal(list.exitCode, 0, list.stderr);
    const bad = await lessonplan('lesson', 'list', '--limit', 'many');
    assert.equal(bad.exitCode, 1);
    assert.match(bad.stderr, /^error: --limit: expected a positive whole number, got "many"/);
  });
});
