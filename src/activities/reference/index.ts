/** Activities of the reference machine (task queue `reference`), built from their dependencies. */
import type { Database } from '../../db/database';
import { createPreparationActivities, type PreparationActivities, type PreparationDependencies } from './preparation';
import { createRegistryActivities } from './registry';
import { createTaskMonitorActivities, type ReportAlerting } from './taskMonitor';

export interface ReferenceDependencies {
  /** The operational database: registry, flags, inbox, task monitor. */
  operational: Database;
  /** What preparing lessons needs besides; without it the worker only keeps the registry and reports. */
  preparation?: Omit<PreparationDependencies, 'operational'>;
  /** Where halts and aborts are reported besides the task monitor (the config's `alerts`). */
  alerting?: ReportAlerting;
}

export function createReferenceActivities(deps: ReferenceDependencies) {
  return {
    ...createRegistryActivities(deps.operational),
    ...createTaskMonitorActivities(deps.operational, deps.alerting),
    ...(deps.preparation ? createPreparationActivities({ ...deps.preparation, operational: deps.operational }) : {}),
  };
}

export type ReferenceActivities = ReturnType<typeof createRegistryActivities> &
  ReturnType<typeof createTaskMonitorActivities> &
  PreparationActivities;
