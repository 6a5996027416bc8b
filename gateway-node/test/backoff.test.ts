import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../protocol/backoff.js";
import { closeAction } from "../src/gateway/close-codes.js";

const policy = { minMs: 1_000, maxMs: 60_000, factor: 2 };

describe("backoff with full jitter", () => {
  it("spans [min, min × factor^attempt] and never exceeds the cap", () => {
    expect(backoffDelay(0, policy, () => 0)).toBe(1_000);
    expect(backoffDelay(3, policy, () => 1)).toBe(8_000);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(4_500);
    expect(backoffDelay(30, policy, () => 1)).toBe(60_000);
    expect(backoffDelay(1_000, policy, () => 0.999)).toBeLessThanOrEqual(60_000);
  });
});

describe("close codes", () => {
  it.each([
    [4004, "fatal"], [4010, "fatal"], [4011, "fatal"], [4012, "fatal"], [4013, "fatal"], [4014, "fatal"],
    [4007, "new-session"], [4009, "new-session"], [1000, "new-session"],
    [4000, "resume"], [1006, "resume"], [4008, "resume"], [1011, "resume"],
  ])("%i means %s", (code, action) => {
    expect(closeAction(code).action).toBe(action);
  });
});
