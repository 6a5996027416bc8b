import { afterEach, describe, expect, it } from "vitest";
import { memorySessionStore } from "../src/session-store.js";
import { startGatewayService, type GatewayService } from "../src/service.js";
import { FAST, startHarness, until, ROOM_A, USERS, type Harness } from "./support/harness.js";
import { silentLogger } from "../src/log.js";

let h: Harness;
let newer: GatewayService | undefined;
afterEach(async () => {
  await newer?.stop().catch(() => undefined);
  newer = undefined;
  await h?.close();
});

async function healthz(service: GatewayService): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${service.healthPort}/healthz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("two gateway processes at once", () => {
  it("lets the newer one serve the guild and has the older one stand down, idle and unhealthy", async () => {
    h = await startHarness();
    await until(() => h.hub.accepted.length === 1, "the first gateway's guild.sync");
    await new Promise((resolve) => setTimeout(resolve, 5)); // a later start: a later epoch
    newer = await startGatewayService(h.config, { log: silentLogger, settings: FAST, sessionStore: memorySessionStore() });
    await until(() => h.hub.accepted.filter((e) => e.event === "guild.sync").length === 2, "the newer gateway's guild.sync");

    h.sim.setVoiceState(USERS[0]!, ROOM_A);
    await until(() => /^gateway_superseded 1$/m.test(h.service.metricsText()), "the older gateway to stand down");
    const older = await healthz(h.service);
    expect(older.status, JSON.stringify(older.body)).toBe(503);
    expect(String(older.body.hub)).toContain("superseded");
    expect(h.hub.posts.some((post) => post.status === 409)).toBe(true);

    // The newer one delivered the join exactly once; the older one sends nothing more.
    await until(() => h.hub.summary().includes(`voice.joined:${USERS[0]}@${ROOM_A}`), "the join from the newer gateway");
    const postsAfter = h.hub.posts.length;
    h.sim.setVoiceState(USERS[0]!, null);
    await until(() => h.hub.summary().includes(`voice.left:${USERS[0]}@${ROOM_A}`), "the leave from the newer gateway");
    await until(() => newer!.outbox.depth === 0, "the newer gateway's outbox to drain");
    expect(h.hub.posts.slice(postsAfter).every((post) => post.status === 200)).toBe(true);
    expect(h.hub.summary().filter((s) => s.startsWith("voice.")).length).toBe(2);
    expect((await healthz(newer)).status).toBe(200);
  });
});
