#!/usr/bin/env node
// The lessonplan command: runs the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/operator/cli.ts');
process.exitCode = await main(process.argv);
