/**
 * The model checksum: sha256 of the model's canonical form (classes and attributes
 * sorted by name, keys in their order, defaults filled in), so two files that say the
 * same thing in another order have one checksum.
 *
 * Names are sorted by UTF-16 code unit, never by a collation: the checksum names a model
 * on every machine (the deploying CLI, the master, each slave), and a locale-dependent
 * order gave one model a different checksum under cs_CZ than under en_US.
 */
import { createHash } from 'node:crypto';
import type { Model } from '../shared/model';

type Compare = (a: string, b: string) => number;

const byCodeUnit: Compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

function canonicalWith(model: Model, compare: Compare): Model {
  return {
    classes: [...model.classes]
      .sort((a, b) => compare(a.name, b.name))
      .map((c) => ({
        name: c.name,
        key: [...c.key],
        attributes: [...c.attributes].sort((a, b) => compare(a.name, b.name)).map((a) => ({ name: a.name, type: a.type, nullable: a.nullable })),
      })),
  };
}

const hash = (canonical: Model) => createHash('sha256').update(JSON.stringify(canonical)).digest('hex');

export function canonicalModel(model: Model): Model {
  return canonicalWith(model, byCodeUnit);
}

export function modelChecksum(model: Model): string {
  return hash(canonicalModel(model));
}

/**
 * Collations under which the first versions (which sorted with localeCompare in the
 * process's locale) may have recorded a checksum: this process's own, English (what Node
 * uses under C, POSIX and en_*), and the languages whose collation orders lowercase ASCII
 * names otherwise (Czech "ch" after "h", Danish "aa" after "z", ...). Checksums of those
 * versions stay in lp_models and in every commitblock, on the master and on slaves.
 */
const LEGACY_LOCALES = [
  undefined,
  'en',
  'cs',
  'da',
  'lt',
  'et',
  'hu',
  'cy',
  'hr',
  'sq',
  'es-u-co-trad',
  'lv',
  'br',
  'fil',
  'ha',
  'yo',
  'ig',
  'az',
  'uz',
] as const;

/** The checksums a locale-sorting version may have recorded for this model (distinct, today's excluded). */
export function legacyModelChecksums(model: Model): string[] {
  const today = modelChecksum(model);
  const found = new Set(LEGACY_LOCALES.map((locale) => hash(canonicalWith(model, new Intl.Collator(locale).compare))));
  found.delete(today);
  return [...found];
}

/**
 * Whether `checksum` names `model`: as computed today, or as a locale-sorting version
 * recorded it (the same content, the same canonical form but for the order of names).
 */
export function checksumNames(model: Model, checksum: string): 'current' | 'legacy' | false {
  if (modelChecksum(model) === checksum) return 'current';
  return legacyModelChecksums(model).includes(checksum) ? 'legacy' : false;
}
