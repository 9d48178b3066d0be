/**
 * The model checksum: sha256 of the model's canonical form (classes and attributes
 * sorted by name, keys in their order, defaults filled in), so two files that say the
 * same thing in another order have one checksum.
 */
import { createHash } from 'node:crypto';
import type { Model } from '../shared/model';

export function canonicalModel(model: Model): Model {
  return {
    classes: [...model.classes]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((c) => ({
        name: c.name,
        key: [...c.key],
        attributes: [...c.attributes].sort((a, b) => a.name.localeCompare(b.name)).map((a) => ({ name: a.name, type: a.type, nullable: a.nullable })),
      })),
  };
}

export function modelChecksum(model: Model): string {
  return createHash('sha256')
    .update(JSON.stringify(canonicalModel(model)))
    .digest('hex');
}
