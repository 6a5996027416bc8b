import type { AppEvent } from "../../../protocol/index.js";
import type { Bucket } from "../../../protocol/index.js";

/** Per-socket state, kept in the hibernation attachment (well under its 2 KB budget) so it survives eviction. */
export type SocketAttachment =
  | { phase: "pending"; conn: string; authDeadline: number }
  | { phase: "live"; conn: string; userId: string; expiresAt: number; rooms?: string[]; batch?: boolean; reauth: Bucket; roomsBucket?: Bucket };

export type LiveAttachment = Extract<SocketAttachment, { phase: "live" }>;

/** A short id for a connection, for its log lines. */
export function connectionId(): string {
  return crypto.randomUUID().slice(0, 8);
}

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

const OPEN = 1;

export function isOpen(ws: WebSocket): boolean {
  return ws.readyState === OPEN;
}

/**
 * Which sockets wait for auth and which belong to each user, for the admission limits. Built from the runtime's
 * list on first use after a wake-up (memory does not survive hibernation), then kept current as sockets change.
 */
export class SocketCensus {
  private readonly pending = new Set<WebSocket>();
  private readonly byUser = new Map<string, Set<WebSocket>>();
  private built = false;

  constructor(private readonly allSockets: () => WebSocket[]) {}

  /** Records a socket's current phase; call after every setAttachment. */
  record(ws: WebSocket, attachment: SocketAttachment): void {
    this.build();
    this.forget(ws);
    if (attachment.phase === "pending") this.pending.add(ws);
    else this.userSockets(attachment.userId, true).add(ws);
  }

  forget(ws: WebSocket): void {
    this.pending.delete(ws);
    const attachment = attachmentOf(ws);
    if (attachment?.phase === "live") this.userSockets(attachment.userId, false)?.delete(ws);
  }

  pendingCount(): number {
    this.build();
    return openCount(this.pending);
  }

  /** Open sockets of `userId`, not counting `except`. */
  userSocketCount(userId: string, except?: WebSocket): number {
    this.build();
    const sockets = this.userSockets(userId, false);
    if (!sockets) return 0;
    const count = openCount(sockets);
    if (sockets.size === 0) this.byUser.delete(userId);
    return except && sockets.has(except) ? count - 1 : count;
  }

  private build(): void {
    if (this.built) return;
    this.built = true;
    for (const ws of this.allSockets()) {
      const attachment = attachmentOf(ws);
      if (attachment) this.record(ws, attachment);
    }
  }

  private userSockets(userId: string, create: true): Set<WebSocket>;
  private userSockets(userId: string, create: false): Set<WebSocket> | undefined;
  private userSockets(userId: string, create: boolean): Set<WebSocket> | undefined {
    let sockets = this.byUser.get(userId);
    if (!sockets && create) {
      sockets = new Set();
      this.byUser.set(userId, sockets);
    }
    return sockets;
  }
}

/** Counts the open sockets of a set, dropping the ones that closed (a close we sent, or one the client sent). */
function openCount(sockets: Set<WebSocket>): number {
  for (const ws of sockets) if (ws.readyState !== OPEN) sockets.delete(ws);
  return sockets.size;
}
