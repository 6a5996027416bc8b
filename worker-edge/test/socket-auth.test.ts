import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { hubStub, newUserId, TestSocket } from "./support/edge.js";
import { mintToken } from "./support/tokens.js";

describe("WebSocket authentication", () => {
  it("acknowledges a valid first-message auth, then sends a snapshot at the same seq", async () => {
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ sub: newUserId() }));
    const snapshot = await socket.waitFor((m) => m.type === "snapshot", "snapshot");
    const ack = socket.messages[0]!;
    expect(ack).toMatchObject({ v: 1, type: "ack", event: "auth.ok", guildId: "100000000000000001" });
    expect(snapshot.seq).toBe(ack.seq);
  });

  it("closes 4401 for a bad token", async () => {
    const socket = await TestSocket.open();
    socket.send({ type: "auth", token: await mintToken({ audience: "elsewhere" }) });
    expect((await socket.waitForClose()).code).toBe(4401);
  });

  it("closes 4408 when no auth arrives within 5 s", async () => {
    const socket = await TestSocket.open();
    expect((await socket.waitForClose(9_000)).code).toBe(4408);
  });

  it("closes 4409 for malformed JSON and for an unknown message type", async () => {
    const garbage = await TestSocket.open();
    garbage.send("{not json");
    expect((await garbage.waitForClose()).code).toBe(4409);
    const unknown = await TestSocket.open();
    unknown.send({ type: "subscribe", rooms: [] });
    expect((await unknown.waitForClose()).code).toBe(4409);
  });

  it("closes 1009 for a message over 16 KiB", async () => {
    const socket = await TestSocket.open();
    socket.send({ type: "auth", token: "x".repeat(17_000) });
    expect((await socket.waitForClose()).code).toBe(1009);
  });

  it("answers a text ping with pong", async () => {
    const socket = await TestSocket.open();
    socket.send("ping");
    await expect.poll(() => socket.raw.includes("pong"), { timeout: 2_000 }).toBe(true);
  });

  it("closes 4401 when the token expires, even while the hub is hibernated", async () => {
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ expiresIn: 3 }));
    await evictDurableObject(hubStub(), { webSockets: "hibernate" });
    await new Promise((resolve) => setTimeout(resolve, 3_200));
    await runDurableObjectAlarm(hubStub());
    const closed = await socket.waitForClose(4_000);
    expect(closed).toMatchObject({ code: 4401, reason: "token expired" });
  });

  it("keeps a socket whose client sent a fresh token before expiry", async () => {
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ expiresIn: 3 }));
    socket.send({ type: "auth", token: await mintToken({ expiresIn: 600 }) });
    await expect.poll(() => socket.messages.filter((m) => m.type === "ack").length).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 3_200));
    await runDurableObjectAlarm(hubStub());
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(socket.closed).toBeUndefined();
  });

  it("refuses a refreshed token for a different user", async () => {
    const socket = await TestSocket.open();
    await socket.auth(await mintToken({ sub: "200000000000000001" }));
    socket.send({ type: "auth", token: await mintToken({ sub: "200000000000000002" }) });
    expect((await socket.waitForClose()).code).toBe(4401);
  });
});
