import { describe, expect, it } from "vitest";
import { SSE_RETRY } from "../../protocol/index.js";
import { frameHubMessage, sseComment, sseEnd, sseEvent, sseRetry } from "../src/sse/frames.js";
import { retryAdvice } from "../src/sse/response.js";

const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));

describe("server-sent events framing", () => {
  it("gives every line of data its own data field, so a line break cannot end the event early", () => {
    expect(text(sseEvent({ id: "7", event: "voice.joined", data: "a\nb\r\nc" }))).toBe("id: 7\nevent: voice.joined\ndata: a\ndata: b\ndata: c\n\n");
  });

  it("refuses an event name or id that would forge a field", () => {
    expect(() => sseEvent({ event: "x\nid: 1", data: "{}" })).toThrow("unsafe SSE field");
    expect(() => sseEvent({ id: "1\n", event: "x", data: "{}" })).toThrow("unsafe SSE field");
  });

  it("keeps a comment on one line", () => {
    expect(text(sseComment("ping\nevent: x"))).toBe(": ping event: x\n\n");
  });

  it("frames snapshots and events by seq, and leaves out pongs, acks and anything unreadable", () => {
    const snapshot = JSON.stringify({ v: 1, type: "snapshot", payload: { rooms: [] }, seq: 3 });
    expect(text(frameHubMessage(snapshot))).toBe(`id: 3\nevent: snapshot\ndata: ${snapshot}\n\n`);
    const event = JSON.stringify({ v: 1, type: "event", event: "room.deleted", payload: {}, ts: 1, seq: 4 });
    expect(text(frameHubMessage(event))).toBe(`id: 4\nevent: room.deleted\ndata: ${event}\n\n`);
    for (const other of ["pong", JSON.stringify({ v: 1, type: "ack", event: "auth.ok", guildId: "1", seq: 4 }), "{", JSON.stringify({ type: "event", event: "x" })]) {
      expect(frameHubMessage(other)).toBeUndefined();
    }
  });

  it("ends a stream with an `end` event, not `error`, whose reason cannot break out of its data line", () => {
    expect(text(sseEnd({ code: 4401, reason: "token\nexpired" }))).toBe('event: end\ndata: {"code":4401,"reason":"token\\nexpired"}\n\n');
  });

  it("advises a whole number of milliseconds in a retry field of its own", () => {
    expect(text(sseRetry(2345.6))).toBe("retry: 2346\n\n");
  });
});

describe("retry advice", () => {
  it("spans the base to base plus jitter, for admitted and for refused streams", () => {
    expect(retryAdvice("admitted", () => 0)).toBe(SSE_RETRY.baseMs);
    expect(retryAdvice("admitted", () => 0.999_999)).toBe(SSE_RETRY.baseMs + SSE_RETRY.jitterMs - 1);
    expect(retryAdvice("refused", () => 0)).toBe(SSE_RETRY.refusedBaseMs);
    expect(retryAdvice("refused", () => 0.999_999)).toBe(SSE_RETRY.refusedBaseMs + SSE_RETRY.refusedJitterMs - 1);
    // A refused stream always waits longer than an admitted one that ended.
    expect(SSE_RETRY.refusedBaseMs).toBeGreaterThanOrEqual(SSE_RETRY.baseMs + SSE_RETRY.jitterMs);
  });
});
