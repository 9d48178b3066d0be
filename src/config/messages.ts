/**
 * Wording of config errors: what a field expects, and what the file holds instead.
 * Zod's own messages ("Invalid input: expected number, received string") name types
 * of JavaScript; these name what an operator wrote in YAML.
 */
import type { z } from 'zod';

/** How a value read from the file is shown in an error: the string "80x", the number 10, a list, ... */
export function shownValue(value: unknown): string {
  if (value === null) return 'an empty value';
  if (typeof value === 'string') {
    const text = JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    return `the string ${text}`;
  }
  if (typeof value === 'number' || typeof value === 'bigint') return `the number ${value}`;
  if (typeof value === 'boolean') return `the value ${value}`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/** Zod's name of an expected type (an invalid_type issue's `expected`), in the file's terms. */
function typeInWords(expected: string): string {
  switch (expected) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'int':
      return 'an integer';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    default:
      return expected;
  }
}

/** "is required" when the field is absent, else what was expected and what was found. */
export function wrongTypeMessage(what: string, input: unknown): string {
  return input === undefined ? `is required (expected ${what})` : `expected ${what}, found ${shownValue(input)}`;
}

/**
 * A schema's `error` option for a value of the wrong type, e.g.
 * `z.int({ error: expecting('a port number (integer)') })`. Other issues (a number out
 * of range, a string that does not match) keep their own messages.
 */
export function expecting(what: string): (issue: z.core.$ZodRawIssue) => string | undefined {
  return (issue) => (issue.code === 'invalid_type' || issue.code === 'invalid_union' ? wrongTypeMessage(what, issue.input) : undefined);
}

/** The error map of a whole parse: wrong types the schema does not word itself. */
export function describeWrongType(issue: z.core.$ZodRawIssue): string | undefined {
  return issue.code === 'invalid_type' ? wrongTypeMessage(typeInWords(issue.expected), issue.input) : undefined;
}

/** satellites[1].webServer.port */
export function fieldPath(keys: readonly PropertyKey[]): string {
  return keys.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
}

/**
 * Characters that break or extend a line of a generated config file (Apache, HAProxy,
 * PostgreSQL) when a value is written into it unquoted or single-quoted: whitespace
 * and control characters split or end the line, quotes and backslashes start or
 * escape a quoted word, "#" starts an HAProxy comment, "$" an Apache or HAProxy variable, and
 * "<" or ">" end Apache's <Directory> section header.
 */
const UNSAFE_IN_GENERATED_CONFIG = /[\p{White_Space}\p{Cc}"'`\\#$<>]/u;

/** The first character of `text` that must not go into a generated config file, in words; undefined if none. */
export function unsafeCharacter(text: string): string | undefined {
  const found = UNSAFE_IN_GENERATED_CONFIG.exec(text)?.[0];
  if (found === undefined) return undefined;
  const named: Record<string, string> = {
    ' ': 'a space',
    '\t': 'a tab',
    '\n': 'a newline',
    '\r': 'a carriage return',
    '"': 'a double quote',
    "'": 'a single quote',
    '`': 'a backquote',
  };
  if (named[found]) return named[found];
  if (/[\p{White_Space}\p{Cc}]/u.test(found)) return `the character U+${found.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  return `the character "${found}"`;
}
