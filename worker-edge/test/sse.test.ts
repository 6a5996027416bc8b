import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SocketLimits } from "../../protocol/index.js";
import { TEST_GUILD_ID } from "./support/bindings.js";
import { edgeFetch, hubStub, newChannelId, newUserId, postInternal, TestSocket } from "./support/edge.js";
import { joined, left, roomCreated } from "./support/events.js";
import { openStream, type SseReader } from "./support/sse.js";
import { mintToken } from "./support/tokens.js";

async function ingest(...events: unknown[]): Promise<void> {
  const response = await postInternal({ events });
  expect(response.status).toBe(200);
}

const userToken = () => mintToken({ sub: newUserId() });

/** Open sockets the hub holds whose attachment names `userId`, the relay's included. */
function hubSocketsOf(userId: string): Promise<number> {
  return runInDurableObject(hubStub(), (_instance, state) =>
    state.getWebSockets().filter((ws) => ws.readyState === 1 && (ws.deserializeAttachment() as { userId?: string } | null)?.userId === userId).length,
  );
}

describe("GET /events framing", () => {
  it("starts with the snapshot, its seq as the id, the ack's guild and seq in headers; then each event framed by name", async () => {
    const stream = await openStream("/events", await userToken());
    expect(stream.response.headers.get("Content-Type")).toBe("text/event-stream; charset=utf-8");
    expect(stream.response.headers.get("Cache-Control")).toContain("no-cache");
    expect(stream.response.headers.get("X-Guild-Id")).toBe(TEST_GUILD_ID);
    const seq = Number(stream.response.headers.get("X-Seq"));
    const [snapshot] = await stream.waitForFrames(1, "snapshot");
    expect(snapshot).toMatchObject({ id: String(seq), event: "snapshot" });
    expect(JSON.parse(snapshot!.data)).toMatchObject({ v: 1, type: "snapshot", seq });

    const room = newChannelId();
    const user = newUserId();
    await ingest(roomCreated(room), joined(room, user, "Mira"));
    const frames = await stream.waitForFrames(3, "room.created and voice.joined");
    expect(frames.slice(1).map((f) => [f.id, f.event])).toEqual([[String(seq + 1), "room.created"], [String(seq + 2), "voice.joined"]]);
    expect(JSON.parse(frames[2]!.data)).toMatchObject({ v: 1, type: "event", event: "voice.joined", seq: seq + 2, payload: { channelId: room, userId: user, username: "Mira" } });
    await stream.cancel();
  });

  it("is served under /api too", async () => {
    const stream = await openStream("/api/events", await userToken());
    expect((await stream.waitForFrames(1, "snapshot"))[0]!.event).toBe("snapshot");
    await stream.cancel();
  });

  it("sends the same bytes as the socket's messages as data, in the same order", async () => {
    const socket = await TestSocket.open();
    await socket.auth(await userToken());
    const stream = await openStream("/events", await userToken());
    const room = newChannelId();
    const [a, b] = [newUserId(), newUserId()];
    await ingest(roomCreated(room), joined(room, a), joined(room, b), left(room, a));
    const socketEvents = await socket.waitForEvents(4, "four events on the socket");
    await stream.waitForFrames(5, "snapshot and four events");
    const socketRaw = socket.raw.filter((raw) => socketEvents.some((e) => raw.includes(`"seq":${e.seq}}`)));
    expect(stream.frames.slice(1).map((f) => f.data)).toEqual(socketRaw);
    await stream.cancel();
  });
});

describe("GET /events CORS", () => {
  it("lets an allowed origin send Last-Event-ID and read the ack headers, like the other routes", async () => {
    const preflight = await edgeFetch("/events", {
      method: "OPTIONS",
      headers: { Origin: "https://app.test", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,last-event-id" },
    });
    expect(preflight.headers.get("Access-Control-Allow-Origin")).toBe("https://app.test");
    expect(preflight.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toContain("last-event-id");
    const stream = await openStream("/events", await userToken(), { Origin: "https://app.test" });
    expect(stream.response.headers.get("Access-Control-Allow-Origin")).toBe("https://app.test");
    expect(stream.response.headers.get("Access-Control-Expose-Headers")).toContain("X-Guild-Id");
    expect(stream.response.headers.get("Access-Control-Expose-Headers")).toContain("X-Seq");
    await stream.cancel();
    const denied = await edgeFetch("/events", { method: "OPTIONS", headers: { Origin: "https://evil.test", "Access-Control-Request-Method": "GET" } });
    expect(denied.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});

describe("GET /events resume", () => {
  it("replays exactly the missed events after Last-Event-ID, with no snapshot", async () => {
    const token = await userToken();
    const first = await openStream("/events", token);
    const [snapshot] = await first.waitForFrames(1, "snapshot");
    await first.cancel();
    const room = newChannelId();
    const user = newUserId();
    await ingest(roomCreated(room), joined(room, user));
    const resumed = await openStream("/events", token, { "Last-Event-ID": snapshot!.id! });
    const frames = await resumed.waitForFrames(2, "the two missed events");
    const seen = Number(snapshot!.id);
    expect(frames.map((f) => [f.id, f.event])).toEqual([[String(seen + 1), "room.created"], [String(seen + 2), "voice.joined"]]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(resumed.frames).toHaveLength(2);
    await resumed.cancel();
  });

  it("takes ?since= like Last-Event-ID, and sends a fresh snapshot when the hub cannot replay the gap", async () => {
    const token = await userToken();
    const probe = await openStream("/events", token);
    const seq = Number((await probe.waitForFrames(1, "snapshot"))[0]!.id);
    await probe.cancel();
    await ingest(roomCreated(newChannelId()));
    const bySince = await openStream(`/events?since=${seq}`, token);
    expect((await bySince.waitForFrames(1, "the missed event"))[0]).toMatchObject({ id: String(seq + 1), event: "room.created" });
    await bySince.cancel();
    const ahead = await openStream("/events?since=900000000", token);
    expect((await ahead.waitForFrames(1, "a snapshot"))[0]).toMatchObject({ id: String(seq + 1), event: "snapshot" });
    await ahead.cancel();
  });

  it("refuses a Last-Event-ID that is not a seq", async () => {
    const response = await edgeFetch("/events", { headers: { Authorization: `Bearer ${await userToken()}`, "Last-Event-ID": "abc" } });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_input", message: "invalid Last-Event-ID" });
  });
});

describe("GET /events rooms filter", () => {
  it("sends voice events only for the rooms asked for, room events always, and empties other rooms in the snapshot", async () => {
    const [mine, other] = [newChannelId(), newChannelId()];
    const [a, b] = [newUserId(), newUserId()];
    await ingest(roomCreated(mine), roomCreated(other), joined(other, b));
    const stream = await openStream(`/events?rooms=${mine}`, await userToken());
    const [snapshot] = await stream.waitForFrames(1, "snapshot");
    const rooms = (JSON.parse(snapshot!.data) as { payload: { rooms: Array<{ channelId: string; members: unknown[] }> } }).payload.rooms;
    expect(rooms.find((r) => r.channelId === other)?.members).toEqual([]);
    await ingest(joined(other, a), joined(mine, a), roomCreated(newChannelId()));
    const frames = await stream.waitForFrames(3, "voice.joined in mine and room.created");
    expect(frames.slice(1).map((f) => f.event)).toEqual(["voice.joined", "room.created"]);
    expect(JSON.parse(frames[1]!.data)).toMatchObject({ payload: { channelId: mine, userId: a } });
    await stream.cancel();
  });

  it("refuses rooms that are not snowflakes", async () => {
    const response = await edgeFetch("/events?rooms=123,abc", { headers: { Authorization: `Bearer ${await userToken()}` } });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_input", message: "invalid rooms" });
  });
});

describe("GET /events authentication", () => {
  it("refuses a token in the URL with 400, even beside a valid Authorization header", async () => {
    const token = await userToken();
    for (const query of [`?token=${token}`, `?access_token=${token}`, `?rooms=1&Authorization=${token}`]) {
      const response = await edgeFetch(`/events${query}`, { headers: { Authorization: `Bearer ${token}` } });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: "invalid_input", message: expect.stringContaining("Authorization: Bearer") });
    }
  });

  it("answers 401 JSON without a bearer token or with a bad one", async () => {
    const missing = await edgeFetch("/events");
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ error: "unauthorized" });
    const bad = await edgeFetch("/events", { headers: { Authorization: `Bearer ${await mintToken({ audience: "elsewhere" })}` } });
    expect(bad.status).toBe(401);
  });

  it("counts against the hub's socket cap per user: past it, 429 JSON before any stream", async () => {
    const sub = newUserId();
    const token = await mintToken({ sub });
    const streams: SseReader[] = [];
    for (let i = 0; i < SocketLimits.socketsPerUser; i++) streams.push(await openStream("/events", token));
    expect(await hubSocketsOf(sub)).toBe(SocketLimits.socketsPerUser);
    const refused = await edgeFetch("/events", { headers: { Authorization: `Bearer ${token}` } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBe("30");
    expect(await refused.json()).toMatchObject({ error: "rate_limited", message: "too many connections for this user" });
    for (const stream of streams) await stream.cancel();
  });

  it("closes its hub socket when the client goes away", async () => {
    const sub = newUserId();
    const stream = await openStream("/events", await mintToken({ sub }));
    await stream.waitForFrames(1, "snapshot");
    expect(await hubSocketsOf(sub)).toBe(1);
    await stream.cancel();
    await expect.poll(() => hubSocketsOf(sub), { timeout: 3_000 }).toBe(0);
  });

  it("ends with an error event carrying the socket's 4401 when the token expires, even while the hub is hibernated", async () => {
    const stream = await openStream("/events", await mintToken({ sub: newUserId(), expiresIn: 2 }));
    await stream.waitForFrames(1, "snapshot");
    await evictDurableObject(hubStub(), { webSockets: "hibernate" });
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    await runDurableObjectAlarm(hubStub());
    await stream.waitForEnd(4_000);
    const last = stream.frames.at(-1)!;
    expect(last.event).toBe("error");
    expect(last.id).toBeUndefined();
    expect(JSON.parse(last.data)).toEqual({ code: 4401, reason: "token expired" });
  });

  it("relays any other close of its hub socket as the error frame, with the hub's code and reason", async () => {
    const sub = newUserId();
    const stream = await openStream("/events", await mintToken({ sub }));
    await stream.waitForFrames(1, "snapshot");
    await runInDurableObject(hubStub(), (_instance, state) => {
      for (const ws of state.getWebSockets()) {
        if ((ws.deserializeAttachment() as { userId?: string } | null)?.userId === sub) ws.close(1012, "service restart");
      }
    });
    await stream.waitForEnd(4_000);
    expect(stream.frames.at(-1)).toEqual({ event: "error", data: JSON.stringify({ code: 1012, reason: "service restart" }) });
  });
});
