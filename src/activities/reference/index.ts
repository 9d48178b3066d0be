/** Activities of the reference machine (task queue `reference`), built from their dependencies. */
import type { Database } from '../../db/database';
import { createRegistryActivities } from './registry';
import { createTaskMonitorActivities } from './taskMonitor';

export interface ReferenceDependencies {
  /** The operational database: registry, flags, inbox, task monitor. */
  operational: Database;
}

export function createReferenceActivities(deps: ReferenceDependencies) {
  return {
    ...createRegistryActivities(deps.operational),
    ...createTaskMonitorActivities(deps.operational),
  };
}

export type ReferenceActivities = ReturnType<typeof createReferenceActivities>;
