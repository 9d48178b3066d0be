/**
 * The poll loop of `lesson watch` (bars or lines): `draw` runs every `everyMs` until the
 * watcher stops it. Stopping ends the wait at once and draws one last time, since the run
 * may have ended since the last poll and what stays on the screen must be how it ended;
 * the watcher passes the run's result, when it has one, for that last draw.
 */
export function pollUntilStopped<T>(draw: (ended?: T) => Promise<void>, everyMs: number): { stop(ended?: T): Promise<void> } {
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
    async stop(ended?: T) {
      stopped = true;
      wake();
      await running;
      await draw(ended);
    },
  };
}
