import { afterEach, describe, expect, it } from "vitest";
import type { LogLevel } from "../src/config.js";
import { FAST, GUILD, ROOM_A, startHarness, until, USERS, type Harness } from "./support/harness.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function healthz(harness: Harness): Promise<{ status: number; body: { guilds: Record<string, { hub: string; outboxDepth: number; lease: { state: string } }> } }> {
  const response = await fetch(`http://127.0.0.1:${harness.service.healthPort}/healthz`);
  return { status: response.status, body: (await response.json()) as never };
}

/**
 * What an operator sees when gateway-node's events do not reach a hub that keeps them: the edge answers but is not
 * the hub (a route that does not exist, a firewall in front of it), or the edge does not serve the guild. Either
 * way the hub is owed everything: /healthz must not say all is well, and nothing may be dropped as if the hub had
 * refused one bad event.
 */
describe("a hub endpoint that answers, but not as the hub", () => {
  it.each([404, 403, 405])("keeps the events and reports the hub failing while the endpoint answers %i", async (status) => {
    const lines: Array<{ level: LogLevel; msg: string; fields: Record<string, unknown> }> = [];
    h = await startHarness({ deps: { log: (level, msg, fields = {}) => void lines.push({ level, msg, fields }) } });
    const harness = h;
    await until(() => harness.hub.accepted.length === 1, "the first guild.sync");
    harness.hub.failWith = status;
    harness.sim.setVoiceState(USERS[0]!, ROOM_A);
    const answered = () => harness.hub.posts.filter((post) => post.status === status).length;
    await until(() => answered() >= 3 || harness.service.outbox.stats.dropped > 0, `three answers ${status}, or a drop`);
    expect(harness.service.outbox.stats.dropped, "events dropped as if the hub had refused them").toBe(0);
    const health = await healthz(harness);
    expect(health.status).toBe(503);
    expect(health.body.guilds[GUILD]!.hub).toBe("failing");
    expect(health.body.guilds[GUILD]!.outboxDepth, "the join, kept").toBe(1);
    expect(lines.filter((line) => line.level === "warn" && line.msg.includes("check HUB_ENDPOINT")).map((line) => line.fields)).toContainEqual(
      expect.objectContaining({ guildId: GUILD, status, endpoint: harness.config.HUB_ENDPOINT }),
    );
    harness.hub.failWith = undefined;
    await until(() => harness.hub.summary().includes(`voice.joined:${USERS[0]}@${ROOM_A}`), "the kept event once the hub answers");
  });
});

describe("a guild the edge does not serve (missing from the edge's ALLOWED_GUILD_IDS)", () => {
  it("is not reported as delivered: /healthz 503 for the guild and an error naming ALLOWED_GUILD_IDS", async () => {
    const lines: Array<{ level: LogLevel; msg: string; fields: Record<string, unknown> }> = [];
    h = await startHarness({
      deps: { log: (level, msg, fields = {}) => void lines.push({ level, msg, fields }), settings: { ...FAST, hubProbeIntervalMs: 200 } },
    });
    const harness = h;
    harness.hub.unserved.add(GUILD); // before the shard plan, so before any request
    await until(() => harness.hub.leaseRequests.some((request) => request.guildId === GUILD), "a heartbeat to the lease endpoint");
    await until(async () => (await healthz(harness)).status === 503 || undefined, "/healthz to report the guild the edge does not serve", 3_000).catch(() => undefined);
    const health = await healthz(harness);
    expect(health.status, `/healthz said ${JSON.stringify(health.body.guilds[GUILD])}`).toBe(503);
    expect(health.body.guilds[GUILD]!.lease.state).not.toBe("holding");
    expect(lines.some((line) => line.level === "error" && JSON.stringify(line).includes("ALLOWED_GUILD_IDS") && JSON.stringify(line).includes(GUILD))).toBe(true);

    // Its picture is kept, not counted delivered: once the edge serves the guild it arrives, with no new session.
    await until(() => harness.service.guilds.get(GUILD)!.eventsQueued > 0, "the guild's picture");
    expect(harness.hub.accepted).toEqual([]);
    expect(harness.service.outbox.stats.delivered).toBe(0);
    harness.hub.unserved.delete(GUILD);
    await until(() => harness.hub.syncs(GUILD) === 1, "the kept guild.sync once the edge serves the guild", 3_000);
    expect((await healthz(harness)).status).toBe(200);
    expect(harness.sim.state().identifyCount).toBe(1);
  });
});

describe("a hub that rejects the signature (HUB_SECRET mismatch, or this host's clock minutes off)", () => {
  it("says so in the documented line also when only heartbeats go out (an idle holder, a standby)", async () => {
    const lines: Array<{ level: LogLevel; msg: string }> = [];
    h = await startHarness({ deps: { log: (level, msg) => void lines.push({ level, msg }) } });
    const harness = h;
    await until(() => harness.hub.syncs(GUILD) === 1 && harness.service.outbox.depth === 0 && harness.hub.holder(GUILD), "the first term, its guild.sync delivered");
    // Nothing to deliver from here on: only the lease's heartbeats reach the hub, each signed 6 minutes off its clock.
    harness.hub.clockOffsetMs = 6 * 60_000;
    await until(() => harness.service.outbox.stats.failures > 0, "a refused heartbeat");
    expect(harness.hub.posts.filter((post) => post.status === 401), "no batch went out: only heartbeats were refused").toEqual([]);
    expect(lines.filter((line) => line.level === "warn").map((line) => line.msg)).toContain("hub rejected the signature: check HUB_SECRET and this machine's clock");
  });
});
