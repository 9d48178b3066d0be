/**
 * Slave worker, one per slave (task queue `slave-<name>`): the slave database.
 * Usage: tsx src/workers/slave.ts --name slave-1 [--config file]
 */
import { workerMain } from './main';

await workerMain('slave');
