import { afterEach, describe, expect, it } from "vitest";
import { GatewayOpcodes } from "discord-api-types/v10";
import { FAST, startHarness, until, type Harness } from "./support/harness.js";

let h: Harness;
afterEach(() => h?.close());

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("IDENTIFY spacing across reconnections", () => {
  it("sends one IDENTIFY when a newer connection replaces one still waiting out the spacing (no 4005)", async () => {
    h = await startHarness({ deps: { settings: { ...FAST, shard: { ...FAST.shard, identifySpacingMs: 1_500 } } } });
    await until(() => h.hub.accepted.length === 1, "guild.sync");
    // op 9 d:false: the shard reconnects after 50–100 ms and its IDENTIFY waits out the rest of the 1.5 s spacing.
    h.sim.invalidateSession(false);
    await until(() => h.sim.handshakes.length === 2, "the connection after op 9");
    await pause(150); // HELLO is in: that connection's IDENTIFY is now waiting
    h.sim.dropConnections(); // a newer connection, whose own IDENTIFY waits for the same moment
    await until(() => h.sim.state().identifyCount === 2, "the second session", 5_000);
    await pause(300); // room for a stale IDENTIFY to arrive
    const identifies = h.sim.received.filter((r) => r.op === GatewayOpcodes.Identify);
    expect(identifies, "IDENTIFYs received").toHaveLength(2);
    expect(h.sim.closes.filter((c) => c.code === 4005)).toEqual([]);
    expect(h.service.shard.state).toBe("ready");
  });
});
