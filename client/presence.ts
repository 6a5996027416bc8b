import type { EventEnvelope, Room, SnapshotMessage } from "../protocol/index.js";

export interface PresenceSnapshot {
  /** The last applied guild sequence number (0 before the first snapshot). */
  seq: number;
  rooms: Room[];
}

export type ApplyResult = "applied" | "duplicate" | "gap";

/**
 * Rooms → members, built from a snapshot and the events after it. Events at or below the current seq are
 * duplicates and ignored; one that skips a seq is a gap, reported so the connection can resume. Subscribable,
 * with a snapshot object that keeps its identity until something changes (for useSyncExternalStore).
 */
export class PresenceStore {
  private rooms = new Map<string, Room>();
  private current: PresenceSnapshot = { seq: 0, rooms: [] };
  private readonly listeners = new Set<() => void>();
  private synced = false;

  /** With a room filter, other rooms' voice events are skipped by design, so seq gaps mean nothing. */
  constructor(private readonly detectGaps = true) {}

  get seq(): number {
    return this.current.seq;
  }

  /** Whether a snapshot has arrived, so `seq` is a real position to resume from. */
  get hasSnapshot(): boolean {
    return this.synced;
  }

  getSnapshot = (): PresenceSnapshot => this.current;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  applySnapshot(message: Pick<SnapshotMessage, "seq" | "payload">): void {
    this.rooms = new Map(message.payload.rooms.map((room) => [room.channelId, { ...room, members: [...room.members] }]));
    this.synced = true;
    this.publish(message.seq);
  }

  applyEvent(envelope: EventEnvelope): ApplyResult {
    const position = this.place(envelope.seq);
    if (position !== "applied") return position;
    switch (envelope.event) {
      case "room.created": {
        const { channelId, name, userLimit, parentId, creatorId } = envelope.payload;
        if (!this.rooms.has(channelId)) this.rooms.set(channelId, { channelId, name, userLimit, parentId, ...(creatorId ? { creatorId } : {}), members: [] });
        break;
      }
      case "room.updated": {
        const { channelId, name, userLimit, parentId } = envelope.payload;
        const room = this.rooms.get(channelId);
        // A room's creator never changes: keep the one known if this update (from an older hub) does not say.
        const creatorId = envelope.payload.creatorId ?? room?.creatorId;
        this.rooms.set(channelId, { channelId, name, userLimit, parentId, ...(creatorId ? { creatorId } : {}), members: room?.members ?? [] });
        break;
      }
      case "room.deleted":
        this.rooms.delete(envelope.payload.channelId);
        break;
      case "voice.joined": {
        const { channelId, userId, username, avatar } = envelope.payload;
        this.removeMember(userId); // a joined in another room is a move, even if its left was filtered out
        const room = this.rooms.get(channelId);
        if (room) this.rooms.set(channelId, { ...room, members: [...room.members, { userId, username, avatar }] });
        break;
      }
      case "voice.left": {
        const room = this.rooms.get(envelope.payload.channelId);
        if (room) this.rooms.set(room.channelId, { ...room, members: room.members.filter((m) => m.userId !== envelope.payload.userId) });
        break;
      }
    }
    this.publish(envelope.seq);
    return "applied";
  }

  /**
   * Moves past an event this client does not know (a newer hub's), so its seq is not later mistaken for a gap.
   * The rooms do not change.
   */
  skip(seq: number): ApplyResult {
    const position = this.place(seq);
    if (position === "applied") this.publish(seq);
    return position;
  }

  /** Where an event with this seq falls: already seen, next (or, with a room filter, any later one), or past a gap. */
  private place(seq: number): ApplyResult {
    if (seq <= this.current.seq) return "duplicate";
    if (this.detectGaps && this.synced && seq > this.current.seq + 1) return "gap";
    return "applied";
  }

  private removeMember(userId: string): void {
    for (const room of this.rooms.values()) {
      if (room.members.some((m) => m.userId === userId)) {
        this.rooms.set(room.channelId, { ...room, members: room.members.filter((m) => m.userId !== userId) });
      }
    }
  }

  private publish(seq: number): void {
    this.current = { seq, rooms: [...this.rooms.values()].sort((a, b) => a.name.localeCompare(b.name) || a.channelId.localeCompare(b.channelId)) };
    for (const listener of this.listeners) listener();
  }
}
