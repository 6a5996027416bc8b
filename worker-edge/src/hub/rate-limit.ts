/**
 * A token bucket per user: `refillPerSecond` sustained (5 per 5 s by default) with bursts up to `capacity`.
 * Kept in memory of the guild's object: an eviction forgives, which errs on the side of the user.
 */
export class UserRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly capacity = 10,
    private readonly refillPerSecond = 1,
  ) {}

  /** Takes one token; returns 0 when allowed, else the seconds until a token is available. */
  take(userId: string, now: number): number {
    const bucket = this.buckets.get(userId) ?? { tokens: this.capacity, at: now };
    const tokens = Math.min(this.capacity, bucket.tokens + ((now - bucket.at) / 1000) * this.refillPerSecond);
    if (tokens < 1) {
      this.buckets.set(userId, { tokens, at: now });
      return Math.max(1, Math.ceil((1 - tokens) / this.refillPerSecond));
    }
    this.buckets.set(userId, { tokens: tokens - 1, at: now });
    this.forgetFullBuckets(now);
    return 0;
  }

  /** Buckets that have refilled carry no information; dropping them keeps memory bounded by active users. */
  private forgetFullBuckets(now: number): void {
    if (this.buckets.size < 1_000) return;
    for (const [userId, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.refillPerSecond >= this.capacity) this.buckets.delete(userId);
    }
  }
}
