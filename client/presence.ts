import type { EventEnvelope, Member, Room, SnapshotMessage } from "./types.js";
import { callListener } from "./listeners.js";

export interface PresenceSnapshot {
  /** The last applied guild sequence number (0 before the first snapshot). */
  seq: number;
  rooms: Room[];
}

export type ApplyResult = "applied" | "duplicate" | "gap";

/** What one change (an event or a snapshot replacing the state) did to the rooms, found by comparing before and after. */
export interface PresenceDiff {
  joined: Array<{ channelId: string; member: Member }>;
  left: Array<{ channelId: string; member: Member }>;
  moved: Array<{ from: string; to: string; member: Member }>;
  created: Room[];
  deleted: Room[];
}

/**
 * Rooms → members, built from a snapshot and the events after it. Events at or below the current seq are
 * duplicates and ignored; one that skips a seq is a gap, reported so the connection can resume. Subscribable,
 * with a snapshot object that keeps its identity until something changes (for useSyncExternalStore).
 */
export class PresenceStore {
  private rooms = new Map<string, Room>();
  private current: PresenceSnapshot = { seq: 0, rooms: [] };
  private readonly listeners = new Set<() => void>();
  private readonly diffListeners = new Set<(diff: PresenceDiff) => void>();
  private synced = false;

  /** With a room filter, other rooms' voice events are skipped by design, so seq gaps mean nothing. */
  constructor(public detectGaps = true) {}

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

  /** The members of a room ([] for a room not known). */
  membersOf(channelId: string): Member[] {
    return this.rooms.get(channelId)?.members ?? [];
  }

  /** The room a user is in, if any (within the rooms whose members this connection receives). */
  roomOf(userId: string): Room | undefined {
    return this.current.rooms.find((room) => room.members.some((m) => m.userId === userId));
  }

  /**
   * Calls `listener` with who joined, left or moved and which rooms were created or deleted, after each change: an
   * event, or a snapshot that replaces the state (after a resync). The first snapshot is not a change: it is the
   * picture `getSnapshot()` holds.
   */
  onChange(listener: (diff: PresenceDiff) => void): () => void {
    this.diffListeners.add(listener);
    return () => this.diffListeners.delete(listener);
  }

  applySnapshot(message: Pick<SnapshotMessage, "seq" | "payload">): void {
    // A room the snapshot did not change keeps its object, so what renders it (useRoom) does not render again.
    const known = this.rooms;
    this.rooms = new Map(
      message.payload.rooms.map((room) => {
        const fresh = { ...room, members: [...room.members] };
        const previous = known.get(room.channelId);
        return [room.channelId, JSON.stringify(previous) === JSON.stringify(fresh) ? previous! : fresh];
      }),
    );
    // The first snapshot is the picture, not a change: onChange reports nobody as joined for it.
    const initial = !this.synced;
    this.synced = true;
    this.publish(message.seq, !initial);
  }

  applyEvent(envelope: EventEnvelope): ApplyResult {
    const position = this.place(envelope.seq);
    if (position !== "applied") return position;
    const room = "channelId" in envelope.payload ? this.rooms.get(envelope.payload.channelId) : undefined;
    switch (envelope.event) {
      case "room.created":
      case "room.updated": {
        // A created for a room already known changes nothing; an update keeps the members.
        if (room && envelope.event === "room.created") break;
        const { channelId, name, userLimit } = envelope.payload;
        // A room.created without a parent omits parentId; the hub's snapshots say null: keep one shape.
        const parentId = envelope.payload.parentId ?? null;
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
        const target = this.rooms.get(channelId);
        if (target) this.rooms.set(channelId, { ...target, members: [...target.members, { userId, username, avatar }] });
        break;
      }
      case "voice.left":
        if (room) this.rooms.set(room.channelId, { ...room, members: room.members.filter((m) => m.userId !== envelope.payload.userId) });
        break;
      case "voice.media": {
        const { userId, media } = envelope.payload;
        if (room) this.rooms.set(room.channelId, { ...room, members: room.members.map((m) => (m.userId === userId ? { ...m, media } : m)) });
        break;
      }
      // guild.status: the rooms change by their own events (an absent guild's rooms are each deleted).
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

  private publish(seq: number, change = true): void {
    const before = this.current.rooms;
    this.current = { seq, rooms: [...this.rooms.values()].sort((a, b) => a.name.localeCompare(b.name) || a.channelId.localeCompare(b.channelId)) };
    for (const listener of this.listeners) callListener(listener);
    if (!change || this.diffListeners.size === 0) return;
    const diff = presenceDiff(before, this.current.rooms);
    if (Object.values(diff).some((list) => list.length > 0)) for (const listener of this.diffListeners) callListener(() => listener(diff));
  }
}

/** Compares two states room by room and member by member, so a snapshot after a resync reports what changed too. */
export function presenceDiff(before: Room[], after: Room[]): PresenceDiff {
  const diff: PresenceDiff = { joined: [], left: [], moved: [], created: [], deleted: [] };
  const index = (rooms: Room[]) => new Map(rooms.flatMap((room) => room.members.map((member) => [member.userId, { channelId: room.channelId, member }] as const)));
  const was = index(before);
  const is = index(after);
  const had = new Set(before.map((room) => room.channelId));
  const has = new Set(after.map((room) => room.channelId));
  diff.created = after.filter((room) => !had.has(room.channelId));
  diff.deleted = before.filter((room) => !has.has(room.channelId));
  for (const [userId, now] of is) {
    const then = was.get(userId);
    if (!then) diff.joined.push(now);
    else if (then.channelId !== now.channelId) diff.moved.push({ from: then.channelId, to: now.channelId, member: now.member });
  }
  for (const [userId, then] of was) if (!is.has(userId)) diff.left.push(then);
  return diff;
}
