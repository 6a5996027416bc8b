import { CloseCode, type AppEvent, type SnapshotMessage } from "../../../protocol/index.js";
import { attachmentOf, closeSocket, wantsEvent, type SocketAttachment } from "./sockets.js";
import type { HubStore } from "./store.js";

export interface Outgoing {
  event: AppEvent;
  message: string;
}

/**
 * Sends each message to every live socket that wants it. workerd exposes no send-buffer size, so a send it
 * refuses is the only sign of a consumer to shed: that socket is closed 1013 and the loop goes on.
 * Returns the sockets shed.
 */
export function broadcast(sockets: WebSocket[], outgoing: Outgoing[], now: number): number {
  let shed = 0;
  for (const ws of sockets) {
    const attachment = attachmentOf(ws);
    if (!attachment || attachment.phase !== "live" || attachment.expiresAt <= now) continue;
    for (const { event, message } of outgoing) {
      if (!wantsEvent(attachment, event.event, event.payload.channelId)) continue;
      try {
        ws.send(message);
      } catch {
        closeSocket(ws, CloseCode.overloaded, "overloaded");
        shed++;
        break;
      }
    }
  }
  return shed;
}

/**
 * Sends exactly the events a resuming client missed, or a snapshot when its gap is outside the buffer.
 * Returns whether it replayed.
 */
export function catchUp(ws: WebSocket, store: HubStore, attachment: SocketAttachment, since: number | undefined): boolean {
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
  const subscribed = attachment.phase === "live" ? attachment.rooms : undefined;
  const rooms = store
    .snapshotRooms()
    .map((room) => (!subscribed || subscribed.includes(room.channelId) ? room : { ...room, members: [] }));
  ws.send(JSON.stringify({ v: 1, type: "snapshot", payload: { rooms }, seq } satisfies SnapshotMessage));
  return false;
}
