/** Processes of this machine, as the tests look at them: what a stop or a failed start would leave behind. */
import { readdirSync, readFileSync } from 'node:fs';

/** Processes whose command line mentions the folder (other than this one): what would be orphans after a stop. */
export function processesUsing(dir: string): string[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .flatMap((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        return cmdline.includes(dir) ? [`${pid}: ${cmdline}`] : [];
      } catch {
        return [];
      }
    });
}
