/**
 * When published events go out to sockets. Events get their seq and are stored at once (durability and order do
 * not wait); sending waits for the next flush. A flush right after a quiet spell goes at once (an idle hub adds no
 * latency); under load flushes come at most once per cadence, each one frame per socket carrying every event the
 * socket wants since its last frame. So a socket's frames per second are bounded by the cadence, not by the event
 * rate, and an event waits at most one cadence before its fan-out starts.
 */

/** How long flushes are apart under load: a fixed interval (0: every publish at once), or adaptive. */
export type FlushCadence = { kind: "fixed"; ms: number } | { kind: "adaptive" };

/**
 * The adaptive cadence grows with the audience (an object's live sockets plus its relays' links) so that the object
 * writes at most about `sendsPerSecond` frames a second under load, whatever the event rate: 100 watchers get a
 * frame every 20 ms, 500 every 100 ms, 750 and more every 150 ms (past that the budget gives way to latency).
 * Chosen by measurement (docs/benchmark.md, "Coalescing"): at 500 watchers only a 100 ms cadence kept the CPU per
 * watcher-second flat from 10 to 500 events/s.
 */
export const AdaptiveCadence = { sendsPerSecond: 5_000, minMs: 10, maxMs: 150 } as const;

/** The interval between flushes under load for `audience` recipients. */
export function cadenceMs(cadence: FlushCadence, audience: number): number {
  if (cadence.kind === "fixed") return cadence.ms;
  const { sendsPerSecond, minMs, maxMs } = AdaptiveCadence;
  return Math.min(maxMs, Math.max(minMs, Math.round((audience * 1000) / sendsPerSecond)));
}

export interface CoalescerHost<T> {
  /** Sends what was published since the last flush, in order. Must not throw (the host catches and logs). */
  flush(items: T[]): void;
  /** The interval between flushes now (it may follow the audience). */
  cadenceMs(): number;
  now(): number;
}

/** Collects published items between flushes and flushes them on the cadence. In memory: a timer keeps the object awake. */
export class Coalescer<T> {
  private pending: T[] = [];
  private lastFlushAt = -Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly host: CoalescerHost<T>) {}

  /** Queues `items`; flushes at once when the last flush is at least one cadence ago, else when it will be. */
  add(items: T[]): void {
    if (items.length === 0) return;
    this.pending.push(...items);
    if (this.timer !== undefined) return; // a flush is due already and will carry these
    const now = this.host.now();
    const due = this.lastFlushAt + this.host.cadenceMs();
    if (now >= due) this.flush(now);
    else this.timer = setTimeout(() => this.flush(this.host.now()), due - now);
  }

  /** Flushes what is pending now: before a socket's catch-up, so it never receives an event twice. */
  flushNow(): void {
    if (this.pending.length > 0) this.flush(this.host.now());
  }

  get pendingCount(): number {
    return this.pending.length;
  }

  private flush(now: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const items = this.pending;
    this.pending = [];
    this.lastFlushAt = now;
    if (items.length > 0) this.host.flush(items);
  }
}
