import { describe, expect, it } from "vitest";
import { MAX_CLOCK_SKEW_SECONDS, signHubBody, timingSafeEqual, verifyHubSignature } from "../hmac.js";

describe("hub HMAC", () => {
  const secret = "s3cret";
  const body = '{"event":"room.deleted"}';
  const now = 1_700_000_000_000;

  it("accepts a signature made with the same secret within the window", async () => {
    const sig = await signHubBody(secret, now / 1000, body);
    expect(await verifyHubSignature(secret, String(now / 1000), sig, body, now + 59_000)).toEqual({ ok: true });
    expect(await verifyHubSignature(secret, String(now / 1000), sig, body, now + MAX_CLOCK_SKEW_SECONDS * 1000)).toEqual({ ok: true });
  });

  it("accepts a gateway whose clock is 60 s off either way, with a few seconds of latency", async () => {
    for (const skewMs of [-60_000, 60_000]) {
      const sig = await signHubBody(secret, (now + skewMs) / 1000, body);
      expect(await verifyHubSignature(secret, String((now + skewMs) / 1000), sig, body, now + 5_000)).toEqual({ ok: true });
    }
  });

  it("rejects a changed body, another secret, and stale or future timestamps", async () => {
    const ts = now / 1000;
    const sig = await signHubBody(secret, ts, body);
    expect(await verifyHubSignature(secret, String(ts), sig, body + " ", now)).toMatchObject({ ok: false, reason: "bad_signature" });
    expect(await verifyHubSignature("other", String(ts), sig, body, now)).toMatchObject({ ok: false, reason: "bad_signature" });
    expect(await verifyHubSignature(secret, String(ts), sig, body, now + MAX_CLOCK_SKEW_SECONDS * 1000 + 1_000)).toMatchObject({ ok: false, reason: "stale" });
    expect(await verifyHubSignature(secret, String(ts), sig, body, now - MAX_CLOCK_SKEW_SECONDS * 1000 - 1_000)).toMatchObject({ ok: false, reason: "stale" });
    expect(await verifyHubSignature(secret, null, sig, body, now)).toMatchObject({ ok: false, reason: "missing" });
  });

  it("matches a signature computed independently with node:crypto", async () => {
    const { createHmac } = await import("node:crypto");
    const expected = "sha256=" + createHmac("sha256", secret).update(`123.${body}`).digest("hex");
    expect(await signHubBody(secret, 123, body)).toBe(expected);
  });

  it("compares strings of unequal length as unequal", () => {
    expect(timingSafeEqual("abc", "abc")).toBe(true);
    expect(timingSafeEqual("abc", "abd")).toBe(false);
    expect(timingSafeEqual("abc", "abcd")).toBe(false);
  });
});
