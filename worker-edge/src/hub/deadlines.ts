import { CloseCode } from "../../../protocol/index.js";
import type { SocketIndex } from "./socket-index.js";
import { closeSocket, deadlineOf, isOpen } from "./sockets.js";
import type { HubStore, RoomRecord } from "./store.js";

/**
 * The deadlines one alarm multiplexes: auth timeouts and token expiries of sockets, and idle rooms. Everything here
 * reads the current state, so it can be asked again after any await.
 */

/** Closes every socket whose deadline has passed: 4408 while pending, 4401 once live. */
export function closeOverdueSockets(sockets: WebSocket[], index: SocketIndex, now: number): void {
  for (const ws of sockets) {
    const attachment = index.attachment(ws);
    if (!attachment || deadlineOf(attachment) > now) continue;
    index.forget(ws);
    if (attachment.phase === "pending") closeSocket(ws, CloseCode.authTimeout, "auth timeout");
    else closeSocket(ws, CloseCode.unauthorized, "token expired");
  }
}

export function nextSocketDeadline(sockets: WebSocket[], index: SocketIndex): number {
  let next = Infinity;
  for (const ws of sockets) {
    const attachment = index.attachment(ws);
    if (attachment && isOpen(ws)) next = Math.min(next, deadlineOf(attachment));
  }
  return next;
}

/** When a room this service created may be ended for being idle, or undefined if it may not. */
export function idleDeadline(room: RoomRecord | undefined, ttlMs: number): number | undefined {
  if (!room || ttlMs === 0 || room.creatorId === null || room.emptySince === null) return undefined;
  return room.emptySince + ttlMs;
}

export function nextIdleDeadline(store: HubStore, ttlMs: number): number {
  if (ttlMs === 0) return Infinity; // idle rooms never end: no need to read every room on each ingest
  let next = Infinity;
  for (const room of store.rooms()) next = Math.min(next, idleDeadline(room, ttlMs) ?? Infinity);
  return next;
}

/** Rooms due to end now; re-check each with `isDue` right before acting, as a join may land meanwhile. */
export function dueIdleRooms(store: HubStore, ttlMs: number, now: number): string[] {
  return store
    .rooms()
    .filter((room) => (idleDeadline(room, ttlMs) ?? Infinity) <= now)
    .map((room) => room.channelId);
}

export function isDue(store: HubStore, channelId: string, ttlMs: number, now: number): boolean {
  return (idleDeadline(store.room(channelId), ttlMs) ?? Infinity) <= now;
}
