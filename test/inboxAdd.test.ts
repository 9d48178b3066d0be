/**
 * `lessonplan inbox add <file>` against the real PostgreSQL: all or nothing however
 * large the file, strings PostgreSQL cannot store refused before anything is written,
 * and a file that does not parse named with its line, column and what is wrong.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, test } from 'node:test';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { dropIntoInbox } from '../src/activities/reference/inbox';
import { migrateOperational } from '../src/db/migrate';
import type { InboxItem } from '../src/shared/subjectMatter';
import { freshDatabase, onTeardown, testConfigFile, testStack } from './helpers/stack';

const BIN = path.resolve(import.meta.dirname, '../bin/lessonplan.js');

const record = (n: number, fields: Record<string, string> = { author: `author ${n}` }): InboxItem => ({
  subject: 'records',
  kind: 'record',
  externalId: `rec-${n}`,
  payload: { title: `Record ${n}`, fields },
});

describe('lessonplan inbox add', async () => {
  const base = await testStack();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-inbox-add-'));
  onTeardown(() => rmSync(dir, { recursive: true, force: true }));
  const { spec, db: ops } = await freshDatabase(base, 'inbox_add');
  await migrateOperational(ops);
  const raw = parse(readFileSync(testConfigFile(), 'utf8'));
  raw.dataDir = base.dataDir;
  raw.operationalDatabase = spec;
  const configFile = path.join(dir, 'cluster.yaml');
  writeFileSync(configFile, stringify(raw));
  const lessonplan = (...args: string[]) => execa('node', [BIN, '--config', configFile, ...args], { reject: false, env: { NO_COLOR: '1' } });
  const inInbox = async () => Number((await ops.query<{ n: string }>('SELECT count(*) AS n FROM inbox')).rows[0]!.n);
  const writeItems = (name: string, content: unknown) => {
    const file = path.join(dir, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    return file;
  };
  beforeEach(() => ops.query('DELETE FROM inbox'));

  test('a NUL character in any string of an item is refused at validation, naming the item and the field; nothing goes in', async () => {
    const file = writeItems('nul.json', [
      record(0),
      { subject: 'documents', kind: 'document', externalId: 'doc-1', payload: { title: 'Nul\u0000title', body: 'fine' } },
      record(2, { author: 'Ann\u0000Smith' }),
      record(3, { 'ed\u0000itor': 'Bob' }),
    ]);
    const result = await lessonplan('inbox', 'add', file);
    assert.equal(result.exitCode, 2, `${result.stdout}\n${result.stderr}`);
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 3, result.stderr);
    assert.match(lines[0]!, /^error: .*nul\.json: \[1\] \(doc-1\): payload\.title: contains a NUL character \(\\u0000\)/);
    assert.match(lines[1]!, /^error: .*nul\.json: \[2\] \(rec-2\): payload\.fields\.author: contains a NUL character/);
    assert.match(lines[2]!, /^error: .*nul\.json: \[3\] \(rec-3\): payload\.fields\["ed\\u0000itor"\]: the name contains a NUL character/);
    assert.equal(await inInbox(), 0);
  });

  test('all or nothing: a file of more items than one insert takes puts nothing in when a late item is bad', async () => {
    const items = Array.from({ length: 2_500 }, (_, i) => record(i));
    items[2_100] = record(2_100, { author: 'late\u0000comer' });
    const result = await lessonplan('inbox', 'add', writeItems('many.json', items));
    assert.equal(await inInbox(), 0, 'not one item of the file is in the inbox');
    assert.equal(result.exitCode, 2, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stderr, /\[2100\] \(rec-2100\): payload\.fields\.author: contains a NUL character/);
  });

  test('dropIntoInbox writes every item in one transaction: the database refusing the third batch leaves none in', async () => {
    const items = Array.from({ length: 2_500 }, (_, i) => record(i));
    // A kind the inbox's CHECK constraint refuses, past the first two thousand items.
    items[2_200] = { ...record(2_200), kind: 'lecture' as InboxItem['kind'] };
    await assert.rejects(dropIntoInbox(ops, items), /inbox_kind_check|violates check constraint/);
    assert.equal(await inInbox(), 0, 'not one item of the call is in the inbox');
  });

  test('a good file goes in whole', async () => {
    const items = Array.from({ length: 2_500 }, (_, i) => record(i));
    const result = await lessonplan('inbox', 'add', writeItems('good.json', items));
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /^2500 items in the inbox from /);
    assert.equal(await inInbox(), 2_500);
  });

  test('malformed JSON: the file, the line and column, and what is wrong in words', async () => {
    const good = '  { "subject": "records", "kind": "record", "externalId": "r-1", "payload": { "title": "One", "fields": {} } },';
    const noComma = '  { "subject": "records" "kind": "record", "externalId": "r-2", "payload": { "title": "Two", "fields": {} } }';
    const missingComma = writeItems('missing-comma.json', ['[', good, noComma, ']', ''].join('\n'));
    const first = await lessonplan('inbox', 'add', missingComma);
    assert.equal(first.exitCode, 2, first.stderr);
    assert.doesNotMatch(first.stderr, /[A-Z]+_[A-Z_]+/, 'no parser error code');
    const column = noComma.indexOf('"kind"') + 1;
    assert.equal(first.stderr.trimEnd(), `error: ${missingComma}:3:${column}: not valid JSON: expected ',' or '}' after a property's value`);

    // A trailing comma is fine in YAML's flow style, not in JSON.
    const trailingComma = writeItems('trailing.json', ['[', good, good.replace('r-1', 'r-2'), ']', ''].join('\n'));
    const second = await lessonplan('inbox', 'add', trailingComma);
    assert.equal(second.exitCode, 2, second.stderr);
    assert.equal(
      second.stderr.trimEnd(),
      `error: ${trailingComma}:4:1: not valid JSON: a value is missing after the ',' on line 3 (a trailing comma?)`,
    );

    const cutShort = writeItems('cut.json', ['[', good].join('\n'));
    const third = await lessonplan('inbox', 'add', cutShort);
    assert.equal(third.exitCode, 2, third.stderr);
    assert.equal(
      third.stderr.trimEnd(),
      `error: ${cutShort}:2:${good.length + 1}: not valid JSON: the file ends before the array opened on line 1 is closed`,
    );
    assert.equal(await inInbox(), 0);
  });

  test("malformed YAML: the file, the line and column, and the yaml library's words, not its code", async () => {
    const file = writeItems(
      'bad.yaml',
      ['- subject: records', '  kind: record', '  externalId: r-1', '  payload: { title: One, fields: {}', '- subject: records', ''].join('\n'),
    );
    const result = await lessonplan('inbox', 'add', file);
    assert.equal(result.exitCode, 2, result.stderr);
    assert.doesNotMatch(result.stderr, /BAD_INDENT|MISSING_CHAR|[A-Z]+_[A-Z_]+/, 'no parser error code');
    assert.equal(
      result.stderr.trimEnd(),
      `error: ${file}:5:1: not valid YAML: Flow map in block collection must be sufficiently indented and end with a }`,
    );
  });

  test('a file that cannot be read is named with the reason', async () => {
    const missing = path.join(dir, 'no-such-file.json');
    const result = await lessonplan('inbox', 'add', missing);
    assert.equal(result.exitCode, 2, result.stderr);
    assert.equal(result.stderr.trimEnd(), `error: ${missing}: cannot be read: no such file (ENOENT)`);
  });
});
