/**
 * The messages the SDK validates, written with zod/mini so a browser bundle carries only the parts of zod it uses
 * (the classic `zod` API pulls in all of zod: about 95 KB gzipped, against under 10 KB for the whole SDK now; see
 * `npm run size:client`). They accept and reject exactly what protocol/'s schemas do (snowflakes and integers as
 * refinements, which keeps zod's regex and number-format code out); the type checks at the end keep their output
 * types equal to the protocol's and client/test/schemas.test.ts runs both on the same messages.
 */
import * as z from "zod/mini";
import type * as protocol from "../protocol/index.js";

/** protocol's Snowflake: 17–20 digits that fit in 64 bits. */
export const Snowflake = z.string().check(z.refine((id) => /^\d{17,20}$/.test(id) && (id.length < 20 || id <= "18446744073709551615")));
/** A safe integer in [min, max] (protocol's z.number().int().min().max()). */
export const int = (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) =>
  z.number().check(z.refine((n) => Number.isSafeInteger(n) && n >= min && n <= max));

const Member = z.object({
  userId: Snowflake,
  username: z.optional(z.string().check(z.maxLength(100))),
  avatar: z.optional(z.nullable(z.string().check(z.maxLength(200)))),
});
const RoomCreatedPayload = z.object({
  guildId: Snowflake,
  channelId: Snowflake,
  name: z.string().check(z.minLength(1), z.maxLength(100)),
  parentId: z.optional(z.nullable(Snowflake)),
  userLimit: int(0, 99),
  creatorId: z.optional(Snowflake),
});
const RoomDeletedPayload = z.object({ guildId: Snowflake, channelId: Snowflake });
const VoiceJoinedPayload = z.object({ guildId: Snowflake, channelId: Snowflake, ...Member.shape });
const VoiceLeftPayload = z.object({ guildId: Snowflake, channelId: Snowflake, userId: Snowflake });

/** The envelope of each event this SDK knows (protocol's AppEvent & {v, type, ts, seq}, as one object each). */
const eventEnvelope = <E extends protocol.AppEventName, P extends z.ZodMiniType>(event: E, payload: P) =>
  z.object({ v: z.literal(1), type: z.literal("event"), event: z.literal(event), payload, ts: int(), seq: int(1) });
const eventEnvelopes = [
  eventEnvelope("room.created", RoomCreatedPayload),
  eventEnvelope("room.updated", RoomCreatedPayload),
  eventEnvelope("room.deleted", RoomDeletedPayload),
  eventEnvelope("voice.joined", VoiceJoinedPayload),
  eventEnvelope("voice.left", VoiceLeftPayload),
] as const;

/** The event names this SDK knows (and validates in full). */
export const knownEvents: ReadonlySet<string> = new Set<protocol.AppEventName>(eventEnvelopes.map((schema) => schema.def.shape.event.def.values[0]!));

export const Room = z.object({
  channelId: Snowflake,
  name: z.string(),
  userLimit: int(),
  parentId: z.optional(z.nullable(Snowflake)),
  creatorId: z.optional(Snowflake),
  members: z.array(Member),
});

const AuthOk = z.object({ v: z.literal(1), type: z.literal("ack"), event: z.literal("auth.ok"), guildId: Snowflake, seq: int(0) });
const Snapshot = z.object({ v: z.literal(1), type: z.literal("snapshot"), payload: z.object({ rooms: z.array(Room) }), seq: int(0) });
export const ServerMessage = z.union([AuthOk, Snapshot, ...eventEnvelopes]);

/**
 * Any well-formed event envelope, also one a newer hub sends with an event name this client does not know: its
 * seq must be applied or the next event would look like a gap. Known names are validated in full by ServerMessage.
 */
export const AnyEventEnvelope = z.object({
  v: z.literal(1),
  type: z.literal("event"),
  event: z.string(),
  payload: z.looseObject({}),
  ts: int(),
  seq: int(1),
});

// Compile-time: each schema here parses to exactly the protocol's type.
type AllTrue<T extends true[]> = T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type _SameTypes = AllTrue<[
  Same<z.output<typeof ServerMessage>, protocol.ServerMessage>,
  Same<z.output<(typeof eventEnvelopes)[number]>, protocol.EventEnvelope>,
  Same<z.output<typeof Snapshot>, protocol.SnapshotMessage>,
  Same<z.output<typeof AuthOk>, protocol.AuthOkMessage>,
  Same<z.output<typeof Room>, protocol.Room>,
  Same<z.output<(typeof eventEnvelopes)[number]>["event"], protocol.AppEventName>,
]>;
