// @vitest-environment jsdom
import { act, createElement as h, useCallback } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, describe, expect, it } from "vitest";
import { NO_VOICE_MEDIA } from "../../protocol/limits.js";
import { until } from "../../test-support/until.js";
import { mediaOf, type PresenceDiff } from "../presence.js";
import { RealtimeProvider, useGuildStatus, usePresenceChanges, useRoom } from "../react.js";
import { A, guildId, guildStatus, jwt, NodeWebSocket, ScriptedHub, U, voiceMedia } from "./support/hub.js";

let hub: ScriptedHub | undefined;
let root: Root | undefined;
let container: HTMLElement;
afterEach(async () => {
  if (root) await act(async () => root!.unmount());
  await hub?.close();
  hub = root = undefined;
});

const B = "110000000000000002";
const V = "210000000000000002";
const options = (url: string) => ({ url, getToken: async () => jwt(600), WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 } });
const text = (testId: string) => container.querySelector(`[data-testid="${testId}"]`)?.textContent;

/** A hub with U in room A and V (camera on) in room B. */
async function liveHub(): Promise<ScriptedHub> {
  const started = (hub = await ScriptedHub.start());
  started.onAuth = (socket) => {
    started.send({ v: 1, type: "ack", event: "auth.ok", guildId, seq: 1 }, socket);
    const rooms = [
      { channelId: A, name: "A", userLimit: 4, members: [{ userId: U }] },
      { channelId: B, name: "B", userLimit: 4, members: [{ userId: V, media: { ...NO_VOICE_MEDIA, selfVideo: true } }] },
    ];
    started.send({ v: 1, type: "snapshot", payload: { rooms }, seq: 1 }, socket);
  };
  return started;
}

async function render(element: Parameters<Root["render"]>[0]): Promise<void> {
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  await act(async () => root!.render(element));
}

const renders: Record<string, number> = {};
/** One room's members with their flags: "U:camera,stream,muted,deafened". */
function RoomMedia({ channelId }: { channelId: string }) {
  renders[channelId] = (renders[channelId] ?? 0) + 1;
  const room = useRoom(channelId);
  const flags = (media: ReturnType<typeof mediaOf>) =>
    [media.selfVideo && "camera", media.selfStream && "stream", (media.selfMute || media.mute) && "muted", (media.selfDeaf || media.deaf) && "deafened"].filter(Boolean).join(",");
  return h("span", { "data-testid": `room-${channelId}` }, room?.members.map((m) => `${m.userId}:${flags(mediaOf(m))}`).join(" ") ?? "unknown");
}
function GuildStatus() {
  return h("span", { "data-testid": "guild" }, useGuildStatus());
}

describe("members' media and the guild status in React", () => {
  it("useRoom shows a member's new flags, re-rendering only the room that changed", async () => {
    const server = await liveHub();
    await render(h(RealtimeProvider, options(server.url), h(RoomMedia, { channelId: A }), h(RoomMedia, { channelId: B })));
    await until(() => text(`room-${A}`) === `${U}:` && text(`room-${B}`) === `${V}:camera`, "both rooms with their members' flags");
    const before = { ...renders };
    server.send(voiceMedia(2, A, U, { selfStream: true, mute: true }));
    await until(() => text(`room-${A}`) === `${U}:stream,muted`, "U streaming and muted by a moderator");
    expect(renders[B], "room B did not change, so it did not render again").toBe(before[B]);
    server.send(voiceMedia(3, A, U, { selfStream: true, mute: true })); // the same state again
    server.send(voiceMedia(4, B, V, { selfDeaf: true }));
    await until(() => text(`room-${B}`) === `${V}:deafened`, "V's camera off, deafened");
    expect(text(`room-${A}`)).toBe(`${U}:stream,muted`);
  });

  it("useGuildStatus follows guild.status; usePresenceChanges reports media changes", async () => {
    const server = await liveHub();
    const changes: PresenceDiff["mediaChanged"] = [];
    function Changes() {
      usePresenceChanges(useCallback((diff: PresenceDiff) => changes.push(...diff.mediaChanged), []));
      return null;
    }
    await render(h(RealtimeProvider, options(server.url), h(GuildStatus), h(Changes), h(RoomMedia, { channelId: A })));
    await until(() => text("guild") === "available" && text(`room-${A}`) === `${U}:`, "live, available");
    server.send(guildStatus(2, "unavailable"));
    await until(() => text("guild") === "unavailable", "the outage shown");
    server.send(voiceMedia(3, A, U, { selfVideo: true }));
    await until(() => changes.length === 1, "the media change");
    expect(changes[0]).toMatchObject({ channelId: A, member: { userId: U }, before: { selfVideo: false }, after: { selfVideo: true } });
    server.send(guildStatus(4, "available"));
    await until(() => text("guild") === "available", "back");
  });
});
