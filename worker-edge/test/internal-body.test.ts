import { describe, expect, it } from "vitest";
import { hubRequestHeaders, MAX_CLOCK_SKEW_SECONDS, MAX_INTERNAL_BODY_BYTES } from "../../protocol/index.js";
import { TEST_HUB_SECRET } from "./support/bindings.js";
import { edgeFetch, newChannelId, postInternal } from "./support/edge.js";
import { roomCreated } from "./support/events.js";

/** A body with no Content-Length that would stream `totalBytes`, counting how much the server pulled. */
function countedStream(totalBytes: number) {
  const chunk = new Uint8Array(64 * 1024).fill(0x20);
  const counter = { pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.pulled >= totalBytes) return controller.close();
      counter.pulled += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  return { stream, counter };
}

async function postStream(stream: ReadableStream<Uint8Array>, headers: Record<string, string>): Promise<Response> {
  return edgeFetch("/internal/events", { method: "POST", headers, body: stream, duplex: "half" } as RequestInit);
}

describe("POST /internal/events reads bounded bodies", () => {
  it("answers 413 to a streamed body without Content-Length after reading at most the limit", async () => {
    const { stream, counter } = countedStream(32 * 1024 * 1024);
    const headers = await hubRequestHeaders(TEST_HUB_SECRET, "");
    const response = await postStream(stream, headers);
    expect(response.status).toBe(413);
    expect(counter.pulled).toBeLessThanOrEqual(MAX_INTERNAL_BODY_BYTES + 256 * 1024);
  });

  it("answers 401 to a stale timestamp before reading the body", async () => {
    const { stream, counter } = countedStream(4 * 1024 * 1024);
    const headers = await hubRequestHeaders(TEST_HUB_SECRET, "", Date.now() - (MAX_CLOCK_SKEW_SECONDS + 60) * 1000);
    const response = await postStream(stream, headers);
    expect(response.status).toBe(401);
    expect(counter.pulled).toBeLessThanOrEqual(256 * 1024);
  });

  it("still accepts a signed body streamed without Content-Length", async () => {
    const text = JSON.stringify({ events: [roomCreated(newChannelId())] });
    const headers = await hubRequestHeaders(TEST_HUB_SECRET, text);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(text));
        controller.close();
      },
    });
    const response = await postStream(body, headers);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, accepted: 1, duplicates: 0 });
  });

  it("refuses an event without an id: a replay could not be told from a new event", async () => {
    const { id: _id, ...single } = roomCreated(newChannelId());
    const response = await postInternal(single);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_input" });
  });
});
