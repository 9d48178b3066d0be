import { startApache, stopApache } from './src/activities/satellite/apache';
import { mkdirSync, writeFileSync, symlinkSync, chmodSync } from 'node:fs';
const dir = '/tmp/sat-try'; mkdirSync(dir + '/lessons/a', { recursive: true }); chmodSync(dir, 0o755);
writeFileSync(dir + '/lessons/a/version', 'a\n'); try { symlinkSync('lessons/a', dir + '/current'); } catch {}
const sat: any = { name: 'boy-1', group: 'boys', host: 'localhost', dataDir: dir, webServer: { kind: 'apache', port: 18901, examPort: 18902 }, url: 'http://127.0.0.1:18901/' };
console.log(await startApache(sat, 'serve'));
console.log(await (await fetch('http://127.0.0.1:18901/version')).text());
console.log(await startApache(sat, 'serve'));
console.log(await stopApache(sat, 'serve'));
console.log(await stopApache(sat, 'serve'));
