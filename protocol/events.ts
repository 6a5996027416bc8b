import { z } from "zod";
import { Snowflake } from "./ids.js";
import { GUILD_STATUSES, MAX_AVATAR_LENGTH, MAX_ROOM_NAME_LENGTH, MAX_ROOM_USER_LIMIT, MAX_USERNAME_LENGTH } from "./limits.js";

/**
 * A member's microphone, headphones, camera and stream, as Discord's voice state flags (camel-cased): `self*` the
 * member set themselves, `mute`/`deaf` a moderator set.
 */
export const VoiceMedia = z.object({
  selfMute: z.boolean(),
  selfDeaf: z.boolean(),
  mute: z.boolean(),
  deaf: z.boolean(),
  selfVideo: z.boolean(),
  selfStream: z.boolean(),
});
export type VoiceMedia = z.infer<typeof VoiceMedia>;

/**
 * A voice member as the hub knows them; username/avatar come from the gateway when Discord sends them. `media` is
 * always sent by this hub; it is optional so an older hub's messages stay valid (absent: every flag false).
 */
export const Member = z.object({
  userId: Snowflake,
  username: z.string().max(MAX_USERNAME_LENGTH).optional(),
  avatar: z.string().max(MAX_AVATAR_LENGTH).nullable().optional(),
  media: VoiceMedia.optional(),
});
export type Member = z.infer<typeof Member>;

/**
 * Whether the hub's picture of the guild is Discord's: `available`; `unavailable`, Discord reports an outage (the
 * picture is kept but may be stale); `absent`, the bot is not in the guild (removed, or never invited): no rooms
 * until a new picture arrives. Absent from an older hub's messages: available.
 */
export const GuildStatus = z.enum(GUILD_STATUSES);
export type GuildStatus = z.infer<typeof GuildStatus>;

/**
 * `creatorId`: who created the room through this service (absent for rooms made elsewhere). The hub sets it from
 * its own records; one an internal event carries is ignored.
 */
export const RoomCreatedPayload = z.object({
  guildId: Snowflake,
  channelId: Snowflake,
  name: z.string().min(1).max(MAX_ROOM_NAME_LENGTH),
  parentId: Snowflake.nullable().optional(),
  userLimit: z.number().int().min(0).max(MAX_ROOM_USER_LIMIT),
  creatorId: Snowflake.optional(),
});
export const RoomDeletedPayload = z.object({ guildId: Snowflake, channelId: Snowflake });
export const VoiceJoinedPayload = z.object({ guildId: Snowflake, channelId: Snowflake }).extend(Member.shape);
/** channelId is the room the user LEFT, so per-room filtering works. */
export const VoiceLeftPayload = z.object({ guildId: Snowflake, channelId: Snowflake, userId: Snowflake });
/**
 * A member's media flags are now these: a state (applying it twice changes nothing). A client ignores one for a
 * user it does not hold in that room.
 */
export const VoiceMediaPayload = z.object({ guildId: Snowflake, channelId: Snowflake, userId: Snowflake, media: VoiceMedia });

export const GuildStatusPayload = z.object({ guildId: Snowflake, status: GuildStatus });

export const AppEvent = z.discriminatedUnion("event", [
  z.object({ event: z.literal("room.created"), payload: RoomCreatedPayload }),
  /** A known room's name, user limit or parent changed; the payload is the room's new description. */
  z.object({ event: z.literal("room.updated"), payload: RoomCreatedPayload }),
  z.object({ event: z.literal("room.deleted"), payload: RoomDeletedPayload }),
  z.object({ event: z.literal("voice.joined"), payload: VoiceJoinedPayload }),
  z.object({ event: z.literal("voice.left"), payload: VoiceLeftPayload }),
  z.object({ event: z.literal("voice.media"), payload: VoiceMediaPayload }),
  /** The guild's status changed; for `absent`, the room.deleted of every room follows it. */
  z.object({ event: z.literal("guild.status"), payload: GuildStatusPayload }),
]);
export type AppEvent = z.infer<typeof AppEvent>;
export type AppEventName = AppEvent["event"];

export type PayloadOf<E extends AppEventName> = Extract<AppEvent, { event: E }>["payload"];

/** The room an event is about; undefined for an event about the whole guild (guild.status). */
export function channelOf(event: Pick<AppEvent, "payload">): string | undefined {
  return "channelId" in event.payload ? event.payload.channelId : undefined;
}

export const Room = z.object({
  channelId: Snowflake,
  name: z.string(),
  userLimit: z.number().int(),
  parentId: Snowflake.nullable().optional(),
  /** As in room.created. */
  creatorId: Snowflake.optional(),
  members: z.array(Member),
});
export type Room = z.infer<typeof Room>;
