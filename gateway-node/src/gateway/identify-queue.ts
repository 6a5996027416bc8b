/**
 * Paces IDENTIFYs as Discord limits them: shards share a rate-limit bucket when `shard_id % max_concurrency`
 * agrees, and each bucket may identify once per window (5 s). Slots are handed out in order of asking, so shards
 * of one bucket take turns and shards of different buckets identify side by side.
 */
export class IdentifyQueue {
  /** When each bucket may identify next. */
  private readonly nextSlot = new Map<number, number>();
  private maxConcurrency: number;

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
      if (!stillWanted()) return false;
      // A hair over the window: Discord counts from when it reads the frame, and an earlier frame may arrive late.
      if (this.windowMs > 0) this.nextSlot.set(bucket, this.clock.now() + this.windowMs + IDENTIFY_MARGIN_MS);
      return true;
    }
  }
}

const IDENTIFY_MARGIN_MS = 50;
