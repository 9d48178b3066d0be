import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeCapacity, observeCapacity, startCapacity } from '../src/shared/capacity';

test('capacity counts satellite-seconds out of service at the figure that held, and the lowest serving', () => {
  // 8 satellites serving at t=0; 4 go out at 1 s; back at 3 s; 2 go out at 10 s, back at 10.5 s.
  let c = startCapacity(8, 8, 0);
  c = observeCapacity(c, 8, 4, 1_000);
  assert.equal(c.satelliteSecondsOut, 0);
  c = observeCapacity(c, 4, 8, 3_000);
  assert.equal(c.satelliteSecondsOut, 8);
  c = observeCapacity(c, 8, 6, 10_000);
  c = observeCapacity(c, 6, 8, 10_500);
  assert.equal(c.satelliteSecondsOut, 9);
  assert.equal(c.lowestServing, 4);
  assert.equal(describeCapacity(c), '9.0 satellite-seconds out of service, never fewer than 4 of 8 serving');
});

test('a satellite out from the start counts from the start; time never runs backwards', () => {
  let c = startCapacity(4, 3, 5_000);
  assert.equal(c.lowestServing, 3);
  c = observeCapacity(c, 3, 4, 7_000);
  assert.equal(c.satelliteSecondsOut, 2);
  c = observeCapacity(c, 4, 4, 6_000);
  assert.equal(c.satelliteSecondsOut, 2);
  assert.equal(c.asOf, 7_000);
});
