/**
 * What a lesson folder holds, as the satellites serve it through Apache:
 *
 *   version                       the lesson id, one line
 *   index.html                    the search page
 *   items/<subject>/<id>.json     one record or document
 *   search/<term>.json            every item whose text holds the word
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
export const termFile = (term: string) => `search/${term}.json`;

/** The URL path of a lesson file (terms may hold any letter, so they are percent-encoded). */
export const urlPath = (file: string) => `/${file.split('/').map(encodeURIComponent).join('/')}`;

export const versionBody = (lessonId: string) => `${lessonId}\n`;
export const itemBody = (answer: ItemAnswer) => `${JSON.stringify(answer)}\n`;
export const searchBody = (answer: SearchAnswer) => `${JSON.stringify(answer)}\n`;
