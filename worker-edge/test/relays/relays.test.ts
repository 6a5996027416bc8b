import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { BatchFrame, EventEnvelope, type ObjectStats } from "../../../protocol/index.js";
import { linkRequest } from "../../src/relay/link.js";
import { relayBindings, TEST_GUILD_ID, TEST_HUB_SECRET, TEST_RELAY_NAMES } from "../support/bindings.js";
import { authed, edgeFetch, guildStats, hubStub, newChannelId, newUserId, postInternal, TestSocket } from "../support/edge.js";
import { joined, roomCreated } from "../support/events.js";
import { openStream } from "../support/sse.js";
import { mintToken } from "../support/tokens.js";

const MAX_PER_RELAY = Number(relayBindings.RELAY_MAX_SOCKETS);
const relayStub = (name: string) => env.LOBBY_RELAY.get(env.LOBBY_RELAY.idFromName(name));
const opened: TestSocket[] = [];

afterEach(async () => {
  for (const socket of opened.splice(0)) if (!socket.closed) socket.ws.close(1000);
  await new Promise((resolve) => setTimeout(resolve, 50)); // the relays see the closes before the next test counts
});

async function liveSocket(extra: Record<string, unknown> = {}, user = newUserId()): Promise<TestSocket> {
  const socket = await TestSocket.open();
  opened.push(socket);
  await socket.auth(await mintToken({ sub: user }), extra);
  if (extra.since === undefined) await socket.waitFor((m) => m.type === "snapshot", "snapshot");
  return socket;
}

async function ingest(...events: unknown[]): Promise<void> {
  expect((await postInternal({ events })).status).toBe(200);
}

/** The seqs a socket received (batch frames unpacked), and whether a snapshot came. */
function seqsOf(socket: TestSocket): number[] {
  const seqs: number[] = [];
  for (const raw of socket.raw) {
    if (raw === "pong") continue;
    const message = JSON.parse(raw) as { type: string };
    if (message.type === "event") seqs.push(EventEnvelope.parse(message).seq);
    if (message.type === "batch") seqs.push(...BatchFrame.parse(message).events.map((e) => e.seq));
  }
  return seqs;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
/** The guild's seq, as GET /rooms reports it. */
const hubSeq = async () => (await (await edgeFetch("/rooms", authed(await mintToken()))).json<{ seq: number }>()).seq;
const total = (relays: ObjectStats[], field: "sends" | "tokensVerified" | "flushes" | "sockets") => relays.reduce((sum, r) => sum + r[field], 0);

/** Closes the hub's end of every relay link, as a network cut between them would. */
async function cutLinks(): Promise<number> {
  return runInDurableObject(hubStub(), (_hub, state) => {
    const links = state.getWebSockets("relay");
    for (const ws of links) ws.close(1011, "cut");
    return links.length;
  });
}

/**
 * Resets a relay as an eviction, a crash or a deploy would: its instance and its sockets go. (workerd's test
 * eviction waits for an object to go idle, which a linked relay never does: its link keeps it awake.)
 */
async function abortRelay(name: string): Promise<void> {
  await runInDurableObject(relayStub(name), (_relay, state) => state.abort("reset by the test")).catch(() => undefined);
}

async function waitForSeqs(socket: TestSocket, expected: number[], what: string): Promise<void> {
  await expect.poll(() => seqsOf(socket), { timeout: 5_000, message: what }).toEqual(expected);
}

describe("relays hold the sockets; the hub publishes each flush once per relay", () => {
  it("delivers every event through the relays; the hub verifies no token and sends only to its relays", async () => {
    const before = await guildStats();
    const sockets = [await liveSocket({ batch: true }), await liveSocket(), await liveSocket({ batch: true }), await liveSocket()];
    const room = newChannelId();
    const first = (await hubSeq()) + 1;
    await ingest(roomCreated(room));
    for (let i = 0; i < 10; i++) await ingest(joined(room, newUserId()));
    const last = first + 10;
    for (const socket of sockets) await waitForSeqs(socket, range(first, last), "every event, in order, once");

    const after = await guildStats();
    const hub = { sends: after.hub.sends - before.hub.sends, relaySends: after.hub.relaySends - before.hub.relaySends, flushes: after.hub.flushes - before.hub.flushes };
    expect(after.hub.tokensVerified).toBe(0); // every token was verified by a relay
    expect(hub.sends).toBe(0);
    expect(after.hub.relays.length).toBeGreaterThanOrEqual(1);
    // One frame per linked relay per flush, whatever the relays' audiences.
    expect(hub.relaySends).toBe(hub.flushes * after.hub.relays.length);
    const verified = total(after.relays, "tokensVerified") - total(before.relays, "tokensVerified");
    expect(verified).toBe(sockets.length);
    expect(total(after.relays, "sockets")).toBe(sockets.length);
  });

  it("serves a resume from the relay's own buffer: exactly the missed events, no snapshot", async () => {
    const user = newUserId();
    const socket = await liveSocket({}, user);
    const room = newChannelId();
    await ingest(roomCreated(room));
    const seen = await hubSeq();
    await waitForSeqs(socket, [seen], "the first event");
    socket.ws.close(1000);
    for (let i = 0; i < 3; i++) await ingest(joined(room, newUserId()));
    const resumed = await liveSocket({ since: seen }, user);
    await waitForSeqs(resumed, range(seen + 1, seen + 3), "the three missed events");
    expect(resumed.messages.some((m) => m.type === "snapshot")).toBe(false);
  });

  it("fills the gap after the relay→hub link is cut: events published meanwhile arrive in order, once", async () => {
    const socket = await liveSocket({ batch: true });
    const room = newChannelId();
    const first = (await hubSeq()) + 1;
    await ingest(roomCreated(room));
    expect(await cutLinks()).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 5; i++) await ingest(joined(room, newUserId()));
    await waitForSeqs(socket, range(first, first + 5), "the events published while the link was down");
    expect(socket.closed).toBeUndefined(); // the client never noticed
  });

  it("keeps clients connected across a hub eviction and fills the gap when the relays link again", async () => {
    const socket = await liveSocket();
    const room = newChannelId();
    const first = (await hubSeq()) + 1;
    await ingest(roomCreated(room));
    await evictDurableObject(hubStub(), { webSockets: "close" });
    for (let i = 0; i < 4; i++) await ingest(joined(room, newUserId()));
    const last = (await guildStats()).hub;
    await waitForSeqs(socket, range(first, first + 4), "the events published after the eviction");
    expect(last.tokensVerified).toBe(0);
    expect(socket.closed).toBeUndefined();
  });

  it("keeps delivering to relays across a hub hibernation: its links survive it", async () => {
    const socket = await liveSocket();
    const room = newChannelId();
    const first = (await hubSeq()) + 1;
    await ingest(roomCreated(room));
    await waitForSeqs(socket, [first], "the first event");
    await evictDurableObject(hubStub(), { webSockets: "hibernate" });
    await ingest(joined(room, newUserId()));
    await waitForSeqs(socket, [first, first + 1], "the event after the hub woke");
    expect(socket.closed).toBeUndefined();
  });

  it("a relay reset (evicted, crashed, redeployed): its clients resume exactly on a relay that links again", async () => {
    const user = newUserId();
    const socket = await liveSocket({}, user);
    const room = newChannelId();
    await ingest(roomCreated(room));
    const seen = await hubSeq();
    await waitForSeqs(socket, [seen], "the first event");
    for (const name of TEST_RELAY_NAMES) await abortRelay(name);
    await socket.waitForClose();
    await ingest(joined(room, newUserId()), joined(room, newUserId()));
    const resumed = await liveSocket({ since: seen }, user);
    await waitForSeqs(resumed, [seen + 1, seen + 2], "the missed events");
    expect(resumed.messages.some((m) => m.type === "snapshot")).toBe(false);
  });

  it("sends a socket to another relay when one is full, and refuses 4429 when every relay is", async () => {
    const full: TestSocket[] = [];
    for (let i = 0; i < MAX_PER_RELAY * TEST_RELAY_NAMES.length; i++) {
      const socket = await TestSocket.open();
      opened.push(socket);
      full.push(socket);
    }
    expect(full.every((socket) => socket.closed === undefined)).toBe(true);
    const stats = await Promise.all(TEST_RELAY_NAMES.map((name) => runInDurableObject(relayStub(name), (_relay, state) => state.getWebSockets().length)));
    expect(stats).toEqual(TEST_RELAY_NAMES.map(() => MAX_PER_RELAY));
    const refused = await TestSocket.open();
    expect(await refused.waitForClose()).toMatchObject({ code: 4429, reason: "every relay of this region is full" });
  });

  it("refuses a relay link that is not signed with HUB_SECRET", async () => {
    const forged = async (secret: string) =>
      hubStub().fetch(await linkRequest(secret, TEST_GUILD_ID, { relay: `${TEST_GUILD_ID}/any/9`, since: undefined }));
    const unsigned = new Request(`https://guild-hub/relay-link?guildId=${TEST_GUILD_ID}&relay=${TEST_GUILD_ID}%2Fany%2F9`, { headers: { Upgrade: "websocket" } });
    for (const response of [await hubStub().fetch(unsigned), await forged("not-the-hub-secret-0123456789")]) {
      expect(response.status).toBe(401);
      expect(response.webSocket).toBeNull();
    }
    expect((await guildStats()).hub.relays).not.toContain(`${TEST_GUILD_ID}/any/9`);
    // The same request signed with the secret is a link.
    const genuine = await forged(TEST_HUB_SECRET);
    expect(genuine.status).toBe(101);
    genuine.webSocket!.accept();
    genuine.webSocket!.close(1000);
  });

  it("serves an event stream from a relay with the same framing", async () => {
    const before = await guildStats();
    const stream = await openStream("/events", await mintToken({ sub: newUserId() }));
    const seq = Number(stream.response.headers.get("X-Seq"));
    await stream.waitForFrames(1, "snapshot");
    const room = newChannelId();
    await ingest(roomCreated(room));
    const frames = await stream.waitForFrames(2, "room.created");
    expect(frames[1]).toMatchObject({ id: String(seq + 1), event: "room.created" });
    await stream.cancel();
    const after = await guildStats();
    expect(after.hub.tokensVerified).toBe(before.hub.tokensVerified);
    expect(total(after.relays, "tokensVerified")).toBeGreaterThan(total(before.relays, "tokensVerified"));
  });
});
