import { describe, expect, it } from "vitest";
import { takeToken, type Bucket } from "../token-bucket.js";

const policy = { capacity: 3, refillPerSecond: 0.5 };

/** Takes `count` tokens at `now`, returning each wait and the bucket left. */
function take(count: number, bucket: Bucket | undefined, now: number): { waits: number[]; bucket: Bucket | undefined } {
  const waits: number[] = [];
  for (let i = 0; i < count; i++) {
    const result = takeToken(bucket, policy, now);
    waits.push(result.waitSeconds);
    bucket = result.bucket;
  }
  return { waits, bucket };
}

describe("takeToken", () => {
  it("allows a burst of `capacity` from a new bucket, then says how long until the next token", () => {
    expect(take(4, undefined, 0).waits).toEqual([0, 0, 0, 2]);
  });

  it("refills at the policy's rate, never above capacity", () => {
    const drained = take(3, undefined, 0).bucket;
    expect(take(1, drained, 1_000).waits, "half a token after 1 s: one more second to wait").toEqual([1]);
    expect(take(2, drained, 4_000).waits, "two tokens after 4 s").toEqual([0, 0]);
    expect(take(4, drained, 60_000).waits, "a minute refills to capacity only").toEqual([0, 0, 0, 2]);
  });

  it("gives nothing for a clock that went back", () => {
    const drained = take(3, undefined, 10_000).bucket;
    expect(take(1, drained, 5_000).waits).toEqual([2]);
  });
});
