/**
 * The model checksum names a model across machines (the deploying CLI, the master, every
 * slave), so it must not depend on the locale a process runs in. Node's ICU takes its
 * default collation from LC_ALL/LANG even when the C library has no such locale
 * installed, so these child processes need nothing installed by hand.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { canonicalModel, checksumNames, legacyModelChecksums, modelChecksum } from '../src/model/checksum';
import { parseModel } from '../src/model/modelFile';
import type { Model } from '../src/shared/model';

const ROOT = path.resolve(import.meta.dirname, '..');

/** Names whose order differs by locale: Czech sorts "ch" after "h", ICU puts "_" before digits. */
const MODEL = {
  classes: [
    { name: 'hrad', key: ['id'], attributes: [{ name: 'id', type: 'integer', nullable: false }] },
    {
      name: 'chata',
      key: ['id'],
      attributes: [
        { name: 'id', type: 'integer', nullable: false },
        { name: 'item_a', type: 'text' },
        { name: 'item1', type: 'text' },
        { name: 'cena', type: 'numeric' },
        { name: 'hodnota', type: 'text' },
        { name: 'chyba', type: 'text' },
      ],
    },
    { name: 'item_b', key: ['id'], attributes: [{ name: 'id', type: 'integer', nullable: false }] },
    { name: 'item2', key: ['id'], attributes: [{ name: 'id', type: 'integer', nullable: false }] },
  ],
};

/** The checksum and the default collation locale as a fresh process under `locale` sees them. */
async function checksumUnder(locale: string): Promise<{ collation: string; checksum: string }> {
  const script = [
    "import { modelChecksum } from './src/model/checksum.ts';",
    "import { parseModel } from './src/model/modelFile.ts';",
    'const model = parseModel(JSON.parse(process.env.MODEL_JSON));',
    'console.log(JSON.stringify({ collation: new Intl.Collator().resolvedOptions().locale, checksum: modelChecksum(model) }));',
  ].join('\n');
  const { stdout } = await execa('node', ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { LC_ALL: locale, LANG: locale, MODEL_JSON: JSON.stringify(MODEL) },
  });
  return JSON.parse(stdout);
}

describe('the model checksum and the locale', () => {
  test('is the same under cs_CZ.UTF-8, en_US.UTF-8 and C.UTF-8', async () => {
    const [cs, en, c] = await Promise.all([checksumUnder('cs_CZ.UTF-8'), checksumUnder('en_US.UTF-8'), checksumUnder('C.UTF-8')]);
    // Without this the test could pass only because every child collated alike.
    assert.match(cs.collation, /^cs/, 'the Czech child collates in Czech');
    assert.match(en.collation, /^en/);
    assert.equal(cs.checksum, en.checksum, 'Czech and US English agree');
    assert.equal(c.checksum, en.checksum, 'C.UTF-8 and US English agree');
    assert.equal(en.checksum, modelChecksum(parseModel(MODEL)), 'and this process agrees with them');
  });

  test('sorts classes and attributes by UTF-16 code unit', () => {
    const canonical: Model = canonicalModel(parseModel(MODEL));
    assert.deepEqual(
      canonical.classes.map((c) => c.name),
      ['chata', 'hrad', 'item2', 'item_b'],
    );
    assert.deepEqual(
      canonical.classes[0]!.attributes.map((a) => a.name),
      ['cena', 'chyba', 'hodnota', 'id', 'item1', 'item_a'],
    );
  });

  test('a checksum an earlier, locale-sorting version recorded still names its model', () => {
    const model = parseModel(MODEL);
    const cs = new Intl.Collator('cs').compare;
    const czech: Model = {
      classes: [...model.classes]
        .sort((a, b) => cs(a.name, b.name))
        .map((c) => ({ ...c, attributes: [...c.attributes].sort((a, b) => cs(a.name, b.name)) })),
    };
    const recorded = createHash('sha256').update(JSON.stringify(czech)).digest('hex');
    assert.ok(legacyModelChecksums(model).includes(recorded));
    assert.equal(checksumNames(model, recorded), 'legacy');
    assert.equal(checksumNames(model, modelChecksum(model)), 'current');
    assert.equal(checksumNames(model, 'a'.repeat(64)), false, 'any other checksum names another model');
  });
});
