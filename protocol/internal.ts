import { z } from "zod";
import { Snowflake } from "./ids.js";
import { AppEvent } from "./events.js";

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

/** Full picture of a guild's voice channels and who is in them, sent after every fresh Discord session. */
export const GuildSyncPayload = z.object({
  guildId: Snowflake,
  channels: z.array(SyncChannel).max(500),
  voiceStates: z.array(SyncVoiceState).max(25_000),
});
export type GuildSyncPayload = z.infer<typeof GuildSyncPayload>;

/** Event ids are opaque to the hub; the gateway uses `<session>:<seq>[:<index>]`. */
export const InternalEventId = z.string().min(1).max(128);

export const InternalEvent = z.union([
  AppEvent,
  z.object({ event: z.literal("guild.sync"), payload: GuildSyncPayload }),
]);
export type InternalEvent = z.infer<typeof InternalEvent>;

const WithId = z.object({ id: InternalEventId });
const WithOptionalId = z.object({ id: InternalEventId.optional() });

export const InternalEventsBody = z.union([
  z.object({ events: z.array(z.intersection(InternalEvent, WithId)).min(1).max(500) }),
  z.intersection(InternalEvent, WithOptionalId),
]);
export type InternalEventsBody = z.infer<typeof InternalEventsBody>;
export type IdentifiedInternalEvent = InternalEvent & { id?: string };

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
