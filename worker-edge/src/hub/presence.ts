import {
  MAX_ROOM_USER_LIMIT,
  type AppEvent,
  type ChannelStatePayload,
  type GuildStatePayload,
  type GuildSyncPayload,
  type InternalEvent,
  type PayloadOf,
  type VoiceStatePayload,
} from "../../../protocol/index.js";
import { mediaBits } from "./media-flags.js";
import { mediaChanged } from "./media.js";
import { publishedCreator, type HubStore, type MemberRecord } from "./store.js";
import { isMultiPart, receiveWholeSync } from "./sync-parts.js";

/** Discord's guild voice channel: the one channel type that is a room (a stage, a text channel, a category are not). */
const GUILD_VOICE = 2;

/**
 * Applies one incoming event to the hub's state and returns the app events it really causes. The gateway sends
 * states (a user in a channel with these flags; a channel of a type; the guild out of reach): a state the hub
 * already holds changes nothing, so a repeat or a replay publishes nothing. The previous release's deltas are
 * applied too, for one release.
 */
export function reconcile(store: HubStore, incoming: InternalEvent, now: number): AppEvent[] {
  switch (incoming.event) {
    case "voice.state":
      return voiceState(store, incoming.payload, now);
    case "channel.state":
      return channelState(store, incoming.payload, now);
    case "guild.state":
      return guildState(store, incoming.payload, now);
    case "guild.sync": {
      if (isMultiPart(incoming.payload)) throw new Error("a sync part goes through receiveSyncPart, then guildSync");
      receiveWholeSync(store);
      const { part: _part, ...whole } = incoming.payload;
      return guildSync(store, whole, now);
    }
    case "room.created":
    case "room.updated":
      return roomCreated(store, incoming.payload, null, now);
    case "room.deleted":
      return roomDeleted(store, incoming.payload, now);
    case "voice.joined":
      return voiceJoined(store, incoming.payload, now);
    case "voice.left":
      return voiceLeft(store, incoming.payload, now);
  }
}

/**
 * A user's voice state: in no channel, or in one with these flags. A join or a move is published as
 * `voice.left`/`voice.joined` (a member of a channel that is not a room is remembered but in no room); a new
 * username or avatar as `voice.joined` again; a change of flags only, once its window ends (hub/media.ts).
 * While the bot is not in the guild nothing is recorded: the next picture says what is there.
 */
export function voiceState(store: HubStore, state: VoiceStatePayload, now: number): AppEvent[] {
  if (store.guildStatus === "absent") return [];
  const { guildId, userId, channelId, username, avatar, media } = state;
  const current = store.member(userId);
  if (channelId === null) return current ? voiceLeft(store, { guildId, channelId: current.channelId, userId }, now) : [];
  if (current?.channelId !== channelId) return voiceJoined(store, withoutUndefined({ guildId, channelId, userId, username, avatar, media }), now);
  const profile = profileChanged(current, { username, avatar });
  const flags = mediaBits(current.media ?? media) !== mediaBits(media);
  if (!profile && !flags) return [];
  store.putMember(withoutUndefined({ userId, channelId, username, avatar, media }));
  if (!store.room(channelId)) return [];
  if (profile) return [joinedEvent(store, guildId, userId)];
  mediaChanged(store, userId, now);
  return [];
}

/** A channel's state: of a voice type it is a room (created, or updated when its description changed); deleted, it ends. */
export function channelState(store: HubStore, state: ChannelStatePayload, now: number): AppEvent[] {
  if (store.guildStatus === "absent") return [];
  const { guildId, channelId, type, name, parentId, userLimit } = state;
  if (state.deleted) {
    const events = roomDeleted(store, { guildId, channelId }, now);
    // Not a room, yet gone for good: no late report (a sync taken before the delete) can make it one.
    if (events.length === 0) store.deleteRoom(channelId, now, true);
    return events;
  }
  // Not a room: if the hub held it as one (Discord changes no channel into another type of that kind), it is none now.
  if (type !== GUILD_VOICE) return store.room(channelId) ? roomDeleted(store, { guildId, channelId }, now, false) : [];
  return roomCreated(store, { guildId, channelId, name, parentId, userLimit: Math.min(userLimit, MAX_ROOM_USER_LIMIT) }, null, now);
}

/**
 * Discord reports an outage (the picture is kept, marked unavailable), or that the bot is not in the guild: every
 * room goes (`room.deleted`, not ended: a room comes back if the bot is invited again and Discord still has it), with
 * every member, until a new picture arrives.
 */
export function guildState(store: HubStore, state: GuildStatePayload, now: number): AppEvent[] {
  const { guildId, status } = state;
  if (store.guildStatus === status) return [];
  store.guildStatus = status;
  const events: AppEvent[] = [{ event: "guild.status", payload: { guildId, status } }];
  if (status !== "absent") return events;
  for (const room of store.rooms()) events.push(...roomDeleted(store, { guildId, channelId: room.channelId }, now, false));
  store.deleteAllMembers();
  return events;
}

/**
 * A room seen for the first time is announced, with anyone already known to be in it; a known one is announced
 * again only when its name, limit or parent changed, or when its creator became known (the gateway's
 * CHANNEL_CREATE can beat the REST create that records the creator). The creator published is always the hub's
 * record, never one an incoming event claims.
 */
export function roomCreated(
  store: HubStore,
  payload: PayloadOf<"room.created">,
  creatorId: string | null,
  now: number,
): AppEvent[] {
  if (store.hasEnded(payload.channelId)) return []; // a late CHANNEL_CREATE (or sync) after the room ended
  const known = store.room(payload.channelId);
  const { creatorId: _claimed, ...described } = withoutUndefined(payload);
  const parentId = payload.parentId ?? null;
  store.putRoom({
    channelId: payload.channelId,
    name: payload.name,
    parentId,
    userLimit: payload.userLimit,
    creatorId: creatorId ?? (known ? null : (store.takeDisplacedCreator(payload.channelId) ?? null)),
    emptySince: known ? known.emptySince : store.hasMembers(payload.channelId) ? null : now,
  });
  const creator = publishedCreator(store.room(payload.channelId)!); // the first creator recorded stays
  if (!known) {
    const present = store.membersIn(payload.channelId);
    return [
      { event: "room.created", payload: { ...described, ...creator } },
      ...present.map((member) => joinedEvent(store, payload.guildId, member.userId)),
    ];
  }
  const changed = known.name !== payload.name || known.userLimit !== payload.userLimit || known.parentId !== parentId ||
    publishedCreator(known).creatorId !== creator.creatorId;
  return changed ? [{ event: "room.updated", payload: { ...described, parentId, ...creator } }] : [];
}

/** `ended`: Discord deleted it (not just a sync that did not list it, which may predate its creation). */
export function roomDeleted(store: HubStore, payload: PayloadOf<"room.deleted">, now: number, ended = true): AppEvent[] {
  if (!store.room(payload.channelId)) return [];
  store.deleteRoom(payload.channelId, now, ended);
  return [{ event: "room.deleted", payload }];
}

/**
 * A user in a room the hub does not know (yet) is remembered but not announced: clients could not place them.
 * They are announced with the room if it appears.
 */
function voiceJoined(store: HubStore, payload: PayloadOf<"voice.joined">, now: number): AppEvent[] {
  const current = store.member(payload.userId);
  if (current?.channelId === payload.channelId) {
    // Same room (the previous release's deltas): a mute/deafen toggle is not an event; a new username or avatar is.
    if (!profileChanged(current, payload)) return [];
    store.putMember(withoutUndefined({ ...payload }));
    return store.room(payload.channelId) ? [joinedEvent(store, payload.guildId, payload.userId)] : [];
  }
  const events: AppEvent[] = [];
  if (current) events.push(...voiceLeft(store, { guildId: payload.guildId, channelId: current.channelId, userId: payload.userId }, now));
  store.putMember(withoutUndefined({ ...payload }));
  if (!store.room(payload.channelId)) return events;
  touchOccupancy(store, payload.channelId, now);
  events.push(joinedEvent(store, payload.guildId, payload.userId));
  return events;
}

function voiceLeft(store: HubStore, payload: PayloadOf<"voice.left">, now: number): AppEvent[] {
  const current = store.member(payload.userId);
  if (current?.channelId !== payload.channelId) return []; // stale: the user is elsewhere or already gone
  store.deleteMember(payload.userId);
  if (!store.room(payload.channelId)) return []; // never announced, so nothing to take back
  touchOccupancy(store, payload.channelId, now);
  return [{ event: "voice.left", payload }];
}

/**
 * Diffs Discord's full picture against the hub's and emits exactly the missing events, in an order clients can
 * apply: the guild available again, new rooms, then departures, then rooms that are gone, then arrivals. Channels
 * of other types than voice are not rooms; members of them are kept, in no room.
 */
export function guildSync(store: HubStore, sync: GuildSyncPayload, now: number): AppEvent[] {
  const { guildId } = sync;
  const events: AppEvent[] = [];
  if (store.guildStatus !== "available") {
    store.guildStatus = "available";
    events.push({ event: "guild.status", payload: { guildId, status: "available" } });
  }
  const rooms = sync.channels.filter((channel) => (channel.type ?? GUILD_VOICE) === GUILD_VOICE);
  const wantedRooms = new Set(rooms.map((channel) => channel.channelId));
  const wantedMembers = new Map(sync.voiceStates.map((state) => [state.userId, state]));

  for (const { type: _type, ...channel } of rooms) {
    events.push(...roomCreated(store, { guildId, ...channel, userLimit: Math.min(channel.userLimit, MAX_ROOM_USER_LIMIT) }, null, now));
  }
  for (const member of store.members()) {
    const wanted = wantedMembers.get(member.userId);
    if (!wanted || wanted.channelId !== member.channelId) {
      events.push(...voiceLeft(store, { guildId, channelId: member.channelId, userId: member.userId }, now));
    }
  }
  for (const room of store.rooms()) {
    // Not ended for good: the picture may have been taken before a REST create that its CHANNEL_CREATE will confirm.
    if (!wantedRooms.has(room.channelId)) events.push(...roomDeleted(store, { guildId, channelId: room.channelId }, now, false));
  }
  // Arrivals last: a member the picture places in a channel that is no room (any more) is kept there, in no room.
  for (const state of sync.voiceStates) {
    // A picture of the previous release carries no flags: the ones known stay.
    const media = state.media ?? store.member(state.userId)?.media;
    events.push(...(media ? voiceState(store, { guildId, ...state, media }, now) : voiceJoined(store, { guildId, ...state }, now)));
  }
  return events;
}

/** A member as `voice.joined` announces them, with their flags; from now on clients know those flags. */
function joinedEvent(store: HubStore, guildId: string, userId: string): AppEvent {
  const { channelId, username, avatar, media } = store.member(userId)!;
  store.mediaTold(userId);
  return { event: "voice.joined", payload: withoutUndefined({ guildId, channelId, userId, username, avatar, media }) };
}

function profileChanged(current: MemberRecord, next: { username?: string; avatar?: string | null }): boolean {
  return (next.username !== undefined && next.username !== current.username) || (next.avatar !== undefined && (next.avatar ?? undefined) !== current.avatar);
}

/** Tracks when a room became empty, for ROOM_IDLE_TTL_SECONDS. */
function touchOccupancy(store: HubStore, channelId: string, now: number): void {
  const room = store.room(channelId);
  if (!room) return;
  const empty = !store.hasMembers(channelId);
  if (empty && room.emptySince === null) store.setRoomEmptySince(channelId, now);
  if (!empty && room.emptySince !== null) store.setRoomEmptySince(channelId, null);
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
