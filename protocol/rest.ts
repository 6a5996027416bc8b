import { z } from "zod";
import { Snowflake } from "./ids.js";
import { GuildStatus, Room } from "./events.js";
import { ERROR_CODES } from "./codes.js";
import { MAX_ROOM_NAME_LENGTH, MAX_ROOM_USER_LIMIT } from "./limits.js";

export const CreateRoomBody = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(MAX_ROOM_NAME_LENGTH)
      .regex(/^\P{Cc}*$/u, "must not contain control characters")
      .optional(),
    parentId: Snowflake.optional(),
    userLimit: z.number().int().min(0).max(MAX_ROOM_USER_LIMIT).default(4),
  })
  .strict();
export type CreateRoomBody = z.input<typeof CreateRoomBody>;

export const CreateRoomResponse = z.object({ channelId: Snowflake, name: z.string(), guildId: Snowflake });
export type CreateRoomResponse = z.infer<typeof CreateRoomResponse>;

export const EndRoomResponse = z.object({ ok: z.literal(true) });

/** `status` absent (an older hub): "available". */
export const RoomsResponse = z.object({ guildId: Snowflake, seq: z.number().int().min(0), rooms: z.array(Room), status: GuildStatus.optional() });
export type RoomsResponse = z.infer<typeof RoomsResponse>;

export const ErrorCode = z.enum(ERROR_CODES);
export type ErrorCode = z.infer<typeof ErrorCode>;

export const ErrorBody = z.object({
  error: ErrorCode,
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
