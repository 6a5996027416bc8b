import { CloseCode, type AppEvent, type SnapshotMessage } from "../../../protocol/index.js";
import type { SocketIndex } from "./socket-index.js";
import { closeSocket, wantsEvent, type LiveAttachment } from "./sockets.js";
import type { HubStore } from "./store.js";

export interface Outgoing {
  event: AppEvent;
  /** The event's envelope, serialised once for every recipient. */
  message: string;
}

/**
 * Sends each message to every live socket that wants it, walking only its recipients (see SocketIndex): no
 * per-socket allocation, serialisation or storage. A socket that opted into batch frames gets the events of one
 * publish it wants in one frame. workerd exposes no send-buffer size, so a send it refuses is the only sign of a
 * consumer to shed: that socket is closed 1013 and skipped from then on. Returns the sockets shed.
 */
export function broadcast(audience: SocketIndex, outgoing: Outgoing[], now: number): number {
  const shed = new Set<WebSocket>();
  try {
    sendAll(audience, outgoing, now, shed);
  } finally {
    for (const ws of shed) audience.forget(ws);
  }
  return shed.size;
}

function sendAll(audience: SocketIndex, outgoing: Outgoing[], now: number, shed: Set<WebSocket>): void {
  const batching = outgoing.length > 1;
  // Filtered sockets taking batch frames may want only some events of the publish: collected per socket.
  const partial = new Map<WebSocket, string[]>();
  for (const { event, message } of outgoing) {
    for (const group of audience.recipients(event)) {
      // forEach rather than for-of: no entry array per socket.
      group.forEach((attachment, ws) => {
        if (attachment.expiresAt <= now || shed.has(ws)) return;
        if (batching && attachment.batch) {
          if (attachment.rooms) partial.set(ws, [...(partial.get(ws) ?? []), message]);
          return; // a lobby socket gets the whole frame below
        }
        try {
          ws.send(message); // inline: this line runs once per recipient
        } catch {
          shedSocket(ws, shed);
        }
      });
    }
  }
  if (!batching) return;
  const whole = frameOf(outgoing.map((o) => o.message));
  audience.lobby().forEach((attachment, ws) => {
    if (attachment.batch && attachment.expiresAt > now && !shed.has(ws)) send(ws, whole, shed);
  });
  partial.forEach((messages, ws) => {
    if (!shed.has(ws)) send(ws, messages.length === 1 ? messages[0]! : frameOf(messages), shed);
  });
}

function send(ws: WebSocket, message: string, shed: Set<WebSocket>): void {
  try {
    ws.send(message);
  } catch {
    shedSocket(ws, shed);
  }
}

function shedSocket(ws: WebSocket, shed: Set<WebSocket>): void {
  closeSocket(ws, CloseCode.overloaded, "overloaded");
  shed.add(ws);
}

/** The batch frame of `messages`, built by concatenating the envelopes already serialised. */
function frameOf(messages: string[]): string {
  return `{"v":1,"type":"batch","events":[${messages.join(",")}]}`;
}

/**
 * Sends exactly the events a resuming client missed, or a snapshot when its gap is outside the buffer.
 * Returns whether it replayed.
 */
export function catchUp(ws: WebSocket, store: HubStore, attachment: LiveAttachment, since: number | undefined): boolean {
  const seq = store.seq;
  if (since !== undefined && since <= seq) {
    const oldest = store.oldestBufferedSeq();
    if (since === seq || (oldest !== undefined && oldest <= since + 1)) {
      for (const buffered of store.eventsAfter(since)) {
        if (wantsEvent(attachment, buffered.event, buffered.channelId)) ws.send(buffered.message);
      }
      return true;
    }
  }
  ws.send(snapshotMessage(store, attachment.rooms, seq));
  return false;
}

// The unfiltered snapshot, serialised once per seq: a reconnect storm sends the same one thousands of times.
const snapshots = new WeakMap<HubStore, { seq: number; rooms: unknown; json: string }>();

function snapshotMessage(store: HubStore, subscribed: string[] | undefined, seq: number): string {
  const rooms = store.snapshotRooms();
  if (subscribed) {
    const filtered = rooms.map((room) => (subscribed.includes(room.channelId) ? room : { ...room, members: [] }));
    return JSON.stringify({ v: 1, type: "snapshot", payload: { rooms: filtered, status: store.guildStatus }, seq } satisfies SnapshotMessage);
  }
  const cached = snapshots.get(store);
  if (cached?.seq === seq && cached.rooms === rooms) return cached.json;
  const json = JSON.stringify({ v: 1, type: "snapshot", payload: { rooms, status: store.guildStatus }, seq } satisfies SnapshotMessage);
  snapshots.set(store, { seq, rooms, json });
  return json;
}
