import { afterEach, describe, expect, it } from "vitest";
import { GUILD, startHarness, until, type Harness } from "./support/harness.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

type Health = { status: number; body: { guilds: Record<string, { state: string; lease: { state: string } }> } };

async function healthz(harness: Harness): Promise<Health> {
  const response = await fetch(`http://127.0.0.1:${harness.service.healthPort}/healthz`);
  return { status: response.status, body: (await response.json()) as Health["body"] };
}

/** A rolling deploy on one host: SIGTERM (flush, release every guild), then the same instance RESUMEs from its session store. */
async function rollingRestart(harness: Harness): Promise<void> {
  await harness.service.stop();
  await harness.restart();
  await until(() => harness.sim.state().resumeCount === 1, "the restarted process to RESUME");
  await until(async () => (await healthz(harness)).body.guilds[GUILD] !== undefined || undefined, "the guild in /healthz");
}

describe("after a rolling restart that RESUMEs (same host, same SESSION_FILE)", () => {
  it("holds every served guild again, a quiet one too: the alert on a guild nobody holds stays quiet", async () => {
    h = await startHarness();
    const harness = h;
    await until(() => harness.hub.syncs(GUILD) === 1 && harness.service.outbox.depth === 0 && harness.hub.holder(GUILD), "the first term, its guild.sync delivered");
    const term = harness.hub.holder(GUILD)!.term;
    await rollingRestart(harness);
    // No voice traffic: nothing to deliver. A renewal period is a third of the hub's TTL; allow a whole TTL.
    await until(() => harness.hub.holder(GUILD), "the guild held again", 3_000).catch(() => undefined);
    expect(harness.hub.holder(GUILD), "who holds the guild at its hub").toMatchObject({ instance: expect.any(String), term });
    expect((await healthz(harness)).body.guilds[GUILD]!.lease.state).toBe("holding");
    // The restart usually claims within the second it released in, which the hub takes for a replay: asked again
    // once the second has passed, not in a loop.
    const released = harness.hub.leaseRequests.findIndex((request) => request.release);
    expect(harness.hub.leaseRequests.slice(released + 1).length, "the restart's claim, its one retry, a renewal at most").toBeLessThanOrEqual(3);
  });

  it("still reports a guild the bot was removed from: /healthz stays 503 until it is invited again", async () => {
    h = await startHarness();
    const harness = h;
    await until(() => harness.hub.accepted.length === 1, "the first guild.sync");
    harness.sim.removeBot();
    await until(async () => (await healthz(harness)).status === 503 || undefined, "/healthz to report the removal");
    await rollingRestart(harness);
    const health = await healthz(harness);
    expect(health.body.guilds[GUILD]!.state).toBe("absent");
    expect(health.status).toBe(503);
    harness.sim.restoreGuild(); // invited again: its GUILD_CREATE on the resumed session
    await until(async () => (await healthz(harness)).status === 200 || undefined, "/healthz 200 once the bot is back");
    expect((await healthz(harness)).body.guilds[GUILD]!.state).toBe("available");
  });
});
