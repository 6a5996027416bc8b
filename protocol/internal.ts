import { z } from "zod";
import { Snowflake } from "./ids.js";
import { AppEvent } from "./events.js";
import { MAX_SYNC_CHANNELS, MAX_SYNC_VOICE_STATES } from "./limits.js";

export { MAX_SYNC_CHANNELS, MAX_SYNC_VOICE_STATES } from "./limits.js";

export const SyncChannel = z.object({
  channelId: Snowflake,
  name: z.string().min(1).max(100),
  parentId: Snowflake.nullable().optional(),
  userLimit: z.number().int().min(0).max(99),
});
export const SyncVoiceState = z.object({
  userId: Snowflake,
  channelId: Snowflake,
  username: z.string().max(100).optional(),
  avatar: z.string().max(200).nullable().optional(),
});

/**
 * One part of a multi-part sync: a picture too large for one request is cut into `count` parts sharing `syncId`;
 * the hub applies it once every part has arrived, as if it had been sent whole.
 */
export const SyncPart = z.object({
  syncId: z.string().min(1).max(64),
  index: z.number().int().min(0),
  count: z.number().int().min(1).max(64),
}).refine((part) => part.index < part.count, { message: "index must be below count" });

/** Full picture of a guild's voice channels and who is in them, sent after every fresh Discord session. */
export const GuildSyncPayload = z.object({
  guildId: Snowflake,
  channels: z.array(SyncChannel).max(MAX_SYNC_CHANNELS),
  voiceStates: z.array(SyncVoiceState).max(MAX_SYNC_VOICE_STATES),
  part: SyncPart.optional(),
});
export type GuildSyncPayload = z.infer<typeof GuildSyncPayload>;

/** Event ids are opaque to the hub; the gateway uses `<session>:<seq>[:<index>]`. */
export const InternalEventId = z.string().min(1).max(128);

export const InternalEvent = z.union([
  AppEvent,
  z.object({ event: z.literal("guild.sync"), payload: GuildSyncPayload }),
]);
export type InternalEvent = z.infer<typeof InternalEvent>;

// Every event carries an id: it is what lets the hub tell a replayed request from a new event.
const WithId = z.object({ id: InternalEventId });

/**
 * Which gateway process sent a batch: `epoch` is when it started (ms). Per guild the hub follows the newest
 * gateway and refuses an older one with 409 `superseded`, so two processes at once cannot both write presence.
 */
export const GatewayLease = z.object({
  epoch: z.number().int().min(0),
  instance: z.string().min(1).max(64),
});
export type GatewayLease = z.infer<typeof GatewayLease>;

export const InternalEventsBody = z.union([
  z.object({ events: z.array(z.intersection(InternalEvent, WithId)).min(1).max(500), gateway: GatewayLease.optional() }),
  z.intersection(InternalEvent, WithId),
]);
export type InternalEventsBody = z.infer<typeof InternalEventsBody>;
export type IdentifiedInternalEvent = InternalEvent & { id: string };

export const InternalEventsResponse = z.object({
  ok: z.literal(true),
  accepted: z.number().int().min(0),
  duplicates: z.number().int().min(0),
});
export type InternalEventsResponse = z.infer<typeof InternalEventsResponse>;

/** Normalises the single-event and batch forms into one list. */
export function internalEventList(body: InternalEventsBody): IdentifiedInternalEvent[] {
  return "events" in body ? body.events : [body];
}

export const MAX_INTERNAL_BODY_BYTES = 1024 * 1024;

/** Largest sync part the gateway sends: several fit in one request under MAX_INTERNAL_BODY_BYTES. */
export const MAX_SYNC_PART_BYTES = 256 * 1024;

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
