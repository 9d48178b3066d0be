/** Reading a model (JSON or YAML) and validating it: names, types, keys that exist. */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { ATTRIBUTE_TYPES, type Model } from '../shared/model';

/** Table and column names: plain SQL identifiers; `lp_` is lessonplan's own (commitblocks, models). */
const identifier = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,62}$/, 'expected a name of lowercase letters, digits and "_", starting with a letter')
  .refine((n) => !n.startsWith('lp_'), { message: 'names starting with "lp_" are reserved for lessonplan' });

const attribute = z.strictObject({ name: identifier, type: z.enum(ATTRIBUTE_TYPES), nullable: z.boolean().default(true) });

const modelClass = z
  .strictObject({ name: identifier, key: z.array(identifier).min(1), attributes: z.array(attribute).min(1) })
  .superRefine((c, ctx) => {
    const names = c.attributes.map((a) => a.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['attributes', i, 'name'], message: `duplicate attribute "${n}"` });
    });
    c.key.forEach((k, i) => {
      const a = c.attributes.find((x) => x.name === k);
      if (!a) ctx.addIssue({ code: 'custom', path: ['key', i], message: `key attribute "${k}" is not an attribute of class ${c.name}` });
      else if (a.nullable) ctx.addIssue({ code: 'custom', path: ['key', i], message: `key attribute "${k}" must have nullable: false` });
    });
  });

export const modelSchema = z.strictObject({ classes: z.array(modelClass).min(1) }).superRefine((m, ctx) => {
  const names = m.classes.map((c) => c.name);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['classes', i, 'name'], message: `duplicate class "${n}"` });
  });
});

export class ModelError extends Error {
  override readonly name = 'ModelError';
}

/** Validates a parsed model; errors name the field, e.g. `classes[0].key[0]: ...`. */
export function parseModel(value: unknown, shown = 'model'): Model {
  const result = modelSchema.safeParse(value);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => {
    const where = i.path.map((k, n) => (typeof k === 'number' ? `[${k}]` : n === 0 ? String(k) : `.${String(k)}`)).join('');
    return `${shown}: ${where || '(top)'}: ${i.message}`;
  });
  throw new ModelError(lines.join('\n'));
}

export function readModelFile(file: string): Model {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ModelError(`${file}: cannot be read: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    throw new ModelError(`${file}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseModel(value, file);
}
