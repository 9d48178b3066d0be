/**
 * The shape of object changes and saves as they arrive from outside (the master's API, a
 * save file given to the CLI), validated with zod so an error names the field.
 */
import { z } from 'zod';

const objectValue = z.union([z.string(), z.number(), z.boolean(), z.null(), z.record(z.string(), z.unknown()), z.array(z.unknown())]);

export const objectChangeSchema = z.discriminatedUnion('op', [
  z.strictObject({ class: z.string().min(1), op: z.literal('upsert'), values: z.record(z.string(), objectValue) }),
  z.strictObject({ class: z.string().min(1), op: z.literal('delete'), key: z.record(z.string(), objectValue) }),
]);

export const modelChecksumSchema = z.string().regex(/^[0-9a-f]{64}$/, 'expected a model checksum (64 hex digits)');
export const idempotencyKeySchema = z.string().min(1).max(200);
export const changesSchema = z.array(objectChangeSchema).min(1, 'a save needs at least one change');

/** A save as the master's API takes it. */
export const saveSchema = z.strictObject({ modelChecksum: modelChecksumSchema, idempotencyKey: idempotencyKeySchema, changes: changesSchema });

/** A save file for `lessonplan save`: the key and the model may be left to the command. */
export const saveFileSchema = z.strictObject({
  changes: changesSchema,
  idempotencyKey: idempotencyKeySchema.optional(),
  modelChecksum: modelChecksumSchema.optional(),
});

/** "changes.0.values: ..." lines for an error message. */
export const describeIssues = (error: z.ZodError) => error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
