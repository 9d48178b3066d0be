/**
 * A filed lesson: the folder of files the reference machine prepared, described by its
 * manifest (every file's path, size and sha256) and the test queries the reference ran
 * on it, with the answers it got. Satellites copy the folder, check it against the
 * manifest, and ask the same queries in their examination.
 */

/** Where a lesson keeps its own description, inside its folder; never served to users. */
export const LESSON_META_DIR = '.lesson';
export const MANIFEST_FILE = `${LESSON_META_DIR}/manifest.json`;

export interface ManifestEntry {
  /** Relative to the lesson folder, with "/" separators. */
  path: string;
  size: number;
  sha256: string;
}

export interface LessonManifest {
  lessonId: string;
  files: ManifestEntry[];
}

/** A request the reference answered on this lesson, and the sha256 of its answer. */
export interface TestQuery {
  name: string;
  /** URL path on the satellite's web server, e.g. /search/apple.json */
  path: string;
  expectedSha256: string;
}

/** What the rollout needs to know of a filed lesson: small enough for workflow history. */
export interface FiledLesson {
  lessonId: string;
  /** The filed lesson folder on the reference machine: a local path, or host:path over ssh. */
  source: string;
  /** sha256 of the manifest file, so a satellite can trust the manifest it copied. */
  manifestSha256: string;
  fileCount: number;
  totalBytes: number;
  testQueries: TestQuery[];
  /** For the browser test: a word to search on the lesson's search page, and a title it must find. */
  searchProbe?: SearchProbe;
}

export interface SearchProbe {
  term: string;
  title: string;
}
