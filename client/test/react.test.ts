// @vitest-environment jsdom
import { act, createElement as h, StrictMode, useCallback, useState } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, describe, expect, it } from "vitest";
import { until } from "../../test-support/until.js";
import type { PresenceDiff } from "../presence.js";
import { RealtimeProvider, useConnectionState, usePresenceChanges, useRoom, useRooms, useSpellCovenPresence } from "../react.js";
import { A, guildId, jwt, NodeWebSocket, ScriptedHub, U } from "./support/hub.js";

let hub: ScriptedHub | undefined;
let root: Root | undefined;
let container: HTMLElement;
afterEach(async () => {
  if (root) await act(async () => root!.unmount());
  await hub?.close();
  hub = root = undefined;
});

const getToken = async () => jwt(600);
const options = (url: string) => ({ url, getToken, WebSocket: NodeWebSocket, backoff: { minMs: 10, maxMs: 50, factor: 2 } });
const text = (testId: string) => container.querySelector(`[data-testid="${testId}"]`)?.textContent;

async function render(element: Parameters<Root["render"]>[0]): Promise<void> {
  container = document.createElement("div");
  document.body.append(container);
  root = createRoot(container);
  await act(async () => root!.render(element));
}

function Status() {
  return h("span", { "data-testid": "status" }, useConnectionState().status);
}
function RoomMembers({ channelId }: { channelId: string }) {
  const room = useRoom(channelId);
  return h("span", { "data-testid": `room-${channelId}` }, room ? room.members.map((m) => m.userId).join(",") || "empty" : "unknown");
}
function RoomNames() {
  return h("span", { "data-testid": "rooms" }, useRooms().map((room) => room.name).join(","));
}

async function liveHub(): Promise<ScriptedHub> {
  const started = (hub = await ScriptedHub.start());
  started.onAuth = (socket) => started.ack(socket);
  return started;
}

describe("<RealtimeProvider>", () => {
  it("shares one connection between every hook below it and renders live presence", async () => {
    const server = await liveHub();
    await render(h(StrictMode, null, h(RealtimeProvider, options(server.url), h(Status), h(RoomMembers, { channelId: A }), h(RoomNames))));
    await until(() => text("status") === "live" && text(`room-${A}`) === "empty", "live with room A");
    expect(text("rooms")).toBe("A");
    server.send({ v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: A, userId: U }, ts: 1, seq: 2 });
    await until(() => text(`room-${A}`) === U, "the join rendered");
    const open = server.sockets.filter((socket) => socket.readyState === socket.OPEN);
    expect(open, "one connection for three hooks (StrictMode's first mount closed its own)").toHaveLength(1);
  });

  it("changes the room filter on the same connection when the rooms prop changes, and closes on unmount", async () => {
    const server = await liveHub();
    let setRooms: (rooms: string[]) => void = () => undefined;
    function App() {
      const [rooms, set] = useState([A]);
      setRooms = set;
      return h(RealtimeProvider, { ...options(server.url), rooms }, h(Status));
    }
    await render(h(App));
    await until(() => text("status") === "live", "live");
    const B = "110000000000000002";
    await act(async () => setRooms([B]));
    await until(() => server.received.some((m) => typeof m === "object" && m.type === "rooms"), "the rooms message");
    expect(server.received.filter((m) => typeof m === "object" && m.type === "rooms")).toEqual([{ type: "rooms", rooms: [B] }]);
    expect(server.sockets).toHaveLength(1);
    await act(async () => root!.unmount());
    root = undefined;
    await until(() => server.last().readyState === server.last().CLOSED, "the socket closed on unmount");
  });

  it("calls usePresenceChanges listeners with each change, not with the first snapshot", async () => {
    const server = await liveHub();
    const diffs: PresenceDiff[] = [];
    function Changes() {
      usePresenceChanges(useCallback((diff: PresenceDiff) => diffs.push(diff), []));
      return null;
    }
    await render(h(RealtimeProvider, options(server.url), h(Changes), h(Status)));
    await until(() => text("status") === "live", "live with the first snapshot");
    server.send({ v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: A, userId: U }, ts: 1, seq: 2 });
    await until(() => diffs.length === 1, "the join's diff");
    expect(diffs[0]!.joined).toEqual([{ channelId: A, member: { userId: U } }]);
  });
});

describe("useSpellCovenPresence (deprecated)", () => {
  it("still gives rooms, status and the last event", async () => {
    const server = await liveHub();
    function Legacy() {
      const { rooms, status, lastEvent } = useSpellCovenPresence(options(server.url));
      return h("span", { "data-testid": "legacy" }, `${status}:${rooms.length}:${lastEvent?.event ?? "-"}`);
    }
    await render(h(Legacy));
    await until(() => text("legacy") === "live:1:-", "live with one room");
    server.send({ v: 1, type: "event", event: "voice.joined", payload: { guildId, channelId: A, userId: U }, ts: 1, seq: 2 });
    await until(() => text("legacy") === "live:1:voice.joined", "the last event");
  });
});
