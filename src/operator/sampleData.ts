/**
 * Sample subject matter for the main job and the tests: a library catalog (book
 * records) and a set of short articles (full-text documents), made by faker with a
 * fixed seed, so every machine gets the same data. Batch 0 is the first delivery (a
 * few thousand items); each later batch brings new articles and corrections to some
 * records, as inputting staff would.
 */
import { Faker, base, en } from '@faker-js/faker';
import type { Database } from '../db/database';
import { dropIntoInbox } from '../activities/reference/inbox';
import type { InboxItem } from '../shared/subjectMatter';

export const SAMPLE_SIZES = { records: 3_000, documents: 1_000, newDocumentsPerBatch: 40, changedRecordsPerBatch: 60 } as const;

const pad = (n: number) => String(n).padStart(6, '0');

function book(f: Faker, n: number, subject: string): InboxItem {
  return {
    subject,
    kind: 'record',
    externalId: `book-${pad(n)}`,
    payload: {
      title: f.book.title(),
      fields: {
        author: f.book.author(),
        genre: f.book.genre(),
        publisher: f.book.publisher(),
        year: f.number.int({ min: 1850, max: 2026 }),
        isbn: f.commerce.isbn(),
        shelf: `${f.string.alpha({ length: 1, casing: 'upper' })}${f.number.int({ min: 1, max: 99 })}`,
      },
    },
  };
}

function article(f: Faker, n: number, subject: string): InboxItem {
  const paragraphs = Array.from({ length: f.number.int({ min: 2, max: 5 }) }, () =>
    Array.from({ length: f.number.int({ min: 2, max: 4 }) }, () =>
      f.helpers.arrayElement([f.hacker.phrase(), f.commerce.productDescription(), `${f.company.catchPhrase()}.`]),
    ).join(' '),
  );
  return {
    subject,
    kind: 'document',
    externalId: `article-${pad(n)}`,
    payload: { title: `${f.company.catchPhrase()} at ${f.company.name()}`, body: paragraphs.join('\n\n') },
  };
}

/** The items of one batch; `subjects` are where records and documents go. */
export function sampleBatch(batch: number, subjects: { records: string; documents: string }): InboxItem[] {
  const f = new Faker({ locale: [en, base] });
  f.seed(20_261_122 + batch);
  if (batch === 0) {
    return [
      ...Array.from({ length: SAMPLE_SIZES.records }, (_, i) => book(f, i + 1, subjects.records)),
      ...Array.from({ length: SAMPLE_SIZES.documents }, (_, i) => article(f, i + 1, subjects.documents)),
    ];
  }
  const firstNew = SAMPLE_SIZES.documents + (batch - 1) * SAMPLE_SIZES.newDocumentsPerBatch + 1;
  const corrected = f.helpers.arrayElements(
    Array.from({ length: SAMPLE_SIZES.records }, (_, i) => i + 1),
    SAMPLE_SIZES.changedRecordsPerBatch,
  );
  return [
    ...Array.from({ length: SAMPLE_SIZES.newDocumentsPerBatch }, (_, i) => article(f, firstNew + i, subjects.documents)),
    ...corrected.map((n) => book(f, n, subjects.records)),
  ];
}

/** Which subjects of the config take the sample's records and documents. */
export function sampleSubjects(subjects: string[]): { records: string; documents: string } {
  const pick = (name: string, fallback: string) => (subjects.includes(name) ? name : fallback);
  return { records: pick('records', subjects[0]!), documents: pick('documents', subjects[1] ?? subjects[0]!) };
}

/** Drops the next sample batch into the inbox; returns its number and size. */
export async function dropSampleBatch(ops: Database, subjects: string[]): Promise<{ batch: number; items: number }> {
  const { rows } = await ops.query<{ n: string }>("SELECT count(*) AS n FROM inbox WHERE kind = 'document' AND external_id LIKE 'article-%'");
  const articles = Number(rows[0]!.n);
  const batch = articles === 0 ? 0 : 1 + Math.max(0, Math.floor((articles - SAMPLE_SIZES.documents) / SAMPLE_SIZES.newDocumentsPerBatch));
  const items = sampleBatch(batch, sampleSubjects(subjects));
  await dropIntoInbox(ops, items);
  return { batch, items: items.length };
}
