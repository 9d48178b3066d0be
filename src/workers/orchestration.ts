/**
 * Orchestration worker (task queue `lessonplan`): runs workflow code only.
 */
import { workerMain } from './main';

await workerMain('orchestration');
