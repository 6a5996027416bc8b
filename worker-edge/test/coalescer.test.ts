import { describe, expect, it } from "vitest";
import { AdaptiveCadence, cadenceMs, Coalescer } from "../src/hub/coalescer.js";

/** A coalescer over a fixed cadence, recording each flush with the time it went out. */
function recorder(cadence: number) {
  const flushes: Array<{ at: number; items: number[] }> = [];
  const started = Date.now();
  const coalescer = new Coalescer<number>({
    flush: (items) => flushes.push({ at: Date.now() - started, items }),
    cadenceMs: () => cadence,
    now: () => Date.now(),
  });
  return { coalescer, flushes };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the coalescer: frames bounded by the cadence, not by the event rate", () => {
  it("flushes a publish after a quiet spell at once", () => {
    const { coalescer, flushes } = recorder(50);
    coalescer.add([1, 2]);
    expect(flushes).toEqual([{ at: expect.any(Number), items: [1, 2] }]);
  });

  it("collects what comes within one cadence of a flush into the next flush, in order, within one cadence", async () => {
    const { coalescer, flushes } = recorder(60);
    coalescer.add([1]);
    await sleep(5);
    coalescer.add([2]);
    coalescer.add([3, 4]);
    expect(flushes).toHaveLength(1);
    await sleep(120);
    expect(flushes.map((f) => f.items)).toEqual([[1], [2, 3, 4]]);
    // The second flush went out one cadence after the first, not later.
    expect(flushes[1]!.at - flushes[0]!.at).toBeGreaterThanOrEqual(55);
    expect(flushes[1]!.at - flushes[0]!.at).toBeLessThan(110);
  });

  it("flushes at most once per cadence however fast items arrive", async () => {
    const { coalescer, flushes } = recorder(40);
    const started = Date.now();
    let next = 0;
    while (Date.now() - started < 200) {
      coalescer.add([next++]);
      await sleep(1);
    }
    await sleep(60);
    const spans = flushes.slice(1).map((f, i) => f.at - flushes[i]!.at);
    expect(Math.min(...spans)).toBeGreaterThanOrEqual(35);
    expect(flushes.length).toBeLessThanOrEqual(Math.ceil(260 / 40) + 1);
    expect(flushes.flatMap((f) => f.items)).toEqual(Array.from({ length: next }, (_, i) => i));
  });

  it("flushes what is pending on demand, before a socket's catch-up", () => {
    const { coalescer, flushes } = recorder(1_000);
    coalescer.add([1]);
    coalescer.add([2]);
    expect(coalescer.pendingCount).toBe(1);
    coalescer.flushNow();
    expect(flushes.map((f) => f.items)).toEqual([[1], [2]]);
    coalescer.flushNow(); // nothing pending: no empty flush
    expect(flushes).toHaveLength(2);
  });

  it("with a cadence of 0, sends every publish at once", () => {
    const { coalescer, flushes } = recorder(0);
    coalescer.add([1]);
    coalescer.add([2]);
    expect(flushes.map((f) => f.items)).toEqual([[1], [2]]);
  });

  it("adapts the cadence to the audience, within its bounds", () => {
    const adaptive = { kind: "adaptive" } as const;
    expect(cadenceMs(adaptive, 1)).toBe(AdaptiveCadence.minMs);
    expect(cadenceMs(adaptive, 1_000_000)).toBe(AdaptiveCadence.maxMs);
    // In between, the object writes about sendsPerSecond frames a second: audience × (1000 / cadence).
    const audience = (AdaptiveCadence.minMs + AdaptiveCadence.maxMs) / 2 * (AdaptiveCadence.sendsPerSecond / 1000);
    expect(audience * (1000 / cadenceMs(adaptive, audience))).toBeCloseTo(AdaptiveCadence.sendsPerSecond, -1);
    expect(cadenceMs({ kind: "fixed", ms: 25 }, 2_000)).toBe(25);
  });
});
