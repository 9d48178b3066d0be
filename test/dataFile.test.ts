/** Where a JSON text first goes wrong, in words and as line:column (pure; the command itself is tested in inboxAdd.test.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findJsonProblem } from '../src/operator/dataFile';

const cases: [text: string, at: string, problem: RegExp][] = [
  ['[1,]', '1:4', /a value is missing after the ',' on line 1 \(a trailing comma\?\)/],
  ['{"a": 1,\n}', '2:1', /a property is missing after the ',' on line 1/],
  ['{"a": tru}', '1:7', /expected a value/],
  ['[01]', '1:2', /leading zero/],
  ['[1.]', '1:3', /decimal point/],
  ['[-]', '1:2', /'-' with no digits/],
  ['["a\nb"]', '1:4', /a line break inside a string/],
  ['["\\q"]', '1:3', /a backslash that starts no escape/],
  ["['a']", '1:2', /single quotes/],
  ['{a: 1}', '1:2', /property name in double quotes/],
  ['{"a" 1}', '1:6', /expected ':'/],
  ['[{"a": [1, 2}]', '1:13', /expected ',' or '\]'/],
  ['[1] [2]', '1:5', /more text after the end/],
  ['', '1:1', /the file is empty/],
  ['[\n  {"a": 1},', '2:12', /the file ends before the array opened on line 1 is closed/],
  ['"abc', '1:5', /the file ends inside the string that starts on line 1, column 1/],
];

for (const [text, at, problem] of cases) {
  test(`${JSON.stringify(text)}: ${at}`, () => {
    const found = findJsonProblem(text);
    assert.ok(found, 'a problem is found');
    assert.equal(`${found.line}:${found.column}`, at);
    assert.match(found.problem, problem);
    assert.throws(() => JSON.parse(text), 'JSON.parse refuses it too');
  });
}

test('valid JSON has no problem', () => {
  for (const text of ['[]', '{}', ' [1, -0.5e+3, "x\\u0041\\n", true, false, null, {"a": [{}]}] ', '"just a string"']) {
    assert.equal(findJsonProblem(text), undefined, text);
  }
});
