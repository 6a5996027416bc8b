import { afterEach, describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import { connect, type RealtimeConnection } from "../index.js";
import { A, guildId, jwt, U } from "./support/hub.js";
import { StreamHub } from "./support/stream-hub.js";

let hub: StreamHub;
let client: RealtimeConnection | undefined;
afterEach(async () => {
  client?.close();
  await hub?.close();
});

const fast = { transport: "sse" as const, browser: false as const, backoff: { minMs: 10, maxMs: 50, factor: 2 } };
const snapshot = (seq: number) => ({ v: 1, type: "snapshot", payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: [] }] }, seq });
const joined = (seq: number) => ({ v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: A, userId: U }, ts: 1, seq });

// The edge ends a stream with an `end` event carrying a socket close code (its name was `error` before), and
// starts every stream with a `retry:` line.
describe("the end of an SSE stream", () => {
  it("reads a stream that starts with a retry line, and takes `end` 4401 as the socket's close: a fresh token, resumed from the last id", async () => {
    hub = await StreamHub.start();
    const issued: string[] = [];
    const getToken = async () => issued[issued.push(jwt(600, `u${issued.length}`)) - 1]!;
    client = connect({ ...fast, url: hub.url, getToken });
    await until(() => hub.requests[0], "the stream request");
    hub.last().response.write("retry: 2000\n\n");
    hub.frame("snapshot", snapshot(1), 1);
    hub.frame("voice.joined", joined(2), 2);
    await until(() => client!.status === "live" && client!.presence.seq === 2, "live with the event");
    hub.frame("end", { code: 4401, reason: "token expired" });
    const resumed = await until(() => hub.requests[1], "a second stream request");
    expect(resumed.headers["last-event-id"]).toBe("2");
    expect(resumed.headers.authorization).toBe(`Bearer ${issued[1]}`);
  });

  it("takes `end` 4403 as final, as a socket's 4403 is", async () => {
    hub = await StreamHub.start();
    client = connect({ ...fast, url: hub.url, getToken: async () => jwt(600) });
    await until(() => hub.requests[0], "the stream request");
    hub.frame("snapshot", snapshot(1), 1);
    await until(() => client!.status === "live", "live");
    hub.frame("end", { code: 4403, reason: "guild not allowed" });
    await until(() => client!.status === "failed", "failed");
    expect(client.state.reason).toBe("forbidden");
    expect(hub.requests).toHaveLength(1);
  });

  it("takes a refusal sent as a 200 stream (a retry line and an `end`, no ack headers) like the close code it carries", async () => {
    hub = await StreamHub.start();
    hub.onRequest = ({ response }) => {
      response.writeHead(200, { "Content-Type": "text/event-stream" });
      response.end(`retry: 30000\nevent: end\ndata: ${JSON.stringify({ code: 4429, reason: "too many streams" })}\n\n`);
    };
    const ends: Array<{ detail: string; waitMs: number }> = [];
    const onStatus = (_status: string, detail?: string) => detail && ends.push({ detail, waitMs: client!.state.retryAt! - Date.now() });
    client = connect({ ...fast, url: hub.url, getToken: async () => jwt(600), onStatus });
    await until(() => ends.length > 0, "the stream's end");
    expect(ends[0]!.detail).toBe("closed 4429: too many streams");
    expect(ends[0]!.waitMs, "told to slow down: half the longest backoff at least, not the immediate first retry").toBeGreaterThanOrEqual(24);
    expect(client.status).toBe("connecting");
  });
});
