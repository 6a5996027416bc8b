import { channelOf, type AppEvent } from "../../../protocol/index.js";
import { isGuildWide, isOpen, type LiveAttachment, type SocketAttachment } from "./sockets.js";

export type Members = Map<WebSocket, LiveAttachment>;

// Deserialising an attachment on every read is wasted work: read once per socket, then kept with it.
const attachments = new WeakMap<WebSocket, SocketAttachment>();

/**
 * An object's sockets, indexed by what it asks of them: each one's attachment, the ones waiting for auth (and by
 * their client's address), each user's, the live ones by room filter, and (in a hub) the relays' links, so a flush walks only its recipients and reads
 * no attachment. Memory does not survive hibernation: rebuilt from the runtime's list on first use after a
 * wake-up, then kept current by `set` and `forget`. A socket that is no longer open is never indexed again.
 */
export class SocketIndex {
  private readonly pending = new Set<WebSocket>();
  /** Waiting sockets by the client address they came from (those that came with one). */
  private readonly pendingByAddress = new Map<string, Set<WebSocket>>();
  private readonly byUser = new Map<string, Set<WebSocket>>();
  /** Live sockets without a room filter: they get every event. */
  private readonly lobbySockets: Members = new Map();
  /** Live sockets with a room filter: room.* events, and voice events of their rooms. */
  private readonly filtered: Members = new Map();
  private readonly byRoom = new Map<string, Members>();
  /** Relays' links to this hub (relay/link.ts), by relay name. */
  private readonly links = new Map<string, WebSocket>();
  private built = false;

  constructor(private readonly allSockets: () => WebSocket[]) {}

  /** A socket's state, as last set (or as the attachment kept it across hibernation). */
  attachment(ws: WebSocket): SocketAttachment | undefined {
    let attachment = attachments.get(ws);
    if (!attachment) {
      attachment = (ws.deserializeAttachment() as SocketAttachment | null) ?? undefined;
      if (attachment) attachments.set(ws, attachment);
    }
    return attachment;
  }

  /** Keeps a socket's new state in its attachment and indexes it by that state, if the socket is still open. */
  set(ws: WebSocket, attachment: SocketAttachment): void {
    this.build();
    this.forget(ws);
    if (!isOpen(ws)) return;
    ws.serializeAttachment(attachment);
    attachments.set(ws, attachment);
    this.index(ws, attachment);
  }

  /** Takes a socket out of every index (it closed, or the hub closed it). */
  forget(ws: WebSocket): void {
    this.pending.delete(ws);
    const attachment = attachments.get(ws);
    if (attachment?.phase === "pending" && attachment.address !== undefined) {
      const fromAddress = this.pendingByAddress.get(attachment.address);
      fromAddress?.delete(ws);
      if (fromAddress?.size === 0) this.pendingByAddress.delete(attachment.address);
    }
    if (attachment?.phase === "relay" && this.links.get(attachment.relay) === ws) this.links.delete(attachment.relay);
    if (attachment?.phase !== "live") return;
    const own = this.byUser.get(attachment.userId);
    own?.delete(ws);
    if (own?.size === 0) this.byUser.delete(attachment.userId);
    this.lobbySockets.delete(ws);
    if (!this.filtered.delete(ws)) return;
    for (const room of attachment.rooms ?? []) {
      const members = this.byRoom.get(room);
      members?.delete(ws);
      if (members?.size === 0) this.byRoom.delete(room);
    }
  }

  /** Open sockets waiting for their auth message. */
  pendingCount(): number {
    this.build();
    return openCount(this.pending);
  }

  /** Open sockets waiting for their auth message that came from `address`. */
  pendingCountFrom(address: string): number {
    this.build();
    const sockets = this.pendingByAddress.get(address);
    if (!sockets) return 0;
    const count = openCount(sockets);
    if (count === 0) this.pendingByAddress.delete(address);
    return count;
  }

  /** Open live sockets of `userId`, not counting `except`. */
  userSocketCount(userId: string, except?: WebSocket): number {
    this.build();
    const sockets = this.byUser.get(userId);
    if (!sockets) return 0;
    const count = openCount(sockets);
    return except && sockets.has(except) ? count - 1 : count;
  }

  /**
   * The groups of live sockets that want `event`; no socket is in two of them. Room filters select voice
   * events only; guild-wide events (room.*, guild.status) go to everyone.
   */
  recipients(event: AppEvent): Members[] {
    this.build();
    if (isGuildWide(event.event)) return [this.lobbySockets, this.filtered];
    const room = this.byRoom.get(channelOf(event) ?? "");
    return room ? [this.lobbySockets, room] : [this.lobbySockets];
  }

  /** Live sockets without a room filter. */
  lobby(): Members {
    this.build();
    return this.lobbySockets;
  }

  /** Every live socket, lobby and filtered. */
  forEachLive(visit: (attachment: LiveAttachment, ws: WebSocket) => void): void {
    this.build();
    this.lobbySockets.forEach(visit);
    this.filtered.forEach(visit);
  }

  /** The relays' links, one per relay (a relay that linked again replaced its earlier link). */
  relayLinks(): Map<string, WebSocket> {
    this.build();
    return this.links;
  }

  /** Live sockets. */
  get size(): number {
    this.build();
    return this.lobbySockets.size + this.filtered.size;
  }

  private index(ws: WebSocket, attachment: SocketAttachment): void {
    if (attachment.phase === "pending") {
      this.pending.add(ws);
      if (attachment.address === undefined) return;
      let fromAddress = this.pendingByAddress.get(attachment.address);
      if (!fromAddress) this.pendingByAddress.set(attachment.address, (fromAddress = new Set()));
      fromAddress.add(ws);
      return;
    }
    if (attachment.phase === "relay") {
      this.links.set(attachment.relay, ws);
      return;
    }
    let own = this.byUser.get(attachment.userId);
    if (!own) this.byUser.set(attachment.userId, (own = new Set()));
    own.add(ws);
    if (!attachment.rooms) {
      this.lobbySockets.set(ws, attachment);
      return;
    }
    this.filtered.set(ws, attachment);
    for (const room of attachment.rooms) {
      let members = this.byRoom.get(room);
      if (!members) this.byRoom.set(room, (members = new Map()));
      members.set(ws, attachment);
    }
  }

  private build(): void {
    if (this.built) return;
    this.built = true;
    for (const ws of this.allSockets()) {
      const attachment = this.attachment(ws);
      if (attachment && isOpen(ws)) this.index(ws, attachment);
    }
  }
}

/** Counts the open sockets of a set, dropping the ones that closed (a close we sent, or one the client sent). */
function openCount(sockets: Set<WebSocket>): number {
  for (const ws of sockets) if (!isOpen(ws)) sockets.delete(ws);
  return sockets.size;
}
