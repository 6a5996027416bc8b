import { afterEach, describe, expect, it } from "vitest";
import { startHarness, until, type Harness } from "./support/harness.js";

let h: Harness;
afterEach(() => h?.close());

async function healthz(): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${h.service.healthPort}/healthz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("/healthz", () => {
  it("says the hub is failing when it is down, even with nothing to deliver (the lease's heartbeats find out)", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1 && h.service.outbox.depth === 0, "the first guild.sync");
    expect((await healthz()).status).toBe(200);
    await h.hub.stop();
    await until(async () => (await healthz()).status === 503 || undefined, "healthz to report the hub down");
    expect((await healthz()).body).toMatchObject({ hub: "failing", outboxDepth: 0 });
    await h.hub.start(h.hub.port);
    await until(async () => (await healthz()).status === 200 || undefined, "healthz to recover with the hub");
  });

  it("is unhealthy, and says why, when the bot is not in PRIMARY_GUILD_ID", async () => {
    h = await startHarness({ config: { PRIMARY_GUILD_ID: "199999999999999999" } });
    await until(() => h.service.shard.state === "ready" || undefined, "the session to be ready");
    const { status, body } = await healthz();
    expect(status).toBe(503);
    expect(body).toMatchObject({ guild: "absent" });
  });

  it("is unhealthy when the bot is removed from the guild, but not during an outage", async () => {
    h = await startHarness();
    await until(() => h.hub.syncs() === 1, "the first guild.sync");
    h.sim.guildOutage();
    await until(async () => (await healthz()).body.guild === "unavailable" || undefined, "the outage to be seen");
    expect((await healthz()).status).toBe(200);
    h.sim.restoreGuild();
    await until(async () => (await healthz()).body.guild === "available" || undefined, "the guild back");
    h.sim.removeBot();
    await until(async () => (await healthz()).body.guild === "absent" || undefined, "the removal to be seen");
    expect((await healthz()).status).toBe(503);
  });
});

describe("/metrics", () => {
  it("follows Prometheus conventions: seconds, a delivery histogram, a last-success timestamp, memory and event-loop lag", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1 && h.service.outbox.depth === 0, "the first guild.sync");
    const text = await (await fetch(`http://127.0.0.1:${h.service.healthPort}/metrics`)).text();
    expect(text).toMatch(/^# TYPE gateway_hub_request_duration_seconds histogram$/m);
    expect(Number(/^gateway_hub_request_duration_seconds_count (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^gateway_hub_request_duration_seconds_bucket\{le="\+Inf"\} \d+$/m);
    const lastSuccess = Number(/^gateway_hub_last_success_timestamp_seconds ([\d.]+)$/m.exec(text)?.[1]);
    expect(Math.abs(lastSuccess - Date.now() / 1000)).toBeLessThan(60);
    expect(Number(/^process_resident_memory_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(1_000_000);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds [\d.e-]+$/m);
    expect(text).not.toMatch(/_ms\b/);
  });
});
