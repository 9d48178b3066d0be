/**
 * The slave worker's in-memory apply mark, which the save endpoint reads: whether a
 * follow of the master runs (else saves are refused at once) and how far blocks are applied.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppliedMark } from '../src/activities/slave/appliedMark';

describe('the applied mark', () => {
  test('between a follow that reported and the next one, the slave still counts as following', () => {
    const mark = new AppliedMark();
    assert.equal(mark.isFollowing, false, 'no follow has run yet');
    const first = mark.following();
    assert.equal(mark.isFollowing, true);
    first(true);
    assert.equal(mark.isFollowing, true, 'the report is handed over; the workflow starts the next follow at once');
    const second = mark.following();
    second();
    assert.equal(mark.isFollowing, false, 'cancelled (a pause) or failed: saves are refused at once');
  });

  test('a save waits for its block, and learns when it does not come in time', async () => {
    const mark = new AppliedMark();
    const waiting = mark.reached(3, 5_000);
    mark.advance(2);
    mark.advance(3);
    assert.equal(await waiting, true);
    assert.equal(await mark.reached(9, 20), false);
    assert.equal(mark.highWaterMark, 3);
  });
});
