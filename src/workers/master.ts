/**
 * Master worker (task queue `master`): the master database.
 */
import { workerMain } from './main';

await workerMain('master');
