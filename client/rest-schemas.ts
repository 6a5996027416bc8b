/**
 * The REST responses the SDK validates (like schemas.ts), in their own module so the WebSocket entry does not carry
 * them. client/test/schemas.test.ts checks they accept and reject what protocol/'s schemas do.
 */
import { ERROR_CODES } from "../protocol/codes.js";
import { GuildStatus, Room, Snowflake } from "./schemas.js";
import { array, int, literal, object, optional, string } from "./validate.js";

export const CreateRoomResponse = object({ channelId: Snowflake, name: string(), guildId: Snowflake });
export const EndRoomResponse = object({ ok: literal(true) });
export const RoomsResponse = object({ guildId: Snowflake, seq: int(0), rooms: array(Room), status: optional(GuildStatus) });
export const ErrorBody = object({
  error: literal(...ERROR_CODES),
  message: string(),
  issues: optional(array(object({ path: string(), message: string() }))),
});
