import { describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import { A, guildId, jwt, NodeWebSocket, ScriptedHub, sleep } from "./support/hub.js";
import { sdkFixture } from "./support/sdk-fixture.js";

const sdk = sdkFixture();

const B = "110000000000000002";
const C = "110000000000000003";
const fast = { WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 }, browser: false as const };
const snapshot = (seq: number) => ({ v: 1, type: "snapshot", payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: [] }] }, seq });
const roomsMessages = (h: ScriptedHub) => h.received.filter((m) => typeof m === "object" && m.type === "rooms");

// A snapshot only makes the state exact for the filter it was taken with. A resume (auth with `since`) replays
// under the newest filter, so until the hub has answered the newest filter, a reconnect must ask for a snapshot.
describe("room filter changes racing the hub's answers", () => {
  it("two changes in a row: the first one's answer does not make a replay safe for the second filter", async () => {
    const h = await sdk.startHub();
    h.onAuth = (socket) => h.ack(socket, 5);
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600), rooms: [A] });
    await until(() => client.status === "live" && client.presence.seq === 5, "live");
    client.setRooms([B]);
    client.setRooms([C]);
    await until(() => roomsMessages(h).length === 2, "both rooms messages");
    h.send(snapshot(6)); // the answer to [B]; the one to [C] is still on its way when the connection drops
    await until(() => client.presence.seq === 6, "the first answer");
    h.last().close(1012, "restart");
    const reconnect = await until(() => h.auths()[1], "the reconnect");
    expect(reconnect, "C's members are unknown here: a replay cannot give them").toEqual({ type: "auth", token: expect.any(String), rooms: [C], batch: true });
  });

  it("a change during auth: the auth's snapshot (old filter) does not make a replay safe for the new one", async () => {
    const h = await sdk.startHub();
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(600), rooms: [A] });
    await until(() => h.auths().length === 1, "the auth");
    client.setRooms([B]);
    h.ack(h.last(), 5); // ack and the snapshot for the auth's filter [A]
    await until(() => roomsMessages(h).length === 1 && client.presence.seq === 5, "the rooms message and the old filter's snapshot");
    h.last().close(1012, "restart"); // before the hub answered [B]
    const reconnect = await until(() => h.auths()[1], "the reconnect");
    expect(reconnect, "B's members are unknown here: a replay cannot give them").toEqual({ type: "auth", token: expect.any(String), rooms: [B], batch: true });
  });

  it("a token refresh after a filter change does not send the filter again", async () => {
    const h = await sdk.startHub();
    // Like the hub: a refresh on a live socket is answered with the ack only.
    h.onAuth = (socket) => (h.auths().length === 1 ? h.ack(socket, 5) : h.send({ v: 1, type: "ack", event: "auth.ok", guildId, seq: 5 }, socket));
    const client = sdk.connect({ ...fast, url: h.url, getToken: async () => jwt(3), rooms: [A], refreshBeforeExpiryMs: 2_500 });
    await until(() => client.status === "live" && client.presence.seq === 5, "live");
    client.setRooms([B]);
    await until(() => roomsMessages(h).length === 1, "the rooms message");
    h.send(snapshot(5));
    await until(() => h.auths().length === 2, "the token refresh", 4_000);
    await sleep(100);
    // Each extra change costs the hub a snapshot and a token of the socket's change budget (then 4429).
    expect(roomsMessages(h)).toHaveLength(1);
    expect(h.sockets).toHaveLength(1);
  });
});
