import { monitorEventLoopDelay } from "node:perf_hooks";
import { describe, expect, it, vi } from "vitest";

vi.mock("node:perf_hooks", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:perf_hooks")>();
  return { ...real, monitorEventLoopDelay: vi.fn(real.monitorEventLoopDelay) };
});

describe("the event-loop monitor", () => {
  it("starts only when the service asks for it, not when metrics.ts is imported, and stops with it", async () => {
    const { startEventLoopMonitor } = await import("../src/metrics.js");
    expect(monitorEventLoopDelay, "a monitor started by the import").not.toHaveBeenCalled();

    const monitor = startEventLoopMonitor();
    expect(monitorEventLoopDelay).toHaveBeenCalledTimes(1);
    const sampler = vi.mocked(monitorEventLoopDelay).mock.results[0]!.value as ReturnType<typeof monitorEventLoopDelay>;
    const disable = vi.spyOn(sampler, "disable");
    monitor.stop();
    expect(disable).toHaveBeenCalledTimes(1);
  });
});

describe("the event-loop lag", () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it("is the delay past the sampling timer's interval: about 0 for a loop that never blocks", async () => {
    const { startEventLoopMonitor } = await vi.importActual<typeof import("../src/metrics.js")>("../src/metrics.js");
    const monitor = startEventLoopMonitor();
    await sleep(500);
    const idle = monitor.lagMs(99);
    // Busy for 100 ms: one sample comes that much late.
    const until = Date.now() + 100;
    while (Date.now() < until);
    await sleep(100);
    const max = monitor.maxLagMs();
    monitor.stop();
    // The histogram records the whole time between two samples (20 ms when idle): reported as is, an idle loop
    // lagged 20 ms.
    expect(idle).toBeLessThan(10);
    expect(max).toBeGreaterThanOrEqual(70);
    expect(max).toBeLessThan(150);
  });
});
