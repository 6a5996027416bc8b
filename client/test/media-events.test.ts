import { describe, expect, expectTypeOf, it } from "vitest";
import { until } from "../../test-support/until.js";
import type { VoiceMedia } from "../types.js";
import { A, guildId, guildStatus, jwt, NodeWebSocket, sleep, U, voiceMedia } from "./support/hub.js";
import { sdkFixture } from "./support/sdk-fixture.js";
import { StreamHub } from "./support/stream-hub.js";

const sdk = sdkFixture();

const fast = { WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 }, browser: false as const };
const V = "210000000000000002";
const snapshot = (seq: number, status?: string) => ({
  v: 1,
  type: "snapshot",
  payload: { rooms: [{ channelId: A, name: "A", userLimit: 4, members: [{ userId: U }] }], ...(status ? { status } : {}) },
  seq,
});

async function liveClient() {
  const hub = await sdk.startHub();
  hub.onAuth = (socket) => {
    hub.send({ v: 1, type: "ack", event: "auth.ok", guildId, seq: 1 }, socket);
    hub.send(snapshot(1, "available"), socket);
  };
  const client = sdk.connect({ ...fast, url: hub.url, getToken: async () => jwt(600) });
  await until(() => client.status === "live" && client.presence.seq === 1, "live with the snapshot");
  return { hub, client };
}

describe("voice.media and guild.status over a connection", () => {
  it("apply to the store and reach typed listeners", async () => {
    const { hub, client } = await liveClient();
    const cameras: string[] = [];
    const statuses: string[] = [];
    client.on("voice.media", (payload, envelope) => {
      expectTypeOf(payload.media).toEqualTypeOf<VoiceMedia>();
      cameras.push(`${payload.userId}@${payload.channelId}:${payload.media.selfVideo}#${envelope.seq}`);
    });
    client.on("guild.status", (payload) => statuses.push(payload.status));
    hub.send(voiceMedia(2, A, U, { selfVideo: true }));
    hub.send(guildStatus(3, "unavailable"));
    await until(() => client.presence.seq === 3, "both events");
    expect(client.presence.membersOf(A)[0]!.media).toMatchObject({ selfVideo: true, selfStream: false });
    expect(client.presence.guildStatus).toBe("unavailable");
    expect(cameras).toEqual([`${U}@${A}:true#2`]);
    expect(statuses).toEqual(["unavailable"]);
  });

  it("a voice.media for a user the store does not hold in that room moves the seq only: no gap, no reconnect", async () => {
    const { hub, client } = await liveClient();
    hub.send(voiceMedia(2, A, V, { selfStream: true }));
    hub.send(voiceMedia(3, A, U, { selfMute: true })); // right after: would be a gap had seq 2 not been applied
    await until(() => client.presence.seq === 3 || hub.sockets.length > 1, "seq 3 or a reconnect");
    await sleep(100);
    expect(hub.sockets, "still the first connection").toHaveLength(1);
    expect(client.status).toBe("live");
    expect(client.presence.membersOf(A).map((m) => [m.userId, m.media?.selfMute])).toEqual([[U, true]]);
  });

  it("a voice.media that does not validate is not applied: the client takes a fresh snapshot", async () => {
    const { hub, client } = await liveClient();
    const { selfStream: _missing, ...partial } = voiceMedia(2, A, U, {}).payload.media;
    hub.send({ ...voiceMedia(2, A, U, {}), payload: { guildId, channelId: A, userId: U, media: partial } });
    const [, again] = await until(() => hub.auths().length === 2 && hub.auths(), "a reconnect after an unreadable voice.media");
    expect(again).not.toHaveProperty("since");
    expect(client.presence.membersOf(A)[0]!.media).toBeUndefined();
  });

  it("arrive over server-sent events too", async () => {
    const hub = await StreamHub.start();
    try {
      const client = sdk.connect({ backoff: fast.backoff, browser: false, transport: "sse", url: hub.url, getToken: async () => jwt(600) });
      await until(() => hub.requests[0], "the stream request");
      hub.frame("snapshot", snapshot(1, "unavailable"), 1);
      await until(() => client.presence.seq === 1, "the snapshot");
      expect(client.presence.guildStatus).toBe("unavailable");
      hub.frame("voice.media", voiceMedia(2, A, U, { deaf: true }), 2);
      hub.frame("guild.status", guildStatus(3, "available"), 3);
      await until(() => client.presence.seq === 3, "the events");
      expect(client.presence.membersOf(A)[0]!.media).toMatchObject({ deaf: true, selfDeaf: false });
      expect(client.presence.guildStatus).toBe("available");
    } finally {
      await hub.close();
    }
  });
});
