/**
 * The REST responses the SDK validates (zod/mini, like schemas.ts), in their own module so the WebSocket entry does
 * not carry them. client/test/schemas.test.ts checks they accept and reject what protocol/'s schemas do.
 */
import * as z from "zod/mini";
import { ERROR_CODES } from "../protocol/codes.js";
import type * as protocol from "../protocol/index.js";
import { int, Room, Snowflake } from "./schemas.js";

export const CreateRoomResponse = z.object({ channelId: Snowflake, name: z.string(), guildId: Snowflake });
export const EndRoomResponse = z.object({ ok: z.literal(true) });
export const RoomsResponse = z.object({ guildId: Snowflake, seq: int(0), rooms: z.array(Room) });
export const ErrorBody = z.object({
  error: z.enum(ERROR_CODES),
  message: z.string(),
  issues: z.optional(z.array(z.object({ path: z.string(), message: z.string() }))),
});

// Compile-time: each schema here parses to exactly the protocol's type.
type AllTrue<T extends true[]> = T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type _SameTypes = AllTrue<[
  Same<z.output<typeof CreateRoomResponse>, protocol.CreateRoomResponse>,
  Same<z.output<typeof EndRoomResponse>, z.output<typeof protocol.EndRoomResponse>>,
  Same<z.output<typeof RoomsResponse>, protocol.RoomsResponse>,
  Same<z.output<typeof ErrorBody>, protocol.ErrorBody>,
]>;
