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
