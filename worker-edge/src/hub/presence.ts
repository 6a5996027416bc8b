import type { AppEvent, GuildSyncPayload, InternalEvent, PayloadOf } from "../../../protocol/index.js";
import type { HubStore, MemberRecord } from "./store.js";
import { completeSync } from "./sync-parts.js";

/**
 * Applies one incoming event to the hub's state and returns the app events it really causes, so a repeat, a
 * mute toggle or a room the hub already knows changes nothing that clients see.
 */
export function reconcile(store: HubStore, incoming: InternalEvent, now: number): AppEvent[] {
  switch (incoming.event) {
    case "room.created":
      return roomCreated(store, incoming.payload, null, now);
    case "room.deleted":
      return roomDeleted(store, incoming.payload, now);
    case "voice.joined":
      return voiceJoined(store, incoming.payload, now);
    case "voice.left":
      return voiceLeft(store, incoming.payload, now);
    case "guild.sync": {
      const whole = completeSync(store, incoming.payload, now);
      return whole ? guildSync(store, whole, now) : [];
    }
  }
}

/** A room seen for the first time is announced; a known one is updated quietly (REST create then CHANNEL_CREATE). */
export function roomCreated(
  store: HubStore,
  payload: PayloadOf<"room.created">,
  creatorId: string | null,
  now: number,
): AppEvent[] {
  if (store.hasEnded(payload.channelId)) return []; // a late CHANNEL_CREATE (or sync) after the room ended
  const known = store.room(payload.channelId);
  store.putRoom({
    channelId: payload.channelId,
    name: payload.name,
    parentId: payload.parentId ?? null,
    userLimit: payload.userLimit,
    creatorId,
    emptySince: known ? known.emptySince : store.memberCount(payload.channelId) === 0 ? now : null,
  });
  return known ? [] : [{ event: "room.created", payload: withoutUndefined(payload) }];
}

export function roomDeleted(store: HubStore, payload: PayloadOf<"room.deleted">, now: number): AppEvent[] {
  if (!store.room(payload.channelId)) return [];
  store.deleteRoom(payload.channelId, now);
  return [{ event: "room.deleted", payload }];
}

function voiceJoined(store: HubStore, payload: PayloadOf<"voice.joined">, now: number): AppEvent[] {
  const current = store.member(payload.userId);
  const member: MemberRecord = withoutUndefined({ ...payload });
  if (current?.channelId === payload.channelId) {
    store.putMember(member); // same room: a mute/deafen or profile refresh, not an event
    return [];
  }
  const events: AppEvent[] = [];
  if (current) events.push(...voiceLeft(store, { guildId: payload.guildId, channelId: current.channelId, userId: payload.userId }, now));
  store.putMember(member);
  touchOccupancy(store, payload.channelId, now);
  events.push({ event: "voice.joined", payload: withoutUndefined(payload) });
  return events;
}

function voiceLeft(store: HubStore, payload: PayloadOf<"voice.left">, now: number): AppEvent[] {
  const current = store.member(payload.userId);
  if (current?.channelId !== payload.channelId) return []; // stale: the user is elsewhere or already gone
  store.deleteMember(payload.userId);
  touchOccupancy(store, payload.channelId, now);
  return [{ event: "voice.left", payload }];
}

/**
 * Diffs Discord's full picture against the hub's and emits exactly the missing events, in an order clients can
 * apply: new rooms, then departures, then arrivals, then rooms that are gone.
 */
function guildSync(store: HubStore, sync: GuildSyncPayload, now: number): AppEvent[] {
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
    if (!wantedRooms.has(room.channelId)) events.push(...roomDeleted(store, { guildId, channelId: room.channelId }, now));
  }
  return events;
}

/** Tracks when a room became empty, for ROOM_IDLE_TTL_SECONDS. */
function touchOccupancy(store: HubStore, channelId: string, now: number): void {
  const room = store.room(channelId);
  if (!room) return;
  const empty = store.memberCount(channelId) === 0;
  if (empty && room.emptySince === null) store.setRoomEmptySince(channelId, now);
  if (!empty && room.emptySince !== null) store.setRoomEmptySince(channelId, null);
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
