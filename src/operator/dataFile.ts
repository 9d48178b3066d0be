/**
 * A JSON or YAML file an operator hands to a command, read with errors one can act on:
 * the file, the line and column, and what is wrong in words (never a parser's error
 * code). A file named *.json is read as JSON, strictly (no trailing commas, no
 * comments); any other as YAML.
 */
import { readFileSync } from 'node:fs';
import { parse, YAMLParseError } from 'yaml';
import { UsageError } from './commandContext';

const READ_FAILURES: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a folder',
};

/** The file's content as a value; a UsageError (exit 2) naming the file and where it goes wrong otherwise. */
export function readDataFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code && READ_FAILURES[code] ? `${READ_FAILURES[code]} (${code})` : (err as Error).message;
    throw new UsageError(`${file}: cannot be read: ${why}`);
  }
  // Editors on some systems start a UTF-8 file with a byte order mark; neither format wants it.
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  return /\.json$/i.test(file) ? parseJson(file, text) : parseYaml(file, text);
}

function parseYaml(file: string, text: string): unknown {
  try {
    return parse(text);
  } catch (err) {
    const firstLine = (err as Error).message.split('\n')[0]!;
    if (!(err instanceof YAMLParseError)) throw new UsageError(`${file}: not valid YAML: ${firstLine}`);
    // The library's message ends with the position it also gives as linePos; say it once, up front.
    const words = firstLine.replace(/ at line \d+, column \d+:?$/, '');
    const at = err.linePos?.[0];
    throw new UsageError(`${file}${at ? `:${at.line}:${at.col}` : ''}: not valid YAML: ${words}`);
  }
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // Node's own message gives no position for some mistakes (a trailing comma among them): find it here.
    const problem = findJsonProblem(text);
    if (problem) throw new UsageError(`${file}:${problem.line}:${problem.column}: not valid JSON: ${problem.problem}`);
    throw new UsageError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
}

export interface JsonProblem {
  /** 1-based, as editors count. */
  line: number;
  column: number;
  problem: string;
}

class Stop extends Error {
  constructor(
    readonly offset: number,
    readonly problem: string,
  ) {
    super(problem);
  }
}

/**
 * Where JSON text first breaks the JSON grammar, and what is wrong there; undefined when
 * it does not (or is nested too deeply to walk). Only run on text JSON.parse refused.
 */
export function findJsonProblem(text: string): JsonProblem | undefined {
  const n = text.length;
  let i = 0;
  const lineOf = (offset: number) => text.slice(0, offset).split('\n').length;
  const columnOf = (offset: number) => (offset === 0 ? 1 : offset - text.lastIndexOf('\n', offset - 1));
  const stop = (problem: string, at = i): never => {
    throw new Stop(at, problem);
  };
  /** The arrays and objects open at i, innermost last: what the end of the file cuts short. */
  const open: { kind: 'array' | 'object'; at: number }[] = [];
  const endOfFile = (): never => {
    const inner = open.at(-1);
    return stop(
      inner ? `the file ends before the ${inner.kind} opened on line ${lineOf(inner.at)} is closed` : 'the file ends where a value was expected',
    );
  };
  const skipSpace = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };

  const string = () => {
    const start = i++;
    for (;;) {
      if (i >= n) stop(`the file ends inside the string that starts on line ${lineOf(start)}, column ${columnOf(start)}`);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c === 0x0a) stop('a line break inside a string (a string ends on the line it starts; write \\n for a line break)');
      if (c < 0x20)
        stop(`a control character (U+${c.toString(16).toUpperCase().padStart(4, '0')}) inside a string: write it as an escape such as \\u0009`);
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else stop(`a backslash that starts no escape JSON knows (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)`);
        continue;
      }
      i++;
    }
  };

  const number = () => {
    const start = i;
    const shape = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    shape.lastIndex = i;
    const match = shape.exec(text);
    if (!match) stop(`a '-' with no digits after it`);
    i += match![0].length;
    if (/^-?0$/.test(match![0]) && /[0-9]/.test(text[i] ?? '')) stop('a number with a leading zero', start);
    if (text[i] === '.') stop('a decimal point with no digits after it');
    if (text[i] === 'e' || text[i] === 'E') stop('an exponent with no digits');
  };

  const array = () => {
    open.push({ kind: 'array', at: i++ });
    skipSpace();
    if (text[i] === ']') {
      i++;
      open.pop();
      return;
    }
    for (;;) {
      value();
      skipSpace();
      if (i >= n) endOfFile();
      if (text[i] === ',') {
        const comma = i++;
        skipSpace();
        if (text[i] === ']') stop(`a value is missing after the ',' on line ${lineOf(comma)} (a trailing comma?)`);
        continue;
      }
      if (text[i] === ']') {
        i++;
        open.pop();
        return;
      }
      stop("expected ',' or ']' after an element of the array");
    }
  };

  const object = () => {
    open.push({ kind: 'object', at: i++ });
    skipSpace();
    if (text[i] === '}') {
      i++;
      open.pop();
      return;
    }
    for (;;) {
      skipSpace();
      if (i >= n) endOfFile();
      if (text[i] !== '"') stop('expected a property name in double quotes');
      string();
      skipSpace();
      if (i >= n) endOfFile();
      if (text[i] !== ':') stop("expected ':' after the property name");
      i++;
      value();
      skipSpace();
      if (i >= n) endOfFile();
      if (text[i] === ',') {
        const comma = i++;
        skipSpace();
        if (text[i] === '}') stop(`a property is missing after the ',' on line ${lineOf(comma)} (a trailing comma?)`);
        continue;
      }
      if (text[i] === '}') {
        i++;
        open.pop();
        return;
      }
      stop("expected ',' or '}' after a property's value");
    }
  };

  function value(): void {
    skipSpace();
    if (i >= n) endOfFile();
    const c = text[i]!;
    if (c === '{') return object();
    if (c === '[') return array();
    if (c === '"') return string();
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    if (c === "'") stop('a string in single quotes: JSON takes double quotes');
    stop('expected a value: a string in double quotes, a number, an object, an array, true, false or null');
  }

  try {
    skipSpace();
    if (i >= n) stop('the file is empty');
    value();
    skipSpace();
    if (i < n) stop('more text after the end of the JSON value');
    return undefined;
  } catch (err) {
    if (!(err instanceof Stop)) return undefined; // nested deeper than the stack: Node's message has to do
    return { line: lineOf(err.offset), column: columnOf(err.offset), problem: err.problem };
  }
}
