/**
 * Paces IDENTIFYs as Discord limits them: shards share a rate-limit bucket when `shard_id % max_concurrency`
 * agrees, and each bucket may identify once per window (5 s), so shards of one bucket take turns and shards of
 * different buckets identify side by side. It also counts the daily session starts down between two reports of
 * `session_start_limit`, so shards that read `remaining: 1` at the same moment do not both spend it (the one too
 * many resets the bot token).
 */
export class IdentifyQueue {
  /** When each bucket may identify next. */
  private readonly nextSlot = new Map<number, number>();
  private maxConcurrency: number;
  /** Session starts left as last reported, less those granted since; unknown (Infinity) before the first report. */
  private remaining = Infinity;
  private resetAt = 0;

  constructor(
    maxConcurrency: number,
    private readonly windowMs: number,
    private readonly clock: { now: () => number; sleep: (ms: number) => Promise<void> },
  ) {
    this.maxConcurrency = Math.max(1, Math.floor(maxConcurrency));
  }

  /** Discord's `session_start_limit.max_concurrency`, as GET /gateway/bot last reported it. */
  setMaxConcurrency(maxConcurrency: number): void {
    if (Number.isInteger(maxConcurrency) && maxConcurrency >= 1) this.maxConcurrency = maxConcurrency;
  }

  /** `session_start_limit.remaining` and `reset_after`, as GET /gateway/bot last reported them. */
  noteSessionStartLimit(remaining: number, resetAfterMs: number): void {
    this.remaining = remaining;
    this.resetAt = this.clock.now() + resetAfterMs;
  }

  bucketOf(shardId: number): number {
    return shardId % this.maxConcurrency;
  }

  /**
   * Waits for `shardId`'s bucket to have a free slot and takes it, unless `stillWanted` says the IDENTIFY is no
   * longer needed by then (its connection was replaced): an abandoned wait takes nothing from the others.
   */
  async take(shardId: number, stillWanted: () => boolean = () => true): Promise<boolean> {
    for (;;) {
      const bucket = this.bucketOf(shardId);
      const wait = (this.nextSlot.get(bucket) ?? -Infinity) - this.clock.now();
      if (wait > 0) {
        await this.clock.sleep(wait);
        continue; // another shard of the bucket may have taken the slot meanwhile
      }
      const spentFor = this.remaining <= 0 ? this.resetAt - this.clock.now() : 0;
      if (spentFor > 0) {
        await this.clock.sleep(spentFor); // the day's budget is spent: identifying now would reset the token
        continue;
      }
      if (this.remaining <= 0) this.remaining = Infinity; // reset_after has passed; the next report says how many
      if (!stillWanted()) return false;
      this.remaining--;
      // A hair over the window: Discord counts from when it reads the frame, and an earlier frame may arrive late.
      if (this.windowMs > 0) this.nextSlot.set(bucket, this.clock.now() + this.windowMs + IDENTIFY_MARGIN_MS);
      return true;
    }
  }
}

const IDENTIFY_MARGIN_MS = 50;
