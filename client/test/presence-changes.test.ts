import { afterEach, describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import { connect, type RealtimeConnection } from "../connect.js";
import { PresenceStore, type PresenceDiff } from "../presence.js";
import { A, guildId, jwt, NodeWebSocket, ScriptedHub, U } from "./support/hub.js";

let hub: ScriptedHub | undefined;
let client: RealtimeConnection | undefined;
afterEach(async () => {
  client?.close();
  await hub?.close();
  hub = client = undefined;
});

const V = "210000000000000002";
const W = "210000000000000003";
const roomA = (members: string[]) => ({ channelId: A, name: "A", userLimit: 4, members: members.map((userId) => ({ userId })) });
const joinedIds = (diffs: PresenceDiff[]) => diffs.flatMap((diff) => diff.joined.map((join) => join.member.userId));

// A toast per join must not toast everyone already in a room when the page loads.
describe("presence changes", () => {
  it("are not reported for the first snapshot; a later snapshot (a resync) reports what it changed", () => {
    const store = new PresenceStore();
    const diffs: PresenceDiff[] = [];
    store.onChange((diff) => diffs.push(diff));
    store.applySnapshot({ seq: 5, payload: { rooms: [roomA([U, V])] } });
    expect(diffs, "the first snapshot is the picture, not a change").toEqual([]);
    expect(store.membersOf(A)).toHaveLength(2);
    store.applySnapshot({ seq: 9, payload: { rooms: [roomA([U, W])] } });
    expect(joinedIds(diffs)).toEqual([W]);
    expect(diffs[0]!.left.map((leave) => leave.member.userId)).toEqual([V]);
  });

  it("reach a listener added before connecting only for real joins, not for those present on load", async () => {
    const h = (hub = await ScriptedHub.start());
    h.onAuth = (socket) => {
      h.send({ v: 1, type: "ack", event: "auth.ok", guildId, seq: 3 }, socket);
      h.send({ v: 1, type: "snapshot", payload: { rooms: [roomA([U, V])] }, seq: 3 }, socket);
    };
    client = connect({ WebSocket: NodeWebSocket, browser: false, url: h.url, getToken: async () => jwt(600) });
    const diffs: PresenceDiff[] = [];
    client.presence.onChange((diff) => diffs.push(diff));
    await until(() => client!.status === "live", "live");
    h.send({ v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: A, userId: W }, ts: 1, seq: 4 });
    await until(() => client!.presence.seq === 4, "the join");
    expect(joinedIds(diffs)).toEqual([W]);
  });
});
