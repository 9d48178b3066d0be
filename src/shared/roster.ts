/** The class list: which machine plays which part. Derived from the config, recorded in the machine registry. */
import type { ClusterConfig } from '../config/schema';

export type MachineRole = 'reference' | 'satellite' | 'master' | 'slave';

export interface RosterEntry {
  name: string;
  role: MachineRole;
  host: string;
  /** Satellites only: the group it takes lessons with. */
  group?: string;
}

export interface Roster {
  cluster: string;
  machines: RosterEntry[];
}

export interface EnrollmentResult {
  enrolled: string[];
  updated: string[];
  retired: string[];
  unchanged: string[];
}

export function rosterFromConfig(config: ClusterConfig): Roster {
  return {
    cluster: config.cluster,
    machines: [
      { name: config.reference.name, role: 'reference', host: config.reference.host },
      ...config.satellites.map((s): RosterEntry => ({ name: s.name, role: 'satellite', host: s.host, group: s.group })),
      ...(config.master ? [{ name: config.master.name, role: 'master' as const, host: config.master.api.host }] : []),
      ...config.slaves.map((s): RosterEntry => ({ name: s.name, role: 'slave', host: 'localhost' })),
    ],
  };
}
