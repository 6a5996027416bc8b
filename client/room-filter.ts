import { MAX_FILTER_ROOMS, SocketLimits } from "../protocol/limits.js";
import { takeToken, type Bucket, type BucketPolicy } from "../protocol/token-bucket.js";
import { Snowflake } from "./schemas.js";
import { invalid } from "./validate.js";

/**
 * What the hub accepts as a room filter: at most MAX_FILTER_ROOMS snowflakes. The hub closes a socket that sends another (4409),
 * and the filter rides on every reconnect, so it is refused here, where the app can see why.
 */
export function checkRoomFilter(rooms: readonly string[] | undefined): void {
  if (!rooms) return;
  if (rooms.length > MAX_FILTER_ROOMS) throw new RangeError(`a room filter names at most ${MAX_FILTER_ROOMS} rooms, not ${rooms.length}`);
  const bad = rooms.find((id) => Snowflake(id) === invalid);
  if (bad !== undefined) throw new RangeError(`a room filter takes channel ids (snowflakes), not ${JSON.stringify(String(bad).slice(0, 40))}`);
}

/** What to do about the filter now: send it, wait for the hub's budget, or nothing (the hub has the newest). */
export type FilterStep = { send: string[] | undefined } | { waitMs: number } | undefined;

/**
 * The room filter's bookkeeping for one connection after another, with no I/O and the time passed in: the filter the
 * app wants, the one the current connection was last given, the hub's answers still owed, and the hub's budget for
 * changes (a burst, then one per interval; past it the hub closes 4429), mirrored so a change waits instead.
 *
 * A snapshot makes the presence exact only for the filter it answers: until the hub has answered the newest filter,
 * events follow an older one (no gap detection) and a reconnect must ask for a snapshot, not a replay.
 */
export class RoomFilterBook {
  private wanted: string[] | undefined;
  /** Bumped by each change the app makes; `sentVersion` is the version the current connection was last given. */
  private version = 0;
  private sentVersion = 0;
  /** Snapshots the current connection still owes: one per filter it was sent, and one for an auth overtaken by a change. */
  private unanswered = 0;
  private budget: Bucket = { tokens: 0, at: 0 };
  /** Set by a change or an unreadable event, cleared by a snapshot for the newest filter: a replay would not be exact. */
  private snapshotNeeded = false;

  /** The hub's budget with its interval a quarter longer: network jitter must not make two changes arrive closer than it. */
  private readonly pacing: BucketPolicy;

  constructor(
    rooms: readonly string[] | undefined,
    private readonly limits: { roomsBurst: number; roomsIntervalMs: number } = SocketLimits,
  ) {
    this.wanted = rooms && [...rooms];
    this.pacing = { capacity: limits.roomsBurst, refillPerSecond: 1000 / (limits.roomsIntervalMs * 1.25) };
  }

  get rooms(): string[] | undefined {
    return this.wanted;
  }

  /** Whether the state may resume by replay, and detect gaps: the hub has answered the newest filter. */
  get exact(): boolean {
    return !this.snapshotNeeded;
  }

  /** The app's newest filter; false when it is the one already wanted. */
  want(rooms: readonly string[] | undefined): boolean {
    if (rooms?.join() === this.wanted?.join()) return false;
    this.wanted = rooms && [...rooms];
    this.version++;
    this.snapshotNeeded = true;
    return true;
  }

  /** A known event could not be applied: only a snapshot (for the newest filter) makes the state exact again. */
  invalidate(): void {
    this.snapshotNeeded = true;
  }

  /** A new connection's auth, which carries the wanted filter; its budget starts full. */
  authSent(now: number): string[] | undefined {
    this.sentVersion = this.version;
    this.unanswered = 0;
    this.budget = { tokens: this.limits.roomsBurst, at: now };
    return this.wanted;
  }

  /**
   * auth.ok. When the filter changed while the connection authenticated, the auth's own answer (a snapshot, if the
   * hub sends one) is for the older filter: counted as owed, so it cannot pass for the newest filter's answer. A
   * later ack (a token refresh) is answered by no snapshot.
   */
  acknowledged(first: boolean): void {
    if (first && this.sentVersion !== this.version) this.unanswered++;
  }

  /** Sends the newest filter now if the hub's budget allows, else says how long to wait; consumes a budget token when it sends. */
  next(now: number): FilterStep {
    if (this.sentVersion === this.version) return undefined;
    const { bucket, waitSeconds } = takeToken(this.budget, this.pacing, now);
    this.budget = bucket;
    if (waitSeconds > 0) return { waitMs: Math.ceil(waitSeconds * 1000) };
    this.unanswered++;
    this.sentVersion = this.version;
    return { send: this.wanted };
  }

  /** A snapshot arrived; returns whether it answers the newest filter, making the state exact. */
  snapshot(): boolean {
    if (this.unanswered > 0) this.unanswered--;
    const newest = this.unanswered === 0 && this.sentVersion === this.version;
    if (newest) this.snapshotNeeded = false;
    return newest;
  }
}
