/**
 * Group commit's batching, with a commit that only takes time: which items go together.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GroupCommit } from '../src/master/groupCommit';

test('callers answered by one batch who submit again at once all go in the next batch, not half of them', async () => {
  const sizes: number[] = [];
  const group = new GroupCommit<number, number>(async (items) => {
    sizes.push(items.length);
    await sleep(2);
    return items.map((value) => ({ ok: true as const, value }));
  }, 256);
  // 32 callers in a closed loop, each saving again as soon as it is answered (as a client does at full speed).
  await Promise.all(
    Array.from({ length: 32 }, async (_, c) => {
      for (let i = 0; i < 20; i++) assert.equal(await group.submit(c * 100 + i), c * 100 + i);
    }),
  );
  // The first batch holds the caller that woke the group alone or all 32; every later one all who were answered.
  assert.ok(sizes.length <= 21, `the 640 items went in ${sizes.length} batches: ${sizes.join(' ')}`);
});

test('a batch is capped, and each item gets its own outcome', async () => {
  const sizes: number[] = [];
  const group = new GroupCommit<number, number>(async (items) => {
    sizes.push(items.length);
    await sleep(1);
    return items.map((n) => (n % 5 === 0 ? { ok: false as const, error: new Error(`refused ${n}`) } : { ok: true as const, value: n * 2 }));
  }, 8);
  const outcomes = await Promise.all(
    Array.from({ length: 20 }, (_, n) =>
      group.submit(n).then(
        (v) => v,
        (e: Error) => e.message,
      ),
    ),
  );
  assert.deepEqual(
    outcomes,
    Array.from({ length: 20 }, (_, n) => (n % 5 === 0 ? `refused ${n}` : n * 2)),
  );
  assert.ok(Math.max(...sizes) <= 8, `batches of ${sizes.join(' ')}`);
});
