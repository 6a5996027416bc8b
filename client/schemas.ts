/**
 * The messages the SDK validates, with the small validators of client/validate.ts (zod, even zod/mini, would be
 * most of the SDK's bundle). They accept and reject exactly what protocol/'s schemas do and give the same data:
 * client/test/schemas.test.ts runs both on the same messages and checks that their output types are equal.
 */
import { GUILD_STATUSES, MAX_AVATAR_LENGTH, MAX_ROOM_NAME_LENGTH, MAX_ROOM_USER_LIMIT, MAX_USERNAME_LENGTH } from "../protocol/limits.js";
import { isSnowflake } from "../protocol/snowflake.js";
import { anyObject, array, int, literal, nullable, object, optional, string, union, when, type Output, type Validator } from "./validate.js";

export const Snowflake = when<string>(isSnowflake);
const boolean = literal(true, false);
const VoiceMedia = object({ selfMute: boolean, selfDeaf: boolean, mute: boolean, deaf: boolean, selfVideo: boolean, selfStream: boolean });
export const GuildStatus = literal(...GUILD_STATUSES);

const memberShape = {
  userId: Snowflake,
  username: optional(string(0, MAX_USERNAME_LENGTH)),
  avatar: optional(nullable(string(0, MAX_AVATAR_LENGTH))),
  media: optional(VoiceMedia),
};
const Member = object(memberShape);
const RoomCreatedPayload = object({
  guildId: Snowflake,
  channelId: Snowflake,
  name: string(1, MAX_ROOM_NAME_LENGTH),
  parentId: optional(nullable(Snowflake)),
  userLimit: int(0, MAX_ROOM_USER_LIMIT),
  creatorId: optional(Snowflake),
});

/** Each event's payload, by the event's name. */
const payloads = {
  "room.created": RoomCreatedPayload,
  "room.updated": RoomCreatedPayload,
  "room.deleted": object({ guildId: Snowflake, channelId: Snowflake }),
  "voice.joined": object({ guildId: Snowflake, channelId: Snowflake, ...memberShape }),
  "voice.left": object({ guildId: Snowflake, channelId: Snowflake, userId: Snowflake }),
  "voice.media": object({ guildId: Snowflake, channelId: Snowflake, userId: Snowflake, media: VoiceMedia }),
  "guild.status": object({ guildId: Snowflake, status: GuildStatus }),
};
type Payloads = typeof payloads;
type AppEventName = keyof Payloads;

/** The envelope of one event (protocol's AppEvent & {v, type, ts, seq}, as one object). */
const eventEnvelope = <E extends AppEventName, P>(event: E, payload: Validator<P>) =>
  object({ v: literal(1), type: literal("event"), event: literal(event), payload, ts: int(), seq: int(1) });
type EventEnvelopeOf<E extends AppEventName> = ReturnType<typeof eventEnvelope<E, Output<Payloads[E]>>>;
export const EventEnvelope = union(
  ...(Object.keys(payloads) as AppEventName[]).map((event) => eventEnvelope(event, payloads[event] as Validator<unknown>)),
) as Validator<{ [E in AppEventName]: Output<EventEnvelopeOf<E>> }[AppEventName]>;

/** The event names this SDK knows (and validates in full). */
export const knownEvents: ReadonlySet<string> = new Set(Object.keys(payloads));

export const Room = object({
  channelId: Snowflake,
  name: string(),
  userLimit: int(),
  parentId: optional(nullable(Snowflake)),
  creatorId: optional(Snowflake),
  members: array(Member),
});

export const AuthOk = object({ v: literal(1), type: literal("ack"), event: literal("auth.ok"), guildId: Snowflake, seq: int(0) });
export const Snapshot = object({
  v: literal(1),
  type: literal("snapshot"),
  payload: object({ rooms: array(Room), status: optional(GuildStatus) }),
  seq: int(0),
});
export const ServerMessage = union(AuthOk, Snapshot, EventEnvelope);

/**
 * Any well-formed event envelope, also one a newer hub sends with an event name this client does not know: its
 * seq must be applied or the next event would look like a gap. Known names are validated in full by ServerMessage.
 */
export const AnyEventEnvelope = object({ v: literal(1), type: literal("event"), event: string(), payload: anyObject, ts: int(), seq: int(1) });
