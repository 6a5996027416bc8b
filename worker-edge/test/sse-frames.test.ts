import { describe, expect, it } from "vitest";
import { frameHubMessage, sseComment, sseEvent } from "../src/sse/frames.js";

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
});
