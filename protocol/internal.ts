import { z } from "zod";
import { Snowflake } from "./ids.js";
import { RoomCreatedPayload, RoomDeletedPayload, VoiceJoinedPayload, VoiceLeftPayload, VoiceMedia } from "./events.js";
import {
  MAX_AVATAR_LENGTH,
  MAX_CHANNEL_USER_LIMIT,
  MAX_EVENT_ID_LENGTH,
  MAX_EVENTS_PER_REQUEST,
  MAX_GATEWAY_INSTANCE_LENGTH,
  MAX_GUILD_CHANNELS,
  MAX_ROOM_NAME_LENGTH,
  MAX_SYNC_ID_LENGTH,
  MAX_SYNC_PART_BYTES,
  MAX_SYNC_PARTS,
  MAX_SYNC_VOICE_STATES,
  MAX_USERNAME_LENGTH,
} from "./limits.js";

/** Discord's channel types are small numbers (2 guild voice, 13 stage, 0 text, 4 category…); the hub decides which are rooms. */
const ChannelType = z.number().int().min(0).max(255);

/**
 * A channel of the picture; `type` absent is 2, a guild voice channel (what the release before sent: rooms only).
 * The user limit of a channel that is not a room may exceed a room's.
 */
export const SyncChannel = z.object({
  channelId: Snowflake,
  type: ChannelType.optional(),
  name: z.string().min(1).max(MAX_ROOM_NAME_LENGTH),
  parentId: Snowflake.nullable().optional(),
  userLimit: z.number().int().min(0).max(MAX_CHANNEL_USER_LIMIT),
});
/** A member in a channel of the picture; `media` absent (the release before): every flag false. */
export const SyncVoiceState = z.object({
  userId: Snowflake,
  channelId: Snowflake,
  username: z.string().max(MAX_USERNAME_LENGTH).optional(),
  avatar: z.string().max(MAX_AVATAR_LENGTH).nullable().optional(),
  media: VoiceMedia.optional(),
});

/**
 * One part of a multi-part sync: a picture too large for one request is cut into `count` parts sharing `syncId`;
 * the hub applies it once every part has arrived, as if it had been sent whole.
 */
export const SyncPart = z.object({
  syncId: z.string().min(1).max(MAX_SYNC_ID_LENGTH),
  index: z.number().int().min(0),
  count: z.number().int().min(1).max(MAX_SYNC_PARTS),
}).refine((part) => part.index < part.count, { message: "index must be below count" });

/** Full picture of a guild's voice channels and who is in them, sent after every fresh Discord session. */
export const GuildSyncPayload = z.object({
  guildId: Snowflake,
  channels: z.array(SyncChannel).max(MAX_GUILD_CHANNELS),
  voiceStates: z.array(SyncVoiceState).max(MAX_SYNC_VOICE_STATES),
  part: SyncPart.optional(),
});
export type GuildSyncPayload = z.infer<typeof GuildSyncPayload>;

/**
 * One user's voice state, as Discord last said it: in `channelId` (null: in no channel) with these flags. The hub
 * derives joins, leaves, moves and media changes from it; a state it already holds changes nothing.
 */
export const VoiceStatePayload = z.object({
  guildId: Snowflake,
  userId: Snowflake,
  channelId: Snowflake.nullable(),
  username: z.string().max(MAX_USERNAME_LENGTH).optional(),
  avatar: z.string().max(MAX_AVATAR_LENGTH).nullable().optional(),
  media: VoiceMedia,
});
export type VoiceStatePayload = z.infer<typeof VoiceStatePayload>;

/** One channel's state, of any type (the hub decides what a room is); `deleted`: Discord deleted it. */
export const ChannelStatePayload = z.object({
  guildId: Snowflake,
  channelId: Snowflake,
  type: ChannelType,
  name: z.string().min(1).max(MAX_ROOM_NAME_LENGTH),
  parentId: Snowflake.nullable(),
  userLimit: z.number().int().min(0).max(MAX_CHANNEL_USER_LIMIT),
  deleted: z.literal(true).optional(),
});
export type ChannelStatePayload = z.infer<typeof ChannelStatePayload>;

/** Discord reports an outage of the guild (`unavailable`), or the bot is not in it (`absent`: removed, never invited). */
export const GuildStatePayload = z.object({ guildId: Snowflake, status: z.enum(["unavailable", "absent"]) });
export type GuildStatePayload = z.infer<typeof GuildStatePayload>;

/** Event ids are opaque to the hub; the gateway uses `<session>:<seq>` (and `:part<n>` for sync parts). */
export const InternalEventId = z.string().min(1).max(MAX_EVENT_ID_LENGTH);

/**
 * What a gateway sends: states (`voice.state`, `channel.state`, `guild.state`) and whole pictures (`guild.sync`).
 * The deltas a gateway of the previous release sends (`room.*`, `voice.joined`, `voice.left`) are accepted for
 * this release only (docs/protocol.md, compatibility).
 */
export const InternalEvent = z.discriminatedUnion("event", [
  z.object({ event: z.literal("voice.state"), payload: VoiceStatePayload }),
  z.object({ event: z.literal("channel.state"), payload: ChannelStatePayload }),
  z.object({ event: z.literal("guild.state"), payload: GuildStatePayload }),
  z.object({ event: z.literal("guild.sync"), payload: GuildSyncPayload }),
  z.object({ event: z.literal("room.created"), payload: RoomCreatedPayload }),
  z.object({ event: z.literal("room.updated"), payload: RoomCreatedPayload }),
  z.object({ event: z.literal("room.deleted"), payload: RoomDeletedPayload }),
  z.object({ event: z.literal("voice.joined"), payload: VoiceJoinedPayload }),
  z.object({ event: z.literal("voice.left"), payload: VoiceLeftPayload }),
]);
export type InternalEvent = z.infer<typeof InternalEvent>;

// Every event carries an id: it is what lets the hub tell a replayed request from a new event.
const WithId = z.object({ id: InternalEventId });

/**
 * Who writes a guild: a gateway process, named by `instance` (kept across restarts on one host, in SESSION_FILE),
 * and the lease term it holds for the guild. Each guild's hub grants the lease (see worker-edge/src/hub/lease.ts):
 * term 0 asks for one; a term the hub has since given to another writer is refused as `lease_lost`.
 * A sender without `term` is a gateway of the previous release (`{epoch, instance}`), served until that release is
 * gone; `epoch` is sent for the previous release's edges, which follow the newest start time.
 */
export const GatewayIdentity = z.object({
  instance: z.string().min(1).max(MAX_GATEWAY_INSTANCE_LENGTH),
  term: z.number().int().min(0).optional(),
  epoch: z.number().int().min(0).optional(),
});
export type GatewayIdentity = z.infer<typeof GatewayIdentity>;

/**
 * A lease as the hub answers it: the term, and how long it lasts from the answer, measured by the hub's clock.
 * `syncRequired`: the term has not begun with a guild.sync yet (a heartbeat took over a guild): send one now.
 */
export const LeaseGrant = z.object({
  term: z.number().int().min(1),
  expiresInMs: z.number().int().min(0),
  syncRequired: z.literal(true).optional(),
});
export type LeaseGrant = z.infer<typeof LeaseGrant>;

/** Why a hub refused a gateway (409): another holds the lease, this one lost it, or a new term must begin with a sync. */
export const LEASE_REFUSALS = ["lease_held", "lease_lost", "sync_required"] as const;
export type LeaseRefusalReason = (typeof LEASE_REFUSALS)[number];

/** The 409 body: `retryAfterMs` is the holder's time left; `lease` is the caller's when it holds one (sync_required). */
export const LeaseRefusal = z.object({
  error: z.enum(LEASE_REFUSALS),
  message: z.string(),
  retryAfterMs: z.number().int().min(0),
  lease: LeaseGrant.optional(),
});
export type LeaseRefusal = z.infer<typeof LeaseRefusal>;

export const InternalEventsBody = z.union([
  z.object({ events: z.array(z.intersection(InternalEvent, WithId)).min(1).max(MAX_EVENTS_PER_REQUEST), gateway: GatewayIdentity.optional() }),
  z.intersection(InternalEvent, WithId),
]);
export type InternalEventsBody = z.infer<typeof InternalEventsBody>;
export type IdentifiedInternalEvent = InternalEvent & { id: string };

/** POST /internal/lease: renews a guild's lease while there is nothing to deliver, or releases it on shutdown. */
export const LeaseRequestBody = z.object({
  guildId: Snowflake,
  gateway: GatewayIdentity.extend({ term: z.number().int().min(0) }),
  release: z.boolean().optional(),
});
export type LeaseRequestBody = z.infer<typeof LeaseRequestBody>;

/**
 * `served: false`: the edge does not serve the guild (not in its PRIMARY_GUILD_ID or ALLOWED_GUILD_IDS): the request
 * was acknowledged and did nothing. Absent otherwise (and from edges of earlier releases).
 */
const NotServed = z.literal(false).optional();

/** 200 to POST /internal/lease: the lease now held, or none after a release (or for a guild the edge does not serve). */
export const LeaseResponse = z.object({ ok: z.literal(true), lease: LeaseGrant.optional(), served: NotServed });
export type LeaseResponse = z.infer<typeof LeaseResponse>;

export const InternalEventsResponse = z.object({
  ok: z.literal(true),
  accepted: z.number().int().min(0),
  duplicates: z.number().int().min(0),
  /** The sender's lease for the batch's guild, renewed by the batch (absent for a sender naming no gateway). */
  lease: LeaseGrant.optional(),
  /** Some of the batch's events are for a guild the edge does not serve: acknowledged and dropped. */
  served: NotServed,
});
export type InternalEventsResponse = z.infer<typeof InternalEventsResponse>;

/** Normalises the single-event and batch forms into one list. */
export function internalEventList(body: InternalEventsBody): IdentifiedInternalEvent[] {
  return "events" in body ? body.events : [body];
}

/**
 * Cuts a guild.sync into parts of at most `maxBytes` of JSON each (channels go in the first part), so a guild of
 * any size converges. A sync that fits is returned whole, without part information.
 */
export function splitGuildSync(sync: GuildSyncPayload, syncId: string, maxBytes = MAX_SYNC_PART_BYTES): GuildSyncPayload[] {
  const { part: _ignored, ...whole } = sync;
  if (jsonBytes(whole) <= maxBytes) return [whole];
  const pictures: Array<Pick<GuildSyncPayload, "channels" | "voiceStates">> = [];
  let current = { channels: sync.channels, voiceStates: [] as GuildSyncPayload["voiceStates"] };
  let size = jsonBytes(current) + 200; // room for the envelope, ids and part fields
  for (const state of sync.voiceStates) {
    const stateSize = jsonBytes(state) + 1;
    if (size + stateSize > maxBytes && current.voiceStates.length > 0) {
      pictures.push(current);
      current = { channels: [], voiceStates: [] };
      size = jsonBytes(current) + 200;
    }
    current.voiceStates.push(state);
    size += stateSize;
  }
  pictures.push(current);
  return pictures.map((picture, index) => ({
    guildId: sync.guildId,
    ...picture,
    part: { syncId, index, count: pictures.length },
  }));
}

const utf8 = new TextEncoder();

/** The size of a value's JSON in bytes, as a request body counts it. */
export function jsonBytes(value: unknown): number {
  return utf8.encode(JSON.stringify(value)).byteLength;
}

/** POST /internal/stats (signed): the counters of a guild's hub and of the relays linked to it. */
export const StatsRequestBody = z.object({ guildId: Snowflake }).strict();
export type StatsRequestBody = z.infer<typeof StatsRequestBody>;

/** What one object counted since it last started (in memory: an eviction starts them over). */
export interface ObjectStats {
  /** The guild id for a hub, `<guildId>/<region>/<shard>` for a relay. */
  name: string;
  role: "hub" | "relay";
  /** Live client sockets it holds now. */
  sockets: number;
  /** Events published (hub) or received from the hub (relay). */
  events: number;
  /** Flushes: each sends every recipient at most one frame (see worker-edge/src/hub/coalescer.ts). */
  flushes: number;
  /** Frames written to client sockets (a batch frame is one). */
  sends: number;
  /** Frames written to relays' links (hub only): one per relay per flush. */
  relaySends: number;
  /** Client auth messages whose token this object verified. */
  tokensVerified: number;
  /** The relays linked now (hub only). */
  relays: string[];
}

/** 200 to POST /internal/stats. */
export interface StatsResponse {
  hub: ObjectStats;
  relays: ObjectStats[];
}
