/**
 * The example clusters `lessonplan run --example <name>` runs: each a config of its own
 * under examples/, and how the main job makes new subject matter for it (an example has no
 * data pipeline of its own feeding it). A cluster of the user's own (`run --config`) has
 * its pipeline: the main job runs its check and goes on with whatever it finds.
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from './commandContext';

// The project's examples; LESSONPLAN_EXAMPLES_DIR runs copies of them from elsewhere (a test does, with its own ports).
const EXAMPLES_DIR = process.env.LESSONPLAN_EXAMPLES_DIR
  ? path.resolve(process.env.LESSONPLAN_EXAMPLES_DIR)
  : path.resolve(import.meta.dirname, '../../examples');

export interface Example {
  name: string;
  configFile: string;
  /** Puts new subject matter where the example's check looks; returns what it added, for people. */
  addNewMatter(dataDir: string): string;
  /** What the load asks through HAProxy while a lesson goes out (the lesson's version file first). */
  loadPaths: string[];
}

const library: Example = {
  name: 'library',
  configFile: path.join(EXAMPLES_DIR, 'library/cluster.yaml'),
  loadPaths: ['/version', '/index/books/1.json', '/search?q=Dune', '/version'],
  addNewMatter(dataDir) {
    // The feed lives in the data folder (cluster.yaml says so); the example's books seed it.
    const feed = path.join(dataDir, 'feed');
    const file = path.join(feed, 'books.jsonl');
    if (!existsSync(file)) {
      mkdirSync(feed, { recursive: true });
      copyFileSync(path.join(EXAMPLES_DIR, 'library/feed/books.jsonl'), file);
      return `the example's books into ${path.relative(process.cwd(), file)}`;
    }
    const ids = readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => (JSON.parse(line) as { id: number }).id);
    const next = Math.max(0, ...ids) + 1;
    const added = [0, 1, 2].map((i) => ({ id: next + i, title: `Acquisition ${next + i}`, author: 'The main job', year: 2026 }));
    appendFileSync(file, added.map((b) => JSON.stringify(b)).join('\n') + '\n');
    return `books ${next}-${next + 2} added to ${path.relative(process.cwd(), file)}`;
  },
};

export const EXAMPLES: Record<string, Example> = { library };

export function exampleNamed(name: string): Example {
  const example = Object.hasOwn(EXAMPLES, name) ? EXAMPLES[name] : undefined;
  if (!example) throw new UsageError(`no example named "${name}"; the examples are: ${Object.keys(EXAMPLES).join(', ')}`);
  return example;
}
