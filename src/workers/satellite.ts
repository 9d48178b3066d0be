/**
 * Satellite worker, one per satellite (task queue `satellite-<name>`): its web server and its copy of the data.
 * Usage: tsx src/workers/satellite.ts --name boy-1 [--config file]
 */
import { workerMain } from './main';

await workerMain('satellite');
