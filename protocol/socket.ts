import { z } from "zod";
import { Snowflake } from "./ids.js";
import { AppEvent, GuildStatus, Room } from "./events.js";
import { MAX_FILTER_ROOMS, MAX_TOKEN_BYTES } from "./limits.js";

export const AUTH_TIMEOUT_MS = 5_000;

export { CloseCode } from "./codes.js";

const RoomFilter = z.array(Snowflake).max(MAX_FILTER_ROOMS);

export const ClientAuth = z
  .object({
    type: z.literal("auth"),
    token: z.string().min(1).max(MAX_TOKEN_BYTES),
    since: z.number().int().min(0).optional(),
    rooms: RoomFilter.optional(),
    // Opt-in coalescing: events published together may arrive as one BatchFrame. Absent or false: one frame each.
    batch: z.boolean().optional(),
  })
  .strict();
export type ClientAuth = z.infer<typeof ClientAuth>;

/**
 * Replaces a live socket's room filter: `rooms` absent receives every room's voice events, `[]` none (room events
 * always arrive). The hub answers with a snapshot at the current seq under the new filter.
 */
export const ClientRooms = z.object({ type: z.literal("rooms"), rooms: RoomFilter.optional() }).strict();
export type ClientRooms = z.infer<typeof ClientRooms>;

export const ClientMessage = z.discriminatedUnion("type", [ClientAuth, ClientRooms]);
export type ClientMessage = z.infer<typeof ClientMessage>;

export const AuthOk = z.object({
  v: z.literal(1),
  type: z.literal("ack"),
  event: z.literal("auth.ok"),
  guildId: Snowflake,
  seq: z.number().int().min(0),
});
export const Snapshot = z.object({
  v: z.literal(1),
  type: z.literal("snapshot"),
  /** `status` absent (an older hub): "available". */
  payload: z.object({ rooms: z.array(Room), status: GuildStatus.optional() }),
  seq: z.number().int().min(0),
});
export const EventEnvelope = z.intersection(
  AppEvent,
  z.object({ v: z.literal(1), type: z.literal("event"), ts: z.number().int(), seq: z.number().int().min(1) }),
);
export type EventEnvelope = z.infer<typeof EventEnvelope>;

export const ServerMessage = z.union([AuthOk, Snapshot, EventEnvelope]);
/**
 * Sent only to a socket whose auth message said `batch: true`: several events published together, in seq order,
 * each exactly as it would arrive alone. Not part of ServerMessage, so clients that never opt in never see one.
 */
export const BatchFrame = z.object({ v: z.literal(1), type: z.literal("batch"), events: z.array(EventEnvelope).min(2) });
export type BatchFrame = z.infer<typeof BatchFrame>;
export type ServerMessage = z.infer<typeof ServerMessage>;
export type AuthOkMessage = z.infer<typeof AuthOk>;
export type SnapshotMessage = z.infer<typeof Snapshot>;
