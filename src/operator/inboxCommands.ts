/**
 * lessonplan enroll and lessonplan inbox: what a cluster needs before its first lesson.
 * The class list goes into the registry through the enrollClass workflow (the reference
 * worker writes it); subject matter goes straight into the operational database's
 * inbox, as the inputting staff's own tools would put it there.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { validateItem } from '../activities/reference/catalog';
import { dropIntoInbox, unstorableStrings } from '../activities/reference/inbox';
import { fieldPath } from '../config/load';
import type { ClusterConfig } from '../config/schema';
import { openDatabase, type Database } from '../db/database';
import { migrateOperational } from '../db/migrate';
import type { InboxItem } from '../shared/subjectMatter';
import { databaseUrl } from '../stack/endpoints';
import { connectClient } from './client';
import { UsageError, type CommandContext } from './commandContext';
import { readDataFile } from './dataFile';
import { enrollClass } from './enroll';
import { dropSampleBatch } from './sampleData';

const itemSchema = z.strictObject({
  subject: z.string().min(1),
  kind: z.enum(['record', 'document']),
  externalId: z.string().min(1),
  payload: z.unknown(),
});
const itemsSchema = z.array(itemSchema).min(1, 'expected at least one item');

export function registerInboxCommands(program: Command, ctx: CommandContext): void {
  program
    .command('enroll')
    .description("record the config's class list (the reference, each satellite and its group) in the registry; once, and after changing them")
    .action(async () => {
      const config = ctx.config();
      const operator = await connectClient(config);
      try {
        ctx.say('waiting for the reference worker to record the class list...');
        const { result } = await enrollClass(operator.client, config);
        const counts = `${result.enrolled.length} enrolled, ${result.updated.length} updated, ${result.retired.length} retired, ${result.unchanged.length} unchanged`;
        ctx.print(`class list of ${config.cluster} recorded: ${counts}`, result);
      } finally {
        await operator.close();
      }
    });

  const inbox = program.command('inbox').description('subject matter waiting for the next lesson');
  inbox
    .command('status')
    .description('items per subject: waiting, taken by a lesson, refused (with the newest reasons)')
    .action(async () => {
      await withInbox(ctx.config(), async (ops, config) => {
        const { rows } = await ops.query<{ subject: string; waiting: string; taken: string; refused: string }>(
          `SELECT subject,
                  count(*) FILTER (WHERE taken_at IS NULL AND failed_at IS NULL) AS waiting,
                  count(*) FILTER (WHERE taken_at IS NOT NULL AND failed_at IS NULL) AS taken,
                  count(*) FILTER (WHERE failed_at IS NOT NULL) AS refused
             FROM inbox GROUP BY subject ORDER BY subject`,
        );
        const bySubject = new Map(rows.map((r) => [r.subject, r]));
        const subjects = [...new Set([...config.reference.subjects, ...bySubject.keys()])];
        const status = subjects.map((subject) => {
          const r = bySubject.get(subject);
          return { subject, waiting: Number(r?.waiting ?? 0), taken: Number(r?.taken ?? 0), refused: Number(r?.refused ?? 0) };
        });
        const { rows: reasons } = await ops.query<{ subject: string; external_id: string; failure: string }>(
          'SELECT subject, external_id, failure FROM inbox WHERE failed_at IS NOT NULL ORDER BY failed_at DESC, id DESC LIMIT 5',
        );
        const lines = status.map(
          (s) =>
            `${s.subject.padEnd(12)} ${String(s.waiting).padStart(7)} waiting ${String(s.taken).padStart(7)} taken ${String(s.refused).padStart(5)} refused`,
        );
        if (reasons.length > 0) lines.push('newest refusals:', ...reasons.map((r) => `  ${r.subject}/${r.external_id}: ${r.failure}`));
        ctx.print(lines.join('\n'), { subjects: status, newestRefusals: reasons });
      });
    });
  inbox
    .command('sample')
    .description('put the next batch of the built-in sample data in the inbox (the first: 3,000 records and 1,000 articles; then 100 changes)')
    .action(async () => {
      await withInbox(ctx.config(), async (ops, config) => {
        const dropped = await dropSampleBatch(ops, config.reference.subjects);
        ctx.print(`sample batch ${dropped.batch}: ${dropped.items} items in the inbox`, dropped);
      });
    });
  inbox
    .command('add')
    .description('put subject matter from a JSON or YAML file in the inbox: a list of { subject, kind, externalId, payload }; all or nothing')
    .argument('<file>', 'the items')
    .action(async (file: string) => {
      const config = ctx.config();
      const items = readItemsFile(file, config);
      await withInbox(config, async (ops) => {
        await dropIntoInbox(ops, items);
        ctx.print(`${items.length} items in the inbox from ${file}`, { items: items.length });
      });
    });
}

async function withInbox(config: ClusterConfig, work: (ops: Database, config: ClusterConfig) => Promise<void>): Promise<void> {
  const ops = openDatabase(databaseUrl(config, config.operationalDatabase), { applicationName: 'lessonplan-cli' });
  try {
    // An inbox nobody has used yet may not have its tables: make them (idempotent).
    await migrateOperational(ops);
    await work(ops, config);
  } finally {
    await ops.close();
  }
}

/** Reads and checks every item the way the teacher will, so that a bad file puts nothing in the inbox. */
function readItemsFile(file: string, config: ClusterConfig): InboxItem[] {
  const parsed = itemsSchema.safeParse(readDataFile(file));
  if (!parsed.success) {
    throw new UsageError(parsed.error.issues.map((i) => `${file}: ${fieldPath(i.path) || '(top)'}: ${i.message}`).join('\n'));
  }
  const problems = parsed.data.flatMap((item, i) => {
    if (!config.reference.subjects.includes(item.subject)) {
      return [`${file}: [${i}].subject: "${item.subject}" is not one of the config's subjects (${config.reference.subjects.join(', ')})`];
    }
    const named = `${file}: [${i}] (${item.externalId.replaceAll('\u0000', '\\u0000')})`;
    // PostgreSQL refuses a NUL character in text and jsonb: say which item and field, before anything is written.
    const unstorable = unstorableStrings(item).map((why) => `${named}: ${why}`);
    const checked = validateItem(item.subject, { inboxId: 0, kind: item.kind, externalId: item.externalId, payload: item.payload });
    return [...unstorable, ...('reason' in checked ? [`${named}: ${checked.reason}`] : [])];
  });
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  return parsed.data as InboxItem[];
}
