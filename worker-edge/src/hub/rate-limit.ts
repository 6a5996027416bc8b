/** A token bucket's state: tokens left at time `at` (ms). Plain data, so storage or an attachment can keep it. */
export interface Bucket {
  tokens: number;
  at: number;
}

export interface BucketPolicy {
  capacity: number;
  refillPerSecond: number;
}

/** Room creation per user: bursts of 5, then one every 2 s; at most 10 live rooms made by one user. */
export const CreateRoomPolicy = { capacity: 5, refillPerSecond: 0.5, liveRoomsPerUser: 10 } as const;

/**
 * Takes one token. Returns the bucket to keep and 0 when allowed, or the whole seconds until a token is
 * available (the bucket then records the refill so far).
 */
export function takeToken(bucket: Bucket | undefined, policy: BucketPolicy, now: number): { bucket: Bucket; retryAfterSeconds: number } {
  const elapsedSeconds = bucket ? Math.max(0, now - bucket.at) / 1000 : 0;
  const tokens = Math.min(policy.capacity, (bucket?.tokens ?? policy.capacity) + elapsedSeconds * policy.refillPerSecond);
  if (tokens < 1) {
    return { bucket: { tokens, at: now }, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / policy.refillPerSecond)) };
  }
  return { bucket: { tokens: tokens - 1, at: now }, retryAfterSeconds: 0 };
}

