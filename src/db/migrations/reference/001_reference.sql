-- The reference database: the data the lessons are made of, and its full-text index.

-- Words as the lesson's search page looks them up: lower-cased as typed, no stemming
-- (the page cannot stem), English stop words left out (a "the" file would list every
-- item and change with every lesson).
CREATE TEXT SEARCH DICTIONARY lessonplan_words (TEMPLATE = simple, STOPWORDS = english);
CREATE TEXT SEARCH CONFIGURATION lessonplan_words (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION lessonplan_words
  ALTER MAPPING FOR asciiword, word, numword, asciihword, hword, numhword, hword_asciipart, hword_part, hword_numpart
  WITH lessonplan_words;

-- Every record and full-text document the inbox brought, one row per (subject, id).
-- `search` is the full-text index of the row, kept by PostgreSQL itself.
CREATE TABLE catalog (
  subject      text NOT NULL,
  external_id  text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('record', 'document')),
  title        text NOT NULL,
  body         text NOT NULL DEFAULT '',
  fields       jsonb NOT NULL DEFAULT '{}'::jsonb,
  search       tsvector GENERATED ALWAYS AS (
                 setweight(to_tsvector('lessonplan_words', title), 'A') || to_tsvector('lessonplan_words', body || ' ' || jsonb_path_query_array(fields, '$.*')::text)
               ) STORED,
  inbox_id     bigint NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subject, external_id)
);
CREATE INDEX catalog_search ON catalog USING gin (search);

-- What changed since the last filed lesson: the rows, and every search term whose
-- answer may differ (the terms of a row before and after its change). The next lesson's
-- files are rewritten from these; filing a lesson empties them in the same transaction.
CREATE TABLE pending_items (
  subject     text NOT NULL,
  external_id text NOT NULL,
  PRIMARY KEY (subject, external_id)
);
CREATE TABLE pending_terms (
  term text PRIMARY KEY
);

-- Filed lessons, newest last: what the satellites may copy.
CREATE TABLE lessons (
  lesson_id       text PRIMARY KEY,
  filed_at        timestamptz NOT NULL DEFAULT now(),
  manifest_sha256 text NOT NULL,
  stats           jsonb NOT NULL,
  backup_file     text
);
CREATE INDEX lessons_newest ON lessons (filed_at DESC);
