/** The machine registry in the operational database: who is the reference, who are the satellites. */
import { ApplicationFailure } from '@temporalio/common';
import type { Database } from '../../db/database';
import type { EnrollmentResult, Roster } from '../../shared/roster';

export function createRegistryActivities(ops: Database) {
  return {
    /**
     * Records the roster in the machine registry in one transaction: new machines are
     * enrolled, changed ones updated, machines no longer listed retired. Running it
     * twice with the same roster changes nothing the second time.
     */
    async registerMachines(roster: Roster): Promise<EnrollmentResult> {
      const references = roster.machines.filter((m) => m.role === 'reference');
      if (references.length !== 1) {
        throw ApplicationFailure.nonRetryable(
          `the roster of cluster ${roster.cluster} names ${references.length} reference machines; exactly one is required`,
          'InvalidRoster',
        );
      }
      return ops.transaction(async (tx) => {
        const result: EnrollmentResult = { enrolled: [], updated: [], retired: [], unchanged: [] };
        const { rows } = await tx.query<{ name: string; role: string; host: string; group_name: string | null; retired_at: Date | null }>(
          'SELECT name, role, host, group_name, retired_at FROM machines FOR UPDATE',
        );
        const current = new Map(rows.map((r) => [r.name, r]));
        // Retire first, so that a reference machine handing over to another never meets the one-reference rule twice.
        const listed = new Set(roster.machines.map((m) => m.name));
        for (const row of rows) {
          if (!listed.has(row.name) && row.retired_at === null) {
            await tx.query('UPDATE machines SET retired_at = now(), updated_at = now() WHERE name = $1', [row.name]);
            result.retired.push(row.name);
          }
        }
        for (const m of roster.machines) {
          const row = current.get(m.name);
          const group = m.group ?? null;
          if (!row) {
            await tx.query('INSERT INTO machines (name, role, host, group_name) VALUES ($1, $2, $3, $4)', [m.name, m.role, m.host, group]);
            result.enrolled.push(m.name);
          } else if (row.role !== m.role || row.host !== m.host || row.group_name !== group || row.retired_at !== null) {
            await tx.query('UPDATE machines SET role = $2, host = $3, group_name = $4, retired_at = NULL, updated_at = now() WHERE name = $1', [
              m.name,
              m.role,
              m.host,
              group,
            ]);
            result.updated.push(m.name);
          } else {
            result.unchanged.push(m.name);
          }
        }
        return result;
      });
    },
  };
}
