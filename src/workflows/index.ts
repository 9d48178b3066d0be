/** Every workflow the orchestration worker runs (the bundle's entry point). */
export { enrollClass } from './enrollClass';
export { holdLesson } from './holdLesson';
export { prepareLesson } from './prepareLesson';
export { rollBackLesson } from './rollBackLesson';
export { slaveSync } from './slaveSync';
export { ringSchoolBell } from './ringSchoolBell';
