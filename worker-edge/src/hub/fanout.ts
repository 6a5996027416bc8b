import { CloseCode, type AppEvent, type AuthOkMessage, type GuildStatus, type Room, type SnapshotMessage } from "../../../protocol/index.js";
import type { SocketIndex } from "./socket-index.js";
import { closeSocket, wantsEvent, type LiveAttachment } from "./sockets.js";
import type { BufferedEvent } from "./store.js";

export interface Outgoing {
  event: AppEvent;
  /** The event's envelope, serialised once for every recipient. */
  message: string;
}

/** What one flush cost: socket sends (frames written) and sockets shed. */
export interface FlushCount {
  sends: number;
  shed: number;
}

/**
 * Sends each message to every live socket that wants it, walking only its recipients (see SocketIndex): no
 * per-socket allocation, serialisation or storage. A socket that opted into batch frames gets the events of one
 * flush it wants in one frame. workerd exposes no send-buffer size, so a send it refuses is the only sign of a
 * consumer to shed: that socket is closed 1013 and skipped from then on.
 */
export function broadcast(audience: SocketIndex, outgoing: Outgoing[], now: number): FlushCount {
  const shed = new Set<WebSocket>();
  let sends = 0;
  try {
    sends = sendAll(audience, outgoing, now, shed);
  } finally {
    for (const ws of shed) audience.forget(ws);
  }
  return { sends, shed: shed.size };
}

function sendAll(audience: SocketIndex, outgoing: Outgoing[], now: number, shed: Set<WebSocket>): number {
  let sends = 0;
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
        sends++;
        try {
          ws.send(message); // inline: this line runs once per recipient
        } catch {
          shedSocket(ws, shed);
        }
      });
    }
  }
  if (!batching) return sends;
  const whole = frameOf(outgoing.map((o) => o.message));
  audience.lobby().forEach((attachment, ws) => {
    if (attachment.batch && attachment.expiresAt > now && !shed.has(ws)) sends += send(ws, whole, shed);
  });
  partial.forEach((messages, ws) => {
    if (!shed.has(ws)) sends += send(ws, messages.length === 1 ? messages[0]! : frameOf(messages), shed);
  });
  return sends;
}

function send(ws: WebSocket, message: string, shed: Set<WebSocket>): 1 {
  try {
    ws.send(message);
  } catch {
    shedSocket(ws, shed);
  }
  return 1;
}

function shedSocket(ws: WebSocket, shed: Set<WebSocket>): void {
  closeSocket(ws, CloseCode.overloaded, "overloaded");
  shed.add(ws);
}

/** The batch frame of `messages`, built by concatenating the envelopes already serialised. */
function frameOf(messages: string[]): string {
  return `{"v":1,"type":"batch","events":[${messages.join(",")}]}`;
}

/** What a resume is served from: the hub's store, or a relay's mirror of it (relay/mirror.ts). */
export interface ReplaySource {
  readonly seq: number;
  /** The oldest seq still buffered, or undefined when the buffer is empty. */
  oldestBufferedSeq(): number | undefined;
  /** The buffered events after `seq`, in order. */
  eventsAfter(seq: number): BufferedEvent[];
  /** The rooms at `seq`. Shared until the next change: do not mutate. */
  snapshotRooms(): Room[];
  /** The guild's status at `seq` (see GuildStatus). */
  readonly guildStatus: GuildStatus;
}

/** Whether `since` can be served exactly from the buffer (nothing missed, or every missed event still held). */
export function canReplay(source: ReplaySource, since: number | undefined): since is number {
  if (since === undefined || since > source.seq) return false;
  const oldest = source.oldestBufferedSeq();
  return since === source.seq || (oldest !== undefined && oldest <= since + 1);
}

/**
 * Sends exactly the events a resuming client missed, or a snapshot when its gap is outside the buffer.
 * Returns whether it replayed.
 */
export function catchUp(ws: WebSocket, store: ReplaySource, attachment: LiveAttachment, since: number | undefined): boolean {
  const seq = store.seq;
  if (canReplay(store, since)) {
    for (const buffered of store.eventsAfter(since)) {
      if (wantsEvent(attachment, buffered.event, buffered.channelId)) ws.send(buffered.message);
    }
    return true;
  }
  ws.send(snapshotMessage(store, attachment.rooms, seq));
  return false;
}

// The unfiltered snapshot, serialised once per seq: a reconnect storm sends the same one thousands of times.
const snapshots = new WeakMap<ReplaySource, { seq: number; rooms: unknown; json: string }>();

/** The `auth.ok` acknowledgement: the seq the socket's catch-up runs to. */
export function authOkMessage(guildId: string, seq: number): string {
  return JSON.stringify({ v: 1, type: "ack", event: "auth.ok", guildId, seq } satisfies AuthOkMessage);
}

/** The snapshot message at `seq`, with members only in the `subscribed` rooms when the socket filters. */
export function snapshotMessage(store: ReplaySource, subscribed: string[] | undefined, seq: number): string {
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
