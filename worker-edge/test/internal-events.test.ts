import { describe, expect, it, vi } from "vitest";
import { edgeFetch, newChannelId, newUserId, postInternal, postLease, TestSocket } from "./support/edge.js";
import { joined, roomCreated } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

describe("POST /internal/events", () => {
  it("accepts a signed batch and reports what it accepted", async () => {
    const room = newChannelId();
    const response = await postInternal({ events: [roomCreated(room), joined(room, newUserId())] });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, accepted: 2, duplicates: 0 });
  });

  it("accepts the single-event form with an id", async () => {
    const response = await postInternal(roomCreated(newChannelId()));
    expect(await response.json()).toEqual({ ok: true, accepted: 1, duplicates: 0 });
  });

  it.each([
    ["a wrong secret", { secret: "another-secret-0123456789abcdef" }, 0],
    ["a timestamp 6 minutes old", {}, -360_000],
    ["a timestamp 6 minutes ahead", {}, 360_000],
  ])("rejects %s with 401", async (_label, options, skewMs) => {
    // Applied when the test runs (a table value would age); the exact boundary is tested in protocol/test.
    const response = await postInternal({ events: [roomCreated(newChannelId())] }, { ...options, nowMs: Date.now() + skewMs });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: "unauthorized" });
  });

  it("rejects a missing signature with 401", async () => {
    const response = await edgeFetch("/internal/events", { method: "POST", body: JSON.stringify({ events: [] }) });
    expect(response.status).toBe(401);
  });

  it("acknowledges a replayed id as a duplicate and does not broadcast it again", async () => {
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ sub: newUserId() }));
    const room = newChannelId();
    const event = roomCreated(room);
    await postInternal({ events: [event] });
    const replay = await postInternal({ events: [event, joined(room, newUserId())] });
    expect(await replay.json()).toEqual({ ok: true, accepted: 1, duplicates: 1 });
    await socket.waitForEvents(2, "room.created and voice.joined");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(socket.events().map((e) => e.event)).toEqual(["room.created", "voice.joined"]);
  });

  it("acknowledges and drops events for a guild it does not serve, saying it does not serve it", async () => {
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ sub: newUserId() }));
    const foreign = { id: "x:1", event: "room.created", payload: { guildId: "999999999999999999", channelId: newChannelId(), name: "Elsewhere", userLimit: 2 } };
    const response = await postInternal({ events: [foreign] });
    expect(await response.json()).toEqual({ ok: true, accepted: 1, duplicates: 0, served: false });
    await postInternal({ events: [roomCreated(newChannelId())] });
    await socket.waitForEvents(1, "the served guild's event");
    expect(socket.events()).toHaveLength(1);
  });

  it("says in its log which guild it does not serve, so a guild missing from ALLOWED_GUILD_IDS is found", async () => {
    const warned = vi.spyOn(console, "warn");
    const unserved = "999999999999999998";
    const foreign = { id: "x:3", event: "room.created", payload: { guildId: unserved, channelId: newChannelId(), name: "Elsewhere", userLimit: 2 } };
    const gateway = { instance: "gw-1", term: 0 };
    expect((await postInternal({ events: [foreign], gateway })).status).toBe(200);
    const lease = await postLease({ guildId: unserved, gateway });
    expect(lease.status).toBe(200);
    expect(await lease.json(), "no lease, and why").toEqual({ ok: true, served: false });
    const lines = warned.mock.calls.flat().map(String).filter((line) => line.includes('"edge does not serve this guild"'));
    expect(lines.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ guildId: unserved, instance: "gw-1", path: "/internal/events", events: 1 }),
      expect.objectContaining({ guildId: unserved, instance: "gw-1", path: "/internal/lease" }),
    ]);
    warned.mockRestore();
  });

  it("rejects a malformed event with 400 and the issues", async () => {
    const response = await postInternal({ events: [{ id: "x:2", event: "voice.joined", payload: { guildId: "1" } }] });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_input" });
    const notJson = await postInternal(undefined, { raw: "{oops" });
    expect(notJson.status).toBe(400);
  });

  it("rejects a body over 1 MiB with 413", async () => {
    const response = await postInternal(undefined, { raw: JSON.stringify({ events: [], pad: "p".repeat(1_100_000) }) });
    expect(response.status).toBe(413);
  });
});
