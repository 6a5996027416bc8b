import { afterEach, describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import { connect, eventsUrl, type ConnectionStatus, type RealtimeConnection } from "../index.js";
import { A, guildId, jwt, NodeWebSocket, U } from "./support/hub.js";

import { StreamHub } from "./support/stream-hub.js";

let hub: StreamHub;
let client: RealtimeConnection | undefined;
afterEach(async () => {
  client?.close();
  await hub?.close();
});

const fast = { backoff: { minMs: 10, maxMs: 50, factor: 2 } };
const snapshot = (seq: number) => ({ v: 1, type: "snapshot", payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: [] }] }, seq });
const joined = (seq: number, userId = U) => ({ v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: A, userId }, ts: 1, seq });

describe("the SSE transport", () => {
  it("maps the socket URL to /events", () => {
    expect(eventsUrl("wss://edge.example.com/ws?guildId=1")).toBe("https://edge.example.com/events?guildId=1");
    expect(eventsUrl("ws://127.0.0.1:8787/api/ws")).toBe("http://127.0.0.1:8787/api/events");
  });

  it("sends the token as a bearer header only, goes live on the response and applies the snapshot and events", async () => {
    hub = await StreamHub.start();
    const statuses: ConnectionStatus[] = [];
    const token = jwt(600);
    client = connect({ ...fast, transport: "sse", url: hub.url, getToken: async () => token, rooms: [A], onStatus: (s) => statuses.push(s) });
    const request = await until(() => hub.requests[0], "the stream request");
    expect(request.url.pathname).toBe("/events");
    expect(request.url.searchParams.get("rooms")).toBe(A);
    expect(request.url.search).not.toContain(token);
    expect(request.headers.authorization).toBe(`Bearer ${token}`);
    expect(request.headers["last-event-id"]).toBeUndefined();
    hub.frame("snapshot", snapshot(1), 1);
    hub.frame("voice.joined", joined(2), 2);
    await until(() => client!.presence.seq === 2, "the snapshot and the event");
    expect(client.presence.getSnapshot().rooms[0]!.members.map((m) => m.userId)).toEqual([U]);
    expect(statuses).toEqual(["connecting", "live"]);
  });

  it("takes an end event as the socket's close: on 4401 it fetches a fresh token and resumes from the last id", async () => {
    hub = await StreamHub.start();
    const issued: string[] = [];
    const getToken = async () => issued[issued.push(jwt(600, `u${issued.length}`)) - 1]!;
    client = connect({ ...fast, transport: "sse", url: hub.url, getToken });
    await until(() => hub.requests[0], "the stream request");
    hub.frame("snapshot", snapshot(1), 1);
    hub.frame("voice.joined", joined(2), 2);
    await until(() => client!.presence.seq === 2, "the event");
    hub.frame("end", { code: 4401, reason: "token expired" });
    hub.last().response.end();
    const resumed = await until(() => hub.requests[1], "a second stream request");
    expect(resumed.headers["last-event-id"]).toBe("2");
    expect(issued).toHaveLength(2);
    expect(resumed.headers.authorization).toBe(`Bearer ${issued[1]}`);
    hub.frame("voice.joined", joined(3, "210000000000000002"), 3);
    await until(() => client!.presence.seq === 3, "the replayed event");
    expect(client.status).toBe("live");
  });

  it("restarts the stream with a refreshed token before expiry, from the last id, and drops the old one", async () => {
    hub = await StreamHub.start();
    const issued: string[] = [];
    const getToken = async () => issued[issued.push(jwt(3, `u${issued.length}`)) - 1]!;
    client = connect({ ...fast, transport: "sse", url: hub.url, getToken, refreshBeforeExpiryMs: 2_500 });
    const first = await until(() => hub.requests[0], "the stream request");
    hub.frame("snapshot", snapshot(7), 7);
    await until(() => client!.presence.seq === 7, "the snapshot");
    const refreshed = await until(() => hub.requests[1], "the refreshed stream request", 4_000);
    expect(refreshed.headers.authorization).toBe(`Bearer ${issued[1]}`);
    expect(refreshed.headers["last-event-id"]).toBe("7");
    await until(() => first.response.destroyed || first.response.writableEnded || first.response.socket?.destroyed, "the first stream to be dropped");
    hub.frame("voice.joined", joined(8), 8);
    await until(() => client!.presence.seq === 8, "an event on the new stream");
    expect(client.status).toBe("live");
  });

  it("treats an HTTP refusal like the socket's close code: 403 fails for good, as 4403 does", async () => {
    hub = await StreamHub.start();
    hub.onRequest = ({ response }) => response.writeHead(403, { "Content-Type": "application/json" }).end(JSON.stringify({ error: "forbidden", message: "guild not served here" }));
    const statuses: Array<[ConnectionStatus, string | undefined]> = [];
    client = connect({ ...fast, transport: "sse", url: hub.url, getToken: async () => jwt(600), onStatus: (s, d) => statuses.push([s, d]) });
    await until(() => client!.status === "failed", "status failed");
    expect(client.state.reason).toBe("forbidden");
    expect(hub.requests).toHaveLength(1);
  });

  it("reconnects after a stream that ends without an end event", async () => {
    hub = await StreamHub.start();
    client = connect({ ...fast, transport: "sse", url: hub.url, getToken: async () => jwt(600) });
    await until(() => hub.requests[0], "the stream request");
    hub.frame("snapshot", snapshot(4), 4);
    await until(() => client!.presence.seq === 4, "the snapshot");
    hub.last().response.end();
    const again = await until(() => hub.requests[1], "a second stream request");
    expect(again.headers["last-event-id"]).toBe("4");
  });
});

describe('transport "auto"', () => {
  it("falls back to SSE after a WebSocket that never opened, and stays on it", async () => {
    hub = await StreamHub.start();
    client = connect({ ...fast, transport: "auto", WebSocket: NodeWebSocket, url: hub.url, getToken: async () => jwt(600) });
    await until(() => hub.requests[0], "a stream request after the refused upgrade");
    expect(hub.upgradesRefused).toBe(1);
    hub.frame("snapshot", snapshot(1), 1);
    await until(() => client!.status === "live", "live over SSE");
    hub.last().response.end();
    await until(() => hub.requests[1], "a second stream request");
    expect(hub.upgradesRefused).toBe(1);
  });
});

describe("the default transport", () => {
  it("is WebSocket only: a refused upgrade is retried as a WebSocket, never as a stream", async () => {
    hub = await StreamHub.start();
    client = connect({ ...fast, WebSocket: NodeWebSocket, url: hub.url, getToken: async () => jwt(600) });
    await until(() => hub.upgradesRefused >= 2, "a second WebSocket attempt");
    expect(hub.requests).toHaveLength(0);
  });
});
