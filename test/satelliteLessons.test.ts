/** A satellite's lesson copies: old ones are pruned, never the served, examined or just copied one. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { lessonsDir, pointLink, pruneLessonCopies } from '../src/activities/satellite/lessons';
import type { SatelliteConfig } from '../src/config/schema';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lessonplan-satellite-lessons-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const satellite = {
  name: 'boy-1',
  group: 'boys',
  host: 'localhost',
  dataDir: dir,
  url: 'http://127.0.0.1:1/',
  webServer: { kind: 'apache', port: 1, examPort: 2 },
} as SatelliteConfig;

test('keeps the newest copies and every linked one; removes the rest', () => {
  // lesson-1 is the oldest ... lesson-7 the newest.
  for (let i = 1; i <= 7; i++) {
    const copy = path.join(lessonsDir(satellite), `lesson-${i}`);
    mkdirSync(copy, { recursive: true });
    utimesSync(copy, 1_000 + i, 1_000 + i);
  }
  mkdirSync(path.join(lessonsDir(satellite), 'lesson-8.partial'));
  pointLink(satellite, 'current', 'lesson-2'); // an old lesson still served (a halted rollout)
  pointLink(satellite, 'exam', 'lesson-3');

  const removed = pruneLessonCopies(satellite, 'lesson-1', 3);
  assert.deepEqual(removed.sort(), ['lesson-4']);
  assert.deepEqual(readdirSync(lessonsDir(satellite)).sort(), [
    'lesson-1',
    'lesson-2',
    'lesson-3',
    'lesson-5',
    'lesson-6',
    'lesson-7',
    'lesson-8.partial',
  ]);
});
