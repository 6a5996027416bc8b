import { channelOf, Snowflake, type AppEvent, type GuildStatus, type GuildSyncPayload, type Member, type Room, type VoiceMedia } from "../../../protocol/index.js";
import type { Bucket } from "../../../protocol/index.js";
import type { Lease } from "./lease.js";
import { mediaBits, mediaOf } from "./media-flags.js";
import { migrate } from "./migrations.js";
import { CreateRoomPolicy } from "./rate-limit.js";

/** How long an internal event id is remembered: a retry within it is a duplicate. */
const SEEN_ID_AGE_MS = 24 * 60 * 60_000;

/** Bounds on what the hub keeps: the replay buffer by count and age, event ids and idempotency keys by age. */
export const Retention = {
  replayEvents: 1_000,
  replayAgeMs: 15 * 60_000,
  seenIdAgeMs: SEEN_ID_AGE_MS,
  idempotencyAgeMs: 24 * 60 * 60_000,
  endedRoomAgeMs: 24 * 60 * 60_000,
  /**
   * Parts of a multi-part sync that is not complete, from its last part: as long as an event id is remembered, so
   * a delivery gap the gateway rides out with its ids (it retries with the same ones) it rides out with its parts.
   */
  syncPartAgeMs: SEEN_ID_AGE_MS,
  /** Open syncs whose parts are kept; a newer one supersedes the oldest beyond this (a gateway sends one at a time). */
  openSyncs: 4,
  /** Syncs the ledger remembers, by count not age: a sync retried however late is still known as applied or superseded. */
  syncLedgerEntries: 1_000,
  /** How often the age-based deletes run: every bound above is minutes to hours, so once a minute is enough. */
  sweepEveryMs: 60_000,
} as const;

export interface RoomRecord {
  channelId: string;
  name: string;
  parentId: string | null;
  userLimit: number;
  creatorId: string | null;
  emptySince: number | null;
}

export interface BufferedEvent {
  seq: number;
  event: AppEvent["event"];
  channelId: string;
  message: string;
}

/** A member of any channel (a member of a channel that is not a room is kept, and shown in no room). */
export interface MemberRecord extends Member {
  channelId: string;
}

/** A member whose media window has ended: their flags now (bits) and the flags clients were last told. */
export interface DueMedia {
  userId: string;
  channelId: string;
  media: number;
  told: number;
}

type Row = Record<string, SqlStorageValue>;

export type SyncState = "open" | "applied" | "superseded";

export interface SyncRecord {
  syncId: string;
  /** The arrival number of its first part: orders pictures (a sync that began later is newer). */
  firstArrival: number;
  count: number;
  state: SyncState;
}

/** The picture one sync part carries. */
export type SyncPicture = Pick<GuildSyncPayload, "channels" | "voiceStates">;

/**
 * The GuildHub's durable state in the object's SQLite storage: it survives hibernation and eviction. What every
 * publish or resume reads (meta, the replay buffer, the snapshot) is also kept in memory: this object is the
 * storage's only writer, so the copies stay exact, and they are rebuilt from storage after a wake-up.
 */
export class HubStore {
  private readonly metaCache = new Map<string, string | undefined>();
  /** The replay buffer in seq order, loaded on first use. */
  private replay?: BufferedEvent[];
  /** Rooms with their members, until a room or member changes. */
  private snapshot?: Room[];
  private lastSweep = -Infinity;

  private readonly sql: SqlStorage;
  /** The schema versions this object found and left (see migrations.ts). */
  readonly schema: { from: number; to: number };

  /** Migrates the storage first: nothing reads or writes it on an older schema. */
  constructor(private readonly storage: DurableObjectStorage) {
    this.schema = migrate(storage);
    this.sql = storage.sql;
  }

  /** Runs `body` as one transaction: every write in it lands, or none does (and the in-memory copies are dropped). */
  transaction<T>(body: () => T): T {
    try {
      return this.storage.transactionSync(body);
    } catch (error) {
      this.metaCache.clear();
      this.replay = undefined;
      this.snapshot = undefined;
      throw error;
    }
  }

  // --- meta

  get seq(): number {
    return Number(this.meta("seq") ?? 0);
  }

  set seq(value: number) {
    this.setMeta("seq", String(value));
  }

  get guildId(): string | undefined {
    return this.meta("guild_id");
  }

  set guildId(value: string) {
    this.setMeta("guild_id", value);
  }

  /** Whether the picture is Discord's (see GuildStatus); absent from storage: available. */
  get guildStatus(): GuildStatus {
    return (this.meta("guild_status") as GuildStatus | undefined) ?? "available";
  }

  set guildStatus(status: GuildStatus) {
    this.snapshot = undefined;
    this.setMeta("guild_status", status);
  }

  /** The gateway lease of this guild (see hub/lease.ts). */
  get lease(): Lease | undefined {
    const raw = this.meta("lease");
    return raw === undefined ? undefined : (JSON.parse(raw) as Lease);
  }

  set lease(lease: Lease) {
    this.setMeta("lease", JSON.stringify(lease));
  }

  /** Counts sync messages as they arrive, so the hub can tell which of two pictures is newer. */
  nextSyncArrival(): number {
    const arrival = Number(this.meta("sync_arrivals") ?? 0) + 1;
    this.setMeta("sync_arrivals", String(arrival));
    return arrival;
  }

  /** The arrival number of the newest sync applied (of its first part). */
  get syncAppliedFrom(): number {
    return Number(this.meta("sync_applied_from") ?? 0);
  }

  set syncAppliedFrom(arrival: number) {
    this.setMeta("sync_applied_from", String(arrival));
  }

  private meta(key: string): string | undefined {
    if (this.metaCache.has(key)) return this.metaCache.get(key);
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0];
    this.metaCache.set(key, row?.value);
    return row?.value;
  }

  private setMeta(key: string, value: string): void {
    this.sql.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
    this.metaCache.set(key, value);
  }

  // --- rooms and members

  room(channelId: string): RoomRecord | undefined {
    const row = this.sql.exec<Row>("SELECT * FROM rooms WHERE channel_id = ?", channelId).toArray()[0];
    return row && roomFromRow(row);
  }

  rooms(): RoomRecord[] {
    return this.sql.exec<Row>("SELECT * FROM rooms ORDER BY channel_id").toArray().map(roomFromRow);
  }

  putRoom(room: RoomRecord): void {
    this.snapshot = undefined;
    this.sql.exec(
      `INSERT INTO rooms (channel_id, name, parent_id, user_limit, creator_id, empty_since) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (channel_id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id,
         user_limit = excluded.user_limit, creator_id = COALESCE(rooms.creator_id, excluded.creator_id),
         empty_since = excluded.empty_since`,
      room.channelId, room.name, room.parentId, room.userLimit, room.creatorId, room.emptySince,
    );
  }

  /**
   * Deletes a room. One that ended (Discord deleted it) is remembered as ended: Discord never reuses a channel id,
   * so a late report cannot revive it. One a sync merely did not list keeps its creator, in case it comes back.
   */
  deleteRoom(channelId: string, at: number, ended: boolean): void {
    this.snapshot = undefined;
    const creatorId = this.room(channelId)?.creatorId;
    this.sql.exec("DELETE FROM rooms WHERE channel_id = ?", channelId);
    this.sql.exec("DELETE FROM members WHERE channel_id = ?", channelId);
    if (ended) this.sql.exec("INSERT OR REPLACE INTO ended_rooms (channel_id, at) VALUES (?, ?)", channelId, at);
    else if (creatorId) this.sql.exec("INSERT OR REPLACE INTO displaced_rooms (channel_id, creator_id, at) VALUES (?, ?, ?)", channelId, creatorId, at);
  }

  /** The creator of a room a sync removed, once, if it comes back. */
  takeDisplacedCreator(channelId: string): string | undefined {
    const row = this.sql.exec<{ creator_id: string }>("SELECT creator_id FROM displaced_rooms WHERE channel_id = ?", channelId).toArray()[0];
    if (row) this.sql.exec("DELETE FROM displaced_rooms WHERE channel_id = ?", channelId);
    return row?.creator_id;
  }

  hasEnded(channelId: string): boolean {
    return this.sql.exec("SELECT 1 FROM ended_rooms WHERE channel_id = ?", channelId).toArray().length > 0;
  }

  /** Live rooms this service created for `userId`. */
  roomsCreatedBy(userId: string): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM rooms WHERE creator_id = ?", userId).one().n;
  }

  setRoomEmptySince(channelId: string, emptySince: number | null): void {
    this.sql.exec("UPDATE rooms SET empty_since = ? WHERE channel_id = ?", emptySince, channelId);
  }

  member(userId: string): MemberRecord | undefined {
    const row = this.sql.exec<Row>("SELECT * FROM members WHERE user_id = ?", userId).toArray()[0];
    return row && memberFromRow(row);
  }

  members(): MemberRecord[] {
    return this.sql.exec<Row>("SELECT * FROM members ORDER BY user_id").toArray().map(memberFromRow);
  }

  /** The members of one room, by index. */
  membersIn(channelId: string): MemberRecord[] {
    return this.sql.exec<Row>("SELECT * FROM members WHERE channel_id = ? ORDER BY user_id", channelId).toArray().map(memberFromRow);
  }

  /** Whether a room has anyone in it: one index probe, whatever the room's size. */
  hasMembers(channelId: string): boolean {
    return this.sql.exec("SELECT 1 FROM members WHERE channel_id = ? LIMIT 1", channelId).toArray().length > 0;
  }

  /** Records a member; a field left out (a report that did not say) keeps what was known. */
  putMember(member: MemberRecord): void {
    this.snapshot = undefined;
    const media = member.media ? mediaBits(member.media) : null;
    this.sql.exec(
      `INSERT INTO members (user_id, channel_id, username, avatar, media) VALUES (?, ?, ?, ?, COALESCE(?, 0))
       ON CONFLICT (user_id) DO UPDATE SET channel_id = excluded.channel_id,
         username = COALESCE(excluded.username, members.username), avatar = COALESCE(excluded.avatar, members.avatar),
         media = COALESCE(?, members.media)`,
      member.userId, member.channelId, member.username ?? null, member.avatar ?? null, media, media,
    );
  }

  deleteMember(userId: string): void {
    this.snapshot = undefined;
    this.sql.exec("DELETE FROM members WHERE user_id = ?", userId);
  }

  /** Every member, of rooms and of other channels (the bot left the guild). */
  deleteAllMembers(): void {
    this.snapshot = undefined;
    this.sql.exec("DELETE FROM members");
  }

  // --- media windows (hub/media.ts)

  /** Opens a member's media window ending at `endsAt`, unless one is open. */
  openMediaWindow(userId: string, endsAt: number): void {
    this.sql.exec("UPDATE members SET media_due = ? WHERE user_id = ? AND media_due IS NULL", endsAt, userId);
  }

  /** Clients now know the member's flags as they are (a join carried them, or a voice.media): no window is open. */
  mediaTold(userId: string): void {
    this.sql.exec("UPDATE members SET media_published = media, media_due = NULL WHERE user_id = ?", userId);
  }

  dueMediaWindows(now: number): DueMedia[] {
    return this.sql
      .exec<Row>("SELECT user_id, channel_id, media, media_published FROM members WHERE media_due <= ? ORDER BY media_due, user_id", now)
      .toArray()
      .map((row) => ({ userId: String(row.user_id), channelId: String(row.channel_id), media: Number(row.media), told: Number(row.media_published) }));
  }

  /** When the earliest open media window ends (Infinity: none is open). */
  nextMediaWindowEnd(): number {
    const row = this.sql.exec<{ due: number | null }>("SELECT MIN(media_due) AS due FROM members").one();
    return row.due === null ? Infinity : Number(row.due);
  }

  /** Rooms with their members, the shape REST and the socket snapshot share. Shared until the next change: do not mutate. */
  snapshotRooms(): Room[] {
    this.snapshot ??= this.readSnapshot();
    return this.snapshot;
  }

  private readSnapshot(): Room[] {
    const byRoom = new Map<string, Member[]>();
    for (const { channelId, ...member } of this.members()) {
      const list = byRoom.get(channelId) ?? [];
      list.push(withoutNulls(member));
      byRoom.set(channelId, list);
    }
    return this.rooms().map((room) => ({
      channelId: room.channelId,
      name: room.name,
      userLimit: room.userLimit,
      parentId: room.parentId,
      ...publishedCreator(room),
      members: byRoom.get(room.channelId) ?? [],
    }));
  }

  // --- event log (replay buffer)

  appendEvent(seq: number, ts: number, event: AppEvent, message: string): void {
    const buffer = this.buffered(); // loaded before the insert, which it then mirrors
    const channelId = channelOf(event) ?? ""; // "" for an event about the whole guild
    this.sql.exec(
      "INSERT INTO events (seq, ts, event, channel_id, message) VALUES (?, ?, ?, ?, ?)",
      seq, ts, event.event, channelId, message,
    );
    buffer.push({ seq, event: event.event, channelId, message });
  }

  /** The oldest seq still buffered, or undefined when the buffer is empty. */
  oldestBufferedSeq(): number | undefined {
    return this.buffered()[0]?.seq;
  }

  /** The buffered events after `seq`, in order. */
  eventsAfter(seq: number): BufferedEvent[] {
    const buffer = this.buffered();
    // Seqs are consecutive in the buffer, so the first one after `seq` is found by arithmetic.
    const first = buffer[0]?.seq ?? 0;
    return buffer.slice(Math.max(0, seq + 1 - first));
  }

  private buffered(): BufferedEvent[] {
    this.replay ??= this.sql
      .exec<{ seq: number; event: string; channel_id: string; message: string }>("SELECT seq, event, channel_id, message FROM events ORDER BY seq")
      .toArray()
      .map((row) => ({ seq: Number(row.seq), event: row.event as AppEvent["event"], channelId: row.channel_id, message: row.message }));
    return this.replay;
  }

  // --- internal event ids and idempotency

  hasSeen(id: string): boolean {
    return this.sql.exec("SELECT 1 FROM seen_ids WHERE id = ?", id).toArray().length > 0;
  }

  markSeen(id: string, at: number): void {
    this.sql.exec("INSERT OR IGNORE INTO seen_ids (id, at) VALUES (?, ?)", id, at);
  }

  idempotentResult(userId: string, key: string): string | undefined {
    const row = this.sql.exec<{ result: string }>("SELECT result FROM idempotency WHERE user_id = ? AND key = ?", userId, key).toArray()[0];
    return row?.result;
  }

  saveIdempotentResult(userId: string, key: string, result: string, at: number): void {
    this.sql.exec("INSERT OR REPLACE INTO idempotency (user_id, key, result, at) VALUES (?, ?, ?, ?)", userId, key, result, at);
  }

  // --- create-room rate limit, kept in storage so an eviction or a deploy forgives nothing

  createBucket(userId: string): Bucket | undefined {
    const row = this.sql.exec<{ tokens: number; at: number }>("SELECT tokens, at FROM create_buckets WHERE user_id = ?", userId).toArray()[0];
    return row && { tokens: Number(row.tokens), at: Number(row.at) };
  }

  putCreateBucket(userId: string, bucket: Bucket): void {
    this.sql.exec("INSERT OR REPLACE INTO create_buckets (user_id, tokens, at) VALUES (?, ?, ?)", userId, bucket.tokens, bucket.at);
  }

  // --- multi-part guild.sync: the ledger of syncs and the parts of open ones

  syncRecord(syncId: string): SyncRecord | undefined {
    const row = this.sql.exec<Row>("SELECT * FROM syncs WHERE sync_id = ?", syncId).toArray()[0];
    return row && { syncId, firstArrival: Number(row.first_arrival), count: Number(row.count), state: String(row.state) as SyncState };
  }

  openSync(syncId: string, count: number, firstArrival: number, at: number): void {
    this.sql.exec(
      "INSERT INTO syncs (sync_id, first_arrival, count, state, at) VALUES (?, ?, ?, 'open', ?)",
      syncId, firstArrival, count, at,
    );
  }

  hasSyncPart(syncId: string, index: number): boolean {
    return this.sql.exec("SELECT 1 FROM sync_parts WHERE sync_id = ? AND idx = ?", syncId, index).toArray().length > 0;
  }

  /** Stores a part of an open sync; the sync counts as active from `at`. (`arrival` is for the release before the ledger.) */
  putSyncPart(sync: SyncRecord, index: number, picture: SyncPicture, at: number): void {
    this.sql.exec(
      "INSERT OR REPLACE INTO sync_parts (sync_id, idx, count, picture, at, arrival) VALUES (?, ?, ?, ?, ?, ?)",
      sync.syncId, index, sync.count, JSON.stringify(picture), at, sync.firstArrival,
    );
    this.sql.exec("UPDATE syncs SET at = ? WHERE sync_id = ?", at, sync.syncId);
  }

  syncPartCount(syncId: string): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sync_parts WHERE sync_id = ?", syncId).one().n;
  }

  /** The parts of `syncId` received so far, in order. */
  syncParts(syncId: string): SyncPicture[] {
    return this.sql
      .exec<{ picture: string }>("SELECT picture FROM sync_parts WHERE sync_id = ? ORDER BY idx", syncId)
      .toArray()
      .map((row) => JSON.parse(row.picture) as SyncPicture);
  }

  /** Records how a sync ended and drops its parts. */
  finishSync(syncId: string, state: Exclude<SyncState, "open">): void {
    this.sql.exec("UPDATE syncs SET state = ? WHERE sync_id = ?", state, syncId);
    this.sql.exec("DELETE FROM sync_parts WHERE sync_id = ?", syncId);
  }

  /** Open syncs that began before `firstArrival` are older pictures than one just applied: they never apply. */
  supersedeSyncsBefore(firstArrival: number): void {
    for (const { sync_id } of this.sql.exec<{ sync_id: string }>("SELECT sync_id FROM syncs WHERE state = 'open' AND first_arrival < ?", firstArrival).toArray()) {
      this.finishSync(sync_id, "superseded");
    }
  }

  /** Beyond `limit` open syncs, the ones that began first are superseded by the later ones: bounds the parts stored. */
  supersedeOpenSyncsBeyond(limit: number): void {
    const open = this.sql.exec<{ sync_id: string }>("SELECT sync_id FROM syncs WHERE state = 'open' ORDER BY first_arrival DESC").toArray();
    for (const { sync_id } of open.slice(limit)) this.finishSync(sync_id, "superseded");
  }

  /**
   * Drops what retention no longer needs. The replay buffer's count bound is kept on every call (a primary-key
   * range delete); the age-based deletes run at most once per Retention.sweepEveryMs, or always with `sweep`.
   */
  prune(now: number, sweep = false): void {
    const keepAfter = this.seq - Retention.replayEvents;
    const buffer = this.buffered();
    if ((buffer[0]?.seq ?? Infinity) <= keepAfter) {
      this.sql.exec("DELETE FROM events WHERE seq <= ?", keepAfter);
      buffer.splice(0, keepAfter + 1 - buffer[0]!.seq);
    }
    if (!sweep && now - this.lastSweep < Retention.sweepEveryMs) return;
    this.lastSweep = now;
    const aged = this.sql.exec("DELETE FROM events WHERE ts < ?", now - Retention.replayAgeMs);
    aged.toArray();
    if (aged.rowsWritten > 0) this.replay = undefined; // reloaded on next use
    this.sql.exec("DELETE FROM seen_ids WHERE at < ?", now - Retention.seenIdAgeMs);
    this.sql.exec("DELETE FROM ended_rooms WHERE at < ?", now - Retention.endedRoomAgeMs);
    this.sql.exec("DELETE FROM displaced_rooms WHERE at < ?", now - Retention.endedRoomAgeMs);
    this.sql.exec("DELETE FROM idempotency WHERE at < ?", now - Retention.idempotencyAgeMs);
    // The parts of a sync idle for the window go together (its ledger row stays, so its fate stays known).
    this.sql.exec(
      "DELETE FROM sync_parts WHERE sync_id IN (SELECT sync_id FROM syncs WHERE state = 'open' AND at < ?)",
      now - Retention.syncPartAgeMs,
    );
    this.sql.exec(
      "DELETE FROM syncs WHERE first_arrival <= (SELECT first_arrival FROM syncs ORDER BY first_arrival DESC LIMIT 1 OFFSET ?)",
      Retention.syncLedgerEntries,
    );
    // A bucket untouched for longer than a full refill is full again: the same as no row.
    const refillMs = (CreateRoomPolicy.capacity / CreateRoomPolicy.refillPerSecond) * 1000;
    this.sql.exec("DELETE FROM create_buckets WHERE at < ?", now - refillMs);
  }
}

/**
 * The creator as the wire shows it: any user id a token's `sub` may carry is recorded (it decides who may end the
 * room), but only a snowflake is published, the shape clients validate.
 */
export function publishedCreator(room: Pick<RoomRecord, "creatorId">): { creatorId?: string } {
  return room.creatorId !== null && Snowflake.safeParse(room.creatorId).success ? { creatorId: room.creatorId } : {};
}

function roomFromRow(row: Row): RoomRecord {
  return {
    channelId: String(row.channel_id),
    name: String(row.name),
    parentId: row.parent_id === null ? null : String(row.parent_id),
    userLimit: Number(row.user_limit),
    creatorId: row.creator_id === null ? null : String(row.creator_id),
    emptySince: row.empty_since === null ? null : Number(row.empty_since),
  };
}

function memberFromRow(row: Row): MemberRecord {
  const media: VoiceMedia = mediaOf(Number(row.media ?? 0));
  return withoutNulls({
    userId: String(row.user_id),
    channelId: String(row.channel_id),
    username: row.username === null ? undefined : String(row.username),
    avatar: row.avatar === null ? undefined : String(row.avatar),
    media,
  });
}

function withoutNulls<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined && v !== null)) as T;
}

