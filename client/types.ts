/**
 * The wire types the SDK's API names, as its validators produce them. client/test/schemas.test.ts checks each is
 * exactly protocol/'s type; they are spelled here so that the package's declarations do not need zod.
 */
import type * as rest from "./rest-schemas.js";
import type * as wire from "./schemas.js";
import type { Output } from "./validate.js";

export type Room = Output<typeof wire.Room>;
export type Member = Room["members"][number];
/** A member's microphone, sound, camera and screen share flags; see `mediaOf` for a member without them. */
export type VoiceMedia = NonNullable<Member["media"]>;
export type GuildStatus = NonNullable<SnapshotMessage["payload"]["status"]>;
export type EventEnvelope = Output<typeof wire.EventEnvelope>;
export type AppEventName = EventEnvelope["event"];
export type SnapshotMessage = Output<typeof wire.Snapshot>;
export type AuthOkMessage = Output<typeof wire.AuthOk>;
export type ServerMessage = Output<typeof wire.ServerMessage>;
export type CreateRoomResponse = Output<typeof rest.CreateRoomResponse>;
export type RoomsResponse = Output<typeof rest.RoomsResponse>;
export type ErrorBody = Output<typeof rest.ErrorBody>;

/** POST /create-room's body as a caller writes it; the service validates it (protocol's CreateRoomBody). */
export interface CreateRoomBody {
  /** 1–100 characters, no control characters. */
  name?: string | undefined;
  parentId?: string | undefined;
  /** 0–99 (0: no limit); 4 when absent. */
  userLimit?: number | undefined;
}
