/**
 * Reference machine worker (task queue `reference`): reference database, lesson files, indexes, tests, task monitor.
 */
import { workerMain } from './main';

await workerMain('reference');
