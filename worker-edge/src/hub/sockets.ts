import type { AppEvent } from "../../../protocol/index.js";

/** Per-socket state, kept in the hibernation attachment (well under its 2 KB budget) so it survives eviction. */
export type SocketAttachment =
  | { phase: "pending"; authDeadline: number }
  | { phase: "live"; userId: string; expiresAt: number; rooms?: string[] };

// Deserialising an attachment on every broadcast is wasted work; this cache is rebuilt lazily after a wake-up.
const attachments = new WeakMap<WebSocket, SocketAttachment>();

export function attachmentOf(ws: WebSocket): SocketAttachment | undefined {
  let attachment = attachments.get(ws);
  if (!attachment) {
    attachment = (ws.deserializeAttachment() as SocketAttachment | null) ?? undefined;
    if (attachment) attachments.set(ws, attachment);
  }
  return attachment;
}

export function setAttachment(ws: WebSocket, attachment: SocketAttachment): void {
  ws.serializeAttachment(attachment);
  attachments.set(ws, attachment);
}

/** When this socket must be closed: the auth timeout while pending, the token's expiry once live. */
export function deadlineOf(attachment: SocketAttachment): number {
  return attachment.phase === "pending" ? attachment.authDeadline : attachment.expiresAt;
}

/** Room subscriptions filter voice events only; room.* events always arrive. */
export function wantsEvent(attachment: SocketAttachment, event: AppEvent["event"], channelId: string): boolean {
  if (attachment.phase !== "live") return false;
  if (!attachment.rooms || event.startsWith("room.")) return true;
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
