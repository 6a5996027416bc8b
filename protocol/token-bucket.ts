/**
 * A token bucket: up to `capacity` actions at once, then `refillPerSecond`. The hub enforces its limits with it and
 * the SDK paces itself with the same arithmetic. Free of zod, so the browser bundle can import it.
 */

/** A bucket's state: tokens left at time `at` (ms). Plain data, so storage or an attachment can keep it. */
export interface Bucket {
  tokens: number;
  at: number;
}

export interface BucketPolicy {
  capacity: number;
  refillPerSecond: number;
}

/**
 * Takes one token from `bucket` (absent: a full one). Returns the bucket to keep and `waitSeconds`: 0 when allowed,
 * else how long until a token is available, unrounded (the bucket then records the refill so far).
 */
export function takeToken(bucket: Bucket | undefined, policy: BucketPolicy, now: number): { bucket: Bucket; waitSeconds: number } {
  const elapsedSeconds = bucket ? Math.max(0, now - bucket.at) / 1000 : 0;
  const tokens = Math.min(policy.capacity, (bucket?.tokens ?? policy.capacity) + elapsedSeconds * policy.refillPerSecond);
  if (tokens < 1) return { bucket: { tokens, at: now }, waitSeconds: (1 - tokens) / policy.refillPerSecond };
  return { bucket: { tokens: tokens - 1, at: now }, waitSeconds: 0 };
}
