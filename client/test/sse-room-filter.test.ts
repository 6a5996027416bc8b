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

const B = "110000000000000002";
const V = "210000000000000002";
const fast = { backoff: { minMs: 10, maxMs: 50, factor: 2 } };
const room = (channelId: string, name: string, members: string[]) => ({ channelId, name, userLimit: 4, members: members.map((userId) => ({ userId })) });

describe("setRooms over the SSE transport", () => {
  it("reaches the edge: the stream restarts with the new filter and a fresh snapshot fills the rooms newly subscribed", async () => {
    hub = await StreamHub.start();
    client = connect({ ...fast, transport: "sse", url: hub.url, getToken: async () => jwt(600), rooms: [A] });
    const first = await until(() => hub.requests[0], "the stream request");
    expect(first.url.searchParams.get("rooms")).toBe(A);
    hub.frame("snapshot", { v: 1, type: "snapshot", payload: { rooms: [room(A, "A", [U]), room(B, "B", [])] }, seq: 3 }, 3);
    await until(() => client!.status === "live" && client!.presence.seq === 3, "live with the first snapshot");

    client.setRooms([A, B]);
    // A stream cannot carry a client message: the new filter can only reach the edge as a new request.
    const changed = await until(() => hub.requests[1], "a stream request with the new filter", 2_000);
    expect(changed.url.searchParams.get("rooms")).toBe(`${A},${B}`);
    // The client needs the members of B, which a replay from the last id cannot give: it must ask for a snapshot.
    expect(changed.headers["last-event-id"]).toBeUndefined();
    hub.frame("snapshot", { v: 1, type: "snapshot", payload: { rooms: [room(A, "A", [U]), room(B, "B", [V])] }, seq: 3 }, 3, changed);
    await until(() => client!.presence.membersOf(B).length === 1, "B's member from the new snapshot");
    hub.frame("voice.joined", { v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: B, userId: "210000000000000003" }, ts: 1, seq: 4 }, 4, changed);
    await until(() => client!.presence.membersOf(B).length === 2, "an event of B on the new stream");
    expect(client.status).toBe("live");
    expect(first.response.destroyed || first.response.socket?.destroyed || first.response.writableEnded).toBe(true);
  });

  it("setRooms(undefined) drops the filter: the new stream asks for every room", async () => {
    hub = await StreamHub.start();
    client = connect({ ...fast, transport: "sse", url: hub.url, getToken: async () => jwt(600), rooms: [A] });
    await until(() => hub.requests[0], "the stream request");
    hub.frame("snapshot", { v: 1, type: "snapshot", payload: { rooms: [room(A, "A", [])] }, seq: 1 }, 1);
    await until(() => client!.status === "live", "live");
    client.setRooms(undefined);
    const changed = await until(() => hub.requests[1], "a stream request without a filter", 2_000);
    expect(changed.url.searchParams.has("rooms")).toBe(false);
  });
});
