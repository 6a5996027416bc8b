import type { AppEvent, GuildSyncPayload, InternalEvent, PayloadOf } from "../../../protocol/index.js";
import { publishedCreator, type HubStore, type MemberRecord } from "./store.js";
import { isMultiPart, receiveWholeSync } from "./sync-parts.js";

/**
 * Applies one incoming event to the hub's state and returns the app events it really causes, so a repeat, a
 * mute toggle or a room the hub already knows changes nothing that clients see.
 */
export function reconcile(store: HubStore, incoming: InternalEvent, now: number): AppEvent[] {
  switch (incoming.event) {
    case "room.created":
    case "room.updated":
      return roomCreated(store, incoming.payload, null, now);
    case "room.deleted":
      return roomDeleted(store, incoming.payload, now);
    case "voice.joined":
      return voiceJoined(store, incoming.payload, now);
    case "voice.left":
      return voiceLeft(store, incoming.payload, now);
    case "voice.media":
    case "guild.status":
      // Client-facing events a gateway does not send: one that arrives changes nothing.
      return [];
    case "guild.sync": {
      if (isMultiPart(incoming.payload)) throw new Error("a sync part goes through receiveSyncPart, then guildSync");
      receiveWholeSync(store);
      const { part: _part, ...whole } = incoming.payload;
      return guildSync(store, whole, now);
    }
  }
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
      ...present.map((member): AppEvent => ({ event: "voice.joined", payload: { guildId: payload.guildId, ...member } })),
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
    // Same room: a mute/deafen toggle is not an event; a new username or avatar is announced again.
    if (!profileChanged(current, payload)) return [];
    store.putMember(withoutUndefined({ ...payload }));
    return store.room(payload.channelId) ? [{ event: "voice.joined", payload: { ...withoutUndefined(payload), ...profileOf(store, payload.userId) } }] : [];
  }
  const events: AppEvent[] = [];
  if (current) events.push(...voiceLeft(store, { guildId: payload.guildId, channelId: current.channelId, userId: payload.userId }, now));
  store.putMember(withoutUndefined({ ...payload }));
  if (!store.room(payload.channelId)) return events;
  touchOccupancy(store, payload.channelId, now);
  events.push({ event: "voice.joined", payload: { ...withoutUndefined(payload), ...profileOf(store, payload.userId) } });
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
 * apply: new rooms, then departures, then arrivals, then rooms that are gone.
 */
export function guildSync(store: HubStore, sync: GuildSyncPayload, now: number): AppEvent[] {
  const { guildId } = sync;
  const events: AppEvent[] = [];
  const wantedRooms = new Set(sync.channels.map((channel) => channel.channelId));
  const wantedMembers = new Map(sync.voiceStates.map((state) => [state.userId, state]));

  for (const channel of sync.channels) {
    events.push(...roomCreated(store, { guildId, ...channel }, null, now));
  }
  for (const member of store.members()) {
    const wanted = wantedMembers.get(member.userId);
    if (!wanted || wanted.channelId !== member.channelId) {
      events.push(...voiceLeft(store, { guildId, channelId: member.channelId, userId: member.userId }, now));
    }
  }
  for (const state of sync.voiceStates) {
    events.push(...voiceJoined(store, { guildId, ...state }, now));
  }
  for (const room of store.rooms()) {
    // Not ended for good: the picture may have been taken before a REST create that its CHANNEL_CREATE will confirm.
    if (!wantedRooms.has(room.channelId)) events.push(...roomDeleted(store, { guildId, channelId: room.channelId }, now, false));
  }
  return events;
}

function profileChanged(current: MemberRecord, next: PayloadOf<"voice.joined">): boolean {
  return (next.username !== undefined && next.username !== current.username) || (next.avatar !== undefined && (next.avatar ?? undefined) !== current.avatar);
}

/** The profile the hub holds for a member, which may keep fields the latest report left out. */
function profileOf(store: HubStore, userId: string): Pick<MemberRecord, "username" | "avatar"> {
  const { username, avatar } = store.member(userId) ?? {};
  return withoutUndefined({ username, avatar });
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
