/**
 * `lessonplan slave verify`: does a slave hold exactly what the master holds? Both sides
 * are compared at one block: the check waits until the slave has applied every block the
 * master has and no save came in while it compared (a save between the two reads would
 * look like a difference), up to the given wait.
 */
import type { Database } from '../db/database';
import { compareReplicas, tableDigests, type TableDifference } from '../model/replicaDigest';
import { currentModel } from '../model/deploy';

export interface SlaveVerification {
  slave: string;
  /** True when every table has the master's rows; false on a difference, or when no quiet moment came within the wait. */
  same: boolean;
  /** The block both sides were compared at (the master's newest then), null when they never were. */
  atBlock: number | null;
  tables: number;
  rows: number;
  differences: TableDifference[];
  /** Why the comparison could not be made, when it could not. */
  notCompared?: string;
}

const newestBlock = async (db: Database) =>
  Number((await db.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM lp_commitblocks')).rows[0]?.seq ?? 0);

export async function verifySlave(master: Database, slave: Database, waitMs: number): Promise<Omit<SlaveVerification, 'slave'>> {
  const until = Date.now() + waitMs;
  let last = '';
  for (;;) {
    const before = await newestBlock(master);
    const slaveAt = await newestBlock(slave);
    const model = await currentModel(master);
    if (!model) return { same: true, atBlock: before, tables: 0, rows: 0, differences: [], notCompared: 'the master has no model deployed' };
    const slaveModel = await currentModel(slave);
    if (slaveAt === before && slaveModel?.checksum === model.checksum) {
      const differences = await compareReplicas(master, slave, model.model);
      if ((await newestBlock(master)) === before && (await newestBlock(slave)) === slaveAt) {
        const digests = await tableDigests(master, model.model);
        return {
          same: differences.length === 0,
          atBlock: before,
          tables: digests.length,
          rows: digests.reduce((n, d) => n + d.rows, 0),
          differences,
        };
      }
      last = `saves came in while comparing (the master went past block ${before})`;
    } else {
      last =
        slaveModel?.checksum !== model.checksum && slaveAt === before
          ? `the slave is at model ${slaveModel?.checksum.slice(0, 12) ?? 'none'}, the master at ${model.checksum.slice(0, 12)}`
          : `the slave is at block ${slaveAt}, the master at ${before}`;
    }
    if (Date.now() >= until) return { same: false, atBlock: null, tables: 0, rows: 0, differences: [], notCompared: last };
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function describeVerification(v: SlaveVerification & { slave: string }): string {
  if (v.notCompared && v.atBlock === null)
    return `${v.slave}: not compared: ${v.notCompared}; try again when it has caught up (or with a longer --wait)`;
  if (v.notCompared) return `${v.slave}: nothing to compare: ${v.notCompared}`;
  if (v.same) return `${v.slave}: same as the master at block ${v.atBlock} (${v.tables} tables, ${v.rows} rows)`;
  return [
    `${v.slave}: DIFFERS from the master at block ${v.atBlock}`,
    ...v.differences.map((d) => `  table ${d.table}: ${d.why}${d.firstKey ? `; first differing key ${JSON.stringify(d.firstKey)}` : ''}`),
  ].join('\n');
}
