/**
 * The edge's one clock: every time the hub and token verification decide by (retention windows, caches,
 * deadlines, token expiry, the key set's age) is read here. Production reads the system clock; a test moves it
 * forward to let hours pass in milliseconds. Only forward: the runtime fires alarms by the real clock, so a clock
 * behind it would set alarms in the past, which fire at once and again.
 */
let offsetMs = 0;

export function now(): number {
  return Date.now() + offsetMs;
}

/** Moves the clock `ms` forward. For tests: production never calls it. */
export function advanceClock(ms: number): void {
  if (!(ms >= 0)) throw new Error(`the clock only moves forward (asked ${ms} ms)`);
  offsetMs += ms;
}

/** Moves the clock forward to `at`, if it is not there yet. */
export function advanceClockTo(at: number): void {
  advanceClock(Math.max(0, at - now()));
}

/** Back to the system clock. For tests, after a test that moved time. */
export function resetClock(): void {
  offsetMs = 0;
}
