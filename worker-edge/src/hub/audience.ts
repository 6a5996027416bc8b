import type { AppEvent } from "../../../protocol/index.js";
import { attachmentOf, type LiveAttachment, type SocketAttachment } from "./sockets.js";

export type Members = Map<WebSocket, LiveAttachment>;

/**
 * Who an event goes to: the live sockets, indexed by room filter and by whether they take batch frames, so a
 * publish touches only its recipients and reads no attachment. Memory does not survive hibernation: the index is
 * rebuilt from the runtime's list on first use after a wake-up, then kept current as sockets change.
 */
export class Audience {
  /** Live sockets without a room filter: they get every event. */
  private readonly lobbySockets: Members = new Map();
  /** Live sockets with a room filter: room.* events, and voice events of their rooms. */
  private readonly filtered: Members = new Map();
  private readonly byRoom = new Map<string, Members>();
  private built = false;

  constructor(private readonly allSockets: () => WebSocket[]) {}

  /** Indexes a socket by its current attachment; call after every setAttachment. */
  record(ws: WebSocket, attachment: SocketAttachment): void {
    this.build();
    this.forget(ws);
    if (attachment.phase !== "live") return;
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

  forget(ws: WebSocket): void {
    this.lobbySockets.delete(ws);
    const attachment = this.filtered.get(ws);
    if (!attachment) return;
    this.filtered.delete(ws);
    for (const room of attachment.rooms ?? []) {
      const members = this.byRoom.get(room);
      members?.delete(ws);
      if (members?.size === 0) this.byRoom.delete(room);
    }
  }

  /**
   * The groups of live sockets that want `event`; no socket is in two of them. Room filters select voice
   * events only; room.* events go to everyone.
   */
  recipients(event: AppEvent): Members[] {
    this.build();
    if (event.event.startsWith("room.")) return [this.lobbySockets, this.filtered];
    const room = this.byRoom.get(event.payload.channelId);
    return room ? [this.lobbySockets, room] : [this.lobbySockets];
  }

  /** Live sockets without a room filter. */
  lobby(): Members {
    this.build();
    return this.lobbySockets;
  }

  get size(): number {
    this.build();
    return this.lobbySockets.size + this.filtered.size;
  }

  private build(): void {
    if (this.built) return;
    this.built = true;
    for (const ws of this.allSockets()) {
      const attachment = attachmentOf(ws);
      if (attachment) this.record(ws, attachment);
    }
  }
}
