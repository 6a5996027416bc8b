import type { AppEvent } from "../../../protocol/index.js";
import type { Bucket } from "../../../protocol/index.js";

/** Per-socket state, kept in the hibernation attachment (well under its 2 KB budget) so it survives eviction. */
export type SocketAttachment =
  /** `address`: the client's (admission.ts), which its waiting socket counts under. */
  | { phase: "pending"; conn: string; authDeadline: number; address?: string }
  | { phase: "live"; conn: string; userId: string; expiresAt: number; rooms?: string[]; batch?: boolean; reauth: Bucket; roomsBucket?: Bucket }
  /** A relay's link to the hub (see relay/link.ts): it gets every flush once, for all of the relay's sockets. */
  | { phase: "relay"; relay: string };

export type LiveAttachment = Extract<SocketAttachment, { phase: "live" }>;

/** A short id for a connection, for its log lines. */
export function connectionId(): string {
  return crypto.randomUUID().slice(0, 8);
}

/** When this socket must be closed: the auth timeout while pending, the token's expiry once live. */
export function deadlineOf(attachment: SocketAttachment): number {
  if (attachment.phase === "relay") return Infinity;
  return attachment.phase === "pending" ? attachment.authDeadline : attachment.expiresAt;
}

/** Events every live socket gets whatever its room filter: room.* and guild.status. */
export function isGuildWide(event: AppEvent["event"]): boolean {
  return event.startsWith("room.") || event === "guild.status";
}

/** Room subscriptions filter voice events only; guild-wide events always arrive. */
export function wantsEvent(attachment: SocketAttachment, event: AppEvent["event"], channelId: string): boolean {
  if (attachment.phase !== "live") return false;
  if (!attachment.rooms || isGuildWide(event)) return true;
  return attachment.rooms.includes(channelId);
}

const RESERVED_CLOSE_CODES = new Set([1004, 1005, 1006, 1015]);

/** Closes without throwing: a socket already gone, or a reserved code echoed back, is not an error. */
export function closeSocket(ws: WebSocket, code: number, reason = ""): void {
  try {
    ws.close(RESERVED_CLOSE_CODES.has(code) || code < 1000 ? 1000 : code, reason.slice(0, 120));
  } catch {
    // already closed
  }
}

const OPEN = 1;

export function isOpen(ws: WebSocket): boolean {
  return ws.readyState === OPEN;
}
