import { NO_VOICE_MEDIA } from "../protocol/limits.js";
import type { EventEnvelope, GuildStatus, Member, Room, SnapshotMessage, VoiceMedia } from "./types.js";
import { callListener } from "./listeners.js";

export interface PresenceSnapshot {
  /** The last applied guild sequence number (0 before the first snapshot). */
  seq: number;
  rooms: Room[];
  /**
   * "available"; "unavailable" while Discord reports an outage (the rooms may be stale); "absent" when the
   * service's bot is not in the guild (no rooms). "available" until a hub says otherwise.
   */
  guildStatus: GuildStatus;
}

/** A member's media flags: every flag off for a member a hub older than media state sent without them. */
export const mediaOf = (member: Member): VoiceMedia => member.media ?? NO_VOICE_MEDIA;

const sameMedia = (a: VoiceMedia, b: VoiceMedia) => (Object.keys(NO_VOICE_MEDIA) as Array<keyof VoiceMedia>).every((flag) => a[flag] === b[flag]);

export type ApplyResult = "applied" | "duplicate" | "gap";

/** What one change (an event or a snapshot replacing the state) did to the rooms, found by comparing before and after. */
export interface PresenceDiff {
  joined: Array<{ channelId: string; member: Member }>;
  left: Array<{ channelId: string; member: Member }>;
  moved: Array<{ from: string; to: string; member: Member }>;
  created: Room[];
  deleted: Room[];
  /** Members present before and after whose media flags changed; `channelId` is the room they are in after. */
  mediaChanged: Array<{ channelId: string; member: Member; before: VoiceMedia; after: VoiceMedia }>;
}

/**
 * Rooms → members, built from a snapshot and the events after it. Events at or below the current seq are
 * duplicates and ignored; one that skips a seq is a gap, reported so the connection can resume. Subscribable,
 * with a snapshot object that keeps its identity until something changes (for useSyncExternalStore).
 */
export class PresenceStore {
  private rooms = new Map<string, Room>();
  private current: PresenceSnapshot = { seq: 0, rooms: [], guildStatus: "available" };
  /** The guild status the next publish carries. */
  private status: GuildStatus = "available";
  private readonly listeners = new Set<() => void>();
  private readonly diffListeners = new Set<(diff: PresenceDiff) => void>();
  private synced = false;

  /** With a room filter, other rooms' voice events are skipped by design, so seq gaps mean nothing. */
  constructor(public detectGaps = true) {}

  get seq(): number {
    return this.current.seq;
  }

  /** See PresenceSnapshot's guildStatus. */
  get guildStatus(): GuildStatus {
    return this.current.guildStatus;
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
   * Calls `listener` with who joined, left or moved, which rooms were created or deleted and whose media flags
   * changed, after each change: an event, or a snapshot that replaces the state (after a resync). The first
   * snapshot is not a change: it is the picture `getSnapshot()` holds.
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
    this.status = message.payload.status ?? "available";
    // The first snapshot is the picture, not a change: onChange reports nobody as joined for it.
    const initial = !this.synced;
    this.synced = true;
    this.publish(message.seq, !initial);
  }

  applyEvent(envelope: EventEnvelope): ApplyResult {
    const position = this.place(envelope.seq);
    if (position !== "applied") return position;
    switch (envelope.event) {
      case "room.created":
      case "room.updated": {
        const room = this.rooms.get(envelope.payload.channelId);
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
        const { channelId, userId, username, avatar, media } = envelope.payload;
        this.removeMember(userId); // a joined in another room is a move, even if its left was filtered out
        const target = this.rooms.get(channelId);
        if (target) this.rooms.set(channelId, { ...target, members: [...target.members, { userId, username, avatar, media }] });
        break;
      }
      case "voice.left": {
        const room = this.rooms.get(envelope.payload.channelId);
        if (room) this.rooms.set(room.channelId, { ...room, members: room.members.filter((m) => m.userId !== envelope.payload.userId) });
        break;
      }
      case "voice.media":
        this.setMedia(envelope.payload);
        break;
      case "guild.status":
        this.status = envelope.payload.status;
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

  /** A member's flags are now these; for a user not in that room, or flags they already have, nothing changes. */
  private setMedia({ channelId, userId, media }: Extract<EventEnvelope, { event: "voice.media" }>["payload"]): void {
    const room = this.rooms.get(channelId);
    const member = room?.members.find((m) => m.userId === userId);
    if (!room || !member || (member.media && sameMedia(member.media, media))) return;
    this.rooms.set(channelId, { ...room, members: room.members.map((m) => (m === member ? { ...member, media } : m)) });
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
    const rooms = [...this.rooms.values()].sort((a, b) => a.name.localeCompare(b.name) || a.channelId.localeCompare(b.channelId));
    this.current = { seq, rooms, guildStatus: this.status };
    for (const listener of this.listeners) callListener(listener);
    if (!change || this.diffListeners.size === 0) return;
    const diff = presenceDiff(before, this.current.rooms);
    if (Object.values(diff).some((list) => list.length > 0)) for (const listener of this.diffListeners) callListener(() => listener(diff));
  }
}

/** Compares two states room by room and member by member, so a snapshot after a resync reports what changed too. */
export function presenceDiff(before: Room[], after: Room[]): PresenceDiff {
  const diff: PresenceDiff = { joined: [], left: [], moved: [], created: [], deleted: [], mediaChanged: [] };
  const index = (rooms: Room[]) => new Map(rooms.flatMap((room) => room.members.map((member) => [member.userId, { channelId: room.channelId, member }] as const)));
  const was = index(before);
  const is = index(after);
  const had = new Set(before.map((room) => room.channelId));
  const has = new Set(after.map((room) => room.channelId));
  diff.created = after.filter((room) => !had.has(room.channelId));
  diff.deleted = before.filter((room) => !has.has(room.channelId));
  for (const [userId, now] of is) {
    const then = was.get(userId);
    if (!then) {
      diff.joined.push(now);
      continue;
    }
    if (then.channelId !== now.channelId) diff.moved.push({ from: then.channelId, to: now.channelId, member: now.member });
    const [before, after] = [mediaOf(then.member), mediaOf(now.member)];
    if (!sameMedia(before, after)) diff.mediaChanged.push({ channelId: now.channelId, member: now.member, before, after });
  }
  for (const [userId, then] of was) if (!is.has(userId)) diff.left.push(then);
  return diff;
}
