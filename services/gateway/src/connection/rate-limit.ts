import type { Rate } from '@tributary/common';

/**
 * A token bucket for one Rate: it holds up to one period's amount (the burst) and refills
 * continuously with the time elapsed, so no timer runs while nothing is limited.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: Rate,
    now = Date.now(),
  ) {
    this.tokens = rate.amount;
    this.last = now;
  }

  /** Takes one token if there is one (admission: a connection is accepted or not). */
  tryTake(now = Date.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * Spends `n` tokens even beyond what is there (what was received is already here); returns
   * how many milliseconds the bucket needs to be out of debt again, 0 if it is not in debt.
   */
  spend(n: number, now = Date.now()): number {
    this.refill(now);
    this.tokens -= n;
    return this.wait(now);
  }

  /** Milliseconds until the bucket is out of debt (0 when it is not). */
  wait(now = Date.now()): number {
    this.refill(now);
    // The tolerance keeps float error (10MB/s is 10485.76 per ms) from adding a millisecond.
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens / this.rate.perMs - 1e-9);
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.rate.amount, this.tokens + (now - this.last) * this.rate.perMs);
      this.last = now;
    }
  }
}

/** A bucket for `rate`, or undefined for "infinity" (nothing to count). */
export function bucketFor(rate: Rate): TokenBucket | undefined {
  return rate.infinite ? undefined : new TokenBucket(rate);
}
