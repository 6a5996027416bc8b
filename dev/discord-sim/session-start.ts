export interface SessionStartLimit {
  total: number;
  remaining: number;
  resetAfterMs: number;
  maxConcurrency: number;
}

/** Discord's window for max_concurrency: that many IDENTIFYs per rate-limit key per 5 s by default. */
export const DEFAULT_IDENTIFY_INTERVAL_MS = 5_000;
const DAY_MS = 86_400_000;

/**
 * The bot's daily IDENTIFY budget and its per-key concurrency window, shared by the gateway (which spends it)
 * and REST `GET /gateway/bot` (which reports it). `remaining` refills to `total` once `reset_after` has elapsed, then daily.
 */
export class SessionStartBudget {
  private remaining: number;
  private resetAt: number;
  private readonly lastIdentifyAt = new Map<number, number>();

  constructor(
    private readonly limit: SessionStartLimit,
    private readonly identifyIntervalMs: number,
    private readonly clock: () => number = Date.now,
  ) {
    this.remaining = limit.remaining;
    this.resetAt = clock() + limit.resetAfterMs;
  }

  /** The `session_start_limit` object as Discord reports it. */
  snapshot(): { total: number; remaining: number; reset_after: number; max_concurrency: number } {
    this.refill();
    return {
      total: this.limit.total,
      remaining: this.remaining,
      reset_after: Math.max(0, this.resetAt - this.clock()),
      max_concurrency: this.limit.maxConcurrency,
    };
  }

  /** True when the daily budget is spent: the next IDENTIFY is the one Discord punishes by resetting the token. */
  exhausted(): boolean {
    this.refill();
    return this.remaining <= 0;
  }

  /** True when this shard's rate-limit key (shard_id % max_concurrency) identified within the window. */
  tooSoon(shardId: number): boolean {
    const last = this.lastIdentifyAt.get(this.bucketOf(shardId));
    return last !== undefined && this.clock() - last < this.identifyIntervalMs;
  }

  spend(shardId: number): void {
    this.refill();
    this.remaining--;
    this.lastIdentifyAt.set(this.bucketOf(shardId), this.clock());
  }

  /** The rate-limit key Discord files a shard's IDENTIFY under. */
  bucketOf(shardId: number): number {
    return shardId % Math.max(1, this.limit.maxConcurrency);
  }

  private refill(): void {
    const now = this.clock();
    if (now < this.resetAt) return;
    this.remaining = this.limit.total;
    this.resetAt = now + DAY_MS;
  }
}
