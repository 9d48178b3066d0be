/**
 * Where a rollout switches the cluster from the old lesson to the new one.
 *
 * One lesson at a time (`one-lesson`): the first groups are taught one after another and
 * wait ready, out of service, on the new lesson; then one load balancer change brings
 * them in and takes every remaining group out; the remaining groups are taught and
 * rejoin. Users get the old lesson or the new one, never both. The price is capacity:
 * before the switch only the untouched groups serve, after it only the taught ones, so
 * the floor must fit both sides. With two groups this is the seed's order exactly.
 *
 * Capacity first (`capacity-first`): every group rejoins as soon as it passed, so all
 * but one group serve throughout, and users get both lessons side by side until the
 * last group is taught (the run reports that window as it happens).
 *
 * Pure: the config loader uses it to refuse a floor the order cannot keep, and the
 * workflow to know where to switch.
 */

/**
 * Whole cluster (`whole-cluster`, copying while serving with HAProxy under control): once
 * every satellite passed its examination, each satellite's examination instance stands in
 * for it, and one load balancer change sends every user from the old lesson to the new
 * one; the satellites' own instances then move to the new lesson behind their stand-ins,
 * and a second change brings them back. No mixed window and no capacity lost, whatever
 * the number of groups.
 */
export type Consistency = 'one-lesson' | 'capacity-first' | 'whole-cluster';

export interface SwitchPoint {
  /** Index of the group after whose examination the switch happens. */
  after: number;
  /** The fewest satellites serving at any time of the rollout. */
  lowestServing: number;
}

/**
 * The switch that keeps the most satellites serving at its lowest point (the earliest
 * one when several tie), for groups of the given sizes in rollout order; undefined when
 * no switch keeps `minServing` (or there are fewer than two groups).
 */
export function oneLessonSwitch(groupSizes: number[], minServing: number): SwitchPoint | undefined {
  const total = groupSizes.reduce((a, b) => a + b, 0);
  let best: SwitchPoint | undefined;
  let taught = 0;
  for (let after = 0; after < groupSizes.length - 1; after++) {
    taught += groupSizes[after]!;
    // Before the switch the untouched groups serve (fewest when the last group before it is in); after it, the taught ones.
    const lowestServing = Math.min(total - taught, taught);
    if (lowestServing >= minServing && (!best || lowestServing > best.lowestServing)) best = { after, lowestServing };
  }
  return best;
}

/** Satellites that keep serving when `keepGroups` groups must (default: all groups but one), counting the smallest groups. */
export function servingFloor(groupSizes: number[], keepGroups = groupSizes.length - 1): number {
  return [...groupSizes]
    .sort((a, b) => a - b)
    .slice(0, keepGroups)
    .reduce((a, b) => a + b, 0);
}

/** The most groups that can be kept serving with one lesson at a time (0 when even none can: fewer than two groups). */
export function mostGroupsKeptOneLesson(groupSizes: number[]): number {
  for (let keep = groupSizes.length - 1; keep > 0; keep--) {
    if (oneLessonSwitch(groupSizes, servingFloor(groupSizes, keep))) return keep;
  }
  return 0;
}
