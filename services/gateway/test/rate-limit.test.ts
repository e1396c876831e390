import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseRate, Rate } from '@tributary/common';
import { bucketFor, TokenBucket } from '../src/connection/rate-limit';

const rate = (text: string): Rate => parseRate(text) as Rate;

describe('token buckets', () => {
  it('admit a burst of one period, then one more per refill', () => {
    const b = new TokenBucket(rate('4/s'), 0);
    assert.deepEqual([1, 2, 3, 4, 5].map(() => b.tryTake(0)), [true, true, true, true, false]);
    assert.equal(b.tryTake(100), false, 'a tenth of a second: 0.4 token');
    assert.equal(b.tryTake(250), true, 'a quarter second: one token');
    assert.equal(b.tryTake(250), false);
    assert.equal(b.tryTake(10_000), true, 'refills up to the burst, no more');
    assert.deepEqual([1, 2, 3, 4].map(() => b.tryTake(10_000)), [true, true, true, false]);
  });

  it('go into debt for what already arrived and say how long until it is paid', () => {
    const b = new TokenBucket(rate('10MB/s'), 0);
    assert.equal(b.spend(10 * 1024 * 1024, 0), 0);
    assert.equal(b.spend(1024 * 1024, 0), 100, '1MB over at 10MB/s: 100 ms');
    assert.equal(b.wait(50), 50);
    assert.equal(b.wait(100), 0);
  });

  it('are not made for infinity', () => {
    assert.equal(bucketFor(rate('infinity')), undefined);
    assert.ok(bucketFor(rate('100/m')) instanceof TokenBucket);
  });
});
