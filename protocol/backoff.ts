export interface BackoffPolicy {
  minMs: number;
  maxMs: number;
  factor: number;
}

/** Exponential backoff with full jitter: a uniform delay in [minMs, min(maxMs, minMs × factor^attempt)]. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.minMs * policy.factor ** Math.max(0, attempt));
  return Math.round(policy.minMs + random() * (ceiling - policy.minMs));
}
