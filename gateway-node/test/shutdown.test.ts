import { afterEach, describe, expect, it } from "vitest";
import { startHarness, until, type Harness } from "./support/harness.js";

let h: Harness;
afterEach(() => h?.close());

describe("shutting down", () => {
  it("closes Discord with 4000 (a close frame, not a TCP drop), so a restarted process resumes the session", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    const session = h.sim.state().sessions[0]!;
    await h.service.stop();
    const close = await until(() => h.sim.closes.find((c) => c.sessionId === session.id), "the session's connection to close");
    expect(close).toMatchObject({ code: 4000, by: "client" });
    await h.restart();
    await until(() => h.sim.state().resumeCount === 1, "a RESUME of the session closed with 4000");
    expect(h.sim.state().identifyCount).toBe(1);
  });
});
