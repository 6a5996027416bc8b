import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SSE_RETRY, SocketLimits } from "../../protocol/index.js";
import { TEST_GUILD_ID } from "./support/bindings.js";
import { edgeFetch, hubStub, newChannelId, newUserId, postInternal, TestSocket } from "./support/edge.js";
import { joined, left, roomCreated } from "./support/events.js";
import { openStream, SseReader } from "./support/sse.js";
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

/**
 * Reads a stream the Worker refused in-stream: a 200 event stream holding only the longer `retry:` advice and an
 * `end` event, so that an EventSource waits and reconnects instead of giving up for good.
 */
async function refusedInStream(response: Response): Promise<{ retry: number; end: unknown }> {
  expect(response.status).toBe(200);
  expect(response.headers.get("Content-Type")).toBe("text/event-stream; charset=utf-8");
  expect(response.headers.get("X-Seq")).toBeNull();
  const stream = new SseReader(response);
  await stream.waitForEnd();
  expect(stream.frames.map((f) => f.event)).toEqual(["end"]);
  expect(stream.frames[0]!.id).toBeUndefined();
  expect(stream.retries).toHaveLength(1);
  return { retry: stream.retries[0]!, end: JSON.parse(stream.frames[0]!.data) };
}

const inRefusedRange = (retry: number) => retry >= SSE_RETRY.refusedBaseMs && retry < SSE_RETRY.refusedBaseMs + SSE_RETRY.refusedJitterMs;

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

  it("advises a reconnection time first: the base plus a jitter of its own per stream, so clients do not return in step", async () => {
    const retries: number[] = [];
    for (let i = 0; i < 5; i++) {
      const stream = await openStream("/events", await userToken());
      await stream.waitForFrames(1, "snapshot");
      expect(stream.retries).toHaveLength(1);
      retries.push(stream.retries[0]!);
      await stream.cancel();
    }
    for (const retry of retries) {
      expect(retry).toBeGreaterThanOrEqual(SSE_RETRY.baseMs);
      expect(retry).toBeLessThan(SSE_RETRY.baseMs + SSE_RETRY.jitterMs);
    }
    expect(new Set(retries).size).toBeGreaterThan(1);
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
  it("takes only since, rooms and guildId in the URL: any other parameter is a 400 naming it, even beside a valid header", async () => {
    const token = await userToken();
    for (const [query, name] of [
      [`?token=${token}`, "token"],
      [`?access_token=${token}`, "access_token"],
      [`?id_token=${token}`, "id_token"],
      [`?key=${token}`, "key"],
      [`?rooms=1&Authorization=${token}`, "Authorization"],
      ["?since=3&Since=3", "Since"],
      ["?debug", "debug"],
    ]) {
      const response = await edgeFetch(`/events${query}`, { headers: { Authorization: `Bearer ${token}` } });
      expect(response.status, query).toBe(400);
      const body = (await response.json()) as { error: string; message: string };
      expect(body).toMatchObject({ error: "invalid_input", message: expect.stringContaining(`"${name}"`) });
      expect(body.message).not.toContain(token);
    }
    const allowed = await openStream(`/events?since=0&rooms=${newChannelId()}&guildId=${TEST_GUILD_ID}`, token);
    await allowed.waitForFrames(1, "the stream");
    await allowed.cancel();
  });

  it("does not echo a long parameter name, which could itself be a token", async () => {
    const token = await userToken();
    const response = await edgeFetch(`/events?${token}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(response.status).toBe(400);
    expect(await response.text()).not.toContain(token.slice(0, 40));
  });

  it("answers 401 JSON for a token that is not valid: no retry can make it so", async () => {
    for (const token of [await mintToken({ audience: "elsewhere" }), await mintToken({ key: "foreign" }), "not-a-jwt"]) {
      const bad = await edgeFetch("/events", { headers: { Authorization: `Bearer ${token}` } });
      expect(bad.status).toBe(401);
      expect(await bad.json()).toMatchObject({ error: "unauthorized" });
    }
    const malformed = await edgeFetch("/events", { headers: { Authorization: "Basic dXNlcjpwYXNz" } });
    expect(malformed.status).toBe(401);
  });

  it("answers an expired token in-stream, 4401 with the longer retry advice, so an EventSource waits for a renewed one", async () => {
    const response = await edgeFetch("/events", { headers: { Authorization: `Bearer ${await mintToken({ sub: newUserId(), expiresIn: -60 })}` } });
    const { retry, end } = await refusedInStream(response);
    expect(end).toEqual({ code: 4401, reason: "token expired" });
    expect(inRefusedRange(retry)).toBe(true);
  });

  it("answers a request without credentials in-stream, 4401, so a cookie that lapsed can be renewed while the EventSource waits", async () => {
    const { retry, end } = await refusedInStream(await edgeFetch("/events"));
    expect(end).toEqual({ code: 4401, reason: "missing credentials" });
    expect(inRefusedRange(retry)).toBe(true);
  });

  it("counts against the hub's socket cap per user: past it, 4429 in-stream with the longer retry advice", async () => {
    const sub = newUserId();
    const token = await mintToken({ sub });
    const streams: SseReader[] = [];
    for (let i = 0; i < SocketLimits.socketsPerUser; i++) streams.push(await openStream("/events", token));
    expect(await hubSocketsOf(sub)).toBe(SocketLimits.socketsPerUser);
    const { retry, end } = await refusedInStream(await edgeFetch("/events", { headers: { Authorization: `Bearer ${token}` } }));
    expect(end).toEqual({ code: 4429, reason: "too many connections for this user" });
    expect(inRefusedRange(retry)).toBe(true);
    expect(await hubSocketsOf(sub)).toBe(SocketLimits.socketsPerUser);
    for (const stream of streams) await stream.cancel();
  });

  it("answers HEAD with 405 and never opens a hub socket, so HEADs cannot use up the user's sockets", async () => {
    const sub = newUserId();
    const token = await mintToken({ sub });
    const heads: Response[] = [];
    for (let i = 0; i < SocketLimits.socketsPerUser; i++) heads.push(await edgeFetch("/events", { method: "HEAD", headers: { Authorization: `Bearer ${token}` } }));
    expect(await hubSocketsOf(sub)).toBe(0);
    const stream = await openStream("/events", token);
    await stream.waitForFrames(1, "snapshot");
    await stream.cancel();
    for (const head of heads) {
      expect(head.status).toBe(405);
      expect(head.headers.get("Allow")).toBe("GET");
    }
  });

  it("closes its hub socket when the client goes away", async () => {
    const sub = newUserId();
    const stream = await openStream("/events", await mintToken({ sub }));
    await stream.waitForFrames(1, "snapshot");
    expect(await hubSocketsOf(sub)).toBe(1);
    await stream.cancel();
    await expect.poll(() => hubSocketsOf(sub), { timeout: 3_000 }).toBe(0);
  });

  it("sheds a client that stopped reading: after 10 s without taking a byte, 1013, and its hub socket is released", { timeout: 30_000 }, async () => {
    const sub = newUserId();
    const response = await edgeFetch("/events", { headers: { Authorization: `Bearer ${await mintToken({ sub })}` } });
    const reader = response.body!.getReader();
    let text = "";
    while (!text.includes("event: snapshot")) text += new TextDecoder().decode((await reader.read()).value);
    // Reads nothing more: the relay's own comments pile up unread.
    await new Promise((resolve) => setTimeout(resolve, 9_000));
    expect(await hubSocketsOf(sub)).toBe(1);
    await expect.poll(() => hubSocketsOf(sub), { timeout: 6_000, interval: 250 }).toBe(0);
    const rest = new SseReader(new Response(new ReadableStream({ pull: async (controller) => {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    } })));
    await rest.waitForEnd();
    expect(rest.frames.at(-1)).toEqual({ event: "end", data: JSON.stringify({ code: 1013, reason: "client not reading" }) });
  });

  it("closes its hub socket when the client leaves before the stream has started", async () => {
    const sub = newUserId();
    const token = await mintToken({ sub });
    for (let i = 0; i < SocketLimits.socketsPerUser; i++) {
      const client = new AbortController();
      const request = edgeFetch("/events", { headers: { Authorization: `Bearer ${token}` }, signal: client.signal }).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, i)); // at different points of the handshake
      client.abort();
      await request;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expect.poll(() => hubSocketsOf(sub), { timeout: 3_000 }).toBe(0);
  });

  it("ends with an end event carrying the socket's 4401 when the token expires, even while the hub is hibernated", async () => {
    const stream = await openStream("/events", await mintToken({ sub: newUserId(), expiresIn: 3 }));
    await stream.waitForFrames(1, "snapshot");
    await evictDurableObject(hubStub(), { webSockets: "hibernate" });
    await new Promise((resolve) => setTimeout(resolve, 3_200));
    await runDurableObjectAlarm(hubStub());
    await stream.waitForEnd(4_000);
    const last = stream.frames.at(-1)!;
    expect(last.event).toBe("end");
    expect(last.id).toBeUndefined();
    expect(JSON.parse(last.data)).toEqual({ code: 4401, reason: "token expired" });
  });

  it("relays any other close of its hub socket as the end event, with the hub's code and reason", async () => {
    const sub = newUserId();
    const stream = await openStream("/events", await mintToken({ sub }));
    await stream.waitForFrames(1, "snapshot");
    await runInDurableObject(hubStub(), (_instance, state) => {
      for (const ws of state.getWebSockets()) {
        if ((ws.deserializeAttachment() as { userId?: string } | null)?.userId === sub) ws.close(1012, "service restart");
      }
    });
    await stream.waitForEnd(4_000);
    expect(stream.frames.at(-1)).toEqual({ event: "end", data: JSON.stringify({ code: 1012, reason: "service restart" }) });
  });
});
