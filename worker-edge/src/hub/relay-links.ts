import { eventsFrame, HISTORY_CHUNK, type LinkHello } from "../relay/link.js";
import { canReplay, snapshotMessage, type ReplaySource } from "./fanout.js";
import { closeSocket } from "./sockets.js";

/**
 * The hub's side of its relays' links (relay/link.ts): what a new link gets first, and each flush once per relay.
 * The hub's work per flush is one frame per relay, whatever the relays' audiences.
 */

/**
 * Starts a link: the hello, then the events after `since` when the hub still holds them all (the relay's gap is
 * filled), or everything buffered for a relay that linked fresh, or else a snapshot to start over from.
 */
export function startLink(ws: WebSocket, store: ReplaySource, since: number | undefined): void {
  const seq = store.seq;
  if (since === undefined || canReplay(store, since)) {
    const from = since === undefined ? (store.oldestBufferedSeq() ?? seq + 1) : since + 1;
    ws.send(JSON.stringify({ type: "hello", seq, from } satisfies LinkHello));
    const history = store.eventsAfter(from - 1);
    for (let i = 0; i < history.length; i += HISTORY_CHUNK) {
      ws.send(eventsFrame(history.slice(i, i + HISTORY_CHUNK).map((buffered) => buffered.message)));
    }
    return;
  }
  ws.send(JSON.stringify({ type: "hello", seq, from: seq + 1 } satisfies LinkHello));
  sendSnapshot(ws, store);
}

/** A snapshot at the seq of the last event sent on the link (the caller flushed first). */
export function sendSnapshot(ws: WebSocket, store: ReplaySource): void {
  ws.send(snapshotMessage(store, undefined, store.seq));
}

/**
 * One frame per relay with a flush's events. A link whose send fails is closed: its relay links again with the
 * seq it has, and the gap is filled then. Returns the links sent to and the ones closed.
 */
export function publishToRelays(links: Map<string, WebSocket>, messages: string[]): { sends: number; closed: WebSocket[] } {
  if (links.size === 0 || messages.length === 0) return { sends: 0, closed: [] };
  const frame = eventsFrame(messages);
  const closed: WebSocket[] = [];
  for (const ws of links.values()) {
    try {
      ws.send(frame);
    } catch {
      closeSocket(ws, 1011, "relay link broken");
      closed.push(ws);
    }
  }
  return { sends: links.size, closed };
}
