// The hub refuses a room filter of more than 50 rooms, or with an id that is not a snowflake, by closing the
// socket 4400; the SDK used to send it anyway and, as it carries the same filter on every reconnect, retried
// forever without ever being live. It now refuses such a filter where the app passes it.
import { afterEach, describe, expect, it } from "vitest";
import { connect, type RealtimeConnection } from "../../client/connect.js";
import { newChannelId, newUserId } from "./support/edge.js";
import { EdgeSocket } from "./support/sdk-socket.js";
import { mintToken } from "./support/tokens.js";

let client: RealtimeConnection | undefined;
afterEach(() => {
  client?.close();
  client = undefined;
});

const options = () => {
  const sub = newUserId();
  return { url: "https://edge.test/ws", getToken: () => mintToken({ sub }), WebSocket: EdgeSocket, browser: false as const, backoff: { minMs: 1, maxMs: 20, factor: 2 } };
};
const tooMany = () => Array.from({ length: 51 }, newChannelId);

describe("a room filter the hub would refuse", () => {
  it("is refused by connect(), before any socket opens", () => {
    const before = EdgeSocket.opened;
    expect(() => (client = connect({ ...options(), rooms: tooMany() }))).toThrow(RangeError);
    expect(() => (client = connect({ ...options(), rooms: ["not-a-room"] }))).toThrow(RangeError);
    expect(EdgeSocket.opened).toBe(before);
  });

  it("is refused by setRooms(), and the live connection keeps its filter and its socket", async () => {
    const room = newChannelId();
    client = connect({ ...options(), rooms: [room] });
    await expect.poll(() => client!.status).toBe("live");
    const opened = EdgeSocket.opened;
    expect(() => client!.setRooms(tooMany())).toThrow(RangeError);
    expect(() => client!.setRooms([room, "0x10"])).toThrow(RangeError);
    client.setRooms(undefined); // a valid change still goes through on the same socket
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(client.status).toBe("live");
    expect(EdgeSocket.opened).toBe(opened);
  });
});
