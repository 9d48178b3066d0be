/**
 * What a lesson folder holds, as the satellites serve it through Apache:
 *
 *   version                       the lesson id, one line
 *   index.html                    the search page
 *   items/<subject>/<id>.json     one record or document
 *   search/<term>.json            every item whose text holds the word (see termFile)
 *   .lesson/                      manifest, stats, test answers (never served)
 *
 * One answer per file keeps a lesson's change small: a new document rewrites its own
 * file and the files of its words; everything else stays hard-linked to the previous
 * lesson, so rsync moves only what changed.
 */
import type { ItemAnswer, SearchAnswer } from '../shared/subjectMatter';

export const VERSION_FILE = 'version';
export const SEARCH_PAGE = 'index.html';

export const itemFile = (subject: string, id: string) => `items/${subject}/${id}.json`;
/** The longest file name ext4, xfs and btrfs take, in bytes. */
export const MAX_FILE_NAME_BYTES = 255;
/** Where a term too long for one file name is cut into a folder and a file. */
export const TERM_SPLIT_AT = 32;

/**
 * The file of a search term: `search/<term>.json`. A term of up to 64 letters can
 * still be longer than a file name may be (64 four-byte letters: 261 bytes with
 * ".json"); such a term is cut after its 32nd letter into a folder and a file,
 * `search/<first 32 letters>/<the rest>.json`, each name at most 133 bytes. Names
 * that fit are never cut, so the files of existing lessons (hard-linked into the next
 * one) keep their place. The search page (searchPage.ts) names files the same way.
 */
export function termFile(term: string): string {
  if (new TextEncoder().encode(`${term}.json`).length <= MAX_FILE_NAME_BYTES) return `search/${term}.json`;
  const letters = [...term];
  return `search/${letters.slice(0, TERM_SPLIT_AT).join('')}/${letters.slice(TERM_SPLIT_AT).join('')}.json`;
}

/** The URL path of a lesson file (terms may hold any letter, so they are percent-encoded). */
export const urlPath = (file: string) => `/${file.split('/').map(encodeURIComponent).join('/')}`;

export const versionBody = (lessonId: string) => `${lessonId}\n`;
export const itemBody = (answer: ItemAnswer) => `${JSON.stringify(answer)}\n`;
export const searchBody = (answer: SearchAnswer) => `${JSON.stringify(answer)}\n`;
