import { afterEach, describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import { connect, type ConnectionStatus, type RealtimeConnection } from "../connect.js";
import { A, guildId, jwt, NodeWebSocket, ScriptedHub, sleep, U } from "./support/hub.js";

let hub: ScriptedHub | undefined;
let client: RealtimeConnection | undefined;
afterEach(async () => {
  client?.close();
  await hub?.close();
  hub = client = undefined;
});

const fast = { WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 }, browser: false as const };
const ack = (seq: number) => ({ v: 1, type: "ack", event: "auth.ok", guildId, seq });
const snapshot = (seq: number, members: string[] = []) => ({
  v: 1,
  type: "snapshot",
  payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: members.map((userId) => ({ userId })) }] },
  seq,
});
const joined = (seq: number, userId: string) => ({ v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: A, userId }, ts: 1, seq });

/** What a UI would render at each status: the rooms the store holds at that moment. */
function watch(connection: RealtimeConnection): Array<{ status: ConnectionStatus; rooms: number; members: number }> {
  const seen: Array<{ status: ConnectionStatus; rooms: number; members: number }> = [];
  connection.subscribe((state) => {
    const { rooms } = connection.presence.getSnapshot();
    seen.push({ status: state.status, rooms: rooms.length, members: rooms.reduce((n, room) => n + room.members.length, 0) });
  });
  return seen;
}

describe("live means the picture is here", () => {
  it("on a first connection, goes live only once the snapshot after auth.ok is applied", async () => {
    const h = (hub = await ScriptedHub.start());
    h.onAuth = (socket) => {
      h.send(ack(3), socket);
      setTimeout(() => h.send(snapshot(3, [U]), socket), 150); // the snapshot trails the ack, as on a loaded hub
    };
    client = connect({ ...fast, url: h.url, getToken: async () => jwt(600) });
    const seen = watch(client);
    await until(() => client!.status === "live", "live");
    expect(seen.at(-1), "the rooms and members are there when live is announced").toEqual({ status: "live", rooms: 1, members: 1 });
    expect(seen.map((s) => s.status)).toEqual(["live"]);
  });

  it("is not live at auth.ok when no snapshot follows, and the connect timeout retries", async () => {
    const h = (hub = await ScriptedHub.start());
    h.onAuth = (socket) => h.send(ack(3), socket);
    const details: string[] = [];
    client = connect({ ...fast, url: h.url, getToken: async () => jwt(600), connectTimeoutMs: 150, onStatus: (_s, d) => d && details.push(d) });
    await until(() => h.sockets.length === 2, "a second attempt");
    expect(client.status).toBe("connecting");
    expect(details).toContain("connect timeout");
  });

  it("after a drop, goes live once the replay has reached the ack's seq", async () => {
    const h = (hub = await ScriptedHub.start());
    h.onAuth = (socket) => h.ack(socket, 5);
    client = connect({ ...fast, url: h.url, getToken: async () => jwt(600) });
    await until(() => client!.status === "live", "live");
    h.onAuth = (socket, auth) => {
      expect(auth.since).toBe(5);
      h.send(ack(7), socket);
      h.send(joined(6, U), socket);
      setTimeout(() => h.send(joined(7, "210000000000000002"), socket), 150);
    };
    const seen = watch(client);
    h.last().close(1012, "restart");
    await until(() => h.sockets.length === 2 && client!.status === "live", "live again");
    expect(client.presence.seq).toBe(7);
    expect(seen.map((s) => `${s.status}:${s.members}`)).toEqual(["resuming:0", "resuming:0", "live:2"]);
  });

  it("after a drop with nothing missed, is live at auth.ok", async () => {
    const h = (hub = await ScriptedHub.start());
    h.onAuth = (socket) => h.ack(socket, 5);
    client = connect({ ...fast, url: h.url, getToken: async () => jwt(600) });
    await until(() => client!.status === "live", "live");
    h.onAuth = (socket) => h.send(ack(5), socket);
    h.last().close(1012, "restart");
    await until(() => h.sockets.length === 2 && client!.status === "live", "live again without a snapshot");
    await sleep(50);
    expect(client.status).toBe("live");
  });
});
