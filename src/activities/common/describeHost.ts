/** Every host's worker answers `describeHost`: what runs here, and whether its database answers. */
import os from 'node:os';
import type { Database } from '../../db/database';

export interface HostDescription {
  role: string;
  name: string;
  hostname: string;
  pid: number;
  uptimeSeconds: number;
  database?: { label: string; reachable: boolean; serverVersion?: string; error?: string };
}

export function createDescribeHostActivity(role: string, name: string, db?: Database) {
  return {
    async describeHost(): Promise<HostDescription> {
      const description: HostDescription = { role, name, hostname: os.hostname(), pid: process.pid, uptimeSeconds: Math.round(process.uptime()) };
      if (db) {
        try {
          const { rows } = await db.query<{ server_version: string }>('SHOW server_version');
          description.database = { label: db.label, reachable: true, serverVersion: rows[0]!.server_version };
        } catch (err) {
          description.database = { label: db.label, reachable: false, error: (err as Error).message };
        }
      }
      return description;
    },
  };
}
