/**
 * The poll loop of `lesson watch` (bars or lines): `draw` runs every `everyMs` until the
 * watcher stops it. Stopping ends the wait at once and draws one last time, since the run
 * may have ended since the last poll and what stays on the screen must be how it ended.
 */
export function pollUntilStopped(draw: () => Promise<void>, everyMs: number): { stop(): Promise<void> } {
  let stopped = false;
  let wake = () => {};
  const running = (async () => {
    while (!stopped) {
      await draw();
      await new Promise<void>((r) => {
        const timer = setTimeout(r, everyMs);
        wake = () => {
          clearTimeout(timer);
          r();
        };
      });
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake();
      await running;
      await draw();
    },
  };
}
