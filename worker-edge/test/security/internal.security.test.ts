import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { channelOf, signHubBody } from "../../../protocol/index.js";
import { TEST_HUB_SECRET } from "../support/bindings.js";
import { newChannelId, newUserId } from "../support/edge.js";
import { joined, roomCreated } from "../support/events.js";
import { captureConsole, expectNoSecretsLeaked, GoodClient, GUILD_ID, probe, sleep, type Probe } from "./support/hostile.js";

/** Hostile input on POST /internal/events (gateway → hub), the HMAC-signed path. */

const MAX_SKEW_SECONDS = 300;
const MAX_INTERNAL_BODY_BYTES = 1024 * 1024;
/** How much of a 32 MiB streamed body the Worker may pull before answering (it must not need all of it). */
const STREAM_TOTAL_BYTES = 32 * 1024 * 1024;
const STREAM_CHUNK_BYTES = 64 * 1024;
const MAX_PULLED_BYTES_FOR_OVERSIZE = 4 * 1024 * 1024;
/** With a stale timestamp nothing of the body should be needed; a runtime may prefetch a chunk or two. */
const MAX_PULLED_BYTES_FOR_STALE = 2 * STREAM_CHUNK_BYTES;

const FOREIGN_GUILD_ID = "999999999999999999";

let good: GoodClient;
beforeEach(async () => {
  captureConsole();
  good = await GoodClient.open();
});
afterEach(() => {
  good.close();
  vi.restoreAllMocks();
});

const nowSeconds = () => Math.floor(Date.now() / 1000);

interface SendOptions {
  secret?: string;
  timestamp?: string | null;
  signature?: string | null | ((correct: string) => string);
  /** Sign this text but send `body`. */
  signedBody?: string;
}

async function send(body: string, options: SendOptions = {}): Promise<Probe & { correctSignature: string }> {
  const ts = options.timestamp === undefined ? String(nowSeconds()) : options.timestamp;
  const correctSignature = await signHubBody(options.secret ?? TEST_HUB_SECRET, Number(ts ?? nowSeconds()), options.signedBody ?? body);
  const signature =
    options.signature === undefined ? correctSignature : typeof options.signature === "function" ? options.signature(correctSignature) : options.signature;
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (ts !== null) headers["X-Hub-Timestamp"] = ts;
  if (signature !== null) headers["X-Hub-Signature"] = signature;
  const response = await probe("/internal/events", { method: "POST", headers, body });
  return { ...response, correctSignature };
}

const sendJson = (value: unknown, options?: SendOptions) => send(JSON.stringify(value), options);

describe("signature and timestamp", () => {
  const cases: Array<[string, (body: string) => SendOptions | Promise<SendOptions>]> = [
    ["a forged signature", () => ({ signature: `sha256=${"ab".repeat(32)}` })],
    ["a signature missing its last character", () => ({ signature: (s) => s.slice(0, -1) })],
    ["a signature truncated to half", () => ({ signature: (s) => s.slice(0, 7 + 32) })],
    ["only the sha256= prefix", () => ({ signature: "sha256=" })],
    ["the hex without its sha256= prefix", () => ({ signature: (s) => s.slice(7) })],
    ["an extra character appended", () => ({ signature: (s) => `${s}0` })],
    ["a sha1= prefix", () => ({ signature: (s) => s.replace("sha256=", "sha1=") })],
    ["an empty signature", () => ({ signature: "" })],
    ["a wrong secret", () => ({ secret: "another-secret-0123456789abcdef" })],
    ["the secret minus its last character", () => ({ secret: TEST_HUB_SECRET.slice(0, -1) })],
    ["a signature over another body", () => ({ signedBody: JSON.stringify({ events: [] }) })],
    [
      "a signature made for the previous second",
      async (body) => ({ timestamp: String(nowSeconds()), signature: await signHubBody(TEST_HUB_SECRET, nowSeconds() - 1, body) }),
    ],
    [`a timestamp ${MAX_SKEW_SECONDS + 5} s old`, () => ({ timestamp: String(nowSeconds() - MAX_SKEW_SECONDS - 5) })],
    ["a timestamp an hour old", () => ({ timestamp: String(nowSeconds() - 3600) })],
    ["timestamp 0", () => ({ timestamp: "0" })],
    [`a timestamp ${MAX_SKEW_SECONDS + 5} s ahead`, () => ({ timestamp: String(nowSeconds() + MAX_SKEW_SECONDS + 5) })],
    ["a timestamp a day ahead", () => ({ timestamp: String(nowSeconds() + 86_400) })],
    ["a timestamp in milliseconds", () => ({ timestamp: String(Date.now()) })],
    ["a non-numeric timestamp", () => ({ timestamp: "now" })],
    ["a negative timestamp", () => ({ timestamp: `-${nowSeconds()}` })],
    ["a timestamp with a plus sign", () => ({ timestamp: `+${nowSeconds()}` })],
    ["a fractional timestamp", () => ({ timestamp: `${nowSeconds()}.0` })],
    ["an exponent timestamp", () => ({ timestamp: "1.7e9" })],
    ["no X-Hub-Timestamp", () => ({ timestamp: null })],
    ["no X-Hub-Signature", () => ({ signature: null })],
    ["neither header", () => ({ timestamp: null, signature: null })],
  ];

  it.each(cases)("answers 401 for %s, broadcasts nothing and keeps the good client", async (_label, make) => {
    const body = JSON.stringify({ events: [roomCreated(newChannelId(), "Forged")] });
    const response = await send(body, await make(body));
    expect(response.status, response.text.slice(0, 300)).toBe(401);
    expect(response.json).toMatchObject({ error: "unauthorized" });
    expect(response.text, "the 401 reveals the expected signature").not.toContain(response.correctSignature.slice(7));
    await good.expectStillServed();
  });

  it("accepts a gateway clock 65 s behind and one 65 s ahead: a minute of skew plus latency (control)", async () => {
    const a = newChannelId();
    const b = newChannelId();
    expect((await sendJson({ events: [roomCreated(a)] }, { timestamp: String(nowSeconds() - 65) })).status).toBe(200);
    expect((await sendJson({ events: [roomCreated(b)] }, { timestamp: String(nowSeconds() + 65) })).status).toBe(200);
    await good.expectStillServed([a, b]);
  });
});

describe("replays and ids", () => {
  it("acknowledges a replayed id as a duplicate and does not broadcast it again", async () => {
    const channelId = newChannelId();
    const event = roomCreated(channelId);
    const first = await sendJson({ events: [event] });
    expect(first.json).toEqual({ ok: true, accepted: 1, duplicates: 0 });
    await good.socket.waitFor((m) => m.type === "event" && channelOf(m) === channelId, "the first delivery");
    const replay = await sendJson({ events: [event] });
    expect(replay.status).toBe(200);
    expect(replay.json).toEqual({ ok: true, accepted: 0, duplicates: 1 });
    await good.expectStillServed([channelId]);
    expect(good.socket.events().filter((e) => channelOf(e) === channelId)).toHaveLength(1);
  });

  it("treats a byte-identical replay of a signed request (inside the window) as a duplicate", async () => {
    const channelId = newChannelId();
    const body = JSON.stringify({ events: [roomCreated(channelId)] });
    const ts = String(nowSeconds());
    const signature = await signHubBody(TEST_HUB_SECRET, Number(ts), body);
    await send(body, { timestamp: ts, signature });
    const replay = await send(body, { timestamp: ts, signature });
    expect(replay.json).toEqual({ ok: true, accepted: 0, duplicates: 1 });
    await good.expectStillServed([channelId]);
    expect(good.socket.events().filter((e) => channelOf(e) === channelId)).toHaveLength(1);
  });

  it("counts a repeated id inside one batch once", async () => {
    const channelId = newChannelId();
    const event = roomCreated(channelId);
    const response = await sendJson({ events: [event, event] });
    expect(response.json).toEqual({ ok: true, accepted: 1, duplicates: 1 });
    await good.expectStillServed([channelId]);
    expect(good.socket.events().filter((e) => channelOf(e) === channelId)).toHaveLength(1);
  });

  it("does not apply a different event that reuses a seen id", async () => {
    const room = newChannelId();
    const created = roomCreated(room);
    await sendJson({ events: [created] });
    const reused = { ...joined(room, newUserId()), id: created.id };
    const response = await sendJson({ events: [reused] });
    expect(response.json).toEqual({ ok: true, accepted: 0, duplicates: 1 });
    await good.expectStillServed([room]);
    expect(good.socket.events().filter((e) => e.event === "voice.joined" && e.payload.channelId === room)).toEqual([]);
  });

  it.each([
    ["the single form without an id", () => {
      const { id: _id, ...event } = roomCreated(newChannelId());
      return event;
    }],
    ["a batch with one event without an id", () => {
      const { id: _id, ...event } = roomCreated(newChannelId());
      return { events: [roomCreated(newChannelId()), event] };
    }],
    ["an empty id", () => ({ ...roomCreated(newChannelId()), id: "" })],
    ["an id over 128 characters", () => ({ events: [{ ...roomCreated(newChannelId()), id: "i".repeat(129) }] })],
    ["a numeric id", () => ({ events: [{ ...roomCreated(newChannelId()), id: 7 }] })],
    ["a null id", () => ({ ...roomCreated(newChannelId()), id: null })],
  ])("answers 400 for %s and broadcasts nothing", async (_label, make) => {
    const response = await sendJson(make());
    expect(response.status, response.text.slice(0, 300)).toBe(400);
    expect(response.json).toMatchObject({ error: "invalid_input" });
    await good.expectStillServed();
  });
});

describe("guilds not served", () => {
  const foreign = (channelId: string, id: string) => ({
    id,
    event: "room.created",
    payload: { guildId: FOREIGN_GUILD_ID, channelId, name: "Elsewhere", userLimit: 2 },
  });

  it("acknowledges and drops a single event for another guild", async () => {
    const response = await sendJson(foreign(newChannelId(), `foreign:${crypto.randomUUID()}`));
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ ok: true, duplicates: 0 });
    await good.expectStillServed();
  });

  it("acknowledges a mixed batch, broadcasting only the served guild's event", async () => {
    const ours = newChannelId();
    const response = await sendJson({ events: [foreign(newChannelId(), `foreign:${crypto.randomUUID()}`), roomCreated(ours)] });
    expect(response.json).toEqual({ ok: true, accepted: 2, duplicates: 0, served: false });
    await good.socket.waitFor((m) => m.type === "event" && channelOf(m) === ours, "the served guild's event");
    await good.expectStillServed([ours]);
  });

  it("drops a guild.sync for another guild without touching this guild's rooms", async () => {
    const ours = newChannelId();
    await sendJson({ events: [roomCreated(ours)] });
    const wipe = { id: `foreign:${crypto.randomUUID()}`, event: "guild.sync", payload: { guildId: FOREIGN_GUILD_ID, channels: [], voiceStates: [] } };
    const response = await sendJson(wipe);
    expect(response.status).toBe(200);
    await good.expectStillServed([ours]);
    expect(good.socket.events().filter((e) => e.event === "room.deleted")).toEqual([]);
  });
});

describe("unknown and malformed events", () => {
  const event = (name: unknown) => ({ id: `bad:${crypto.randomUUID()}`, event: name, payload: { guildId: GUILD_ID, channelId: newChannelId() } });
  it.each([
    ["an unknown event kind", () => event("room.exploded")],
    ["an upper-case event kind", () => event("ROOM.DELETED")],
    ["a kind with a trailing space", () => event("room.deleted ")],
    ["__proto__ as the kind", () => event("__proto__")],
    ["constructor as the kind", () => event("constructor")],
    ["toString as the kind", () => event("toString")],
    ["a null kind", () => event(null)],
    ["no kind", () => ({ id: `bad:${crypto.randomUUID()}`, payload: { guildId: GUILD_ID } })],
    ["no payload", () => ({ id: `bad:${crypto.randomUUID()}`, event: "room.deleted" })],
    ["an unknown kind inside an otherwise valid batch", () => ({ events: [roomCreated(newChannelId()), event("room.exploded")] })],
    ["an empty batch", () => ({ events: [] })],
    ["a batch of 501", () => ({ events: Array.from({ length: 501 }, () => roomCreated(newChannelId())) })],
    ["events that is not an array", () => ({ events: { 0: roomCreated(newChannelId()) } })],
    ["JSON null", () => null],
    ["a JSON array", () => [roomCreated(newChannelId())]],
    ["a guild.sync with a malformed voice state", () => ({
      id: `bad:${crypto.randomUUID()}`,
      event: "guild.sync",
      payload: { guildId: GUILD_ID, channels: [], voiceStates: [{ userId: "x" }] },
    })],
  ])("answers 400 for %s and broadcasts nothing", async (_label, make) => {
    const response = await sendJson(make());
    expect(response.status, response.text.slice(0, 300)).toBe(400);
    expect(response.json).toMatchObject({ error: "invalid_input" });
    await good.expectStillServed();
  });

  it.each([
    ["not JSON", "{oops"],
    ["empty", ""],
    ["deeply nested", `{"events":${"[".repeat(10_000)}${"]".repeat(10_000)}}`],
  ])("answers 400 for a signed body that is %s", async (_label, body) => {
    const response = await send(body);
    expect(response.status).toBe(400);
    await good.expectStillServed();
  });
});

describe("body size", () => {
  it.each([
    ["1 MiB + 1 byte", MAX_INTERNAL_BODY_BYTES + 1],
    ["8 MiB", 8 * 1024 * 1024],
  ])("answers 413 for a signed body of %s", async (_label, size) => {
    const prefix = JSON.stringify({ events: [roomCreated(newChannelId())] }).slice(0, -1) + ',"pad":"';
    const body = `${prefix}${"p".repeat(size - prefix.length - 2)}"}`;
    expect(new TextEncoder().encode(body).byteLength).toBe(size);
    const response = await send(body);
    expect(response.status).toBe(413);
    expect(response.json).toMatchObject({ error: "payload_too_large" });
    await good.expectStillServed();
  });

  function streamedBody(): { stream: ReadableStream<Uint8Array>; pulledBytes: () => number } {
    let pulled = 0;
    const chunk = new Uint8Array(STREAM_CHUNK_BYTES).fill(0x70);
    const head = new TextEncoder().encode('{"events":[],"pad":"');
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (pulled === 0) {
            pulled += head.byteLength;
            controller.enqueue(head);
            return;
          }
          if (pulled >= STREAM_TOTAL_BYTES) {
            controller.enqueue(new TextEncoder().encode('"}'));
            controller.close();
            return;
          }
          pulled += chunk.byteLength;
          controller.enqueue(chunk);
        },
      },
      { highWaterMark: 0 },
    );
    return { stream, pulledBytes: () => pulled };
  }

  it(`answers 413 or 401 to a 32 MiB streamed body without Content-Length, without pulling more than ${MAX_PULLED_BYTES_FOR_OVERSIZE / 1024 / 1024} MiB`, async () => {
    const { stream, pulledBytes } = streamedBody();
    const response = await probe("/internal/events", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Hub-Timestamp": String(nowSeconds()), "X-Hub-Signature": `sha256=${"00".repeat(32)}` },
      body: stream,
    });
    await sleep(100);
    console.info(`internal events, 32 MiB stream: status ${response.status}, pulled ${pulledBytes()} bytes`);
    expect([413, 401]).toContain(response.status);
    expect(pulledBytes(), "bytes of the 32 MiB body the Worker pulled before answering").toBeLessThanOrEqual(MAX_PULLED_BYTES_FOR_OVERSIZE);
    await good.expectStillServed();
  });

  it("calibration: a route that answers without reading its body pulls at most the allowance for a stale timestamp", async () => {
    const { stream, pulledBytes } = streamedBody();
    const response = await probe("/create-room", { method: "POST", headers: { "Content-Type": "application/json" }, body: stream });
    await sleep(100);
    console.info(`calibration, unauthenticated create-room stream: status ${response.status}, pulled ${pulledBytes()} bytes`);
    expect(response.status).toBe(401);
    expect(pulledBytes()).toBeLessThanOrEqual(MAX_PULLED_BYTES_FOR_STALE);
    await good.expectStillServed();
  });

  it("answers 401 to a stale timestamp before reading the body", async () => {
    const { stream, pulledBytes } = streamedBody();
    const response = await probe("/internal/events", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-Hub-Timestamp": String(nowSeconds() - MAX_SKEW_SECONDS - 30),
        "X-Hub-Signature": `sha256=${"00".repeat(32)}`,
      },
      body: stream,
    });
    await sleep(100);
    console.info(`internal events, stale timestamp stream: status ${response.status}, pulled ${pulledBytes()} bytes`);
    expect(response.status).toBe(401);
    expect(pulledBytes(), "bytes of the body the Worker pulled before refusing a stale timestamp").toBeLessThanOrEqual(MAX_PULLED_BYTES_FOR_STALE);
    await good.expectStillServed();
  });

  it("answers 401 to a missing signature before reading a streamed body", async () => {
    const { stream, pulledBytes } = streamedBody();
    const response = await probe("/internal/events", { method: "POST", headers: { "Content-Type": "application/json" }, body: stream });
    await sleep(100);
    expect(response.status).toBe(401);
    expect(pulledBytes()).toBeLessThanOrEqual(MAX_PULLED_BYTES_FOR_STALE);
    await good.expectStillServed();
  });
});

describe("secrets", () => {
  it("appear in no response or log line", () => {
    expectNoSecretsLeaked();
  });
});
