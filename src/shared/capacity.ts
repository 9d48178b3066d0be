/**
 * Serving capacity as a figure: how many satellite-seconds a run kept satellites out of
 * service, and the fewest that served at any moment. The workflow observes every change
 * of what users reach (with workflow time, so replay gives the same figures); the meter
 * integrates the satellites not serving over time. Pure.
 */

export interface Capacity {
  /** Satellites of the cluster, serving or not. */
  satellites: number;
  /** Integral of the satellites out of service over the run, in seconds (one satellite out for 2 s: 2). */
  satelliteSecondsOut: number;
  /** The fewest satellites serving at any moment of the run. */
  lowestServing: number;
  /** When the meter last counted (ms since the epoch): the figures are as of then. */
  asOf: number;
}

/** Starts counting: `serving` of `satellites` serve at `now`. */
export function startCapacity(satellites: number, serving: number, now: number): Capacity {
  return { satellites, satelliteSecondsOut: 0, lowestServing: serving, asOf: now };
}

/**
 * Counts the time since the last observation at the serving figure that held then, and
 * takes `serving` as the figure from `now` on. Returns the updated capacity.
 */
export function observeCapacity(capacity: Capacity, servingBefore: number, servingNow: number, now: number): Capacity {
  const seconds = Math.max(0, now - capacity.asOf) / 1000;
  return {
    satellites: capacity.satellites,
    satelliteSecondsOut: capacity.satelliteSecondsOut + (capacity.satellites - servingBefore) * seconds,
    lowestServing: Math.min(capacity.lowestServing, servingBefore, servingNow),
    asOf: Math.max(now, capacity.asOf),
  };
}

/** "1.4 satellite-seconds out of service, never fewer than 6 of 8 serving": for the CLI, the memo and reports. */
export function describeCapacity(capacity: Capacity): string {
  return `${capacity.satelliteSecondsOut.toFixed(1)} satellite-seconds out of service, never fewer than ${capacity.lowestServing} of ${capacity.satellites} serving`;
}
