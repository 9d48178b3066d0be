/**
 * Subject matter: what inputting staff (or any program) drop into the inbox of the
 * operational database, per subject. A record carries a title and fields; a document
 * a title and its full text. `externalId` names the item within its subject: a later
 * item with the same id replaces the earlier one.
 */
export type ItemKind = 'record' | 'document';

export interface RecordPayload {
  title: string;
  fields: Record<string, string | number | boolean | null>;
}

export interface DocumentPayload {
  title: string;
  body: string;
}

export interface InboxItem {
  subject: string;
  kind: ItemKind;
  externalId: string;
  payload: RecordPayload | DocumentPayload;
}

/** An id that is also safe as a file name in the lesson (items/<subject>/<id>.json). */
export const EXTERNAL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A row of the lesson as satellites serve it: items/<subject>/<externalId>.json */
export interface ItemAnswer {
  subject: string;
  id: string;
  kind: ItemKind;
  title: string;
  body?: string;
  fields?: RecordPayload['fields'];
}

/** One hit in a search answer: search/<term>.json */
export interface SearchHit {
  subject: string;
  id: string;
  title: string;
}

export interface SearchAnswer {
  term: string;
  hits: SearchHit[];
}

/**
 * The words of a text as the search index knows them: lower case, letters and digits.
 * The lesson's search page splits what users type the same way.
 */
export const WORD_PATTERN = /^[\p{L}\p{N}]{1,64}$/u;
