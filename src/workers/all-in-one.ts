/**
 * All-in-one worker for the embedded default: every role of the config in one process
 * (orchestration, reference, each satellite, master, each slave), each on its own task queue.
 */
import { workerMain } from './main';

await workerMain('all-in-one');
