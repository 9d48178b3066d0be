#!/usr/bin/env node
// `npm test`: starts one embedded stack for the whole suite, runs every test file with
// Node's own test runner, and stops the stack again, whatever happened.
import { register } from 'tsx/esm/api';

register();
const { runTests } = await import('../scripts/run-tests.ts');
process.exitCode = await runTests(process.argv.slice(2));
